"""Micro R-Zero dynamics: solver accuracy per level over iterations, for several seeds and controls.

Phase 1 (this file now): pretrain (cached) the micro base model per seed and print its held-out
micro_arith accuracy per level, greedy and maj@m, with Wilson 95% intervals, plus the pretraining
cost from ``micro_meta.json``. This is iteration 0 of the table below and the check the notes ask
for before any GRPO: maj@m clearly above greedy on the frontier levels (L2-L3).

Phase 2 (once ``rzero-bench run --preset micro`` exists): for each seed, run the loop for
``--iterations`` and print per iteration: solver accuracy per level with 95% CIs, pseudo-label
accuracy against the exact-arith oracle, mean difficulty of the challenger's questions
(:func:`rzero_bench.micro.arith.difficulty`), the p-hat distribution and wall time per stage; plus
two controls: pseudo-labels shuffled, and the challenger's reward sign flipped.

    .venv/bin/python perf/micro_dynamics.py                       # seeds 0,1,2, 200 items per level
    .venv/bin/python perf/micro_dynamics.py --seeds 0 --per-level 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from rzero_bench.micro import arith  # noqa: E402
from rzero_bench.micro.pretrain import evaluate_levels, pretrain_micro, read_meta  # noqa: E402
from rzero_bench.report.stats import wilson_interval  # noqa: E402

CONTROLS = ("shuffled-labels", "flipped-challenger-reward")


def _cell(p: float, n: int) -> str:
    lo, hi = wilson_interval(round(p * n), n)
    return f"{p:.3f} [{lo:.2f},{hi:.2f}]"


def _pretrain_wall(meta: dict[str, Any]) -> float:
    """Wall time of the whole recipe (phase 1 counted even when this build reused its cache)."""
    phases = meta.get("phases", {})
    return float(sum(p["wall_time_s"] for p in phases.values()) + meta.get("eval_wall_time_s", 0.0))


def base_rows(size: str, seed: int, per_level: int, samples: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pretrain (cached) the base for ``seed`` and measure it on the held-out set."""
    path = pretrain_micro(size, seed)
    docs = arith.micro_arith_docs(per_level=per_level)
    levels = evaluate_levels(path, docs, samples=samples, temperature=1.0, seed=seed)
    return read_meta(path), levels


def run_loop(size: str, seed: int, iterations: int, control: str | None) -> list[dict[str, Any]]:
    """Iterations 1..N of ``rzero-bench run --preset micro`` (pending: needs the micro preset)."""
    from rzero_bench.config import preset_names

    if "micro" not in preset_names():
        raise SystemExit("the micro preset is not in rzero_bench.config yet; run with --base-only")
    raise SystemExit(
        "the loop part of perf/micro_dynamics.py lands with the micro preset; run with --base-only"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", default="s")
    ap.add_argument("--per-level", type=int, default=200)
    ap.add_argument("--samples", type=int, default=8, help="m for maj@m at temperature 1.0")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--base-only", action="store_true", help="only iteration 0 (the pretrained base)")
    args = ap.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# micro dynamics: size {args.size}, {args.per_level} items per level, load {load:.1f} on {os.cpu_count()} cores\n"
    )
    for seed in args.seeds:
        t0 = time.perf_counter()
        meta, levels = base_rows(args.size, seed, args.per_level, args.samples)
        k = args.samples
        print(
            f"## seed {seed}: base {meta['n_params']:,} params, {meta['steps']} steps, {meta['tokens']:,} tokens, "
            f"{meta['tokens_per_s']:,.0f} tokens/s, pretraining {_pretrain_wall(meta):.0f} s; "
            f"measured in {time.perf_counter() - t0:.0f} s"
        )
        print(f"| level | greedy (95% CI) | maj@{k} (95% CI) | mean@{k} | greedy direct |")
        print("|---|---|---|---|---|")
        for level, row in levels.items():
            n = int(row["n"])
            print(
                f"| {level} | {_cell(row['greedy'], n)} | {_cell(row[f'maj@{k}'], n)} | "
                f"{row[f'mean@{k}']:.3f} | {row['greedy_direct']:.2f} |"
            )
        print()
        if not args.base_only:
            for control in (None, *CONTROLS):
                run_loop(args.size, seed, args.iterations, control)


if __name__ == "__main__":
    main()
