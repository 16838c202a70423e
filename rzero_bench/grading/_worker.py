"""Code that runs inside a grading worker process (math-verify lives only here).

A job is a list of steps. Before each step the worker writes the step's key and (for a new item)
the start time into a shared array, the *cursor*; the parent reads it to enforce the wall-clock
timeout and, after killing a stuck worker, to resubmit the job with that step marked as skipped.
math-verify's own SIGALRM timeouts are disabled here: the parent's kill is the only timeout.

Step keys: ``(1, i, 0)`` parse string i (i = -1 is the reference of a grade job);
``(2, i, 0)`` verify prediction i against the reference; ``(2, r, i)`` in a cluster job: verify
representative r and candidate i in both directions.

In cluster jobs a pair of plain scalar expressions whose values clearly differ at two fixed
positive points is declared different without calling ``verify`` (math-verify could only call
them equal if they were equal everywhere, up to its 6-decimal rounding); equal-looking pairs,
sets, tuples, intervals, relations, matrices and percentages always go to ``verify``.
"""

from __future__ import annotations

import cmath
import logging
import os
import signal
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from rzero_bench.grading.cheap import cached_fingerprint, decide_pair
from rzero_bench.grading.fastmath import Fingerprint, decide_fast
from rzero_bench.grading.fastmath.values import const
from rzero_bench.grading.mvtext import latex_seen_by_parser
from rzero_bench.grading.normalize import MathInfo, decide_math, greedy_classes

PARSE, VERIFY = 1, 2
_CACHE_SIZE = 4096

try:  # imported at module level so a forkserver preload pays the sympy import once
    import sympy
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    _CONFIGS: list[Any] = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    _IMPORT_ERROR = ""
except Exception as exc:  # reported in the "ready" message; the pool then fails every job
    _IMPORT_ERROR = (
        f"math-verify cannot be imported in a grading worker ({type(exc).__name__}: {exc}); "
        "install it (pip install math-verify) or repair its installation"
    )

logging.getLogger("math_verify").setLevel(logging.CRITICAL)
logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)


class _Cursor:
    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def mark(self, code: int, i: int, j: int, new_item: bool) -> None:
        a = self.arr
        a[1], a[2], a[3] = code, i, j
        if new_item:
            a[4] = time.monotonic()
        a[0] = a[0] + 1


class _Parser:
    def __init__(self) -> None:
        self.cache: OrderedDict[str, list[Any]] = OrderedDict()

    def __call__(self, s: str) -> list[Any]:
        hit = self.cache.get(s)
        if hit is not None:
            self.cache.move_to_end(s)
            return hit
        parsed = parse(s, extraction_config=_CONFIGS, parsing_timeout=None)  # type: ignore[arg-type]
        self.cache[s] = parsed
        if len(self.cache) > _CACHE_SIZE:
            self.cache.popitem(last=False)
        return parsed


def _verify(gold: list[Any], pred: list[Any]) -> bool:
    return bool(verify(gold, pred, timeout_seconds=None))


_N_POINTS = 2
_MAX_SYMBOLS = 8


def _point(name: str, k: int) -> float:
    """A fixed, unremarkable positive value for symbol ``name`` at sample point k."""
    h = zlib.crc32(f"{name}/{k}".encode())
    return 0.55 + (h % 100_003) / 100_003


def _fingerprint(expr: Any) -> tuple[complex, ...] | None:
    """Values of a plain scalar expression at fixed points (None for sets, tuples, relations,
    matrices, strings, or anything that does not evaluate to a finite number)."""
    if not isinstance(expr, sympy.Expr) or isinstance(expr, sympy.MatrixBase):
        return None
    try:
        syms = sorted(expr.free_symbols, key=lambda s: s.name)
        if len(syms) > _MAX_SYMBOLS:
            return None
        out = []
        for k in range(_N_POINTS):
            subs = {s: sympy.Float(_point(s.name, k), 30) for s in syms}
            v = complex(expr.evalf(30, subs=subs))
            if not (cmath.isfinite(v)):
                return None
            out.append(v)
        return tuple(out)
    except Exception:  # noqa: BLE001 - no fingerprint, math-verify decides
        return None


