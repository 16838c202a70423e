"""``rzero-bench check RUN --baseline DIR``: the CI regression check against committed results.

Every metric of every task present in both the fresh results and the baseline (``acc``,
``mean@k``, ``maj@k``, ``pass@k``), plus the suite means (Math avg, General avg, Overall over the
tasks both have), is compared. With ``x`` the baseline value and ``y`` the fresh one::

    drop      = x - y
    tolerance = z * sqrt(se_x^2 + se_y^2)
    fail when drop > tolerance

``sqrt(se_x^2 + se_y^2)`` is the standard error of the difference of two independent estimates,
each ``se`` being the standard error recorded with the metric (suite means: ``sqrt(sum se_i^2)/t``).
So ``z`` is a one-sided z-score: with the default z = 3 a run as good as the baseline fails by
chance with probability about 0.13 % per metric, while a real drop of more than ~3 standard errors
fails. No tolerance is a hand-picked constant. A metric whose two standard errors are both 0
(for example 0 % on both sides) tolerates no drop at all.

Also failing: a baseline task missing from the fresh results, and a task whose ``task_hash``
differs (the task definition changed: regenerate the baseline). Improvements always pass.

Pairing: a run (``results/iter_<k>``) against a run-shaped baseline compares the same k; a flat
baseline directory (or one ``<task>.json``) is compared with the fresh run's last iteration.
Exit status 0 when everything passes, 1 on any failure (``RZeroError``), 2 for bad input.

**Measured baselines (``baseline.json``)**. Item standard errors alone do not cover the spread
between two honest runs of the same workload: GRPO sampling, and across machines even the base
model's answers, differ (see ``results/baselines/micro/README.md``). A measured baseline is a
directory holding ``baseline.json``, written by :func:`write_baseline` from ``r >= 2`` runs of one
workload that differ only in ``seed``. For each metric it records the mean ``x`` over the runs, the
sample standard deviation ``s`` across them (ddof = 1) and the number of items ``n``. Metrics: per
iteration k, each task's headline metric overall and per subtask (``micro_arith`` levels L1-L5),
and for k >= 1 the pseudo-label accuracy (``label_acc``) and the yield kept/generated
(``yield``). A fresh run's value ``y`` fails when::

    drop      = x - y
    tolerance = z * sqrt(se(x)^2 + se(y)^2 + s^2 * (1 + 1/r))
    se(p)     = sqrt(q (1 - q) / (n + 4)),   q = (p n + 2) / (n + 4)

``s^2 (1 + 1/r)`` is the variance of one new run around the mean of r runs (run-to-run spread);
``se`` is the Agresti-Coull standard error of a proportion, which stays above 0 at 0 % and 100 %
so a cell every run solves still tolerates an item or two. Also failing: a baseline iteration or
metric the fresh run lacks, a changed ``task_hash``, and a workload setting that differs from the
baseline's (``config``: every setting both configs have, except ``seed``, ``name``, ``model``,
``iterations``, ``layout``, ``controls``, ``probes`` and the dev split ``eval.dev_*``, which
scores other items; the base model is compared by the name of
its directory and reported, not failed, since a base rebuilt elsewhere may carry another library
version in its name).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rzero_bench.errors import RZeroError, UserError
from rzero_bench.report.results import GENERAL_TASKS, MATH_TASKS, ResultSet, discover, suite_means
from rzero_bench.report.rundata import filter_yield, label_accuracy

__all__ = [
    "BASELINE_FILE",
    "Check",
    "baseline_tolerance",
    "build_baseline",
    "check_command",
    "compare_sets",
    "compare_summary",
    "run_checks",
    "run_summary",
    "write_baseline",
]

BASELINE_FILE = "baseline.json"
BASELINE_KIND = "rzero-bench/measured-baseline"
# Settings that may differ between the baseline's runs and a fresh run of the same workload.
FREE_SETTINGS = (
    "seed",
    "name",
    "model",
    "iterations",
    "layout",
    "controls",
    "probes",
    "eval.dev_tasks",
    "eval.dev_size",
    "eval.dev_seed",
    "eval.collapse_label_floor",
)


def _free(key: str) -> bool:
    return any(key == f or key.startswith(f + ".") for f in FREE_SETTINGS)


@dataclass(frozen=True)
class Check:
    """One compared metric."""

    iteration: str
    task: str
    metric: str
    baseline: float | None
    value: float | None
    tolerance: float | None
    status: str  # "pass" | "fail" | "missing" | "hash-mismatch" | "config-mismatch"
    spread: float | None = None  # run-to-run standard deviation (measured baselines only)
    note: str | None = None

    @property
    def failed(self) -> bool:
        return self.status != "pass"


def tolerance(se_base: float, se_new: float, z: float) -> float:
    """``z * sqrt(se_base^2 + se_new^2)``: z standard errors of the difference."""
    return z * math.sqrt(float(se_base) ** 2 + float(se_new) ** 2)


def _one(label: str, task: str, metric: str, base: dict[str, Any], new: dict[str, Any], z: float) -> Check:
    x, y = float(base["value"]), float(new["value"])
    tol = tolerance(float(base.get("stderr") or 0.0), float(new.get("stderr") or 0.0), z)
    ok = (x - y) <= tol + 1e-12
    return Check(label, task, metric, x, y, tol, "pass" if ok else "fail")


def compare_sets(base: ResultSet, new: ResultSet, z: float, label: str) -> list[Check]:
    """All checks for one pair of result sets."""
    out: list[Check] = []
    common: list[str] = []
    for task in sorted(base.tasks):
        b = base.tasks[task]
        n = new.tasks.get(task)
        if n is None:
            out.append(Check(label, task, "*", None, None, None, "missing"))
            continue
        if b.task_hash != n.task_hash:
            out.append(Check(label, task, "*", None, None, None, "hash-mismatch"))
            continue
        common.append(task)
        for metric in sorted(b.data.get("metrics", {})):
            if metric in n.data.get("metrics", {}):
                out.append(_one(label, task, metric, b.data["metrics"][metric], n.data["metrics"][metric], z))
    if common:
        sb = suite_means({t: (base.tasks[t].value, base.tasks[t].stderr) for t in common})
        sn = suite_means({t: (new.tasks[t].value, new.tasks[t].stderr) for t in common})
        for suite in ("math_avg", "general_avg", "overall"):
            if suite in sb and suite in sn:
                out.append(_one(label, suite, "suite", sb[suite], sn[suite], z))
    return out


def run_checks(run_dir: Path, baseline: Path, z: float = 3.0) -> list[Check]:
    """Pair result sets (see module docstring) and compare them."""
    if not (z > 0 and math.isfinite(z)):
        raise UserError(f"--z must be a positive number of standard errors, got {z}")
    measured = read_baseline(Path(baseline)) if Path(baseline).exists() else None
    if measured is not None:
        return compare_summary(measured, run_summary(Path(run_dir)), z)
    new_sets = discover(Path(run_dir))
    base_sets = discover(Path(baseline))
    new_by_it = {s.iteration: s for s in new_sets}
    pairs: list[tuple[str, ResultSet, ResultSet]] = []
    if all(s.iteration is not None for s in base_sets) and all(s.iteration is not None for s in new_sets):
        for b in base_sets:
            n = new_by_it.get(b.iteration)
            if n is None:
                raise RZeroError(
                    f"the fresh run has no iteration {b.iteration} but the baseline has; "
                    f"run all iterations or regenerate the baseline"
                )
            pairs.append((f"iter_{b.iteration}", b, n))
    elif len(base_sets) == 1:
        pairs.append((new_sets[-1].label, base_sets[0], new_sets[-1]))
    else:
        raise UserError(
            f"cannot pair {baseline} (a run with iterations) with {run_dir} (a single results "
            "directory); pass a run directory or a single baseline results directory"
        )
    checks: list[Check] = []
    for label, b, n in pairs:
        checks += compare_sets(b, n, z, label)
    if not checks:
        raise UserError(f"nothing to compare: {baseline} has no tasks")
    return checks


# ----------------------------------------------------------------------------- measured baselines
def proportion_se(p: float, n: int) -> float:
    """Agresti-Coull standard error of a proportion ``p`` over ``n`` items (``> 0`` at 0 and 1)."""
    q = (float(p) * n + 2.0) / (n + 4.0)
    return math.sqrt(q * (1.0 - q) / (n + 4.0))


def baseline_tolerance(x: float, n_x: int, y: float, n_y: int, spread: float, runs: int, z: float) -> float:
    """``z * sqrt(se(x)^2 + se(y)^2 + spread^2 * (1 + 1/runs))`` (module docstring)."""
    var = proportion_se(x, n_x) ** 2 + proportion_se(y, n_y) ** 2 + float(spread) ** 2 * (1.0 + 1.0 / runs)
    return z * math.sqrt(var)


def _manifest(run_dir: Path) -> dict[str, Any]:
    from rzero_bench.store import read_json

    path = Path(run_dir) / "manifest.json"
    if not path.exists():
        raise UserError(f"{run_dir} has no manifest.json; pass a run directory written by `rzero-bench run`")
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a run manifest")
    return data


def run_summary(run_dir: Path) -> dict[str, Any]:
    """The metrics a measured baseline records, read from a finished run directory.

    ``{"iterations": {"iter_<k>": {metric: {"value", "n"}}}, "tasks": {task: task_hash},
    "config": {...}, "base_model": <directory name>}``. Metric names: ``<task>`` (headline metric),
    ``<task> L<subtask>`` (its value per subtask, for tasks outside the paper's suites, as in the
    report), ``label_acc`` and ``yield`` (k >= 1).
    """
    run_dir = Path(run_dir)
    manifest = _manifest(run_dir)
    sets = [s for s in discover(run_dir) if s.iteration is not None]
    if not sets:
        raise UserError(f"{run_dir} has no results/iter_<k>; is the run finished?")
    iters: dict[str, dict[str, dict[str, float]]] = {}
    hashes: dict[str, str] = {}
    base = ""
    for rs in sets:
        k = int(rs.iteration or 0)
        row: dict[str, dict[str, float]] = {}
        for task, tr in sorted(rs.tasks.items()):
            hashes[task] = tr.task_hash
            metric = tr.metric
            row[task] = {"value": tr.value, "n": tr.n}
            subtasks = {} if task in MATH_TASKS + GENERAL_TASKS else tr.data.get("subtasks") or {}
            for sub, metrics in sorted(subtasks.items()):
                m = metrics.get(metric) if isinstance(metrics, dict) else None
                if m is not None:
                    row[f"{task} L{sub}"] = {"value": float(m["value"]), "n": int(m.get("n", 0) or 0)}
        if k == 0:
            base = Path(rs.model).name if rs.model else ""
        else:
            la = label_accuracy(run_dir, k)
            if la is not None and la.get("accuracy") is not None:
                row["label_acc"] = {"value": float(la["accuracy"]), "n": int(la.get("n") or 0)}
            fy = filter_yield(run_dir, k)
            if fy is not None and fy.get("rate") is not None:
                row["yield"] = {"value": float(fy["rate"]), "n": int(fy["generated"])}
        iters[f"iter_{k}"] = row
    return {
        "run": run_dir.name,
        "seed": (manifest.get("config") or {}).get("seed"),
        "config": manifest.get("config") or {},
        "base_model": base,
        "tasks": hashes,
        "iterations": iters,
    }


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(base: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Settings both configs have that differ (``FREE_SETTINGS`` left out), as ``key: a != b``."""
    fb = {k: v for k, v in _flat(base).items() if not _free(k)}
    fn = {k: v for k, v in _flat(new).items() if not _free(k)}
    return [f"{k}: {fb[k]!r} != {fn[k]!r}" for k in sorted(fb.keys() & fn.keys()) if fb[k] != fn[k]]


