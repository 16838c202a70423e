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
