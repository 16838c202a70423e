"""lighteval results files: ``<output_dir>/results/<model>/results_<timestamp>.json``.

Layout (lighteval's ``EvaluationTracker``): ``config_general`` (``model_name``, ``lighteval_sha``,
``max_samples``, ...), ``results`` keyed ``<suite>|<task>|<shots>`` (older files add a fourth
``|<truncate>`` part; ``all`` is the average) with ``<metric>`` and ``<metric>_stderr`` values,
``versions``, ``config_tasks``, ``summary_tasks`` (per task ``effective_few_shots``, counts of
``padded``/``non_padded`` items, ...), ``summary_general``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rzero_bench.interop import ForeignResult, map_task

__all__ = ["parse_lighteval", "split_task_key"]


def split_task_key(key: str) -> tuple[str, str, int | None]:
    """``lighteval|aime24|0`` -> ("lighteval", "aime24", 0); ``aime24|0`` -> ("", "aime24", 0).

    >>> split_task_key("lighteval|math_500|0|0")
    ('lighteval', 'math_500', 0)
    """
    parts = key.split("|")
    numbers: list[str] = []
    while len(parts) > 1 and parts[-1].isdigit():
        numbers.insert(0, parts.pop())  # shots, then the optional truncation flag of older files
    shots = int(numbers[0]) if numbers else None
    suite = parts[0] if len(parts) > 1 else ""
    return suite, parts[-1], shots


def _n(summary: Any) -> int:
    if not isinstance(summary, dict):
        return 0
    for key in ("non_padded", "effective_few_shots_n", "n"):
        v = summary.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return 0


def parse_lighteval(
    data: Mapping[str, Any], path: Path, our_tasks: frozenset[str] | None = None
) -> ForeignResult:
    """The tasks of a lighteval results file that map to ours."""
    general = data.get("config_general") or {}
    version = str(general.get("lighteval_version") or general.get("lighteval_sha", "") or "")[:12]
    out = ForeignResult(
        harness="lighteval", version=version, model=str(general.get("model_name", "")), path=path
    )
    summaries: dict[str, Any] = data["summary_tasks"] if isinstance(data.get("summary_tasks"), dict) else {}
    for key, vals in (data.get("results") or {}).items():
        if key == "all":
            continue
        _, name, _ = split_task_key(str(key))
        ft = map_task("lighteval", name, our_tasks)
        if ft is None or not isinstance(vals, dict):
            out.skipped.append(str(key))
            continue
        metric = next(
            (
                m
                for m in ft.metrics
                if isinstance(vals.get(m), int | float) and not isinstance(vals.get(m), bool)
            ),
            None,
        )
        if metric is None or ft.task in out.tasks:
            out.skipped.append(str(key))
            continue
        se = vals.get(f"{metric}_stderr")
        out.tasks[ft.task] = {
            "task": str(key),
            "metric": metric,
            "value": float(vals[metric]),
            "stderr": float(se) if isinstance(se, int | float) else 0.0,
            "n": _n(summaries.get(key)),
            "note": ft.note,
        }
    return out
