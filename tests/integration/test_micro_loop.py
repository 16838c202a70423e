"""The micro R-Zero loop must raise solver accuracy, shuffled pseudo-labels must not, and the
regression check must tell the two apart.

One run pair serves every test here and ``.ci/run``'s regression check (``rzero_bench/ci.py``):
``rzero-bench run --preset ci-micro`` (the micro preset, one iteration, 4 challenger GRPO steps,
400 candidate questions, 80 solver GRPO steps; the same pipeline code as every run) on the default
``micro:s`` base, and the same run with ``controls.shuffle_labels=true``, in parallel with one torch
thread each, left in ``runs/ci-micro`` and ``runs/ci-micro-shuffled`` (``$RZERO_CI_RUNS`` moves
them). A finished pair of the current preset is reused (the pipeline resumes).

Assertions, on the 1,000 held-out micro_arith items (200 per level, greedy), with paired-bootstrap
95% CIs over items:

- the base has self-consistency headroom (maj@8 - greedy >= 0.2 on some level);
- the real loop gains: CI of accuracy(iter_1) - accuracy(iter_0) above 0;
- the shuffled-label control does not gain: the lower end of its own CI is <= 0;
- and the real loop beats it: CI of accuracy(real iter_1) - accuracy(shuffled iter_1) above 0.
- ``rzero-bench check`` against ``results/baselines/micro`` (measured from other seeds) passes on
  the real run (an honest rerun with a seed the baseline does not contain), and fails on each
  planted regression: the shuffled-label run, and a solver that does not learn. The latter is
  built from the real run with ``results/iter_1`` replaced by ``results/iter_0``: exactly what
  ``solver.lr=0`` produces (AdamW with lr 0 leaves every weight, decay included, unchanged, so
  the greedy answers of iteration 1 are the base's), at no extra run.

Budget, measured on a fresh clone (2 idle cores): the base (9.5 nominal minutes of pretraining,
17 actual minutes at the 7.2k tokens/s these cores reach; cached in ``$RZERO_HOME`` and shared
with the other slow tests) plus the pair, ~20 minutes together; the check tests read the finished
pair in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNS = Path(os.environ.get("RZERO_CI_RUNS") or REPO / "runs")
BASELINE = REPO / "results" / "baselines" / "micro"
# The base must leave room for self-consistency: maj@8 clearly above greedy on some level.
BASE_CHECK_MARGIN = 0.2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def ci_pair() -> tuple[Path, Path]:
    """The CI run pair (real, shuffled), run or resumed once for this module."""
    os.environ.setdefault("RZERO_HOME", str(REPO / ".rzero_home"))
    from rzero_bench.ci import base_model_dir, ci_run_dirs, run_pair
    from rzero_bench.micro.pretrain import read_meta

    base = base_model_dir(0)  # built once, before the two runs race for it
    levels = read_meta(base)["eval"]["levels"]
    headroom = {lv: row["maj@8"] - row["greedy"] for lv, row in levels.items()}
    assert max(headroom.values()) >= BASE_CHECK_MARGIN, f"base has no self-consistency headroom: {levels}"
    results = run_pair(RUNS, cwd=REPO, log_dir=RUNS / "logs")
    for name, f in results.items():
        print(f"{name}: exit {f.returncode}, wall {f.wall_s:.0f} s, cpu {f.cpu_s:.0f} s")
        assert f.returncode == 0, f"{name} run failed:\n{f.tail}"
    return ci_run_dirs(RUNS)


def _item_scores(run_dir: Path, k: int) -> dict[str, float]:
    path = run_dir / "results" / f"iter_{k}" / "micro_arith.samples.jsonl"
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        c = r["correct"]
        out[r["doc_id"]] = float(sum(c) / len(c)) if isinstance(c, list) else float(c)
    return out


def _paired(before: dict[str, float], after: dict[str, float]):  # type: ignore[no-untyped-def]
    from rzero_bench.report.stats import paired_bootstrap

    keys = sorted(before)
    assert keys == sorted(after), "iterations were scored on different items"
    return paired_bootstrap([before[k] for k in keys], [after[k] for k in keys], n_boot=4000, seed=0)


def test_micro_loop_gains_and_shuffled_labels_do_not(ci_pair: tuple[Path, Path]) -> None:
    real, shuffled = ci_pair
    b_real, a_real = _item_scores(real, 0), _item_scores(real, 1)
    b_shuf, a_shuf = _item_scores(shuffled, 0), _item_scores(shuffled, 1)
    assert b_real == b_shuf, "both runs start from the same base and must score it identically"
    gain = _paired(b_real, a_real)
    gain_shuf = _paired(b_shuf, a_shuf)
    real_vs_shuf = _paired(a_shuf, a_real)
    la = json.loads((real / "iter_1" / "label_accuracy.json").read_text())["overall"]["accuracy"]
    summary = (
        f"label acc {la:.3f}; gain {gain.delta:+.3f} [{gain.lo:+.3f},{gain.hi:+.3f}]; "
        f"shuffled {gain_shuf.delta:+.3f} [{gain_shuf.lo:+.3f},{gain_shuf.hi:+.3f}]; "
        f"real-shuffled {real_vs_shuf.delta:+.3f} [{real_vs_shuf.lo:+.3f},{real_vs_shuf.hi:+.3f}]"
    )
    print(summary)

    assert gain.lo > 0, f"the micro loop did not raise accuracy: {summary}"
    assert gain_shuf.lo <= 0, f"shuffled pseudo-labels gained: {summary}"
    assert real_vs_shuf.lo > 0, f"the real loop did not beat shuffled pseudo-labels: {summary}"


def _check(run_dir: Path):  # type: ignore[no-untyped-def]
    from rzero_bench.report.check import run_checks

    return run_checks(run_dir, BASELINE)


def test_check_passes_on_an_honest_run_with_another_seed(ci_pair: tuple[Path, Path]) -> None:
    from rzero_bench.ci import CI_SEED
    from rzero_bench.report.check import check_command, read_baseline

    real, _ = ci_pair
    baseline = read_baseline(BASELINE)
    assert baseline is not None and CI_SEED not in baseline["seeds"], (
        "the CI seed must not be a baseline seed"
    )
    checks = _check(real)
    failed = [c for c in checks if c.failed]
    assert not failed, failed
    # every level at the base and after the iteration, the label accuracy and the yield were compared
    compared = {(c.iteration, c.metric) for c in checks if c.tolerance is not None}
    assert {("iter_0", "L3"), ("iter_1", "L3"), ("iter_0", "all"), ("iter_1", "all")} <= compared
    assert {c.task for c in checks if c.iteration == "iter_1"} >= {"micro_arith", "label_acc", "yield"}
    check_command(real, BASELINE)  # exit 0


def test_check_fails_on_shuffled_pseudo_labels(ci_pair: tuple[Path, Path]) -> None:
    from rzero_bench.errors import RZeroError
    from rzero_bench.report.check import check_command

    _, shuffled = ci_pair
    failed = [c for c in _check(shuffled) if c.status == "fail"]
    assert ("iter_1", "micro_arith", "all") in {(c.iteration, c.task, c.metric) for c in failed}, failed
    assert all(c.iteration != "iter_0" for c in failed), "the base is shared: iteration 0 must still pass"
    with pytest.raises(RZeroError):
        check_command(shuffled, BASELINE)


def test_check_fails_when_the_solver_does_not_learn(ci_pair: tuple[Path, Path], tmp_path: Path) -> None:
    from rzero_bench.errors import RZeroError
    from rzero_bench.report.check import check_command

    real, _ = ci_pair
    planted = tmp_path / "solver-lr-0"
    (planted / "iter_1").mkdir(parents=True)
    shutil.copy(real / "manifest.json", planted / "manifest.json")
    for name in ("label_accuracy.json", "filter.json"):
        shutil.copy(real / "iter_1" / name, planted / "iter_1" / name)
    shutil.copytree(real / "results" / "iter_0", planted / "results" / "iter_0")
    shutil.copytree(real / "results" / "iter_0", planted / "results" / "iter_1")
    failed = [c for c in _check(planted) if c.status == "fail"]
    assert ("iter_1", "micro_arith", "all") in {(c.iteration, c.task, c.metric) for c in failed}, failed
    # label accuracy and yield do not depend on the solver's update: they pass
    assert not [c for c in failed if c.task in ("label_acc", "yield")]
    with pytest.raises(RZeroError):
        check_command(planted, BASELINE)
