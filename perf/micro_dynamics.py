"""Micro R-Zero dynamics: the co-evolution loop per seed, with two controls that should break it.

For each seed (its own micro base, ``seed=<s>``) and each variant — the real loop, pseudo-labels
shuffled (``controls.shuffle_labels=true``) and the challenger's reward sign flipped
(``controls.flip_challenger_reward=true``) — this runs ``rzero-bench run --preset micro`` (the same
pipeline as every run) and prints per iteration:

- solver accuracy on ``micro_arith`` per level (greedy, 200 held-out items per level) with Wilson
  95% intervals, and the change against iteration 0 (the base) with a paired bootstrap 95% CI
  over items (per level and overall);
- pseudo-label accuracy against the exact-arith oracle (``iter_k/label_accuracy.json``);
- what the challenger asked: well-formed share, unique share, mean ``arith.difficulty`` of its
  questions and of the kept ones, the level mix, and the p-hat distribution of the solver's votes;
- filter counts and wall time per stage (from ``manifest.json``).

Run directories live under ``--root`` named by seed, variant and a hash of the resolved config
(iterations excluded), so a rerun reuses finished stages (the pipeline resumes) and a changed
preset starts fresh. Asking for more iterations than a finished directory has extends it (the
run's config hash leaves ``iterations`` out; ``_extend`` only keeps manifests written before that).

    .venv/bin/python perf/micro_dynamics.py                                  # 3 seeds x 3 variants x 3 iterations
    .venv/bin/python perf/micro_dynamics.py --seeds 0 --iterations 1         # the quick check
    .venv/bin/python perf/micro_dynamics.py --seeds 0 --controls none --set solver.max_steps=100
    .venv/bin/python perf/micro_dynamics.py --report-only                    # tables from what exists

Run it with ``RZERO_HOME`` set as for any run; the micro bases for new seeds are pretrained
(~10 nominal minutes each) on first use.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from rzero_bench.config import config_hash, load_config  # noqa: E402
from rzero_bench.micro import arith  # noqa: E402
from rzero_bench.report.stats import paired_bootstrap, wilson_interval  # noqa: E402

VARIANTS = {
    "real": [],
    "shuffled": ["controls.shuffle_labels=true"],
    "flipped": ["controls.flip_challenger_reward=true"],
}
LEVELS = ("1", "2", "3", "4", "5")
STAGE_ORDER = ("challenger", "questions", "votes", "filter", "solver", "label_acc", "eval")


# --------------------------------------------------------------------------- running
def _overrides(seed: int, variant: str, extra: list[str]) -> list[str]:
    return [f"seed={seed}", *VARIANTS[variant], *extra]


def run_dir_for(root: Path, seed: int, variant: str, extra: list[str]) -> Path:
    cfg = load_config(preset="micro", iterations=1, overrides=_overrides(seed, variant, extra))
    h = hashlib.sha256(config_hash(cfg).encode()).hexdigest()[:8]
    return root / f"s{seed}-{variant}-{h}"


def _extend(run_dir: Path, seed: int, variant: str, extra: list[str], iterations: int) -> None:
    """Let a finished run with fewer iterations continue (see the module docstring)."""
    mpath = run_dir / "manifest.json"
    if not mpath.exists():
        return
    m = json.loads(mpath.read_text())
    if m["config"].get("iterations", 0) >= iterations:
        return
    cfg = load_config(preset="micro", iterations=iterations, overrides=_overrides(seed, variant, extra))
    new = cfg.model_dump(mode="json")
    old = dict(m["config"])
    if old == new:
        return
    if {**old, "iterations": new["iterations"]} != new:
        raise SystemExit(f"{run_dir} holds a different config; remove it or use another --root")
    m["config"], m["config_hash"] = new, config_hash(cfg)
    m["finished"] = False
    tmp = mpath.with_suffix(".tmp")
    tmp.write_text(json.dumps(m, indent=2))
    tmp.replace(mpath)


def run(root: Path, seed: int, variant: str, extra: list[str], iterations: int) -> Path:
    rd = run_dir_for(root, seed, variant, extra)
    mpath = rd / "manifest.json"
    if mpath.exists():
        m = json.loads(mpath.read_text())
        if m.get("finished") and m["config"].get("iterations", 0) >= iterations:
            return rd  # already has what was asked for (a run is never shortened)
        iterations = max(iterations, m["config"].get("iterations", 0))
    _extend(rd, seed, variant, extra, iterations)
    cmd = [
        sys.executable,
        "-m",
        "rzero_bench.cli",
        "run",
        "--preset",
        "micro",
        "--run-dir",
        str(rd),
        "-n",
        str(iterations),
    ]
    for o in _overrides(seed, variant, extra):
        cmd += ["--set", o]
    t0 = time.perf_counter()
    log = rd.with_suffix(".log")
    rd.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        r = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, check=False)
    print(
        f"[run] seed {seed} {variant}: {time.perf_counter() - t0:.0f} s, exit {r.returncode}, log {log}",
        file=sys.stderr,
    )
    if r.returncode != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
    return rd


# --------------------------------------------------------------------------- reading
def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _samples(rd: Path, k: int) -> dict[str, tuple[str, float]] | None:
    rows = _jsonl(rd / "results" / f"iter_{k}" / "micro_arith.samples.jsonl")
    if not rows:
        return None
    out = {}
    for i, r in enumerate(rows):
        key = str(r.get("doc_id", r.get("id", i)))
        c = r["correct"]
        out[key] = (str(r.get("subtask")), float(statistics.fmean(c) if isinstance(c, list) else c))
    return out


def _cell(x: float, n: int) -> str:
    lo, hi = wilson_interval(round(x * n), n)
    return f"{x:.3f} [{lo:.2f},{hi:.2f}]"


def _delta(base: list[float], after: list[float]) -> str:
    ci = paired_bootstrap(base, after, n_boot=2000, seed=0)
    star = "*" if ci.lo > 0 else ("-" if ci.hi < 0 else "")
    return f"{ci.delta:+.3f} [{ci.lo:+.2f},{ci.hi:+.2f}]{star}"


def accuracy_table(rd: Path, iterations: int) -> list[str]:
    base = _samples(rd, 0)
    if base is None:
        return ["(no iteration 0 results yet)"]
    lines = [
        "| iter | "
        + " | ".join(f"L{lv} acc [95% CI]" for lv in LEVELS)
        + " | overall | Δ overall vs base [paired 95% CI] |",
        "|---|" + "---|" * (len(LEVELS) + 2),
    ]
    dlines = [
        "| iter | " + " | ".join(f"ΔL{lv} [paired 95% CI]" for lv in LEVELS) + " |",
        "|---|" + "---|" * len(LEVELS),
    ]
    for k in range(0, iterations + 1):
        s = _samples(rd, k)
        if s is None:
            continue
        keys = [key for key in base if key in s]
        cells = []
        dcells = []
        for lv in LEVELS:
            ks = [key for key in keys if base[key][0] == lv]
            acc = [s[key][1] for key in ks]
            cells.append(_cell(statistics.fmean(acc), len(acc)) if acc else "—")
            if k > 0 and ks:
                dcells.append(_delta([base[key][1] for key in ks], acc))
        overall = [s[key][1] for key in keys]
        d = _delta([base[key][1] for key in keys], overall) if k > 0 else ""
        lines.append(
            f"| {k} | " + " | ".join(cells) + f" | {_cell(statistics.fmean(overall), len(overall))} | {d} |"
        )
        if k > 0:
            dlines.append(f"| {k} | " + " | ".join(dcells) + " |")
    return lines + [""] + (dlines if len(dlines) > 2 else [])


def _phat_hist(values: list[float]) -> str:
    bins = Counter(min(int(v * 8 + 1e-9), 8) for v in values)
    return " ".join(f"{b}/8:{bins.get(b, 0)}" for b in range(1, 9))


def selfplay_table(rd: Path, iterations: int) -> list[str]:
    m = json.loads((rd / "manifest.json").read_text()) if (rd / "manifest.json").exists() else {"stages": {}}
    lines = [
        "| iter | label acc (oracle) | questions well-formed / unique | mean difficulty all → kept | "
        "levels of unique qs (d≤1.5/2/3/≥3.5) | kept / candidates | p̂ histogram (all votes) | mean challenger reward |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in range(1, iterations + 1):
        it = rd / f"iter_{k}"
        if not (it / "votes.jsonl").exists():
            continue
        qs = _jsonl(it / "questions.jsonl")
        votes = {v["question_id"]: v for v in _jsonl(it / "votes.jsonl")}
        ds = _jsonl(it / "solver_dataset.jsonl")
        f = json.loads((it / "filter.json").read_text()) if (it / "filter.json").exists() else {}
        la = (
            json.loads((it / "label_accuracy.json").read_text())
            if (it / "label_accuracy.json").exists()
            else {}
        )
        texts = [q["text"] for q in qs]
        uniq = sorted(set(texts))
        diffs = [d for d in (arith.difficulty(t) for t in uniq) if d is not None]
        kept_d = [d for d in (arith.difficulty(r["question"]) for r in ds) if d is not None]
        bands = Counter(
            "≤1.5" if d <= 1.5 else "2" if d <= 2.25 else "3" if d <= 3.25 else "≥3.5" for d in diffs
        )
        ph = [v["p_hat"] for v in votes.values() if v.get("p_hat") is not None]
        overall = la.get("overall", {})
        acc = overall.get("accuracy")
        acc_s = "—" if acc is None else f"{acc:.3f} (n={overall.get('n')})"
        kept_ok = [
            arith.solve(r["question"]) == r.get("label_unshuffled", r["label"])
            for r in ds
            if arith.solve(r["question"]) is not None
        ]
        if kept_ok:
            acc_s += f"; kept {statistics.fmean(kept_ok):.3f}"
        trained_ok = [
            arith.solve(r["question"]) == r["label"] for r in ds if arith.solve(r["question"]) is not None
        ]
        if trained_ok and any("label_unshuffled" in r for r in ds):
            acc_s += f"; as trained (shuffled) {statistics.fmean(trained_ok):.3f}"
        rewards = [r.get("reward") for r in _jsonl(it / "challenger_rewards.jsonl")]
        rewards = [r for r in rewards if isinstance(r, (int, float))]
        n_rew = len(rewards)
        rew = (
            f"{statistics.fmean(rewards[: max(1, n_rew // 10)]):.2f} → {statistics.fmean(rewards[-max(1, n_rew // 10) :]):.2f}"
            if rewards
            else "—"
        )
        gen = f.get("generated", len(qs))
        lines.append(
            f"| {k} | {acc_s} | "
            f"{len(qs)}/{gen} / {len(uniq)} | "
            f"{statistics.fmean(diffs) if diffs else float('nan'):.2f} → {statistics.fmean(kept_d) if kept_d else float('nan'):.2f} | "
            f"{bands.get('≤1.5', 0)}/{bands.get('2', 0)}/{bands.get('3', 0)}/{bands.get('≥3.5', 0)} | "
            f"{f.get('kept', len(ds))}/{f.get('candidates', '?')} {f.get('drops', {})} | {_phat_hist(ph)} | {rew} |"
        )
    lines.append("")
    lines.append("| iter | " + " | ".join(STAGE_ORDER) + " | total (s) |")
    lines.append("|---|" + "---|" * (len(STAGE_ORDER) + 1))
    for k in range(1, iterations + 1):
        st = [m["stages"].get(f"iter_{k}/{s}", {}) for s in STAGE_ORDER]
        if not any(x.get("wall_time_s") for x in st):
            continue
        times = [x.get("wall_time_s") for x in st]
        lines.append(
            f"| {k} | "
            + " | ".join("—" if t is None else f"{t:.0f}" for t in times)
            + f" | {sum(t or 0 for t in times):.0f} |"
        )
    e0 = m["stages"].get("iter_0/eval", {}).get("wall_time_s")
    if e0 is not None:
        lines.append(f"(iteration 0 eval: {e0:.0f} s)")
    return lines


def report(rd: Path, seed: int, variant: str, iterations: int) -> None:
    print(f"### seed {seed}, {variant}  ({rd})\n")
    print("\n".join(accuracy_table(rd, iterations)))
    print()
    print("\n".join(selfplay_table(rd, iterations)))
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated base/run seeds")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument(
        "--controls",
        default="shuffled,flipped",
        help="comma-separated controls to run besides the real loop: shuffled, flipped, none",
    )
    ap.add_argument(
        "--skip-real", action="store_true", help="only the controls (e.g. to run them in parallel)"
    )
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "micro_dynamics")
    ap.add_argument(
        "--set", dest="sets", action="append", default=[], help="extra config override (repeatable)"
    )
    ap.add_argument("--report-only", action="store_true", help="print tables from existing run directories")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    controls = [c.strip() for c in args.controls.split(",") if c.strip() and c.strip() != "none"]
    for c in controls:
        if c not in VARIANTS:
            raise SystemExit(f"unknown control {c!r}; expected shuffled, flipped or none")
    variants = ([] if args.skip_real else ["real"]) + controls
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"# micro dynamics: seeds {seeds}, variants {variants}, {args.iterations} iteration(s), "
        f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {os.cpu_count()} cores, extra {args.sets}\n"
    )
    print(
        "Accuracy cells: greedy accuracy [Wilson 95%]; Δ cells: change vs iteration 0 (the base) with a paired "
        "bootstrap 95% CI over the same items; * = CI above 0, - = CI below 0.\n"
    )
    for seed in seeds:
        for variant in variants:
            if args.report_only:
                rd = run_dir_for(args.root, seed, variant, args.sets)
            else:
                rd = run(args.root, seed, variant, args.sets, args.iterations)
            report(rd, seed, variant, args.iterations)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"load at end: {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")


if __name__ == "__main__":
    main()
