"""Where the shipped data directories live: the top-level ``tasks/`` and ``trainers/``.

In a checkout (or an editable install) they are the repository's own ``tasks/`` and ``trainers/``,
the single source. A built wheel carries copies of them under ``rzero_bench/_shipped/`` (see
``[tool.hatch.build.targets.wheel.force-include]`` in ``pyproject.toml``), so an installed tool finds
them outside the repository too. Nothing else in the package hard-codes these locations.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from rzero_bench.errors import UserError

ShippedName = Literal["tasks", "trainers"]

_PACKAGE = Path(__file__).resolve().parent
_WHEEL_DIR = _PACKAGE / "_shipped"
_REPO_ROOT = _PACKAGE.parent


@cache
def shipped_dir(name: ShippedName) -> Path:
    """The directory holding the shipped ``tasks`` or ``trainers`` files.

    The wheel's copy wins when present; otherwise the repository root's directory is used, but only
    when that root really is an rzero-bench checkout (so a stray ``tasks/`` in site-packages is never
    picked up).
    """
    inside = _WHEEL_DIR / name
    if inside.is_dir():
        return inside
    repo = _REPO_ROOT / name
    if repo.is_dir() and _is_checkout(_REPO_ROOT):
        return repo
    raise UserError(f"rzero-bench installation is incomplete: no shipped {name}/ directory "
                    f"(looked in {inside} and {repo}); reinstall the package")


def _is_checkout(root: Path) -> bool:
    pyproject = root / "pyproject.toml"
    try:
        return pyproject.is_file() and 'name = "rzero-bench"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
