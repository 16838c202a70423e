"""Built-in generated datasets that a task names with ``processor: generated``.

A task YAML never carries code or an import path: ``metadata.generator`` must be a key of
:data:`GENERATORS`, which maps it to a ``(module, function)`` pair imported lazily here. The function
takes ``metadata.generator_kwargs`` and returns the rows deterministically (same kwargs, same rows).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ["GENERATORS", "generate"]

# Deterministic, built-in datasets a task may name with ``processor: generated`` (no code in YAML).
GENERATORS: dict[str, tuple[str, str]] = {
    "micro_arith": ("rzero_bench.micro.arith", "micro_arith_docs"),
}


def generate(name: str, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of generator ``name`` called with ``kwargs`` (each row a fresh dict)."""
    module, func = GENERATORS[name]
    rows = getattr(importlib.import_module(module), func)(**kwargs)
    return [dict(r) for r in rows]
