"""Grading: one keyword-only ``grade`` for every benchmark and for the self-play rewards.

Implements the answer check of R-Zero (arXiv 2508.05004): the solver's reward, the benchmark
metrics and the pseudo-label oracle all call ``grade``; majority voting (§3.3, self-consistency
pseudo-labels) calls ``equivalence_classes``.

Kinds:
- ``math``: cheap exact / normalised / numeric / text checks first (``rzero_bench.grading.normalize``),
  then math-verify ``verify(gold, pred)`` with the reference FIRST (verify is not symmetric), both
  strings wrapped in ``\\boxed{}`` so math-verify's LaTeX parser sees them. math-verify only runs
  in worker processes killed after ``timeout`` seconds of wall-clock time per item.
- ``choice``: option letters ("C", "(C)", "C.", ``\\text{C}``, ``\\boxed{C}``).
- ``exact``: whitespace-collapsed string equality.
- ``bbeh``: BIG-Bench Extra Hard's published fuzzy match.

Statuses: ``ok`` (``correct`` is True/False), ``timeout``, ``unparseable`` (math-verify parsed
nothing, or no option letter), ``error``; ``correct`` is None unless the status is ``ok``.
A missing prediction (None or blank) is ``Verdict(correct=False, status="ok", method="no_answer")``.

Between the cheap checks and math-verify, ``rzero_bench.grading.fastmath`` parses common LaTeX shapes
(numbers, symbols, ``\\pi``, ``\\frac``, ``\\sqrt``, powers, tuples, sets, intervals, matrices) in pure
Python and decides equality or difference by evaluating both answers at fixed points (polynomial
identity testing), only where math-verify's verdict is certain (method ``fingerprint``).

The pair rule without math-verify is one function, ``rzero_bench.grading.cheap.decide_pair``
(normalised numbers and words, then fingerprints), shared by ``grade``, ``equivalence_classes``, the
workers and ``perf/agreement.py``, which measures it against math-verify on the local benchmark
data; both analyses are computed on the LaTeX math-verify's own normaliser produces
(``rzero_bench.grading.mvtext``) and cached per string for the life of the process, so answers and
references repeated across samples, sets and iterations are analysed once.

``equivalence_classes`` buckets answers by key (the LaTeX math-verify's parser would see, or the
exact value of a plain number), then compares bucket representatives greedily (each new bucket
against the first member of each class, math-verify in both directions); a worker parses each
distinct string at most once (LRU cache), parses first the answer outside the fast grammar, and
skips parsing the other one when latex2sympy gave up on the first (a string only compares with
strings) or read a plain number (compared with the other's fingerprint).

A missing or broken math-verify raises ``GraderUnavailable`` (a one-line ``UserError``) from any
call that needs it; nothing falls back to string buckets.
"""

from __future__ import annotations

import atexit
import collections
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.grading._pool import GraderUnavailable, WorkerPool
from rzero_bench.grading.cheap import cached_fingerprint, cached_info, decide_pair
from rzero_bench.grading.cheap import clear_caches as cheap_clear
from rzero_bench.grading.fastmath import decide_fast
from rzero_bench.grading.normalize import (
    MathInfo,
    bbeh_match,
    bbeh_prediction,
    bbeh_reference,
    choice_key,
    decide_math,
    exact_key,
    greedy_classes,
    order_classes,
    prepare_for_math_verify,
    strip_percent,
)
from rzero_bench.records import GradeKind, Verdict

__all__ = [
    "GraderUnavailable",
    "clear_caches",
    "grade",
    "grade_many",
    "equivalence_classes",
    "equivalence_classes_many",
    "shutdown_pool",
    "KINDS",
]

KINDS: tuple[str, ...] = ("math", "choice", "exact", "bbeh")
_CHUNK = 8

_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()
_ATEXIT = False


def _pool() -> WorkerPool:
    global _POOL, _ATEXIT
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid() or _POOL._closed:
            _POOL = WorkerPool()
            if not _ATEXIT:
                atexit.register(shutdown_pool)
                _ATEXIT = True
        return _POOL


def clear_caches() -> None:
    """Forget every remembered verdict and cached per-string analysis of this process (for timing
    cold runs, and for tests that must reach math-verify)."""
    with _VERDICTS_LOCK:
        _VERDICTS.clear()
    cheap_clear()


