"""R-Zero vs Base Challenger on measured runs, and the leaderboard section that sets them beside the paper.

The paper's tables have a "Base Challenger" row: the solver trained on questions from the untrained
challenger (``--baseline base-challenger``). Whether training the challenger matters is the
difference between that row and "R-Zero (Iter 1)". On the micro world we measure it with paired
runs: for every seed s, an R-Zero run and a Base Challenger run on the same base with the same run
seed, scored on the same items. Per seed, the difference is paired per item (both solvers answer
the same questions), so its 95% interval is a paired bootstrap over items; across seeds we report
the mean and the sample standard deviation, the run-to-run spread that the item interval does not
contain.

:func:`compare_runs` builds the comparison (``comparison.json``, kind
``rzero-bench/paired-comparison``) from finished runs; :func:`comparison_section` renders it for the
leaderboard next to the reported Base Model / Base Challenger / R-Zero (Iter 1) rows of
``results/reference/`` (their Overall column: the paper's headline number).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.report.rundata import filter_yield, label_accuracy
from rzero_bench.report.stats import paired_bootstrap
from rzero_bench.store import read_json, read_jsonl

COMPARISON_FILE = "comparison.json"
KIND = "rzero-bench/paired-comparison"
N_BOOT = 2000

__all__ = ["COMPARISON_FILE", "compare_runs", "comparison_section", "find_comparisons", "write_comparison"]


def _manifest_config(run: Path) -> dict[str, Any]:
    m = run / "manifest.json"
    if not m.is_file():
        raise UserError(f"{run} is not a run directory (no manifest.json)")
    data = read_json(m)
    cfg = data.get("config") if isinstance(data, dict) else None
    if not isinstance(cfg, dict):
        raise UserError(f"{m} has no config")
    return cfg


def _items(run: Path, iteration: int, task: str) -> dict[str, tuple[float, str]]:
    """``doc_id -> (greedy correctness, subtask)`` of one iteration's results of ``task``."""
    f = run / "results" / f"iter_{iteration}" / f"{task}.samples.jsonl"
    if not f.is_file():
        raise UserError(f"{f} is missing: run iteration {iteration} of {run} to the end (eval stage)")
    out: dict[str, tuple[float, str]] = {}
    for r in read_jsonl(f):
        correct = r.get("correct") or [False]
        out[str(r["doc_id"])] = (float(bool(correct[0])), str(r.get("subtask") or ""))
    return out


def _resolved_base(run: Path, task: str, spec: str) -> str:
    """The base model's directory name as the iteration-0 results recorded it (``micro:s`` resolves
    to its cache directory, whose name carries the recipe hash), else the configured spec."""
    f = run / "results" / "iter_0" / f"{task}.json"
    model = read_json(f).get("model") if f.is_file() else None
    return Path(str(model or spec)).name


def _acc(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _levels(items: dict[str, tuple[float, str]]) -> list[str]:
    subs = sorted({s for _, s in items.values() if s}, key=lambda s: (len(s), s))
    return ["all", *subs]


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 6),
        "sd": round(statistics.stdev(values), 6) if len(values) > 1 else 0.0,
    }