def build_baseline(run_dirs: list[Path], *, method: str = "") -> dict[str, Any]:
    """A measured baseline from ``r >= 2`` finished runs of one workload that differ only in seed."""
    import statistics

    if len(run_dirs) < 2:
        raise UserError("a measured baseline needs at least 2 runs (a spread from one run is 0)")
    sums = [run_summary(d) for d in run_dirs]
    first = sums[0]
    for s in sums[1:]:
        diff = config_differences(first["config"], s["config"])
        if diff:
            raise UserError(f"{s['run']} is not the same workload as {first['run']}: {'; '.join(diff[:3])}")
        if s["tasks"] != first["tasks"] or s["base_model"] != first["base_model"]:
            raise UserError(f"{s['run']} has other tasks or another base model than {first['run']}")
    seeds = [s["seed"] for s in sums]
    if len(set(map(str, seeds))) != len(seeds):
        raise UserError(f"the runs must have distinct seeds, got {seeds}")
    iterations: dict[str, dict[str, Any]] = {}
    for it, row in first["iterations"].items():
        out_row: dict[str, Any] = {}
        for metric in row:
            vals = [s["iterations"].get(it, {}).get(metric) for s in sums]
            if any(v is None for v in vals):
                continue
            values = [float(v["value"]) for v in vals]  # type: ignore[index]
            out_row[metric] = {
                "value": round(statistics.fmean(values), 6),
                "spread": round(statistics.stdev(values), 6),
                "n": int(vals[0]["n"]),  # type: ignore[index]
                "per_seed": {str(s["seed"]): round(v, 6) for s, v in zip(sums, values, strict=True)},
            }
        iterations[it] = out_row
    config = {k: v for k, v in first["config"].items() if k not in ("seed", "name")}
    return {
        "kind": BASELINE_KIND,
        "version": 1,
        "method": method,
        "runs": [s["run"] for s in sums],
        "seeds": seeds,
        "base_model": first["base_model"],
        "tasks": first["tasks"],
        "config": config,
        "iterations": iterations,
    }


