"""The micro CI workload: one run pair shared by the loop test and the regression check.

CI pays for one micro run pair and checks it twice:

- ``rzero-bench run --preset ci-micro`` (``trainers/ci-micro.yaml``: the micro preset with one
  iteration, a short challenger GRPO, 400 candidate questions and 80 solver GRPO steps) on the
  default ``micro:s`` base (seed 0), in ``runs/ci-micro``;
- the same run with ``controls.shuffle_labels=true`` (the solver trains on shuffled pseudo-labels:
  the control that must not gain), in ``runs/ci-micro-shuffled``.

Both run in parallel, one torch thread each. ``tests/integration/test_micro_loop.py`` creates them
(or finds them finished: the pipeline resumes, a finished run costs nothing) and asserts the loop's
gain and the control's absence of gain, and that ``rzero-bench check`` fails on planted
regressions; ``.ci/run`` then checks ``runs/ci-micro`` against ``results/baselines/micro``.

The committed baseline is measured with :func:`measure`: the same workload on the same base with
other run seeds (``--model`` pins the seed-0 base, ``seed=<s>`` changes the challenger, the
sampling and the GRPO streams), summarized by :func:`rzero_bench.report.check.write_baseline`::

    python -m rzero_bench.ci pair                         # the CI pair, in runs/
    python -m rzero_bench.ci measure --seeds 1 2 3        # baseline runs + baseline.json
    python -m rzero_bench.ci base-challenger --seeds 1 2 3  # + Base Challenger runs, comparison.json

:func:`base_challenger` adds the paper's "Base Challenger" baseline on the same seeds (the solver
trains on the untrained challenger's questions) and writes the paired comparison
(:mod:`rzero_bench.report.base_challenger`) that the leaderboard shows beside the paper's rows.

Only subprocesses and the run store are used here; no torch import (the runs import it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PRESET = "ci-micro"
CI_SEED = 0
BASELINE_SEEDS: tuple[int, ...] = (1, 2, 3)
BASELINE_DIR = Path("results") / "baselines" / "micro"
COMPARISON_DIR = Path("results") / "comparisons" / "ci-micro-base-challenger"
SHUFFLED = ("controls.shuffle_labels=true",)
BASE_CHALLENGER = ("baseline=base-challenger",)

__all__ = [
    "BASELINE_DIR",
    "BASELINE_SEEDS",
    "CI_SEED",
    "Finished",
    "PRESET",
    "base_challenger",
    "base_model_dir",
    "ci_run_dirs",
    "clear_if_stale",
    "measure",
    "run_command",
    "run_parallel",
    "run_pair",
]


def ci_run_dirs(root: Path) -> tuple[Path, Path]:
    """``(root/ci-micro, root/ci-micro-shuffled)``: where the CI pair lives."""
    return Path(root) / PRESET, Path(root) / f"{PRESET}-shuffled"


def run_command(
    run_dir: Path, *, seed: int | None = None, model: str | None = None, overrides: Sequence[str] = ()
) -> list[str]:
    """The ``rzero-bench run --preset ci-micro`` command line for one run."""
    cmd = [sys.executable, "-m", "rzero_bench.cli", "run", "--preset", PRESET, "--run-dir", str(run_dir)]
    if model is not None:
        cmd += ["--model", model]
    sets = ([f"seed={seed}"] if seed is not None else []) + list(overrides)
    for s in sets:
        cmd += ["--set", s]
    return cmd


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return env


@dataclass(frozen=True)
class Finished:
    """One finished command: exit code, the tail of its output, wall and CPU seconds.

    ``cpu_s`` is the process's user + system time (its reaped children included): on a shared,
    loaded machine it estimates the wall time one unloaded core would need.
    """

    returncode: int
    tail: str
    wall_s: float
    cpu_s: float


def run_parallel(
    jobs: Mapping[str, list[str]], *, cwd: Path, log_dir: Path | None = None
) -> dict[str, Finished]:
    """Start every command at once and wait for all of them (output to ``log_dir/<name>.log``)."""
    import tempfile

    logs = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="rzero-ci-"))
    logs.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, cmd in jobs.items():
        with open(logs / f"{name}.log", "wb") as out:
            procs[name] = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    done: dict[str, Finished] = {}
    while len(done) < len(procs):
        for name, p in procs.items():
            if name in done:
                continue
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == 0:
                continue
            p.returncode = os.waitstatus_to_exitcode(status)
            text = (logs / f"{name}.log").read_text(errors="replace")
            cpu = usage.ru_utime + usage.ru_stime
            done[name] = Finished(p.returncode, text[-4000:], round(time.monotonic() - t0, 1), round(cpu, 1))
        time.sleep(0.5)
    return {name: done[name] for name in jobs}


def base_model_dir(seed: int = 0, size: str = "s") -> Path:
    """The cache directory of the default micro base (built on first use, ~10 nominal minutes)."""
    from rzero_bench.micro.pretrain import pretrain_micro

    return Path(pretrain_micro(size, seed))


def clear_if_stale(run_dir: Path, overrides: Sequence[str] = ()) -> bool:
    """Remove ``run_dir`` when its manifest records another config than the preset gives now.

    A finished run of the current workload is kept (rerunning it costs nothing); one left by an
    older preset would be refused by ``rzero-bench run``. Returns True when it was removed.
    """
    import shutil

    from rzero_bench.config import config_hash, load_config
    from rzero_bench.store import read_json

    manifest = Path(run_dir) / "manifest.json"
    if not manifest.exists():
        return False
    want = config_hash(load_config(preset=PRESET, overrides=list(overrides)))
    if read_json(manifest).get("config_hash") == want:
        return False
    shutil.rmtree(run_dir)
    return True


def run_pair(root: Path, *, cwd: Path, log_dir: Path | None = None) -> dict[str, Finished]:
    """Run (or resume) the CI pair under ``root``: the real loop and the shuffled-label control."""
    real, shuffled = ci_run_dirs(root)
    clear_if_stale(real)
    clear_if_stale(shuffled, SHUFFLED)
    jobs = {"real": run_command(real), "shuffled": run_command(shuffled, overrides=SHUFFLED)}
    return run_parallel(jobs, cwd=cwd, log_dir=log_dir)


def _require_ok(res: Mapping[str, Finished]) -> None:
    """Print each job's exit, wall and CPU time; stop with the tail of the first one that failed."""
    for name, f in res.items():
        print(f"{name}: exit {f.returncode}, wall {f.wall_s:.0f} s, cpu {f.cpu_s:.0f} s", file=sys.stderr)
        if f.returncode != 0:
            raise SystemExit(f"{name} failed (exit {f.returncode}):\n{f.tail}")


