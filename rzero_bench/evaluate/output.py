"""Where and how evaluation results are written: the default results directory of a model, the
guard against writing over another model's results, the per-task files and the human summary.

Files per task in the output directory (written atomically): ``<task>.json`` =
:class:`~rzero_bench.records.EvalResult` and ``<task>.samples.jsonl`` (one line per item).
``eval_summary.md`` holds one row per (task, metric), and one per skipped task with the reason;
the same table is printed to the console.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.records import EvalResult
from rzero_bench.store import atomic_write_json, atomic_write_jsonl, atomic_write_text, sha256_text

SUMMARY_FILE = "eval_summary.md"


def write_task(out: Path, task: str, result: EvalResult, rows: list[dict[str, Any]]) -> None:
    """Write one task's sample rows, then its result (the result file marks the task as done)."""
    atomic_write_jsonl(out / f"{task}.samples.jsonl", rows)
    atomic_write_json(out / f"{task}.json", result.to_dict())


def _summary(results: dict[str, EvalResult], skipped: dict[str, str], out: Path, console: Any) -> None:
    """Write ``eval_summary.md`` (one row per task and metric, then the skipped tasks with the reason)
    and, with a ``console``, print the same table."""
    lines = ["| task | metric | value | stderr | n | no answer | wall s |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for m, v in r.metrics.items():
            lines.append(
                f"| {name} | {m} | {100 * v['value']:.2f} | {100 * v['stderr']:.2f} | {int(v['n'])} |"
                f" {r.counts.get('no_answer', 0)} | {r.wall_time_s:.1f} |"
            )
    for name, reason in skipped.items():
        lines.append(f"| {name} | skipped | - | - | - | - | {reason} |")
    notes = [
        f"{name}: {r.counts['prompt_cut']} of {r.counts.get('items', '?')} prompts were longer than the model's "
        "context and lost their beginning (counts.prompt_cut)"
        for name, r in results.items()
        if r.counts.get("prompt_cut")
    ]
    atomic_write_text(out / SUMMARY_FILE, "\n".join(lines + ([""] + notes if notes else [])) + "\n")
    if console is not None:
        from rich.table import Table

        table = Table(title=f"results in {out}")
        for col in ("task", "metric", "value %", "± stderr", "n", "no answer", "wall s"):
            table.add_column(col)
        for name, r in results.items():
            for m, v in r.metrics.items():
                table.add_row(
                    name,
                    m,
                    f"{100 * v['value']:.2f}",
                    f"{100 * v['stderr']:.2f}",
                    str(int(v["n"])),
                    str(r.counts.get("no_answer", 0)),
                    f"{r.wall_time_s:.1f}",
                )
        for name, reason in skipped.items():
            table.add_row(name, "[yellow]skipped[/yellow]", "-", "-", "-", "-", reason)
        console.print(table)
        for note in notes:
            console.print(f"note: {note}", highlight=False, markup=False)


def model_dir_name(model: str, label: str | None = None) -> str:
    """The default results directory name of a model (``results/<name>``), distinct per checkpoint.

    A hub id ``org/name`` gives ``org__name`` (lm-eval's convention). A local checkpoint gives its
    last two path parts and a hash of its absolute path (``iter_2__solver-<8 hex>``), so two
    checkpoints both called ``solver`` never share a directory. ``label`` (e.g. ``tiny:s``) replaces
    the path parts for built models.
    """
    p = Path(model).expanduser()
    if p.exists():
        resolved = p.resolve()
        parts = [label] if label else [x for x in resolved.parts[-2:] if x not in ("/", "")]
        stem = "__".join(re.sub(r"[^A-Za-z0-9._\-]+", "_", x) for x in parts)
        return f"{stem}-{sha256_text(str(resolved))[:8]}"
    return re.sub(r"[^A-Za-z0-9._\-]+", "_", model.strip("/").replace("/", "__"))


def check_output_dir(out: Path, model: str) -> None:
    """Refuse to write into a directory holding another model's results (never overwrite them)."""
    if not out.is_dir():
        return
    for f in sorted(out.glob("*.json")):
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "task_hash" in data and data.get("model") not in (None, model):
            raise UserError(
                f"{out} already holds results of another model ({data.get('model')}, {f.name}); refusing to"
                " overwrite them: pass -o/--output with another directory"
            )