def _differ(a: tuple[complex, ...], b: tuple[complex, ...]) -> bool:
    """Clearly different values at some point (far beyond math-verify's 6-decimal rounding)."""
    return any(abs(x - y) > 1e-4 * max(1.0, abs(x), abs(y)) for x, y in zip(a, b, strict=True))


def grade_job(
    payload: tuple[str, list[str]], skip: dict[tuple[int, int, int], str], cur: _Cursor, parser: _Parser
) -> list[tuple[str, bool | None, str]]:
    """Verify each prediction against the reference: [(status, correct, detail)]."""
    gold_s, preds = payload
    out: list[tuple[str, bool | None, str]] = []
    key = (PARSE, -1, 0)
    if key in skip:
        return [(skip[key], None, "reference: " + skip[key]) for _ in preds]
    cur.mark(PARSE, -1, 0, True)
    gold = parser(gold_s)
    if not gold:
        return [("unparseable", None, "math-verify parsed nothing in the reference") for _ in preds]
    for i, pred_s in enumerate(preds):
        for k in ((PARSE, i, 0), (VERIFY, i, 0)):
            if k in skip:
                out.append((skip[k], None, "prediction: " + skip[k]))
                break
        else:
            cur.mark(PARSE, i, 0, i > 0)
            pred = parser(pred_s)
            if not pred:
                out.append(("unparseable", None, "math-verify parsed nothing in the prediction"))
                continue
            cur.mark(VERIFY, i, 0, False)
            out.append(("ok", _verify(gold, pred), ""))
    return out


def cluster_job(
    payload: tuple[list[str], list[MathInfo], list[str]],
    skip: dict[tuple[int, int, int], str],
    cur: _Cursor,
    parser: _Parser,
) -> list[list[int]]:
    """Greedy equivalence classes of the strings; pairs the cheap rules decide skip math-verify."""
    strings, infos, originals = payload
    parsed: dict[int, list[Any]] = {}
    prints: dict[int, tuple[complex, ...] | None] = {}

    def fingerprint(i: int, p: list[Any]) -> tuple[complex, ...] | None:
        if i not in prints:
            prints[i] = None if "%" in strings[i] else _fingerprint(p[0])
        return prints[i]

    def get(i: int) -> list[Any]:
        if i not in parsed:
            if (PARSE, i, 0) in skip:
                parsed[i] = []
            else:
                cur.mark(PARSE, i, 0, True)
                parsed[i] = parser(strings[i])
        return parsed[i]

    def equivalent(r: int, i: int) -> bool:
        if originals[r] and originals[i]:
            decided = decide_pair(originals[r], originals[i])
        else:
            decided = decide_math(infos[r], infos[i])
        if decided is not None:
            return decided
        if (VERIFY, r, i) in skip:
            return False
        # parse first the answer outside the fast grammar (the other has a fingerprint, or was parsed
        # already): when latex2sympy gives up on it (a string only) or reads a plain number, the
        # verdict may follow without parsing the other one
        first, second = (r, i) if _parse_first(r, i, parsed, originals) else (i, r)
        if not get(first):
            return False
        if second not in parsed:
            shortcut = _shortcut(parsed[first], strings[second], originals[second])
            if shortcut is not None:
                return shortcut
        a, b = get(r), get(i)
        if not a or not b:
            return False
        cur.mark(VERIFY, r, i, True)
        fa, fb = fingerprint(r, a), fingerprint(i, b)
        if fa is not None and fb is not None and _differ(fa, fb):
            return False  # different values at the same point: verify would say False too
        return _verify(a, b) or _verify(b, a)

    return greedy_classes(len(strings), equivalent)


def _parse_first(r: int, i: int, parsed: dict[int, list[Any]], originals: list[str]) -> bool:
    """Parse ``r`` before ``i``: it is parsed already, or ``i`` is not but has a fingerprint."""
    if r in parsed or i in parsed:
        return r in parsed
    return bool(originals[i]) and cached_fingerprint(originals[i]) is not None


