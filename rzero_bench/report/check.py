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
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rzero_bench.errors import RZeroError, UserError
from rzero_bench.report.results import ResultSet, discover, suite_means

__all__ = ["Check", "compare_sets", "run_checks", "check_command"]


@dataclass(frozen=True)
class Check:
    """One compared metric."""

    iteration: str
    task: str
    metric: str
    baseline: float | None
    value: float | None
    tolerance: float | None
    status: str  # "pass" | "fail" | "missing" | "hash-mismatch"

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


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def check_command(run_dir: Path, baseline: Path, z: float = 3.0) -> None:
    """CLI: print every comparison; exit 1 (RZeroError) when any metric dropped beyond tolerance."""
    checks = run_checks(Path(run_dir), Path(baseline), z)
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"regression check: {run_dir} vs {baseline} (tolerance = {z:g} · SE of the difference)")
    for col in ("set", "task", "metric", "baseline %", "fresh %", "Δ", "tolerance", "status"):
        t.add_column(col, justify="left" if col in ("set", "task", "metric", "status") else "right")
    for c in checks:
        d = "–" if c.baseline is None or c.value is None else f"{100 * (c.value - c.baseline):+.2f}"
        t.add_row(
            c.iteration,
            c.task,
            c.metric,
            _fmt(c.baseline),
            _fmt(c.value),
            d,
            _fmt(c.tolerance),
            c.status if not c.failed else f"[bold red]{c.status}[/]",
        )
    Console(stderr=True).print(t)
    failed = [c for c in checks if c.failed]
    if failed:
        hashes = [c for c in failed if c.status == "hash-mismatch"]
        what = "; ".join(f"{c.iteration}/{c.task}/{c.metric}: {c.status}" for c in failed[:5])
        more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
        hint = (
            "task definitions changed: regenerate the baseline"
            if hashes
            else "a real regression, or rerun with the same seed to confirm"
        )
        raise RZeroError(f"{len(failed)} of {len(checks)} checks failed: {what}{more}; {hint}")
    print(f"all {len(checks)} checks passed (z = {z:g})", file=sys.stderr)


def checks_as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