def compare_runs(
    treatment: Sequence[Path],
    control: Sequence[Path],
    *,
    task: str = "micro_arith",
    iteration: int = 1,
    n_boot: int = N_BOOT,
    method: str = "",
) -> dict[str, Any]:
    """Paired comparison of ``treatment`` (R-Zero) and ``control`` (Base Challenger) runs, per seed.

    Runs are matched by their config ``seed``; each pair must share the base model, and the control
    runs must be ``baseline: base-challenger`` runs while the treatment runs are not.
    """
    if not treatment or len(treatment) != len(control):
        raise UserError("need the same number (>= 1) of R-Zero and Base Challenger runs")
    by_seed: dict[str, tuple[Path, Path]] = {}
    t_cfgs = {Path(r): _manifest_config(Path(r)) for r in treatment}
    c_cfgs = {Path(r): _manifest_config(Path(r)) for r in control}
    c_by_seed = {str(cfg.get("seed")): r for r, cfg in c_cfgs.items()}
    for r, cfg in t_cfgs.items():
        s = str(cfg.get("seed"))
        if cfg.get("baseline", "none") != "none":
            raise UserError(f"{r} is a {cfg.get('baseline')} run, not an R-Zero run")
        if s not in c_by_seed:
            raise UserError(f"no Base Challenger run with seed {s} (got seeds {sorted(c_by_seed)})")
        c = c_by_seed[s]
        if c_cfgs[c].get("baseline") != "base-challenger":
            raise UserError(f"{c} is not a base-challenger run (config baseline={c_cfgs[c].get('baseline')!r})")
        if str(c_cfgs[c].get("model")) != str(cfg.get("model")):
            raise UserError(f"{r} and {c} start from different base models")
        by_seed[s] = (r, c)
    if len(by_seed) != len(t_cfgs):
        raise UserError("the R-Zero runs must have distinct seeds")
    seeds: dict[str, Any] = {}
    base_levels: dict[str, float] | None = None
    for s in sorted(by_seed, key=lambda x: (len(x), x)):
        rz, bc = by_seed[s]
        base, z, b = _items(rz, 0, task), _items(rz, iteration, task), _items(bc, iteration, task)
        ids = sorted(set(base) & set(z) & set(b))
        if not ids:
            raise UserError(f"{rz} and {bc} share no {task} items")
        levels: dict[str, Any] = {}
        for lev in _levels(base):
            sel = [i for i in ids if lev == "all" or base[i][1] == lev]
            if not sel:
                continue
            before, after = [b[i][0] for i in sel], [z[i][0] for i in sel]
            ci = paired_bootstrap(before, after, n_boot=n_boot, seed=0)
            levels[lev] = {
                "n": len(sel),
                "base": round(_acc([base[i][0] for i in sel]), 6),
                "base_challenger": round(_acc(before), 6),
                "rzero": round(_acc(after), 6),
                "delta": round(ci.delta, 6),
                "ci95": [round(ci.lo, 6), round(ci.hi, 6)],
                "excludes_zero": ci.excludes_zero,
            }
        if base_levels is None:
            base_levels = {lev: v["base"] for lev, v in levels.items()}
        extra: dict[str, Any] = {}
        for name, run in (("rzero", rz), ("base_challenger", bc)):
            la = label_accuracy(run, iteration) or {}
            fy = filter_yield(run, iteration) or {}
            extra[name] = {"label_acc": la.get("accuracy"), "yield": fy.get("rate"), "run": run.name}
        seeds[s] = {"levels": levels, **extra}
    levels_all = list(next(iter(seeds.values()))["levels"])
    summary: dict[str, Any] = {}
    for lev in levels_all:
        rows = [seeds[s]["levels"][lev] for s in seeds if lev in seeds[s]["levels"]]
        summary[lev] = {
            key: _summary([r[key] for r in rows]) for key in ("base_challenger", "rzero", "delta")
        }
        summary[lev]["base"] = rows[0]["base"]
        summary[lev]["seeds_excluding_zero"] = sum(1 for r in rows if r["excludes_zero"] and r["delta"] > 0)
    first_rz = by_seed[next(iter(seeds))][0]
    return {
        "kind": KIND,
        "version": 1,
        "task": task,
        "iteration": iteration,
        "treatment": "R-Zero",
        "control": "Base Challenger",
        "base_model": _resolved_base(first_rz, task, str(t_cfgs[first_rz].get("model"))),
        "preset": t_cfgs[first_rz].get("name"),
        "challenger_steps": (t_cfgs[first_rz].get("challenger") or {}).get("max_steps"),
        "method": method,
        "n_boot": n_boot,
        "seeds": seeds,
        "summary": summary,
    }


def write_comparison(treatment: Sequence[Path], control: Sequence[Path], out_dir: Path, **kw: Any) -> Path:
    """Write ``out_dir/comparison.json`` (atomically) from finished runs; returns its path."""
    from rzero_bench.store import atomic_write_json

    data = compare_runs(treatment, control, **kw)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(out / COMPARISON_FILE, data)


