"""Sampling adjustments that wrap any generator (the official code's solver samples use top-k 40).

:func:`with_top_k` returns a generator whose requests all sample with the given top-k; the wrapped
generator is used as is otherwise (its ``model_id``, ``name`` and lifetime stay the caller's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


class TopK:
    """A generator whose requests all sample with top-k = ``k`` (0: the requests' own setting)."""

    def __init__(self, inner: Any, k: int) -> None:
        self.inner, self.k = inner, int(k)
        self.model_id = getattr(inner, "model_id", "")
        self.name = getattr(inner, "name", "")

    def generate(self, requests: Sequence[Any], progress: Any = None) -> list[Any]:
        if self.k:
            requests = [dataclasses.replace(r, params=dataclasses.replace(r.params, top_k=self.k)) for r in requests]
        return list(self.inner.generate(requests, progress=progress))

    def close(self) -> None:  # the caller owns the inner generator
        return None

    def __enter__(self) -> TopK:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def with_top_k(generator: Any, k: int) -> Any:
    """``generator`` itself when ``k`` is 0, else a :class:`TopK` around it."""
    return TopK(generator, k) if k else generator
