"""Re-grade saved samples without the model: ``rzero-bench rescore RESULTS_DIR``.

Answers are re-extracted from the completions with the current parser (multiple choice keeps its
saved letters, whose valid set depends on the item), re-graded, and every metric is recomputed from
the pass layout the result recorded; saved judge decisions are applied over the new verdicts.
All files are read and checked before anything is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rzero_bench.errors import RunStateError, UserError
from rzero_bench.evaluate.answers import extract_answer
from rzero_bench.evaluate.provenance import package_versions
from rzero_bench.evaluate.scoring import (
    _apply_fallback,
    _boxed_rate,
    _counts,
    _grade_pairs,
    compute_metrics,
    judged_metrics,
)
from rzero_bench.records import EvalResult
from rzero_bench.store import atomic_write_json, atomic_write_jsonl, read_jsonl
from rzero_bench.tasks import load_task


def rescore(
    results_dir: str | os.PathLike[str], tasks_dir: str | os.PathLike[str] | None = None
) -> dict[str, EvalResult]:
    """Re-grade every ``<task>.samples.jsonl`` in ``results_dir`` and rewrite metrics (no model).

    Answers are re-extracted from the completions (math/exact/bbeh) with the current parser, except
    multiple choice, whose saved letters are re-graded (the valid letters depend on the item).
    All files are read and checked before anything is written: a corrupted file leaves every
    original untouched.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise UserError(f"results directory not found: {root}")
    sample_files = sorted(root.glob("*.samples.jsonl"))
    if not sample_files:
        raise UserError(f"no *.samples.jsonl in {root}; is it a results directory written by `eval`?")
    loaded: list[tuple[Path, dict[str, Any], list[dict[str, Any]]]] = []
    for sf in sample_files:
        task = sf.name.removesuffix(".samples.jsonl")
        rf = root / f"{task}.json"
        try:
            result = json.loads(rf.read_text(encoding="utf-8"))
            EvalResult.from_dict(result)
        except FileNotFoundError:
            raise RunStateError(
                f"{rf} is missing; cannot rescore {sf.name} without its result file"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as e:
            raise RunStateError(f"{rf} is corrupted ({type(e).__name__}); re-run eval for {task}") from None
        rows = read_jsonl(sf)
        _check_rows(rows, sf, result)
        loaded.append((rf, result, rows))

    out: dict[str, EvalResult] = {}
    for rf, result, rows in loaded:
        kind = result["sampling"].get("grader")
        if kind is None:
            kind = load_task(result["task"], tasks_dir).metadata.grader
        if kind != "choice":
            for row in rows:
                row["answers"] = [extract_answer(c, kind) for c in row["completions"]]
        flat_refs = [row["reference"] for row in rows for _ in row["answers"]]
        flat_preds = [a for row in rows for a in row["answers"]]
        verdicts = _grade_pairs(flat_refs, flat_preds, kind)
        pos = 0
        for row in rows:
            vs = verdicts[pos : pos + len(row["answers"])]
            pos += len(row["answers"])
            if "fallback" in row:
                vs = _apply_fallback(vs, [bool(f) for f in row["fallback"]])
            row["verdicts"] = [v.to_dict() for v in vs]
            row["correct"] = [v.correct is True for v in vs]
        metrics, subtasks = compute_metrics(rows, result["sampling"]["passes"], kind)
        judge_summary = result.get("judge") or {}
        if any("judge" in row for row in rows):  # the saved judge decisions over the new verdicts
            extra, extra_sub, judge_summary = judged_metrics(
                rows, result["sampling"]["passes"], kind, str(judge_summary.get("judge", ""))
            )
            metrics.update(extra)
            for name, ms in extra_sub.items():
                subtasks.setdefault(name, {}).update(ms)
        counts = {**result.get("counts", {}), **_counts(rows)}
        old = EvalResult.from_dict(result).to_dict()  # schema-1 files come back with package_versions
        new = EvalResult.from_dict(
            {
                **old,
                "metrics": metrics,
                "subtasks": subtasks,
                "counts": counts,
                "boxed_rate": _boxed_rate(rows),
                "judge": judge_summary,
                "package_versions": {**package_versions(), "rescored": "true"},
            }
        )
        atomic_write_jsonl(rf.with_name(f"{result['task']}.samples.jsonl"), rows)
        atomic_write_json(rf, new.to_dict())
        out[result["task"]] = new
    return out


_ROW_KEYS = {"doc_id", "prompt_hash", "reference", "completions", "answers", "verdicts", "correct", "subtask"}


def _check_rows(rows: list[Any], path: Path, result: dict[str, Any]) -> None:
    """Refuse (one-line :class:`RunStateError`) rows that are not sample records of ``result``'s layout."""
    try:
        passes = result["sampling"]["passes"]
        width = sum(int(p["n"]) for p in passes)
    except (KeyError, TypeError, ValueError):
        raise RunStateError(
            f"{path.with_name(result.get('task', '?') + '.json')} has no pass layout; re-run eval"
        ) from None
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not _ROW_KEYS <= set(row):
            raise RunStateError(
                f"{path}:{i} is not a sample record (expected keys {sorted(_ROW_KEYS)}); the file is corrupted"
            )
        if (
            not isinstance(row["completions"], list)
            or len(row["completions"]) != width
            or len(row["answers"]) != width
        ):
            raise RunStateError(
                f"{path}:{i} has {len(row['completions'])} completions, expected {width}; the file is corrupted"
            )
        if not isinstance(row["reference"], str) or not all(isinstance(c, str) for c in row["completions"]):
            raise RunStateError(f"{path}:{i} has a non-text reference or completion; the file is corrupted")
    n = result.get("counts", {}).get("items")
    if n is not None and n != len(rows):
        raise RunStateError(
            f"{path} has {len(rows)} items but its result says {n}; the file is truncated or corrupted"
        )
