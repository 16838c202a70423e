"""``rzero-bench report``: base vs iterations per task and suite, with paired-bootstrap deltas.

For each run (``runs/<run>/results/iter_<k>/``) the base model is iteration 0 and each iteration
k >= 1 is compared with it. Several plain results directories are compared with the first one.

- task value: the task's headline metric (``results.primary_metric``) with its standard error;
- suite values (Math avg, General avg, Overall as the paper defines it, see ``results``), with
  ``se = sqrt(sum se_i^2) / t``;
- delta ``value_k - value_0`` with a 95 % paired-bootstrap CI over the items both evaluations
  share (matched by ``doc_id``; per-item score = mean of ``correct`` for acc/mean@k, any for
  pass@k; 2000 replicates, ``--seed``). Suite deltas resample items within each task
  (stratified) and combine the task deltas with the suite formula over the tasks both sides have.
  A ``*`` marks an interval that excludes 0. No CI is shown when samples files are missing or the
  metric is maj@k;
- per iteration: label accuracy (``iter_<k>/label_accuracy.json``, Wilson CI), yield =
  kept / generated (``iter_<k>/filter.json``), no-answer rate (completions without an answer /
  all completions in the samples; else ``counts.no_answer / counts.items``), boxed rate (mean of
  the tasks' ``boxed_rate`` weighted by items), evaluation tokens and wall time;
- per stage: status, wall time and tokens from ``manifest.json`` ``stages``.
- per subtask, for tasks outside the paper's suites that record subtasks (``micro_arith``: one
  row per level): the subtask's value from the result's ``subtasks`` and its delta with the same
  paired bootstrap over that subtask's items (``subtask`` in the samples). Benchmark tasks keep
  one row each (MMLU-Pro's 14 categories would bury the table).

Formats: ``table`` (rich, for a terminal), ``md``, ``json``, ``csv`` (long format, one row per
run x row x iteration).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.report.collapse import collapse_status, render_collapse
from rzero_bench.report.results import (
    DISPLAY,
    GENERAL_TASKS,
    MATH_TASKS,
    ResultSet,
    discover,
    fmt_pct,
    item_scores,
    suite_combiner,
    suite_means,
)
from rzero_bench.report.rundata import base_model, filter_yield, label_accuracy, stage_rows
from rzero_bench.report.stats import paired_bootstrap, stratified_paired_bootstrap

FORMATS = ("table", "md", "json", "csv")
N_BOOT = 2000

__all__ = ["FORMATS", "build_report", "render", "report_command", "Group"]


class Group:
    """A base result set and the sets compared with it (one run, or several results dirs)."""

    def __init__(self, name: str, sets: list[ResultSet], run_dir: Path | None) -> None:
        self.name, self.sets, self.run_dir = name, sets, run_dir

    @property
    def base(self) -> ResultSet:
        return self.sets[0]


def group_inputs(paths: Sequence[Path]) -> list[Group]:
    """Runs become one group each; plain results directories together form one group."""
    groups: list[Group] = []
    flat: list[ResultSet] = []
    for p in paths:
        sets = discover(Path(p))
        if any(rs.harness != "rzero-bench" for rs in sets):
            # another harness's results: a group of their own, never compared with ours (other prompts/metrics)
            groups += [Group(rs.label, [rs], None) for rs in sets]
        elif len(sets) == 1 and sets[0].iteration is None:
            flat.append(sets[0])
        else:
            run_dir = sets[0].run_dir
            groups.append(Group((run_dir or Path(p)).resolve().name, sets, run_dir))
    if flat:
        labels = [rs.label for rs in flat]
        for rs in flat:  # two runs' iter_1: name each by its run directory so their columns stay apart
            if labels.count(rs.label) > 1:
                rs.label = f"{rs.path.parent.parent.name}/{rs.label}" if rs.path.parent.name == "results" else str(rs.path)
        groups.append(Group("comparison" if len(flat) > 1 else flat[0].label, flat, None))
    return groups


def _key(rs: ResultSet, idx: int) -> str:
    return f"iter_{rs.iteration}" if rs.iteration is not None else rs.label if idx else f"{rs.label}"


def _scores_cache(rs: ResultSet) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for t, tr in rs.tasks.items():
        out[t] = item_scores(tr.samples(), tr.metric)
    return out


def _paired(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[list[float], list[float]] | None:
    common = sorted(set(a) & set(b))
    if not common:
        return None
    return [a[d] for d in common], [b[d] for d in common]


def _subtask_rows(g: Group, keys: list[str], task: str, seed: int, n_boot: int) -> list[dict[str, Any]]:
    """One row per subtask of ``task`` (values from ``subtasks``, deltas paired over its items)."""
    names = sorted(
        {str(s) for rs in g.sets if task in rs.tasks for s in rs.tasks[task].data.get("subtasks") or {}}
    )
    if not names:
        return []
    per_set: list[dict[str, dict[str, float]]] = []  # subtask -> doc_id -> score, per set
    for rs in g.sets:
        tr = rs.tasks.get(task)
        by_sub: dict[str, dict[str, float]] = {}
        if tr is not None:
            scores = item_scores(tr.samples(), tr.metric)
            for r in tr.samples():
                doc = str(r.get("doc_id"))
                if r.get("subtask") is not None and doc in scores:
                    by_sub.setdefault(str(r["subtask"]), {})[doc] = scores[doc]
        per_set.append(by_sub)
    rows: list[dict[str, Any]] = []
    for name in names:
        label = (
            f"{DISPLAY.get(task, task)} L{name}" if name.isdigit() else f"{DISPLAY.get(task, task)} {name}"
        )
        row: dict[str, Any] = {
            "row": f"{task}/{name}",
            "label": label,
            "kind": "subtask",
            "metric": None,
            "values": {},
            "deltas": {},
        }
        base_v = None
        for i, rs in enumerate(g.sets):
            tr = rs.tasks.get(task)
            m = ((tr.data.get("subtasks") or {}).get(name) or {}).get(tr.metric) if tr is not None else None
            if tr is None or m is None:
                continue
            row["metric"] = row["metric"] or tr.metric
            v = {
                "value": float(m["value"]),
                "stderr": float(m.get("stderr") or 0.0),
                "n": int(m.get("n") or 0),
                "metric": tr.metric,
            }
            row["values"][keys[i]] = v
            if i == 0:
                base_v = v
                continue
            if base_v is None:
                continue
            delta: dict[str, Any] = {"delta": v["value"] - base_v["value"], "ci": None}
            pair = _paired(per_set[0].get(name, {}), per_set[i].get(name, {}))
            if pair is not None:
                ci = paired_bootstrap(*pair, n_boot=n_boot, seed=seed)
                delta["ci"] = {
                    "lo": ci.lo,
                    "hi": ci.hi,
                    "se": ci.se,
                    "n_items": ci.n,
                    "excludes_zero": ci.excludes_zero,
                }
            row["deltas"][keys[i]] = delta
        rows.append(row)
    return rows


def _rows_for_group(g: Group, seed: int, n_boot: int) -> tuple[list[str], list[dict[str, Any]]]:
    keys = [_key(rs, i) for i, rs in enumerate(g.sets)]
    scores = [_scores_cache(rs) for rs in g.sets]
    all_tasks = sorted(
        {t for rs in g.sets for t in rs.tasks},
        key=lambda t: (
            0 if t in MATH_TASKS else 1 if t in GENERAL_TASKS else 2,
            (MATH_TASKS + GENERAL_TASKS).index(t) if t in MATH_TASKS + GENERAL_TASKS else 0,
            t,
        ),
    )
    rows: list[dict[str, Any]] = []
    base = g.base
    for t in all_tasks:
        row: dict[str, Any] = {
            "row": t,
            "label": DISPLAY.get(t, t),
            "kind": "task",
            "metric": None,
            "values": {},
            "deltas": {},
        }
        for i, rs in enumerate(g.sets):
            tr = rs.tasks.get(t)
            if tr is None:
                continue
            row["metric"] = row["metric"] or tr.metric
            row["values"][keys[i]] = {"value": tr.value, "stderr": tr.stderr, "n": tr.n, "metric": tr.metric}
            if i == 0 or t not in base.tasks:
                continue
            delta: dict[str, Any] = {"delta": tr.value - base.tasks[t].value, "ci": None}
            pair = (
                _paired(scores[0].get(t, {}), scores[i].get(t, {}))
                if tr.metric == base.tasks[t].metric
                else None
            )
            if pair is not None:
                ci = paired_bootstrap(*pair, n_boot=n_boot, seed=seed)
                delta["ci"] = {
                    "lo": ci.lo,
                    "hi": ci.hi,
                    "se": ci.se,
                    "n_items": ci.n,
                    "excludes_zero": ci.excludes_zero,
                }
            row["deltas"][keys[i]] = delta
        rows.append(row)
        if t not in MATH_TASKS + GENERAL_TASKS:
            rows += _subtask_rows(g, keys, t, seed, n_boot)
    # the suite means follow the suite's tasks; other tasks (micro_arith and its levels) come last
    n_suite_rows = sum(1 for r in rows if r["row"] in MATH_TASKS + GENERAL_TASKS)
    rows, others = rows[:n_suite_rows], rows[n_suite_rows:]

    for suite in ("math_avg", "general_avg", "overall") if base.harness == "rzero-bench" else ():
        row = {
            "row": suite,
            "label": DISPLAY[suite],
            "kind": "suite",
            "metric": None,
            "values": {},
            "deltas": {},
        }
        for i, rs in enumerate(g.sets):
            means = suite_means({t: (tr.value, tr.stderr) for t, tr in rs.tasks.items()})
            if suite not in means:
                continue
            m = means[suite]
            row["values"][keys[i]] = {
                "value": m["value"],
                "stderr": m["stderr"],
                "tasks": m["tasks"],
                "complete": m["complete"],
            }
            if i == 0:
                continue
            common = [t for t in m["tasks"] if t in base.tasks]
            sub0 = suite_means({t: (base.tasks[t].value, base.tasks[t].stderr) for t in common})
            subk = suite_means({t: (rs.tasks[t].value, rs.tasks[t].stderr) for t in common})
            if suite not in sub0 or suite not in subk:
                continue
            delta = {"delta": subk[suite]["value"] - sub0[suite]["value"], "ci": None, "tasks": common}
            strata: dict[str, tuple[list[float], list[float]]] = {}
            for t in common:
                pair = _paired(scores[0].get(t, {}), scores[i].get(t, {}))
                if pair is None or rs.tasks[t].metric != base.tasks[t].metric:
                    strata = {}
                    break
                strata[t] = pair
            if strata:
                ci = stratified_paired_bootstrap(
                    strata, suite_combiner(suite, common), n_boot=n_boot, seed=seed
                )
                delta["ci"] = {
                    "lo": ci.lo,
                    "hi": ci.hi,
                    "se": ci.se,
                    "n_items": ci.n,
                    "excludes_zero": ci.excludes_zero,
                }
            row["deltas"][keys[i]] = delta
        if row["values"]:
            rows.append(row)
    return keys, rows + others


def _iteration_stats(g: Group, keys: list[str]) -> list[dict[str, Any]]:
    out = []
    for key, rs in zip(keys, g.sets, strict=True):
        if rs.harness != "rzero-bench":
            continue  # another harness's file records none of these
        answers = no_ans = 0
        items = 0
        boxed_w = 0.0
        tokens = 0
        wall = 0.0
        for tr in rs.tasks.values():
            d = tr.data
            n_items = int((d.get("counts") or {}).get("items", tr.n) or 0)
            items += n_items
            boxed_w += float(d.get("boxed_rate", 0.0) or 0.0) * n_items
            tokens += int(d.get("tokens", 0) or 0)
            wall += float(d.get("wall_time_s", 0.0) or 0.0)
            samples = tr.samples()
            if samples:
                for r in samples:
                    a = r.get("answers") or []
                    answers += len(a)
                    no_ans += sum(1 for x in a if x is None)
            else:
                answers += n_items
                no_ans += int((d.get("counts") or {}).get("no_answer", 0) or 0)
        row: dict[str, Any] = {
            "key": key,
            "iteration": rs.iteration,
            "model": rs.model,
            "no_answer_rate": no_ans / answers if answers else None,
            "boxed_rate": boxed_w / items if items else None,
            "eval_tokens": tokens,
            "eval_wall_time_s": wall,
            "label_accuracy": None,
            "yield": None,
        }
        if g.run_dir is not None and rs.iteration:
            row["label_accuracy"] = label_accuracy(g.run_dir, rs.iteration)
            row["yield"] = filter_yield(g.run_dir, rs.iteration)
        out.append(row)
    return out


def build_report(paths: Sequence[Path], *, seed: int = 0, n_boot: int = N_BOOT) -> dict[str, Any]:
    """The report as plain data (what ``--format json`` prints)."""
    if not paths:
        raise UserError("report needs at least one run or results directory")
    groups = group_inputs(paths)
    out: dict[str, Any] = {
        "schema_version": 1,
        "seed": seed,
        "n_boot": n_boot,
        "ci_level": 0.95,
        "suites": {
            "math_avg": list(MATH_TASKS),
            "general_avg": list(GENERAL_TASKS),
            "overall": "mean of (math_avg, supergpqa, mmlu_pro, bbeh) over those present",
        },
        "groups": [],
    }
    for g in groups:
        keys, rows = _rows_for_group(g, seed, n_boot)
        out["groups"].append(
            {
                "name": g.name,
                "run_dir": str(g.run_dir) if g.run_dir else None,
                "base_model": base_model(g.run_dir, g.base.model),
                "columns": keys,
                "sets": [str(rs.path) for rs in g.sets],
                "rows": rows,
                "iterations": _iteration_stats(g, keys),
                "stages": stage_rows(g.run_dir),
                "collapse": collapse_status(g.run_dir, seed=seed, n_boot=n_boot) if g.run_dir else None,
            }
        )
    return out


# ---------------------------------------------------------------- rendering


def _delta_text(d: Mapping[str, Any] | None) -> str:
    if not d:
        return ""
    txt = f"{100 * d['delta']:+.2f}"
    ci = d.get("ci")
    if ci:
        txt += f" [{100 * ci['lo']:+.1f}, {100 * ci['hi']:+.1f}]" + ("*" if ci["excludes_zero"] else "")
    return txt


def _value_text(v: Mapping[str, Any] | None) -> str:
    if not v:
        return "–"
    txt = f"{fmt_pct(v['value'])} ± {fmt_pct(v['stderr'])}"
    if v.get("complete") is False:
        txt += "†"
    return txt


def _accuracy_table(g: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    cols = g["columns"]
    header = ["task", "metric", f"{cols[0]} (base)"]
    for c in cols[1:]:
        header += [c, f"Δ {c} (95% CI)"]
    body = []
    for r in g["rows"]:
        line = [
            r["label"],
            r["metric"] or ("suite" if r["kind"] == "suite" else ""),
            _value_text(r["values"].get(cols[0])),
        ]
        for c in cols[1:]:
            line += [_value_text(r["values"].get(c)), _delta_text(r["deltas"].get(c))]
        body.append(line)
    return header, body


def _pct_ci(acc: Any, ci: Any) -> str:
    if acc is None:
        return "–"
    txt = fmt_pct(acc, 1)
    if ci:
        txt += f" [{fmt_pct(ci[0], 1)}, {fmt_pct(ci[1], 1)}]"
    return txt


def _iter_table(g: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "iteration",
        "label acc % (95% CI)",
        "yield kept/generated",
        "no-answer %",
        "boxed %",
        "eval tokens",
        "eval time s",
    ]
    body = []
    for it in g["iterations"]:
        la = it["label_accuracy"]
        y = it["yield"]
        body.append(
            [
                it["key"],
                _pct_ci(la["accuracy"], la["ci95"]) + f" n={la['n']}" if la else "–",
                f"{y['kept']}/{y['generated']} ({fmt_pct(y['rate'], 1)}%)" if y else "–",
                fmt_pct(it["no_answer_rate"], 1),
                fmt_pct(it["boxed_rate"], 1),
                str(it["eval_tokens"]),
                f"{it['eval_wall_time_s']:.1f}",
            ]
        )
    return header, body


def _stage_table(g: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["stage", "status", "time s", "tokens"]
    body = [
        [
            s["stage"],
            str(s["status"] or ""),
            "–" if s["wall_time_s"] is None else f"{float(s['wall_time_s']):.1f}",
            "–" if s["tokens"] is None else str(s["tokens"]),
        ]
        for s in g["stages"]
    ]
    return header, body


def _md_table(header: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *body]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


FOOTNOTE = (
    "Values are % ± standard error. Δ = iteration − base with a 95% paired-bootstrap CI over shared items; "
    "* = the CI excludes 0. † = not every task of the suite is present (mean over those present)."
)


def render_markdown(rep: Mapping[str, Any]) -> str:
    parts = []
    for g in rep["groups"]:
        parts.append(f"## {g['name']} (base model: {g['base_model'] or '?'})\n")
        parts.append(_md_table(*_accuracy_table(g)) + "\n")
        parts.append(FOOTNOTE + f" Bootstrap: {rep['n_boot']} replicates, seed {rep['seed']}.\n")
        parts.append("### Per iteration\n")
        parts.append(_md_table(*_iter_table(g)) + "\n")
        if g["stages"]:
            parts.append("### Stages\n")
            parts.append(_md_table(*_stage_table(g)) + "\n")
        if g.get("collapse"):
            parts.append("### Best iteration and collapse (dev split)\n")
            parts.append("\n".join(render_collapse(g["collapse"])) + "\n")
    return "\n".join(parts)


def render_csv(rep: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "group",
            "row",
            "kind",
            "metric",
            "column",
            "value",
            "stderr",
            "n",
            "delta",
            "ci_lo",
            "ci_hi",
            "significant",
        ]
    )
    for g in rep["groups"]:
        for r in g["rows"]:
            for c in g["columns"]:
                v = r["values"].get(c)
                if not v:
                    continue
                d = r["deltas"].get(c) or {}
                ci = d.get("ci") or {}
                w.writerow(
                    [
                        g["name"],
                        r["row"],
                        r["kind"],
                        v.get("metric") or r["metric"] or "",
                        c,
                        f"{v['value']:.6f}",
                        f"{v['stderr']:.6f}",
                        v.get("n", ""),
                        "" if "delta" not in d else f"{d['delta']:.6f}",
                        "" if not ci else f"{ci['lo']:.6f}",
                        "" if not ci else f"{ci['hi']:.6f}",
                        "" if not ci else int(ci["excludes_zero"]),
                    ]
                )
    return buf.getvalue()


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def render(rep: Mapping[str, Any], fmt: str) -> str:
    """Render a report as md, json or csv text (``table`` prints with rich; see report_command)."""
    if fmt == "md":
        return render_markdown(rep)
    if fmt == "json":
        return json.dumps(_clean(rep), indent=2, sort_keys=True) + "\n"
    if fmt == "csv":
        return render_csv(rep)
    raise UserError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _print_rich(rep: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    # in a pipe or a log, never cut the tables to 80 columns ("no-answ…"): use the width they need
    console = Console() if sys.stdout.isatty() or os.environ.get("COLUMNS") else Console(width=1000)

    def table(title: str, header: list[str], body: list[list[str]]) -> None:
        if not body:
            return
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 else "right")
        for row in body:
            t.add_row(*row)
        console.print(t)

    # a terminal shows the end of the output: the bookkeeping first, the accuracy table with its
    # paired deltas (the loop's gain) last, right above its legend
    for g in rep["groups"]:
        table(f"{g['name']} — stages", *_stage_table(g))
        table(f"{g['name']} — per iteration", *_iter_table(g))
        if g.get("collapse"):
            console.print("\n".join(render_collapse(g["collapse"])), markup=False, highlight=False)
        table(f"{g['name']} — accuracy (base model {g['base_model'] or '?'})", *_accuracy_table(g))
        console.print(FOOTNOTE)


def report_command(
    runs: Sequence[Path], fmt: str = "table", plots: Path | None = None, seed: int = 0
) -> None:
    """CLI: print the comparison report; with ``plots`` also write PNGs there."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    rep = build_report(list(runs), seed=seed)
    if fmt == "table":
        _print_rich(rep)
    else:
        sys.stdout.write(render(rep, fmt))
    if plots is not None:
        from rzero_bench.report.plots import write_plots

        written = write_plots(rep, Path(plots))
        for p in written:
            print(f"wrote {p}", file=sys.stderr)