def shutdown_pool() -> None:
    """Stop the grading workers (a later call to grade starts a fresh pool)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and pool.pid == os.getpid():
        pool.shutdown()


def _check(kind: str, timeout: float) -> None:
    if kind not in KINDS:
        raise UserError(f"unknown grading kind {kind!r}; use one of {', '.join(KINDS)}")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise UserError(f"grading timeout must be a positive number of seconds, got {timeout!r}")


_NO_ANSWER = Verdict(correct=False, status="ok", method="no_answer")


def _cheap(reference: str, prediction: str | None, kind: str) -> Verdict | None:
    """A verdict reached without math-verify, or None when math-verify must decide."""
    if prediction is None or not str(prediction).strip():
        return _NO_ANSWER
    if not isinstance(reference, str) or not reference.strip():
        return Verdict(correct=None, status="error", method=kind, detail="empty reference")
    if kind == "exact":
        return Verdict(correct=exact_key(reference) == exact_key(prediction), method="exact")
    if kind == "choice":
        ref = choice_key(reference)
        if ref is None:
            return Verdict(
                correct=None, status="error", method="choice", detail="reference is not an option letter"
            )
        pred = choice_key(prediction)
        if pred is None:
            return Verdict(correct=None, status="unparseable", method="choice", detail="no option letter")
        return Verdict(correct=pred == ref, method="choice")
    if kind == "bbeh":
        return Verdict(
            correct=bbeh_match(bbeh_prediction(prediction), bbeh_reference(reference)), method="bbeh"
        )
    if reference.strip() == prediction.strip():
        return Verdict(correct=True, method="exact")
    ri, pi = cached_info(reference), cached_info(prediction)
    bare = strip_percent(prediction)
    if bare is not None and strip_percent(reference) is None and decide_math(ri, cached_info(bare)):
        # "4.2\\%" for a reference "4.2" whose unit (%) is stated separately (OlympiadBench)
        return Verdict(correct=True, method="percent")
    decided = decide_math(ri, pi)
    if decided is None:
        decided = decide_fast(cached_fingerprint(reference), cached_fingerprint(prediction))
        if decided is None:
            return None
        return Verdict(correct=decided, method="fingerprint")
    method = {"num": "numeric", "text": "text"}.get(pi.kind if pi.kind == ri.kind else "", "normalized")
    return Verdict(correct=decided, method=method)


def _verdict(result: tuple[str, bool | None, str]) -> Verdict:
    status, correct, detail = result
    return Verdict(
        correct=correct if status == "ok" else None,
        status=status,  # type: ignore[arg-type]
        method="math-verify",
        detail=detail,
    )


def grade(*, reference: str, prediction: str | None, kind: GradeKind, timeout: float = 5.0) -> Verdict:
    """Grade one prediction against one reference (see the module docstring for the rules)."""
    return grade_many([reference], [prediction], kind=kind, timeout=timeout)[0]


def grade_many(
    references: Sequence[str], predictions: Sequence[str | None], *, kind: GradeKind, timeout: float = 5.0
) -> list[Verdict]:
    """Grade predictions[i] against references[i] for all i, on all cores; each distinct
    (reference, prediction) pair goes to math-verify at most once per process (its verdict is
    remembered: labels and answers repeat across training steps and iterations)."""
    _check(kind, timeout)
    if len(references) != len(predictions):
        raise UserError(f"grade_many: {len(references)} references but {len(predictions)} predictions")
    out: list[Verdict | None] = [None] * len(references)
    pending: dict[str, dict[str, list[int]]] = {}
    for i, (ref, pred) in enumerate(zip(references, predictions, strict=True)):
        v = _cheap(ref, pred, kind)
        if v is not None:
            out[i] = v
            continue
        assert pred is not None
        ref_s, pred_s = prepare_for_math_verify(ref), prepare_for_math_verify(pred)
        known = _remembered(ref_s, pred_s)
        if known is not None:
            out[i] = known
            continue
        pending.setdefault(ref_s, {}).setdefault(pred_s, []).append(i)
    if pending:
        pool = _pool()
        total = sum(len(g) for g in pending.values())
        chunk = max(1, min(_CHUNK, math.ceil(total / (2 * pool.size))))
        jobs: list[tuple[str, list[str], dict[str, list[int]], Future[Any]]] = []
        for ref_s, group in pending.items():
            preds = list(group)
            for k in range(0, len(preds), chunk):
                part = preds[k : k + chunk]
                jobs.append((ref_s, part, group, pool.submit("grade", (ref_s, part), timeout)))
        for ref_s, part, group, fut in jobs:
            try:
                results = fut.result()
            except GraderUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad job never sinks the batch
                results = [("error", None, str(exc)[:300])] * len(part)
            for pred_s, res in zip(part, results, strict=True):
                v = _verdict(res)
                _remember(ref_s, pred_s, v)
                for i in group[pred_s]:
                    out[i] = v
    return [v if v is not None else Verdict(correct=None, status="error", detail="not graded") for v in out]


_VERDICTS: collections.OrderedDict[tuple[str, str], Verdict] = collections.OrderedDict()
_VERDICTS_MAX = 1 << 16
_VERDICTS_LOCK = threading.Lock()


def _remembered(ref_s: str, pred_s: str) -> Verdict | None:
    with _VERDICTS_LOCK:
        v = _VERDICTS.get((ref_s, pred_s))
        if v is not None:
            _VERDICTS.move_to_end((ref_s, pred_s))
        return v


def _remember(ref_s: str, pred_s: str, v: Verdict) -> None:
    """Keep math-verify's deterministic verdicts (not timeouts or errors, which depend on load)."""
    if v.status not in ("ok", "unparseable"):
        return
    with _VERDICTS_LOCK:
        _VERDICTS[ref_s, pred_s] = v
        if len(_VERDICTS) > _VERDICTS_MAX:
            _VERDICTS.popitem(last=False)


