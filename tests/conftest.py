"""Shared pytest fixtures. Tests run offline: the Hugging Face hub and datasets are switched off here,
before anything imports huggingface_hub."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

REPO_ROOT = Path(__file__).resolve().parent.parent


def _tiny_home() -> Path:
    env = os.environ.get("RZERO_HOME")
    return Path(env).expanduser() if env else REPO_ROOT / ".rzero_home"


@pytest.fixture
def hf_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make sure the hub and datasets are offline for this test (they already are, session-wide)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    yield


@pytest.fixture(scope="session")
def tiny_home() -> Path:
    """Cache root for tiny models in tests: $RZERO_HOME if set, else <repo>/.rzero_home/."""
    return _tiny_home()


@pytest.fixture(scope="session")
def tiny_model(tiny_home: Path) -> Callable[[str], Path]:
    """Build (or reuse from the cache) a tiny model by size: ``tiny_model("s")``."""
    from rzero_bench.training.tiny import build_tiny

    def build(size: str = "xs") -> Path:
        return build_tiny(size, home=tiny_home)

    return build


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model: Callable[[str], Path]) -> Path:
    """Directory of the cached tiny model of size "xs" (~0.2M parameters)."""
    return tiny_model("xs")


@pytest.fixture(scope="session")
def tiny_model_path_s(tiny_model: Callable[[str], Path]) -> Path:
    """Directory of the cached tiny model of size "s" (~4M parameters)."""
    return tiny_model("s")
