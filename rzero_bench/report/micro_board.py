"""Leaderboard rows of measured baselines (``results/**/baseline.json``), per seed and mean ± spread.

A measured baseline (:mod:`rzero_bench.report.check`) records, per iteration, each task's headline
metric overall and per subtask, the pseudo-label accuracy and the yield, for every seed it was
measured with. For the micro world that is ``micro_arith`` per level (L1-L5): the only place where
the loop's dynamics show on a CPU, so these rows sit beside the paper's reported rows instead of a
benchmark table of zeros. Rows per baseline: the base model (iteration 0; identical for every
seed), then for each iteration k >= 1 one row per seed and one ``mean ± sd`` row (sample standard
deviation over the seeds). Values in percent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rzero_bench.report.check import BASELINE_FILE, read_baseline

__all__ = ["baseline_sections", "find_baselines"]


def find_baselines(results: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(path relative to results, baseline)`` for every measured baseline under ``results``."""
    out = []
    for f in sorted(Path(results).rglob(BASELINE_FILE)):
        if any(part.startswith(".") for part in f.relative_to(results).parts):
            continue
        data = read_baseline(f)
        if data is not None:
            out.append((f.parent.relative_to(results).as_posix(), data))
    return out


def _columns(data: dict[str, Any]) -> tuple[str, list[str]]:
    """The task with subtasks (its name) and the metric columns of the table."""
    metrics = [m for row in data["iterations"].values() for m in row]
    tasks = sorted({m.split(" ", 1)[0] for m in metrics if " " in m})
    task = tasks[0] if tasks else ""
    levels = sorted({m for m in metrics if m.startswith(f"{task} ")}, key=lambda m: (len(m), m))
    cols = [*levels, task] if task else []
    return task, cols + [m for m in ("label_acc", "yield") if m in metrics]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def baseline_sections(results: Path) -> list[str]:
    """Markdown lines: one section per measured baseline (empty list when there is none)."""
    lines: list[str] = []
    for rel, data in find_baselines(results):
        task, cols = _columns(data)
        heads = [
            c.split(" ", 1)[1] if " " in c else ("all" if c == task else c.replace("_", " ")) for c in cols
        ]
        seeds = [str(s) for s in data.get("seeds") or []]
        cfg = data.get("config") or {}
        lines += [
            f"## Measured: `{rel}` ({cfg.get('variant', '?')} loop on `{data.get('base_model') or cfg.get('model')}`)",
            "",
            f"{task} accuracy per level (greedy, {data['iterations']['iter_0'][task]['n']} items) before and after "
            f"each iteration, pseudo-label accuracy against the exact oracle and yield (kept/generated), in "
            f"percent; seeds {', '.join(seeds)} of one workload on one base ({data.get('method', '')}). The "
            "gain is elicitation of reasoning the base already had (its majority vote is far above its greedy "
            "answer), not new ability.",
            "",
            "| Row | Source | " + " | ".join(heads) + " |",
            "|:---|:---|" + "|".join(":---:" for _ in cols) + "|",
        ]
        for it, row in data["iterations"].items():
            k = it.removeprefix("iter_")
            if k == "0":
                cells = [_pct(row[c]["value"]) if c in row else "–" for c in cols]
                lines.append("| base (iteration 0) | measured | " + " | ".join(cells) + " |")
                continue
            for s in seeds:
                cells = [_pct(row[c]["per_seed"].get(s)) if c in row else "–" for c in cols]
                lines.append(f"| iteration {k}, seed {s} | measured | " + " | ".join(cells) + " |")
            cells = [
                f"**{_pct(row[c]['value'])}** ± {_pct(row[c]['spread'])}" if c in row else "–" for c in cols
            ]
            lines.append(f"| iteration {k}, mean ± sd | measured | " + " | ".join(cells) + " |")
        lines.append("")
    return lines
