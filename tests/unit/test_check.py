"""`rzero-bench check`: passes on the real baseline, fails on a doctored one, tolerance = z * SE of the difference."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rzero_bench.errors import RZeroError, UserError  # noqa: E402
from rzero_bench.report.check import check_command, run_checks, tolerance  # noqa: E402

DEMO = ROOT / "tests" / "fixtures" / "runs" / "demo"


def _baseline(tmp: Path) -> Path:
    base = tmp / "baseline"
    shutil.copytree(DEMO / "results", base)
    return base


def _edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_tolerance_formula() -> None:
    assert tolerance(0.03, 0.04, 2.0) == pytest.approx(2 * 0.05)
    assert tolerance(0.0, 0.0, 3.0) == 0.0


def test_identical_results_pass(tmp_path: Path) -> None:
    checks = run_checks(DEMO, _baseline(tmp_path))
    assert checks and all(c.status == "pass" for c in checks)
    assert {c.iteration for c in checks} == {"iter_0", "iter_1", "iter_2"}
    assert {(c.task, c.metric) for c in checks if c.iteration == "iter_0"} >= {
        ("gsm8k", "acc"),
        ("math500", "mean@4"),
        ("math500", "pass@4"),
        ("overall", "suite"),
    }
    check_command(DEMO, _baseline(tmp_path / "again"))  # no exception


def test_doctored_baseline_fails(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    f = base / "iter_2" / "gsm8k.json"
    orig = json.loads(f.read_text())["metrics"]["acc"]
    se = orig["stderr"]
    tol = 3 * math.sqrt(2) * se

    # a baseline higher by slightly less than the tolerance still passes ...
    _edit(f, lambda d: d["metrics"]["acc"].update(value=orig["value"] + 0.95 * tol))
    assert all(c.status == "pass" for c in run_checks(DEMO, base) if c.task == "gsm8k")
    # ... and by slightly more fails
    _edit(f, lambda d: d["metrics"]["acc"].update(value=orig["value"] + 1.05 * tol))
    failed = [c for c in run_checks(DEMO, base) if c.failed]
    assert [(c.iteration, c.task, c.metric) for c in failed] == [("iter_2", "gsm8k", "acc")]
    assert failed[0].tolerance == pytest.approx(tol)
    with pytest.raises(RZeroError) as e:
        check_command(DEMO, base)
    assert e.value.exit_code == 1 and "iter_2/gsm8k/acc: fail" in str(e.value)
    # a larger z tolerates it
    check_command(DEMO, base, z=4.0)


def test_suite_drop_detected_when_no_single_task_fails(tmp_path: Path) -> None:
    # each math task's baseline is raised by 90 % of its own tolerance: no task fails, but the
    # Math avg (whose standard error shrinks like 1/t) drops by more than its tolerance
    base = _baseline(tmp_path)
    for t, metric in (("gsm8k", "acc"), ("math500", "mean@4")):

        def bump(d: dict, metric: str = metric) -> None:
            m = d["metrics"][metric]
            m["value"] += 0.9 * tolerance(m["stderr"], m["stderr"], 3.0)

        _edit(base / "iter_1" / f"{t}.json", bump)
    failed = {(c.task, c.metric) for c in run_checks(DEMO, base) if c.failed}
    assert failed == {("math_avg", "suite")}


def test_hash_change_and_missing_task_fail(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    _edit(base / "iter_0" / "mmlu_pro.json", lambda d: d.update(task_hash="other"))
    shutil.copy(base / "iter_0" / "gsm8k.json", base / "iter_0" / "bbeh.json")
    _edit(base / "iter_0" / "bbeh.json", lambda d: d.update(task="bbeh"))
    statuses = {(c.task, c.status) for c in run_checks(DEMO, base) if c.failed}
    assert statuses == {("mmlu_pro", "hash-mismatch"), ("bbeh", "missing")}
    with pytest.raises(RZeroError, match="regenerate the baseline"):
        check_command(DEMO, base)


def test_flat_baseline_compares_last_iteration(tmp_path: Path) -> None:
    checks = run_checks(DEMO, DEMO / "results" / "iter_2")
    assert all(c.status == "pass" for c in checks) and {c.iteration for c in checks} == {"demo/iter_2"}
    # the base model's results as a baseline for the last iteration: iteration 2 is better, passes
    assert all(c.status == "pass" for c in run_checks(DEMO, DEMO / "results" / "iter_0"))
    # and the reverse direction (iteration 2 as the baseline of the base model) fails on gsm8k
    failed = {
        c.task for c in run_checks(DEMO / "results" / "iter_0", DEMO / "results" / "iter_2") if c.failed
    }
    assert "gsm8k" in failed


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        run_checks(DEMO, tmp_path / "missing")
    with pytest.raises(UserError):
        run_checks(DEMO, DEMO, z=0)


def test_cli_exit_codes(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    run = [sys.executable, "-m", "rzero_bench.cli", "check", str(DEMO), "--baseline", str(base)]
    assert subprocess.run(run, capture_output=True, text=True, cwd=ROOT).returncode == 0
    _edit(base / "iter_1" / "gsm8k.json", lambda d: d["metrics"]["acc"].update(value=0.99))
    p = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1].startswith("error: ")
    p = subprocess.run(
        run[:4] + ["--baseline", str(tmp_path / "nope")], capture_output=True, text=True, cwd=ROOT
    )
    assert p.returncode == 2


# ----------------------------------------------------------------------------- measured baselines
from rzero_bench.report.check import (  # noqa: E402
    baseline_tolerance,
    build_baseline,
    proportion_se,
    read_baseline,
    write_baseline,
)

CONFIG = {
    "name": "ci-micro",
    "model": "micro:s",
    "seed": 0,
    "iterations": 1,
    "solver": {"lr": 5e-5, "max_steps": 80},
    "controls": {"shuffle_labels": False},
    "layout": {"cpu_threads": 1},
}


def _micro_run(
    root: Path,
    seed: int,
    levels1: dict[str, int],
    *,
    la: tuple[int, int] = (60, 100),
    kept: int = 50,
    config: dict | None = None,
    task_hash: str = "h1",
) -> Path:
    """A finished run on 5 levels x 200 items: base scores fixed, iteration-1 scores given (correct per level)."""
    run = root / f"s{seed}"
    cfg = json.loads(json.dumps(config or CONFIG))
    cfg["seed"] = seed
    (run / "iter_1").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"config": cfg, "config_hash": "x", "stages": {}}))
    base = {"1": 190, "2": 60, "3": 20, "4": 10, "5": 5}
    for k, lv in ((0, base), (1, levels1)):
        d = run / "results" / f"iter_{k}"
        d.mkdir(parents=True)
        subtasks = {name: {"acc": {"value": c / 200, "stderr": 0.0, "n": 200}} for name, c in lv.items()}
        total = sum(lv.values()) / 1000
        (d / "micro_arith.json").write_text(
            json.dumps(
                {
                    "task": "micro_arith",
                    "task_hash": task_hash,
                    "model": "/x/models/micro-s-s0-abc" if k == 0 else "iter",
                    "metrics": {"acc": {"value": total, "stderr": 0.0, "n": 1000}},
                    "subtasks": subtasks,
                }
            )
        )
    (run / "iter_1" / "label_accuracy.json").write_text(json.dumps({"accuracy": la[0] / la[1], "n": la[1]}))
    (run / "iter_1" / "filter.json").write_text(json.dumps({"generated": 100, "kept": kept, "drops": {}}))
    return run


SEEDS = {
    1: {"1": 190, "2": 170, "3": 150, "4": 40, "5": 20},
    2: {"1": 188, "2": 176, "3": 130, "4": 44, "5": 22},
    3: {"1": 192, "2": 168, "3": 170, "4": 36, "5": 18},
}


def _measured(tmp: Path) -> Path:
    runs = [_micro_run(tmp / "runs", s, lv, la=(58 + s, 100)) for s, lv in SEEDS.items()]
    return write_baseline(runs, tmp / "baseline", method="test").parent


def test_measured_baseline_records_mean_and_sample_spread(tmp_path: Path) -> None:
    data = read_baseline(_measured(tmp_path))
    assert data is not None and data["seeds"] == [1, 2, 3] and "seed" not in data["config"]
    l3 = data["iterations"]["iter_1"]["micro_arith L3"]
    # L3 after the iteration: 0.75, 0.65, 0.85 -> mean 0.75, sample sd 0.1
    assert l3["value"] == pytest.approx(0.75) and l3["spread"] == pytest.approx(0.1) and l3["n"] == 200
    assert l3["per_seed"] == {"1": 0.75, "2": 0.65, "3": 0.85}
    # the base is the same in every run: no spread
    assert data["iterations"]["iter_0"]["micro_arith L3"]["spread"] == 0.0
    la = data["iterations"]["iter_1"]["label_acc"]
    assert la["value"] == pytest.approx(0.60) and la["spread"] == pytest.approx(0.01) and la["n"] == 100
    assert data["iterations"]["iter_1"]["yield"]["value"] == pytest.approx(0.5)
    assert "label_acc" not in data["iterations"]["iter_0"]


def test_baseline_tolerance_formula() -> None:
    # Agresti-Coull: p = 0.75, n = 200 -> q = 152/204
    q = 152 / 204
    assert proportion_se(0.75, 200) == pytest.approx(math.sqrt(q * (1 - q) / 204))
    assert proportion_se(1.0, 200) > 0 and proportion_se(0.0, 200) > 0
    se = proportion_se(0.75, 200)
    assert baseline_tolerance(0.75, 200, 0.75, 200, 0.1, 3, 3.0) == pytest.approx(
        3 * math.sqrt(2 * se**2 + 0.01 * (1 + 1 / 3))
    )


def test_measured_baseline_passes_an_honest_run_and_fails_drops_beyond_tolerance(tmp_path: Path) -> None:
    base = _measured(tmp_path)
    honest = _micro_run(tmp_path / "fresh", 0, {"1": 190, "2": 172, "3": 150, "4": 40, "5": 20})
    checks = run_checks(honest, base)
    assert checks and not [c for c in checks if c.failed]
    assert {(c.iteration, c.task, c.metric) for c in checks} >= {
        ("iter_0", "micro_arith", "L1"),
        ("iter_1", "micro_arith", "L5"),
        ("iter_1", "micro_arith", "all"),
        ("iter_1", "label_acc", "all"),
        ("iter_1", "yield", "all"),
    }
    tol = next(c.tolerance for c in checks if (c.iteration, c.metric) == ("iter_1", "L3"))
    assert tol == pytest.approx(baseline_tolerance(0.75, 200, 0.75, 200, 0.1, 3, 3.0))
    # L3 just inside the tolerance passes, just outside fails (and only that cell)
    inside = int(200 * (0.75 - 0.95 * tol))
    outside = int(200 * (0.75 - 1.05 * tol))
    for n3, want in ((inside, set()), (outside, {("iter_1", "micro_arith", "L3")})):
        run = _micro_run(tmp_path / f"l3-{n3}", 0, {"1": 190, "2": 172, "3": n3, "4": 40, "5": 20})
        assert {(c.iteration, c.task, c.metric) for c in run_checks(run, base) if c.failed} == want


def test_run_to_run_spread_widens_the_tolerance(tmp_path: Path) -> None:
    # seeds that agree exactly give a tolerance from item standard errors alone; the measured
    # spread of SEEDS (L3: sd 0.1) lets an honest run 15 points below the mean pass
    same = [_micro_run(tmp_path / "same", s, SEEDS[1]) for s in (1, 2, 3)]
    tight = write_baseline(same, tmp_path / "tight").parent
    low = _micro_run(tmp_path / "low", 0, {"1": 190, "2": 170, "3": 120, "4": 40, "5": 20})
    assert ("iter_1", "L3") in {(c.iteration, c.metric) for c in run_checks(low, tight) if c.failed}
    assert not [c for c in run_checks(low, _measured(tmp_path)) if c.failed]


def test_measured_baseline_fails_on_a_loop_that_does_not_learn(tmp_path: Path) -> None:
    base = _measured(tmp_path)
    flat = _micro_run(tmp_path / "lr0", 0, {"1": 190, "2": 60, "3": 20, "4": 10, "5": 5})
    failed = {(c.iteration, c.metric) for c in run_checks(flat, base) if c.failed}
    assert {("iter_1", "all"), ("iter_1", "L2"), ("iter_1", "L3"), ("iter_1", "L4")} <= failed
    assert not {f for f in failed if f[0] == "iter_0"}
    with pytest.raises(RZeroError, match="checks failed"):
        check_command(flat, base)


def test_measured_baseline_workload_changes(tmp_path: Path) -> None:
    base = _measured(tmp_path)
    ok = SEEDS[1]
    # seed, controls, layout and model may differ; a workload setting may not
    free = {
        **CONFIG,
        "model": "/abs/micro-s-s0-abc",
        "controls": {"shuffle_labels": True},
        "layout": {"cpu_threads": 2},
    }
    assert not [c for c in run_checks(_micro_run(tmp_path / "free", 0, ok, config=free), base) if c.failed]
    other = {**CONFIG, "solver": {"lr": 0.0, "max_steps": 80}}
    failed = [c for c in run_checks(_micro_run(tmp_path / "lr", 0, ok, config=other), base) if c.failed]
    assert [(c.task, c.status) for c in failed] == [("config", "config-mismatch")]
    assert "solver.lr" in (failed[0].note or "")
    failed = [c for c in run_checks(_micro_run(tmp_path / "h", 0, ok, task_hash="h2"), base) if c.failed]
    assert [(c.task, c.status) for c in failed] == [("micro_arith", "hash-mismatch")]
    with pytest.raises(RZeroError, match="regenerate the baseline"):
        check_command(_micro_run(tmp_path / "h3", 0, ok, task_hash="h3"), base)


def test_build_baseline_refuses_bad_inputs(tmp_path: Path) -> None:
    a = _micro_run(tmp_path / "a", 1, SEEDS[1])
    with pytest.raises(UserError, match="at least 2 runs"):
        build_baseline([a])
    with pytest.raises(UserError, match="distinct seeds"):
        build_baseline([a, _micro_run(tmp_path / "b", 1, SEEDS[2])])
    other = {**CONFIG, "solver": {"lr": 1e-4, "max_steps": 80}}
    with pytest.raises(UserError, match="not the same workload"):
        build_baseline([a, _micro_run(tmp_path / "c", 2, SEEDS[2], config=other)])
    with pytest.raises(UserError, match="no manifest"):
        build_baseline([a, tmp_path / "a" / "results"])
