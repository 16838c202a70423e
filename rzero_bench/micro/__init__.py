"""Micro R-Zero: an integer-arithmetic world with an exact oracle, small enough for a CPU.

- :mod:`rzero_bench.micro.arith` (pure Python): problem generator, worked/direct solutions,
  challenger-format examples, the ``exact-arith`` oracle (:func:`~rzero_bench.micro.arith.solve`),
  question difficulty and the held-out ``micro_arith`` set.
- :mod:`rzero_bench.micro.pretrain` (torch): pretrains the micro base model from scratch (cache
  keys, the build, the ``micro pretrain`` command), from :mod:`~rzero_bench.micro.recipe` (the
  recipe as data), :mod:`~rzero_bench.micro.corpus` (examples, tokenizer corpus, packing),
  :mod:`~rzero_bench.micro.train` (one training phase) and :mod:`~rzero_bench.micro.evaluate` (the
  held-out greedy / maj@k check).

Heavy imports are deferred: ``import rzero_bench.micro`` and ``rzero_bench.micro.arith`` never
import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["pretrain_command", "pretrain_micro"]


def pretrain_micro(*args: Any, **kwargs: Any) -> Path:
    """Pretrain (or reuse from the cache) the micro base model; see :mod:`rzero_bench.micro.pretrain`."""
    from rzero_bench.micro.pretrain import pretrain_micro as _impl

    return _impl(*args, **kwargs)


def pretrain_command(
    size: str = "s", seed: int = 0, minutes: float | None = None, budget: str | None = None
) -> None:
    """CLI entry for ``rzero-bench micro pretrain``: progress, then the path and accuracy table."""
    from rzero_bench.micro.pretrain import pretrain_command as _impl

    _impl(size=size, seed=seed, minutes=minutes, budget=budget)
