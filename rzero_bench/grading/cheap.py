"""The verdict on a pair of math answers reached without math-verify, with per-string caches.

``decide_pair(a, b)`` applies, in order, ``normalize.decide_math`` (plain numbers, text, malformed
strings, symbol words) and ``fastmath.decide_fast`` (pure-Python fingerprints); it returns True or
False only where math-verify's ``verify`` gives that verdict in *both* directions, else None. The
parent (``grade``, ``equivalence_classes``), the workers' cluster jobs and ``perf/agreement.py``
(which measures the claim against math-verify on the local benchmark data) all call this one
function.

Analyses are cached per string for the life of the process (answers and references repeat across
samples, sets and iterations, so each distinct string is analysed once per run): ``math_info`` and
``fingerprint`` results are immutable, and the caches are bounded LRUs.
"""

from __future__ import annotations

from functools import lru_cache

from rzero_bench.grading.fastmath import Fingerprint, decide_fast, fingerprint
from rzero_bench.grading.normalize import MathInfo, decide_math, math_info

__all__ = ["cached_fingerprint", "cached_info", "clear_caches", "decide_pair"]

_CACHE = 1 << 16  # distinct strings kept per cache


@lru_cache(maxsize=_CACHE)
def cached_info(answer: str) -> MathInfo:
    """``normalize.math_info``, cached."""
    return math_info(answer)


@lru_cache(maxsize=_CACHE)
def cached_fingerprint(answer: str) -> Fingerprint | None:
    """``fastmath.fingerprint``, cached."""
    return fingerprint(answer)


def clear_caches() -> None:
    """Forget every cached analysis (for timing cold runs)."""
    cached_info.cache_clear()
    cached_fingerprint.cache_clear()


def decide_pair(a: str, b: str) -> bool | None:
    """math-verify's verdict on answers ``a`` and ``b`` (the same in either direction), or None when
    only math-verify can tell."""
    decided = decide_math(cached_info(a), cached_info(b))
    if decided is None:
        decided = decide_fast(cached_fingerprint(a), cached_fingerprint(b))
    return decided