def _shortcut(parsed: list[Any], other_prepared: str, other: str) -> bool | None:
    """verify's verdict (either direction) between an answer parsed as ``parsed`` and the answer
    ``other`` (``other_prepared`` as prepared for math-verify), without parsing ``other``; None
    when it needs the parse.

    - ``parsed`` is a string only (latex2sympy failed): verify compares strings with strings only,
      and ``other``'s string is the LaTeX math-verify's normaliser makes of it;
    - ``parsed`` is a plain Rational: the fast path compares it with ``other``'s fingerprint.
    """
    if len(parsed) == 1 and isinstance(parsed[0], str):
        latex = latex_seen_by_parser(other_prepared)
        if latex is None:
            return None
        return False if latex.strip() != parsed[0].strip() else None
    if len(parsed) == 2 and getattr(parsed[0], "is_Rational", False) and other:
        number = Fingerprint("scalar", (const(Fraction(int(parsed[0].p), int(parsed[0].q))),))
        return decide_fast(number, cached_fingerprint(other))
    return None


_HANDLERS: dict[str, Callable[..., Any]] = {"grade": grade_job, "cluster": cluster_job}


# One answer of each common shape: parsing and comparing them once, while the worker is idle after
# start-up, loads the lazily imported parts of sympy / latex2sympy (the first parse of a new shape
# costs 10-150 ms). The worker reports "warm" when done.
_WARM_UP = [
    r"\frac{\sqrt{3}}{2}",
    r"x^2+2x+1",
    r"(1,2]",
    r"(-\infty, 0]+1",
    r"(1,-16,-4,43)",
    r"2(1,-16,-4,43)",
    r"\{1\pm\sqrt{5},-2\}",
    r"\begin{pmatrix} -1/3 \\ 2/3 \end{pmatrix}",
    r"\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix}+1",
    r"x \in [-2,7]",
    r"(0,9) \cup (9,36)",
    r"y = 2x + 3",
    r"6 - 5i",
    r"52_8",
    r"90^\circ",
    r"\text{(C)}",
    r"2\text{(C)}",
    r"864 \mbox{ inches}^2",
    r"1\frac{4}{5}",
    r"11,\!111,\!100+1",
    r"15\%",
    r"\cot x",
    r"\frac{100!}{2^{50}}",
    r"\binom{2n}{n}",
    r"4.5\times10^{33}",
    r"\frac{1}{",
]


def _warm_up_step(parser: _Parser, k: int, prev: list[Any]) -> list[Any]:
    """Parse warm-up answer k and compare it with the previous one; the parsed answer."""
    try:
        cur = parser("\\boxed{" + _WARM_UP[k] + "}")
        if cur and prev:
            _verify(prev, cur)
            _verify(cur, prev)
        return cur or prev
    except Exception:  # noqa: BLE001 - warm-up only
        return prev


def worker_main(conn: Any, cursor_arr: Any) -> None:
    """Entry point of a worker process: answer jobs until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cur = _Cursor(cursor_arr)
    parser = _Parser()
    conn.send(("ready", os.getpid(), _IMPORT_ERROR))
    # warm up while idle, one answer at a time, so that a job waits at most one step (< 0.2 s)
    warm = 0 if not _IMPORT_ERROR else len(_WARM_UP)
    prev: list[Any] = []
    while True:
        if warm < len(_WARM_UP) and not conn.poll(0):
            prev = _warm_up_step(parser, warm, prev)
            warm += 1
            if warm == len(_WARM_UP):
                parser.cache.clear()
                conn.send(("warm", os.getpid()))
            continue
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job_id, kind, payload, skip = msg
        cold = warm < len(_WARM_UP)  # began before the warm-up was done (the pool counts these)
        try:
            if _IMPORT_ERROR:
                raise RuntimeError(_IMPORT_ERROR)
            result = _HANDLERS[kind](payload, skip, cur, parser)
            conn.send(("done", job_id, result, cold))
        except BaseException as exc:  # noqa: BLE001 - report everything, keep serving
            conn.send(("error", job_id, f"{type(exc).__name__}: {str(exc)[:300]}", cold))