def write_baseline(run_dirs: list[Path], out_dir: Path, *, method: str = "") -> Path:
    """Write ``out_dir/baseline.json`` (atomically) from finished runs; returns its path."""
    from rzero_bench.store import atomic_write_json

    data = build_baseline([Path(d) for d in run_dirs], method=method)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(out / BASELINE_FILE, data)


def read_baseline(path: Path) -> dict[str, Any] | None:
    """The measured baseline at ``path`` (a directory with ``baseline.json``, or that file), else None."""
    from rzero_bench.store import read_json

    path = Path(path)
    f = path / BASELINE_FILE if path.is_dir() else path
    if f.name != BASELINE_FILE or not f.is_file():
        return None
    data = read_json(f)
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise UserError(f"{f} is not a measured baseline (kind {BASELINE_KIND!r})")
    return data


def compare_summary(baseline: Mapping[str, Any], fresh: Mapping[str, Any], z: float) -> list[Check]:
    """Checks of a fresh run's summary (:func:`run_summary`) against a measured baseline."""
    out: list[Check] = []
    diff = config_differences(baseline.get("config") or {}, fresh.get("config") or {})
    if diff:
        out.append(Check("run", "config", "*", None, None, None, "config-mismatch", note="; ".join(diff)))
    for task, h in sorted((baseline.get("tasks") or {}).items()):
        got = (fresh.get("tasks") or {}).get(task)
        if got is None:
            out.append(Check("run", task, "*", None, None, None, "missing"))
        elif got != h:
            out.append(Check("run", task, "*", None, None, None, "hash-mismatch"))
    runs = max(2, len(baseline.get("seeds") or []))
    for it, row in (baseline.get("iterations") or {}).items():
        new_row = (fresh.get("iterations") or {}).get(it)
        if new_row is None:
            out.append(Check(it, "*", "*", None, None, None, "missing"))
            continue
        for metric, b in row.items():
            task, _, level = metric.partition(" ")
            label = level or "all"
            n = new_row.get(metric)
            if n is None:
                out.append(Check(it, task, label, float(b["value"]), None, None, "missing"))
                continue
            x, y, s = float(b["value"]), float(n["value"]), float(b.get("spread") or 0.0)
            tol = baseline_tolerance(x, int(b["n"]), y, int(n["n"]), s, runs, z)
            ok = (x - y) <= tol + 1e-12
            out.append(Check(it, task, label, x, y, tol, "pass" if ok else "fail", spread=s))
    if (
        fresh.get("base_model")
        and baseline.get("base_model")
        and fresh["base_model"] != baseline["base_model"]
    ):
        note = f"base model {fresh['base_model']} (baseline: {baseline['base_model']})"
        out.append(Check("run", "base_model", "*", None, None, None, "pass", note=note))
    return out


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def check_command(run_dir: Path, baseline: Path, z: float = 3.0) -> None:
    """CLI: print every comparison; exit 1 (RZeroError) when any metric dropped beyond tolerance."""
    checks = run_checks(Path(run_dir), Path(baseline), z)
    from rich.console import Console
    from rich.table import Table

    measured = any(c.spread is not None for c in checks)
    what = "SE of the difference incl. run-to-run spread" if measured else "SE of the difference"
    t = Table(title=f"regression check: {run_dir} vs {baseline} (tolerance = {z:g} · {what})")
    cols = ["set", "task", "metric", "baseline %", "fresh %", "Δ"] + (["spread"] if measured else [])
    for col in (*cols, "tolerance", "status"):
        t.add_column(col, justify="left" if col in ("set", "task", "metric", "status") else "right")
    notes = []
    for c in checks:
        d = "–" if c.baseline is None or c.value is None else f"{100 * (c.value - c.baseline):+.2f}"
        cells = [c.iteration, c.task, c.metric, _fmt(c.baseline), _fmt(c.value), d]
        if measured:
            cells.append(_fmt(c.spread))
        t.add_row(*cells, _fmt(c.tolerance), c.status if not c.failed else f"[bold red]{c.status}[/]")
        if c.note:
            notes.append(f"{c.task}: {c.note}")
    console = Console(stderr=True)
    if not console.is_terminal:  # CI logs: wide enough that no column is cut
        console.width = max(console.width, 130)
    console.print(t)
    for line in notes:
        console.print(line, markup=False)
    failed = [c for c in checks if c.failed]
    if failed:
        hashes = [c for c in failed if c.status in ("hash-mismatch", "config-mismatch")]
        what = "; ".join(f"{c.iteration}/{c.task}/{c.metric}: {c.status}" for c in failed[:5])
        more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
        hint = (
            "task definitions or workload settings changed: regenerate the baseline"
            if hashes
            else "a real regression, or rerun with the same seed to confirm"
        )
        raise RZeroError(f"{len(failed)} of {len(checks)} checks failed: {what}{more}; {hint}")
    print(f"all {len(checks)} checks passed (z = {z:g})", file=sys.stderr)


def checks_as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
