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

import re
from functools import lru_cache

from rzero_bench.grading.fastmath import Fingerprint, decide_fast, fingerprint
from rzero_bench.grading.mvtext import latex_seen_by_parser
from rzero_bench.grading.normalize import MathInfo, decide_math, math_info, prepare_for_math_verify

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
    latex_seen_by_parser.cache_clear()


def decide_pair(a: str, b: str) -> bool | None:
    """math-verify's verdict on answers ``a`` and ``b`` (the same in either direction), or None when
    only math-verify can tell."""
    ia, ib = cached_info(a), cached_info(b)
    decided = decide_math(ia, ib)
    if decided is None:
        fa, fb = cached_fingerprint(a), cached_fingerprint(b)
        decided = decide_fast(fa, fb)
        if decided is None and (_word_vs_constant(a, ia, fb) or _word_vs_constant(b, ib, fa)):
            decided = False
    return decided


_WORD_RE = re.compile(r"[A-Za-z][A-Za-z ]*|\\text\{[A-Za-z ]+\}")


def _word_vs_constant(answer: str, info: MathInfo, other: Fingerprint | None) -> bool:
    """A word ("None", ``\\text{no solution}``) against a fingerprint without symbols: different.

    latex2sympy reads a word as a product of one-letter symbols, or ``\\text{...}`` as one symbol;
    with a letter other than e/i (constants) it has a free symbol, so neither its numeric nor its
    symbolic comparison with a constant (a number, set, tuple, interval or matrix of constants)
    can succeed, and a symbol is compared with a constant by its printed name (never "pi" here).
    """
    if info.kind != "text" or other is None or any(x is None or x.symbols for x in other.items):
        return False
    latex = latex_seen_by_parser(prepare_for_math_verify(answer))
    if latex is None or not _WORD_RE.fullmatch(latex.strip()):
        return False
    letters = "".join(c for c in latex.replace("\\text", "") if c.isalpha()).lower()
    return bool(set(letters) - set("ei")) and letters != "pi"
