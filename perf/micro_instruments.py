"""Micro demonstrations of the research instruments: Base Challenger, collapse, label tables.

For one seed this runs (or resumes) two micro runs with the same base model and stage seeds:

- ``rzero-s<seed>``: the R-Zero loop for ``--iterations`` iterations (the micro preset also scores
  every iteration on the ``micro_arith_dev`` split);
- ``basechal-s<seed>``: one iteration with ``--baseline base-challenger`` (the challenger is not
  trained: the solver learns from the base model's questions, the paper's "Base Challenger" row);

and prints

1. R-Zero iteration 1 vs Base Challenger iteration 1 on ``micro_arith`` (test) and
   ``micro_arith_dev``, overall and per level, with 95% paired-bootstrap CIs over items;
2. the dev scores per iteration, the best iteration and the collapse alarm
   (:mod:`rzero_bench.report.collapse`), with the kept pseudo-label accuracy;
3. pseudo-label accuracy per iteration against the exact oracle: all labelled questions, the kept
   ones, and the paper's seeded 200-question sample of the kept ones;
4. the cross-iteration table (solver k on the kept questions of iteration j, greedy, exact oracle;
   written to ``<run>/label_cross_iteration.json``).

    .venv/bin/python perf/micro_instruments.py --root /tmp/i13/runs            # run what is missing, then tables
    .venv/bin/python perf/micro_instruments.py --root /tmp/i13/runs --report-only
    .venv/bin/python perf/micro_instruments.py --root /tmp/i13/runs --report-only \
        --comparison-out results/comparisons/micro-base-challenger   # the leaderboard row

``--comparison-out`` also writes the R-Zero vs Base Challenger comparison of iteration 1
(:mod:`rzero_bench.report.base_challenger`, ``comparison.json``) that ``rzero-bench leaderboard``
shows beside the paper's Base Challenger rows.

Run with ``RZERO_HOME`` set as for any run. Measured on 2 cores shared with other jobs (load 2-18):
R-Zero iterations 32, 15, 10 and 7 min as the load fell, the Base Challenger iteration 28 min, the
tables 2.5 min; pretraining the micro base first took 76 min at that load (~10 min idle).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from rzero_bench.report.base_challenger import write_comparison  # noqa: E402
from rzero_bench.report.collapse import collapse_status, render_collapse  # noqa: E402
from rzero_bench.report.label_acc import cross_iteration, label_accuracy  # noqa: E402
from rzero_bench.report.stats import paired_bootstrap  # noqa: E402
from rzero_bench.store import read_jsonl  # noqa: E402

LEVELS = ("all", "1", "2", "3", "4", "5")


def _run(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "rzero_bench.cli", "run", "--preset", "micro", *args]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def _items(results: Path, task: str) -> dict[str, tuple[float, str]]:
    return {str(r["doc_id"]): (float(r["correct"][0]), str(r.get("subtask")))
            for r in read_jsonl(results / f"{task}.samples.jsonl")}


def _pct(xs: list[float]) -> str:
    return f"{100 * sum(xs) / len(xs):.1f}"


def base_challenger_table(rz: Path, bc: Path) -> list[str]:
    """R-Zero iteration 1 vs Base Challenger iteration 1, per level, paired CI (R-Zero - BC)."""
    lines = []
    for split, sub, task in (("test", "results", "micro_arith"), ("dev", "dev_results", "micro_arith_dev")):
        base, b, z = (_items(d, task) for d in (rz / sub / "iter_0", bc / sub / "iter_1", rz / sub / "iter_1"))
        ids = sorted(set(base) & set(b) & set(z))
        lines += [f"\n{task} ({split}, {len(ids)} items)\n",
                  "| level | base | Base Challenger iter 1 | R-Zero iter 1 | R-Zero - Base Challenger (95% CI) |",
                  "|---|---|---|---|---|"]
        for lev in LEVELS:
            sel = [i for i in ids if lev == "all" or base[i][1] == lev]
            before, after = [b[i][0] for i in sel], [z[i][0] for i in sel]
            ci = paired_bootstrap(before, after, n_boot=2000, seed=0)
            star = "*" if ci.excludes_zero else ""
            lines.append(f"| {lev} | {_pct([base[i][0] for i in sel])} | {_pct(before)} | {_pct(after)} | "
                         f"{100 * ci.delta:+.1f} [{100 * ci.lo:+.1f}, {100 * ci.hi:+.1f}]{star} |")
    return lines


def label_table(run: Path) -> list[str]:
    res = label_accuracy(run, "exact-arith", sample=200, seed=0)
    lines = ["| iteration | all labelled | kept | seeded sample of 200 kept (95% CI) |", "|---|---|---|---|"]
    for k, r in sorted(res["iterations"].items()):
        s, kept = r["sample"], r["kept"]
        lines.append(f"| {k} | {100 * r['accuracy']:.1f} (n={r['n']}) | {100 * kept['accuracy']:.1f} (n={kept['n']}) | "
                     f"{100 * s['accuracy']:.1f} [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}] |")
    return lines


def cross_table(run: Path) -> list[str]:
    rep = cross_iteration(run, "exact-arith")
    (run / "label_cross_iteration.json").write_text(json.dumps(rep, indent=1))
    js = sorted(rep["label"], key=int)
    lines = ["| solver \\ questions of | " + " | ".join(f"iter {j} (n={rep['label'][j]['n']})" for j in js) + " |",
             "|---|" + "---|" * len(js)]
    for k, row in sorted(rep["cells"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"| solver_{k} | " + " | ".join(f"{100 * row[j]['accuracy']:.1f}" for j in js) + " |")
    lines.append("| pseudo-label (majority of solver_{j-1}) | "
                 + " | ".join(f"{100 * rep['label'][j]['accuracy']:.1f}" for j in js) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "micro-instruments")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--comparison-out", type=Path, default=None,
                    help="also write comparison.json (R-Zero vs Base Challenger, iteration 1) there")
    a = ap.parse_args()
    rz, bc = a.root / f"rzero-s{a.seed}", a.root / f"basechal-s{a.seed}"
    if not a.report_only:
        _run(["--iterations", str(a.iterations), "--run-dir", str(rz), "--set", f"seed={a.seed}"])
        _run(["--iterations", "1", "--baseline", "base-challenger", "--run-dir", str(bc), "--set", f"seed={a.seed}"])
    print("\n## R-Zero iteration 1 vs Base Challenger (same base, same stage seeds)")
    print("\n".join(base_challenger_table(rz, bc)))
    if a.comparison_out is not None:
        method = (f"perf/micro_instruments.py --seed {a.seed}: rzero-bench run --preset micro --set seed={a.seed}, "
                  "with and without --baseline base-challenger.")
        print(write_comparison([rz], [bc], a.comparison_out, method=method))
    print("\n## Best iteration and collapse (dev split)\n")
    status = collapse_status(rz)
    print("\n".join(render_collapse(status)) if status else "no dev results")
    print("\n## Pseudo-label accuracy against the exact oracle\n")
    print("\n".join(label_table(rz)))
    print("\n## Cross-iteration: solver k on the kept questions of iteration j (greedy, exact oracle)\n")
    print("\n".join(cross_table(rz)))


if __name__ == "__main__":
    main()