# ----------------------------------------------------------------------------- clustering


def _buckets(answers: Sequence[str], kind: str) -> tuple[list[list[int]], list[str]]:
    index: dict[str, int] = {}
    buckets: list[list[int]] = []
    keys: list[str] = []
    for i, a in enumerate(answers):
        if a is None:
            key = "\0none"
        elif kind == "math":
            key = cached_info(a).key
        elif kind == "choice":
            letter = choice_key(a)
            key = "c:" + letter if letter is not None else "x:" + exact_key(a)
        elif kind == "bbeh":
            key = bbeh_prediction(a)
        else:
            key = exact_key(a)
        b = index.get(key)
        if b is None:
            index[key] = len(buckets)
            buckets.append([i])
            keys.append(key)
        else:
            buckets[b].append(i)
    return buckets, keys


class _Pending:
    """Clustering of one answer set; ``result()`` waits for math-verify if it was needed."""

    def __init__(
        self, buckets: list[list[int]], classes: list[list[int]] | None, future: Future[Any] | None
    ) -> None:
        self.buckets, self.classes, self.future = buckets, classes, future

    def result(self) -> list[list[int]]:
        classes = self.classes
        if classes is None:
            assert self.future is not None
            try:
                classes = self.future.result()
            except GraderUnavailable:
                raise
            except Exception:  # noqa: BLE001 - a timed-out set keeps its normalised buckets
                classes = [[b] for b in range(len(self.buckets))]
        return order_classes([[i for b in cls for i in self.buckets[b]] for cls in classes])


def _start_clustering(answers: Sequence[str], kind: str, timeout: float) -> _Pending:
    buckets, keys = _buckets(answers, kind)
    if kind == "bbeh":
        return _Pending(
            buckets,
            greedy_classes(
                len(keys), lambda r, i: bbeh_match(keys[i], keys[r]) or bbeh_match(keys[r], keys[i])
            ),
            None,
        )
    if kind != "math":
        return _Pending(buckets, [[b] for b in range(len(buckets))], None)
    reps = [answers[b[0]] for b in buckets]
    infos = [cached_info(r) if r is not None else MathInfo("\0none", "empty") for r in reps]
    undecided = False

    def cheap(r: int, i: int) -> bool:
        nonlocal undecided
        a, b = reps[r], reps[i]
        d = decide_pair(a, b) if a is not None and b is not None else decide_math(infos[r], infos[i])
        if d is None:
            undecided = True
            return False
        return d

    classes = greedy_classes(len(reps), cheap)
    if not undecided:
        return _Pending(buckets, classes, None)
    strings = [prepare_for_math_verify(r) if r is not None else "" for r in reps]
    return _Pending(
        buckets, None, _pool().submit("cluster", (strings, infos, [r or "" for r in reps]), timeout)
    )


def equivalence_classes(
    answers: Sequence[str], *, kind: GradeKind = "math", timeout: float = 5.0
) -> list[list[int]]:
    """Classes of indices of equivalent answers, largest first (ties: earliest first index)."""
    _check(kind, timeout)
    return _start_clustering(answers, kind, timeout).result()


def equivalence_classes_many(
    answer_sets: Sequence[Sequence[str]], *, kind: GradeKind = "math", timeout: float = 5.0
) -> list[list[list[int]]]:
    """``equivalence_classes`` for many answer sets at once, spread over all cores."""
    _check(kind, timeout)
    pending = [_start_clustering(answers, kind, timeout) for answers in answer_sets]
    return [p.result() for p in pending]
