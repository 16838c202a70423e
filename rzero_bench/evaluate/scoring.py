"""Grading and metrics of sample rows: verdicts, ``acc`` / ``mean@k`` / ``maj@k`` / ``pass@k`` with
stderr (per task and per subtask), counts, and the optional ``<metric>+judge`` re-check.

Each distinct (reference, answer) pair is graded once by :func:`rzero_bench.grading.grade_many`;
an answer that could not be extracted is a ``no_answer`` verdict without grading. A row's
completions hold all passes in pass order; the recorded layout (``name``, ``n``, ``offset``,
``metrics``) says which slice each metric reads: ``acc`` = mean correctness of its pass,
``mean@k`` = mean of the first k, ``pass@k`` = the unbiased estimator over the pass's n samples,
``maj@k`` = whether the largest class of equivalent answers among the first k is correct
(:mod:`rzero_bench.metrics`). Every metric is the mean of its per-item scores, with the stderr
of that mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rzero_bench.metrics import majority_correct, mean_at_k, metric_from_scores, pass_at_k
from rzero_bench.records import Verdict
from rzero_bench.tasks import TaskSpec

NO_ANSWER = Verdict(correct=False, status="ok", method="no_answer")


def _grade_pairs(refs: Sequence[str], preds: Sequence[str | None], kind: str) -> list[Verdict]:
    """Grade each (reference, prediction) once; None predictions are 'no_answer' without grading."""
    from rzero_bench.grading import grade_many

    unique: dict[tuple[str, str], int] = {}
    for r, p in zip(refs, preds, strict=True):
        if p is not None:
            unique.setdefault((r, p), len(unique))
    keys = list(unique)
    verdicts = grade_many([k[0] for k in keys], [k[1] for k in keys], kind=kind) if keys else []  # type: ignore[arg-type]
    out: list[Verdict] = []
    for r, p in zip(refs, preds, strict=True):
        out.append(NO_ANSWER if p is None else verdicts[unique[(r, p)]])
    return out


def _classes(answers: Sequence[str | None], kind: str) -> list[list[int]]:
    """Equivalence classes (indices into ``answers``) of the non-empty answers."""
    present = [i for i, a in enumerate(answers) if a is not None]
    if not present:
        return []
    texts = [answers[i] for i in present]
    if len(set(texts)) == 1:
        return [present]
    from rzero_bench.grading import equivalence_classes

    local = equivalence_classes([str(t) for t in texts], kind=kind)  # type: ignore[arg-type]
    return [[present[j] for j in cls] for cls in local]


def compute_metrics(
    rows: Sequence[dict[str, Any]], passes: Sequence[dict[str, Any]], kind: str
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Metrics (and per-subtask metrics) from sample rows and the recorded pass layout."""

    def scores_for(subset: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for p in passes:
            off, n = int(p["offset"]), int(p["n"])
            for m in p["metrics"]:
                name, k = m["name"], int(m.get("k", 1))
                per_item: list[float] = []
                for row in subset:
                    correct = [bool(c) for c in row["correct"][off : off + n]]
                    if name == "acc":
                        per_item.append(mean_at_k(correct))
                    elif name == "mean@k":
                        per_item.append(mean_at_k(correct[:k]))
                    elif name == "pass@k":
                        per_item.append(pass_at_k(len(correct), sum(correct), k))
                    elif name == "maj@k":
                        answers = row["answers"][off : off + k]
                        per_item.append(float(majority_correct(_classes(answers, kind), correct[:k])))
                label = name if name == "acc" else name.replace("@k", f"@{k}")
                out[label] = metric_from_scores(per_item).to_dict()
        return out

    metrics = scores_for(rows)
    subtasks: dict[str, dict[str, dict[str, float]]] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("subtask") is not None:
            groups.setdefault(str(row["subtask"]), []).append(row)
    for name in sorted(groups):
        subtasks[name] = scores_for(groups[name])
    return metrics, subtasks


def _counts(rows: Sequence[dict[str, Any]], finish: Sequence[str] = ()) -> dict[str, int]:
    counts = {
        "items": len(rows),
        "completions": 0,
        "no_answer": 0,
        "timeouts": 0,
        "unparseable": 0,
        "errors": 0,
    }
    fallback = fallback_correct = 0
    for row in rows:
        counts["completions"] += len(row["completions"])
        flags = row.get("fallback") or [False] * len(row["answers"])
        counts["no_answer"] += sum(1 for a, f in zip(row["answers"], flags, strict=True) if a is None or f)
        fallback += sum(1 for f in flags if f)
        fallback_correct += sum(1 for f, c in zip(flags, row["correct"], strict=True) if f and c)
        for v in row["verdicts"]:
            status = v.get("status", "ok")
            if status == "timeout":
                counts["timeouts"] += 1
            elif status == "unparseable":
                counts["unparseable"] += 1
            elif status == "error":
                counts["errors"] += 1
    if any("fallback" in row for row in rows):
        counts["random_fallback"] = fallback
        counts["random_fallback_correct"] = fallback_correct
    if finish:
        counts["truncated"] = sum(1 for f in finish if f == "length")
    return counts


def _boxed_rate(rows: Sequence[dict[str, Any]]) -> float:
    from rzero_bench.parsing import last_boxed

    total = boxed = 0
    for row in rows:
        for c in row["completions"]:
            total += 1
            boxed += last_boxed(c) is not None
    return boxed / total if total else 0.0


def _apply_fallback(verdicts: list[Verdict], flags: list[bool]) -> list[Verdict]:
    """Mark the verdicts of random-letter answers (method ``random_fallback``), keeping their grade."""
    return [
        Verdict(correct=v.correct, status=v.status, method="random_fallback", detail=v.detail) if f else v
        for v, f in zip(verdicts, flags, strict=True)
    ]


def _run_judge(judge: Any, spec: TaskSpec, docs: Sequence[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Ask ``judge`` about every verdict that could be wrong; stores ``row["judge"]`` (None = not asked)."""
    from rzero_bench.judge import needs_judge

    asked: list[tuple[int, int]] = []
    triples: list[tuple[str, str, str]] = []
    for di, (doc, row) in enumerate(zip(docs, rows, strict=True)):
        row["judge"] = [None] * len(row["answers"])
        for j, (a, v) in enumerate(zip(row["answers"], row["verdicts"], strict=True)):
            if needs_judge(a, v):
                asked.append((di, j))
                triples.append((spec.render_text(doc), row["reference"], str(a)))
    for (di, j), jv in zip(asked, judge.judge(triples), strict=True):
        rows[di]["judge"][j] = {"correct": jv.correct, "reply": jv.reply}


def judged_metrics(
    rows: Sequence[dict[str, Any]], passes: Sequence[dict[str, Any]], kind: str, judge_spec: str
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]], dict[str, Any]]:
    """``<metric>+judge`` metrics (and per subtask) from the rows' judge decisions, and the flip counts.

    A sample's judged correctness is the judge's YES/NO where it answered, else the grader's verdict.
    """
    judged_rows = []
    n = {"checked": 0, "flipped_to_correct": 0, "flipped_to_wrong": 0, "unparsed": 0}
    for row in rows:
        decisions = row.get("judge") or [None] * len(row["correct"])
        correct = []
        for c, d in zip(row["correct"], decisions, strict=True):
            if d is None:
                correct.append(bool(c))
                continue
            n["checked"] += 1
            if d.get("correct") is None:
                n["unparsed"] += 1
                correct.append(bool(c))
                continue
            n["flipped_to_correct"] += int(d["correct"] and not c)
            n["flipped_to_wrong"] += int(bool(c) and not d["correct"])
            correct.append(bool(d["correct"]))
        judged_rows.append({**row, "correct": correct})
    metrics, subtasks = compute_metrics(judged_rows, passes, kind)
    rename = lambda ms: {f"{k}+judge": v for k, v in ms.items()}  # noqa: E731
    summary: dict[str, Any] = {"judge": judge_spec, **n}
    return rename(metrics), {name: rename(ms) for name, ms in subtasks.items()}, summary