def find_comparisons(results: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(directory relative to results, comparison)`` for every ``comparison.json`` under results."""
    out = []
    for f in sorted(Path(results).rglob(COMPARISON_FILE)):
        rel = f.relative_to(results)
        if any(part.startswith(".") for part in rel.parts):
            continue
        data = read_json(f)
        if isinstance(data, dict) and data.get("kind") == KIND:
            out.append((f.parent.relative_to(results).as_posix(), data))
    return out


def _reported(results: Path) -> list[tuple[str, dict[str, float], str]]:
    """``(base model, {stage: overall}, file)`` from the reference files that have all three rows."""
    out = []
    ref = Path(results) / "reference"
    for p in sorted(ref.glob("*.json")) if ref.is_dir() else []:
        doc = read_json(p)
        if not isinstance(doc, dict) or doc.get("source") != "reported":
            continue
        vals = {
            str(r.get("stage")): float(r["metrics"]["overall"])
            for r in doc.get("rows") or []
            if (r.get("metrics") or {}).get("overall") is not None
        }
        if {"base", "base_challenger", "iter_1"} <= set(vals):
            name = str(doc.get("base_model") or p.stem).rstrip("/").rsplit("/", 1)[-1]
            out.append((name, vals, p.name))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ms(d: dict[str, float], sign: bool = False, seeds: int = 2) -> str:
    """``mean ± sd`` in percent; one seed has no spread, so only its value is shown."""
    m = f"{100 * d['mean']:+.1f}" if sign else _pct(d["mean"])
    return f"{m} ± {100 * d['sd']:.1f}" if seeds > 1 else m


def _workload(c: dict[str, Any]) -> str:
    steps = c.get("challenger_steps")
    return f"{c.get('preset') or '?'} preset" + (f", {steps} challenger GRPO steps" if steps is not None else "")


def comparison_section(results: Path) -> list[str]:
    """Markdown lines: the paper's Base Challenger rows beside every measured comparison (or none)."""
    comps = find_comparisons(results)
    if not comps:
        return []
    lines = [
        "## Base Challenger vs R-Zero (Iter 1)",
        "",
        "Does training the challenger matter? **Base Challenger** = the solver trained on questions of the "
        "untrained challenger (`rzero-bench run --baseline base-challenger`); **R-Zero (Iter 1)** = the same "
        "with the challenger trained first. Reported rows: the paper's Overall column (percent). Measured "
        "rows: greedy accuracy on the micro world's held-out items (percent), mean ± sd over seeds; each "
        "seed pairs an R-Zero run and a Base Challenger run with the same base and run seed, and its "
        "difference has a 95% paired-bootstrap interval over items (* = excludes 0).",
        "",
        "| Model | Source | Metric | Base Model | Base Challenger | R-Zero (Iter 1) | Iter 1 − Base Challenger | Notes |",
        "|:---|:---|:---|:---:|:---:|:---:|:---:|:---|",
    ]
    for name, vals, file in _reported(results):
        lines.append(
            f"| {name} | reported | Overall | {vals['base']:.2f} | {vals['base_challenger']:.2f} | "
            f"{vals['iter_1']:.2f} | {vals['iter_1'] - vals['base_challenger']:+.2f} | {file} |"
        )
    for rel, c in comps:
        allv, r = c["summary"]["all"], len(c["seeds"])
        n = next(iter(c["seeds"].values()))["levels"]["all"]["n"]
        if r == 1:
            ci = next(iter(c["seeds"].values()))["levels"]["all"]
            star = "*" if ci["excludes_zero"] else ""
            delta = f"{100 * ci['delta']:+.1f} [{100 * ci['ci95'][0]:+.1f}, {100 * ci['ci95'][1]:+.1f}]{star}"
            seeds = "1 seed"
        else:
            delta = _ms(allv["delta"], sign=True)
            seeds = f"{r} seeds, {allv['seeds_excluding_zero']} with Δ > 0*"
        lines.append(
            f"| {c['base_model']} | measured | {c['task']} ({n} items) | {_pct(allv['base'])} | "
            f"{_ms(allv['base_challenger'], seeds=r)} | {_ms(allv['rzero'], seeds=r)} | {delta} | "
            f"{_workload(c)}; {seeds}; `{rel}` |"
        )
    lines.append("")
    for rel, c in comps:
        seeds = list(c["seeds"])
        lines += [
            f"### Measured: `{rel}` ({c['task']}, iteration {c['iteration']}, {_workload(c)}, base `{c['base_model']}`)",
            "",
            (c.get("method") or "") + (" " if c.get("method") else "")
            + "Per level and per seed: Base Challenger → R-Zero, difference [95% paired CI]; pseudo-label "
            "accuracy against the exact oracle and yield (kept / generated), Base Challenger / R-Zero.",
            "",
            "| Level | Base Model | Base Challenger | R-Zero (Iter 1) | Δ" + (" mean ± sd" if len(seeds) > 1 else "") + " | "
            + " | ".join(f"seed {s}" for s in seeds)
            + " |",
            "|:---|:---:|:---:|:---:|:---:|" + "|".join(":---:" for _ in seeds) + "|",
        ]
        for lev, sm in c["summary"].items():
            cells = []
            for s in seeds:
                v = c["seeds"][s]["levels"].get(lev)
                if v is None:
                    cells.append("–")
                    continue
                star = "*" if v["excludes_zero"] else ""
                cells.append(
                    f"{_pct(v['base_challenger'])} → {_pct(v['rzero'])}: {100 * v['delta']:+.1f} "
                    f"[{100 * v['ci95'][0]:+.1f}, {100 * v['ci95'][1]:+.1f}]{star}"
                )
            label = "all" if lev == "all" else f"L{lev}"
            r = len(seeds)
            lines.append(
                f"| {label} | {_pct(sm['base'])} | {_ms(sm['base_challenger'], seeds=r)} | {_ms(sm['rzero'], seeds=r)} | "
                f"{_ms(sm['delta'], sign=True, seeds=r)} | " + " | ".join(cells) + " |"
            )
        for key, title in (("label_acc", "label acc"), ("yield", "yield")):
            cells = []
            for s in seeds:
                b, z = c["seeds"][s]["base_challenger"].get(key), c["seeds"][s]["rzero"].get(key)
                cells.append(f"{'–' if b is None else _pct(b)} / {'–' if z is None else _pct(z)}")
            lines.append(f"| {title} | – | – | – | – | " + " | ".join(cells) + " |")
        lines.append("")
    return lines
