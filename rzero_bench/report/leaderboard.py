"""``rzero-bench leaderboard``: regenerate ``leaderboard/README.md`` from ``results/``.

Inputs:

- ``results/reference/*.json``: the paper's published numbers (source ``reported``), one file per
  base model: ``{"source": "reported", "base_model", "citation", "url", "scale": "percent",
  "columns": [...], "rows": [{"name", "stage", "metrics": {column: value}}]}``;
- every other directory under ``results/`` holding ``<task>.json`` evaluation results is one
  ``measured`` row (a run's ``iter_<k>`` directories are one row each). Its base model is the
  ``config.model`` of the nearest ``manifest.json`` above it, else the model of the sibling
  ``iter_0`` results, else the model recorded in the results;
- every ``baseline.json`` (a measured baseline, ``rzero-bench check``) is a section of its own with
  per-level columns, one row per seed and mean ± sd (:mod:`rzero_bench.report.micro_board`).

Columns: Overall, Math avg, SuperGPQA, MMLU-Pro, BBEH (the official README's columns; suite
formulas in ``results``), in percent with two decimals. ``†`` marks a suite averaged over only
some of its tasks. Rows are grouped by base model (the part after the last ``/``, so
``Qwen/Qwen3-4B-Base`` joins the reported ``Qwen3-4B-Base``); the best value per column within a
group is bold; a partial (†) value competes only in a column of the group that has no complete
value.

Protocols: every row says which evaluation protocol produced it (``paper`` | ``official``, see
:mod:`rzero_bench.protocols`). Measured rows read it from their results (files older than protocols:
``paper``); reported rows take the reference file's ``protocol`` key, else ``official``: the authors'
numbers come from their evaluation scripts, which the ``official`` protocol reproduces.

Other harnesses: lm-eval / lighteval ``results_<timestamp>.json`` files under ``results/`` (outside
``reference/``) are listed in a section of their own, one line per mapped task, labelled with the
harness and version, their task name and metric (:mod:`rzero_bench.interop`); they never enter the
columns, suite means or bold marking above.

Comparability: for every task, the majority ``task_hash`` among measured rows is that column's
hash (ties: the lexicographically smallest). A measured row with any task whose hash differs goes
to the section "Not comparable" and never takes part in the bold marking. Reported rows have no
hashes and are always listed in their group.

The output is a pure function of the inputs (sorted traversal, no timestamps), so ``--check``
compares the freshly rendered text with the committed file and exits 1 when they differ.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rzero_bench.errors import RZeroError, UserError
from rzero_bench.report.base_challenger import comparison_section
from rzero_bench.report.micro_board import baseline_sections
from rzero_bench.report.results import ResultSet, foreign_sets, is_eval_result, load_result_dir, suite_means
from rzero_bench.store import atomic_write_text, read_json

COLUMNS: tuple[str, ...] = ("overall", "math_avg", "supergpqa", "mmlu_pro", "bbeh")
HEADERS = {
    "overall": "Overall",
    "math_avg": "Math avg",
    "supergpqa": "SuperGPQA",
    "mmlu_pro": "MMLU-Pro",
    "bbeh": "BBEH",
}
STAGE_ORDER = {"base": 0, "base_challenger": 1}
REPORTED_PROTOCOL = "official"  # the authors' numbers come from their own evaluation scripts

__all__ = ["COLUMNS", "Row", "collect_rows", "leaderboard_command", "render_leaderboard"]


@dataclass
class Row:
    """One leaderboard line: values in percent, a source, and (measured rows) task hashes."""

    group: str
    name: str
    source: str  # "reported" | "measured"
    values: dict[str, float]
    partial: set[str] = field(default_factory=set)
    hashes: dict[str, str] = field(default_factory=dict)
    order: tuple[Any, ...] = ()
    note: str = ""
    protocol: str = ""


def _group_name(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1] or model


def _reference_rows(ref_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for p in sorted(ref_dir.glob("*.json")):
        doc = read_json(p)
        if not isinstance(doc, dict) or doc.get("source") != "reported" or "rows" not in doc:
            raise UserError(f"{p} is not a reference file (needs source 'reported', base_model, rows)")
        group = _group_name(str(doc.get("base_model") or p.stem))
        for i, r in enumerate(doc["rows"]):
            vals = {
                c: float(v) for c, v in (r.get("metrics") or {}).items() if c in COLUMNS and v is not None
            }
            stage = str(r.get("stage", ""))
            rank = STAGE_ORDER.get(stage, 2)
            rows.append(
                Row(
                    group,
                    str(r["name"]),
                    "reported",
                    vals,
                    order=(0, rank, i, ""),
                    note=p.name,
                    protocol=str(r.get("protocol") or doc.get("protocol") or REPORTED_PROTOCOL),
                )
            )
    return rows


def _find_manifest(d: Path, root: Path) -> Path | None:
    cur = d
    while True:
        if (cur / "manifest.json").exists():
            return cur / "manifest.json"
        if cur == root or cur.parent == cur:
            return None
        cur = cur.parent


def _base_model(rs: ResultSet, root: Path) -> str:
    man = _find_manifest(rs.path, root)
    if man is not None:
        m = read_json(man)
        model = (m.get("config") or {}).get("model") if isinstance(m, dict) else None
        if model:
            return str(model)
    if rs.path.name.startswith("iter_") and (rs.path.parent / "iter_0").is_dir():
        base = load_result_dir(rs.path.parent / "iter_0")
        if base.model:
            return base.model
    return rs.model


def _measured_dirs(results: Path) -> list[Path]:
    dirs = []
    for d in sorted(p for p in results.rglob("*") if p.is_dir()):
        rel = d.relative_to(results)
        if rel.parts and rel.parts[0] == "reference":
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        if any(is_eval_result(read_json(f)) for f in sorted(d.glob("*.json"))):
            dirs.append(d)
    return dirs


def _measured_rows(results: Path) -> list[Row]:
    rows: list[Row] = []
    for d in _measured_dirs(results):
        rs = load_result_dir(d)
        if not rs.tasks:
            continue
        name = d.relative_to(results).as_posix()
        means = suite_means({t: (tr.value, tr.stderr) for t, tr in rs.tasks.items()})
        vals: dict[str, float] = {}
        partial: set[str] = set()
        for c in COLUMNS:
            if c in means:
                vals[c] = 100.0 * means[c]["value"]
                if not means[c]["complete"]:
                    partial.add(c)
            elif c in rs.tasks:
                vals[c] = 100.0 * rs.tasks[c].value
        if not vals:
            continue
        it = int(d.name[5:]) if d.name.startswith("iter_") and d.name[5:].isdigit() else -1
        rows.append(
            Row(
                _group_name(_base_model(rs, results)),
                name,
                "measured",
                vals,
                partial,
                {t: tr.task_hash for t, tr in rs.tasks.items()},
                order=(1, 0, it, name),
                note=", ".join(sorted(rs.tasks)),
                protocol=", ".join(sorted({tr.protocol for tr in rs.tasks.values()})),
            )
        )
    return rows


def collect_rows(results: Path) -> tuple[list[Row], list[Row], dict[str, str]]:
    """(comparable rows, non-comparable rows, majority hash per task)."""
    results = Path(results)
    if not results.is_dir():
        raise UserError(f"results directory {results} does not exist")
    ref_dir = results / "reference"
    reported = _reference_rows(ref_dir) if ref_dir.is_dir() else []
    measured = _measured_rows(results)
    counts: dict[str, Counter[str]] = {}
    for r in measured:
        for t, h in r.hashes.items():
            counts.setdefault(t, Counter())[h] += 1
    majority = {t: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for t, c in counts.items()}
    ok = [r for r in measured if all(majority[t] == h for t, h in r.hashes.items())]
    bad = [r for r in measured if r not in ok]
    for r in bad:
        r.note = "task hash differs: " + ", ".join(sorted(t for t, h in r.hashes.items() if majority[t] != h))
    return reported + ok, bad, majority


def _cell(r: Row, c: str, bold: bool) -> str:
    if c not in r.values:
        return "–"
    txt = f"{r.values[c]:.2f}"
    if c in r.partial:
        txt += "†"
    return f"**{txt}**" if bold else txt


def _table(rows: list[Row], *, bold: bool, last: str) -> list[str]:
    lines = [
        "| Model | Source | Protocol | " + " | ".join(HEADERS[c] for c in COLUMNS) + f" | {last} |",
        "|:---|:---|:---|" + "|".join(":---:" for _ in COLUMNS) + "|:---|",
    ]
    best: dict[str, float | None] = {}
    eligible: dict[str, bool] = {}
    for c in COLUMNS:
        # a partial (†) suite value only competes when the column has no complete value in the group
        complete = any(c in r.values and c not in r.partial for r in rows)
        eligible[c] = complete
        best[c] = max(
            (round(r.values[c], 2) for r in rows if c in r.values and (c not in r.partial or not complete)),
            default=None,
        )
    for r in rows:
        cells = [
            _cell(
                r,
                c,
                bold
                and best[c] is not None
                and c in r.values
                and round(r.values[c], 2) == best[c]
                and not (eligible[c] and c in r.partial),
            )
            for c in COLUMNS
        ]
        name = r.name.replace("|", "\\|")
        lines.append(
            f"| {name} | {r.source} | {r.protocol} | "
            + " | ".join(cells)
            + f" | {r.note.replace('|', '/')} |"
        )
    return lines


def generating_command(results: Path, out: Path) -> str:
    cmd = "rzero-bench leaderboard"
    if Path(results) != Path("results"):
        cmd += f" --results {results}"
    if Path(out) != Path("leaderboard"):
        cmd += f" --out {out}"
    return cmd


def render_leaderboard(results: Path, out: Path = Path("leaderboard")) -> str:
    """The leaderboard markdown (deterministic for given inputs)."""
    rows, bad, majority = collect_rows(results)
    cmd = generating_command(results, out)
    lines = [
        "<!-- Generated file: do not edit by hand. -->",
        f"<!-- Regenerate with: {cmd} -->",
        "",
        "# Leaderboard",
        "",
        f"Generated by `{cmd}` from `{Path(results).as_posix()}/`. "
        f"`{cmd} --check` fails when this file is stale.",
        "",
        "Scores in percent. **reported** = published by the R-Zero authors (arXiv 2508.05004, official README "
        "table), copied from `results/reference/`, never re-measured; **measured** = produced by this tool "
        "(a directory of `<task>.json` results under `results/`). Math avg = mean over AMC23, AIME24, AIME25, "
        "MATH-500, GSM8K, Minerva-Math, OlympiadBench; Overall = mean of (Math avg, SuperGPQA, MMLU-Pro, BBEH), "
        "as in the paper. † = averaged over only the tasks present. Bold = best in its column within the group "
        "(† values are ranked only when the group has no complete value in that column). Protocol = how the "
        "row was evaluated: **paper** (sampled mean@32 for AMC/AIME, our prompts) or **official** (the official "
        "scripts: greedy AMC/AIME, General-Reasoner prompts for MMLU-Pro/SuperGPQA, ...; `tasks/protocols/`); "
        "reported rows come from the authors' own scripts.",
        "",
    ]
    groups = sorted({r.group for r in rows}, key=str.lower)
    if not groups:
        lines += ["_No results yet._", ""]
    for g in groups:
        grp = sorted((r for r in rows if r.group == g), key=lambda r: r.order)
        lines += [f"## {g}", ""]
        lines += _table(grp, bold=True, last="Notes")
        lines.append("")
    lines += comparison_section(Path(results))  # the paper's Base Challenger rows beside measured ones
    lines += baseline_sections(Path(results))  # measured baselines (micro world): per seed, mean ± sd
    if bad:
        lines += [
            "## Not comparable",
            "",
            "Measured rows whose task definitions (task hashes) differ from the majority hash of a column; "
            "they are not ranked against the rows above.",
            "",
        ]
        lines += _table(sorted(bad, key=lambda r: (r.group.lower(), r.order)), bold=False, last="Why")
        lines.append("")
    lines += _foreign_section(Path(results))
    if majority:
        lines += ["## Task hashes", "", "| Task | Majority hash |", "|:---|:---|"]
        lines += [f"| {t} | `{h[:16]}` |" for t, h in sorted(majority.items())]
        lines.append("")
    return "\n".join(lines)


def _foreign_section(results: Path) -> list[str]:
    """Results of other harnesses under ``results/`` (not ``reference/``): a table of their own."""
    sets = [
        rs
        for rs in foreign_sets(results)
        if rs.tasks
        and "reference" not in rs.path.relative_to(results).parts[:1]
        and not any(part.startswith(".") for part in rs.path.relative_to(results).parts)
    ]
    if not sets:
        return []
    lines = [
        "## Other harnesses",
        "",
        "Results files of other harnesses (lm-eval, lighteval) for tasks they share with ours: their own prompt, "
        "shots and metric, so they are listed here, labelled, and never mixed into the columns above "
        "(mapping in `rzero_bench/interop`).",
        "",
        "| Model | Harness | Task | Their task | Their metric | Value | n | File |",
        "|:---|:---|:---|:---|:---|:---:|:---:|:---|",
    ]
    for rs in sets:
        for task, tr in sorted(rs.tasks.items()):
            d = tr.data
            m = d["metrics"][tr.metric]
            path = tr.path.relative_to(results).as_posix()
            lines.append(
                f"| {_group_name(rs.model)} | {rs.harness} | {task} | {d.get('foreign_task', '')} | "
                f"{tr.metric} | {100 * float(m['value']):.2f} | {int(m.get('n') or 0)} | {path} |"
            )
    lines.append("")
    return lines


def leaderboard_command(
    check: bool = False, results: Path = Path("results"), out: Path = Path("leaderboard")
) -> None:
    """CLI: write ``<out>/README.md``; with ``check`` exit 1 when the committed file is stale."""
    text = render_leaderboard(Path(results), Path(out))
    target = Path(out) / "README.md"
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            why = "is missing" if current is None else "is stale"
            raise RZeroError(
                f"{target} {why}; run `{generating_command(Path(results), Path(out))}` and commit it"
            )
        print(f"{target} is up to date", file=sys.stderr)
        return
    atomic_write_text(target, text)
    print(f"wrote {target}", file=sys.stderr)
