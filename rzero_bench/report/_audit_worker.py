"""Code that runs inside an audit worker process: one third-party grader, one pair at a time.

The parent (:mod:`rzero_bench.report.audit`) sends the whole list of ``(reference, prediction)``
pairs; the worker answers ``(index, status, correct)`` after each one, so the parent knows which
pair was running when it kills a worker that outlived its per-pair deadline. Both graders parse
untrusted model output with sympy, which is why they only ever run here.

- ``math-verify``: ``verify(parse(gold), parse(pred))`` with the reference first, both wrapped in
  ``\\boxed{}`` exactly as ``rzero_bench.grading`` prepares them; an empty parse is ``unparseable``;
- ``mathruler``: ``mathruler.grader.grade_answer(given_answer=pred, ground_truth=ref)``, the check
  the official R-Zero code uses for the solver's reward.
"""

from __future__ import annotations

import logging
from typing import Any


def _math_verify() -> Any:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    from rzero_bench.grading.normalize import prepare_for_math_verify

    configs: list[Any] = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    cache: dict[str, Any] = {}

    def parsed(s: str) -> Any:
        if s not in cache:
            cache[s] = parse(prepare_for_math_verify(s), extraction_config=configs, parsing_timeout=None)
        return cache[s]

    def check(ref: str, pred: str) -> tuple[str, bool | None]:
        gold, guess = parsed(ref), parsed(pred)
        if not gold or not guess:
            return "unparseable", None
        return "ok", bool(verify(gold, guess, timeout_seconds=None))

    return check


def _mathruler() -> Any:
    from mathruler.grader import grade_answer

    def check(ref: str, pred: str) -> tuple[str, bool | None]:
        return "ok", bool(grade_answer(pred, ref))

    return check


GRADERS = {"math-verify": _math_verify, "mathruler": _mathruler}


def worker_main(conn: Any, grader: str) -> None:
    """Receive ``[(index, reference, prediction)]``, send ``(index, status, correct)`` per pair,
    then ``None``; ``("error", message)`` first when the grader cannot be imported."""
    try:
        check = GRADERS[grader]()
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("import-error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", ""))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        for i, ref, pred in job:
            try:
                status, correct = check(ref, pred)
            except Exception as exc:  # noqa: BLE001 - a grader crash is that pair's verdict
                status, correct = "error", None
                del exc
            conn.send((i, status, correct))
        conn.send(None)