def measure(seeds: Sequence[int], root: Path, out: Path, *, cwd: Path, log_dir: Path | None = None) -> Path:
    """Run the CI workload with each seed on the seed-0 base (in parallel) and write the baseline."""
    from rzero_bench.report.check import write_baseline

    base = base_model_dir(0)
    dirs = {f"seed{s}": Path(root) / f"{PRESET}-seed{s}" for s in seeds}
    jobs = {
        name: run_command(d, seed=s, model=str(base))
        for (name, d), s in zip(dirs.items(), seeds, strict=True)
    }
    _require_ok(run_parallel(jobs, cwd=cwd, log_dir=log_dir))
    method = (
        f"rzero-bench run --preset {PRESET} --model <micro:s seed-0 base> --set seed=<s>, seeds "
        f"{', '.join(map(str, seeds))}, run in parallel with 1 torch thread each; value = mean over the "
        "seeds, spread = their sample standard deviation (see README.md here)"
    )
    return write_baseline(list(dirs.values()), out, method=method)


def base_challenger(
    seeds: Sequence[int], root: Path, out: Path, *, cwd: Path, log_dir: Path | None = None
) -> Path:
    """Base Challenger runs of the CI workload (and the R-Zero runs of :func:`measure`, resumed or
    created) with each seed on the seed-0 base, in parallel; writes ``out/comparison.json``."""
    from rzero_bench.report.base_challenger import write_comparison

    base = base_model_dir(0)
    rz = {s: Path(root) / f"{PRESET}-seed{s}" for s in seeds}
    bc = {s: Path(root) / f"{PRESET}-bc-seed{s}" for s in seeds}
    jobs = {f"seed{s}": run_command(rz[s], seed=s, model=str(base)) for s in seeds}
    jobs |= {f"bc-seed{s}": run_command(bc[s], seed=s, model=str(base), overrides=BASE_CHALLENGER) for s in seeds}
    _require_ok(run_parallel(jobs, cwd=cwd, log_dir=log_dir))
    method = (
        f"rzero-bench run --preset {PRESET} --model <micro:s seed-0 base> --set seed=<s> with and without "
        f"--baseline base-challenger, seeds {', '.join(map(str, seeds))} (python -m rzero_bench.ci base-challenger)."
    )
    return write_comparison([rz[s] for s in seeds], [bc[s] for s in seeds], out, method=method)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rzero_bench.ci", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pair", help="run (or resume) the CI pair")
    p.add_argument("--root", type=Path, default=Path("runs"))
    m = sub.add_parser("measure", help="run the workload with other seeds and write baseline.json")
    m.add_argument("--seeds", type=int, nargs="+", default=list(BASELINE_SEEDS))
    m.add_argument("--root", type=Path, default=Path("runs"))
    m.add_argument("--out", type=Path, default=BASELINE_DIR)
    b = sub.add_parser("base-challenger", help="Base Challenger runs on the same seeds + comparison.json")
    b.add_argument("--seeds", type=int, nargs="+", default=list(BASELINE_SEEDS))
    b.add_argument("--root", type=Path, default=Path("runs"))
    b.add_argument("--out", type=Path, default=COMPARISON_DIR)
    w = sub.add_parser("write", help="write baseline.json from finished runs")
    w.add_argument("runs", type=Path, nargs="+")
    w.add_argument("--out", type=Path, default=BASELINE_DIR)
    args = parser.parse_args(argv)
    cwd = Path.cwd()
    if args.cmd == "pair":
        for name, f in run_pair(args.root, cwd=cwd, log_dir=args.root / "logs").items():
            print(f"{name}: exit {f.returncode}, wall {f.wall_s:.0f} s, cpu {f.cpu_s:.0f} s", file=sys.stderr)
            if f.returncode != 0:
                raise SystemExit(f.tail)
    elif args.cmd == "measure":
        print(measure(args.seeds, args.root, args.out, cwd=cwd, log_dir=args.root / "logs"))
    elif args.cmd == "base-challenger":
        print(base_challenger(args.seeds, args.root, args.out, cwd=cwd, log_dir=args.root / "logs"))
    else:
        from rzero_bench.report.check import write_baseline

        print(
            write_baseline(
                args.runs, args.out, method="written from finished runs: " + ", ".join(map(str, args.runs))
            )
        )


if __name__ == "__main__":  # pragma: no cover
    main()
