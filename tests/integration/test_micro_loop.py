"""The micro R-Zero loop must raise solver accuracy, and shuffled pseudo-labels must not.

A reduced ``rzero-bench run --preset micro`` (the same pipeline code as every run; only ``--set``
overrides): one iteration on the default ``micro:s`` base (9.5 nominal minutes of pretraining,
cached; its maj@8 is far above greedy on level 3, checked below), with a short challenger GRPO,
400 candidate questions and 80 solver GRPO steps. The same run with
``controls.shuffle_labels=true`` is the control. Both runs go in parallel (1 torch thread each).

Assertions, on the 1,000 held-out micro_arith items (200 per level, greedy):

- real loop: the lower end of the paired-bootstrap 95% CI of accuracy(iter_1) - accuracy(iter_0)
  is above 0;
- shuffled labels: either its own gain's CI reaches 0, or it is clearly worse than the real loop
  (the paired 95% CI of accuracy(real iter_1) - accuracy(shuffled iter_1) is above 0).

These fail when the algorithm breaks (labels that carry no information, a reward that does not
reach the solver), not only when the code crashes. Budget: <= ~12 minutes on 2 unloaded cores
with an empty model cache (pretraining ~9.5 min, then the two runs in parallel, ~2-3 min).
A smaller base does not work: ``micro:s@5`` (measured) has no headroom, maj@8 <= greedy on
every level (L2 0.23 vs 0.25, L3 0.07 vs 0.07), so there is nothing for self-consistency to find.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = "micro:s"
REDUCED = [
    "challenger.max_steps=4",
    "selfplay.num_questions=400",
    "solver.max_steps=80",
]
# The base must leave room for self-consistency: maj@8 clearly above greedy on some level.
BASE_CHECK_MARGIN = 0.2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("RZERO_HOME", str(REPO / ".rzero_home"))
    return env


def _cmd(run_dir: Path, *extra: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "rzero_bench.cli",
        "run",
        "--preset",
        "micro",
        "--model",
        MODEL,
        "-n",
        "1",
        "--run-dir",
        str(run_dir),
    ]
    for s in (*REDUCED, *extra):
        cmd += ["--set", s]
    return cmd


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


def test_micro_loop_gains_and_shuffled_labels_do_not(tmp_path: Path) -> None:
    env = _env()
    t0 = time.monotonic()
    # 1. the reduced base (cached across runs); built once, before the two runs race for it
    from rzero_bench.micro.pretrain import pretrain_micro, read_meta

    size, _, minutes = MODEL.split(":", 1)[1].partition("@")
    base = pretrain_micro(size, 0, float(minutes) if minutes else None, home=Path(env["RZERO_HOME"]))
    levels = read_meta(base)["eval"]["levels"]
    headroom = {lv: row["maj@8"] - row["greedy"] for lv, row in levels.items()}
    assert max(headroom.values()) >= BASE_CHECK_MARGIN, f"base has no self-consistency headroom: {levels}"
    t_base = time.monotonic() - t0

    # 2. the real loop and the shuffled-label control, in parallel
    real, shuffled = tmp_path / "real", tmp_path / "shuffled"
    procs = {
        "real": subprocess.Popen(
            _cmd(real), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ),
        "shuffled": subprocess.Popen(
            _cmd(shuffled, "controls.shuffle_labels=true"),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    }
    logs = {name: p.communicate()[0] for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} run failed:\n{logs[name][-4000:]}"
    t_runs = time.monotonic() - t0 - t_base

    b_real, a_real = _item_scores(real, 0), _item_scores(real, 1)
    b_shuf, a_shuf = _item_scores(shuffled, 0), _item_scores(shuffled, 1)
    assert b_real == b_shuf, "both runs start from the same base and must score it identically"
    gain = _paired(b_real, a_real)
    gain_shuf = _paired(b_shuf, a_shuf)
    real_vs_shuf = _paired(a_shuf, a_real)
    la = json.loads((real / "iter_1" / "label_accuracy.json").read_text())["overall"]["accuracy"]
    summary = (
        f"base {t_base:.0f}s, runs {t_runs:.0f}s; label acc {la:.3f}; "
        f"gain {gain.delta:+.3f} [{gain.lo:+.3f},{gain.hi:+.3f}]; "
        f"shuffled {gain_shuf.delta:+.3f} [{gain_shuf.lo:+.3f},{gain_shuf.hi:+.3f}]; "
        f"real-shuffled {real_vs_shuf.delta:+.3f} [{real_vs_shuf.lo:+.3f},{real_vs_shuf.hi:+.3f}]"
    )
    print(summary)

    assert gain.lo > 0, f"the micro loop did not raise accuracy: {summary}"
    assert gain_shuf.lo <= 0 or real_vs_shuf.lo > 0, (
        f"shuffled pseudo-labels gained like real ones: {summary}"
    )
