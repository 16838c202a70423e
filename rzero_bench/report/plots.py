"""PNG plots for ``rzero-bench report --plots DIR`` (matplotlib, Agg backend, no display needed).

Per group (run) three figures, written atomically:

- ``<name>_accuracy.png``: accuracy per iteration for each suite (Math avg, General avg,
  Overall) and each task (thin lines), error bars = 1.96 standard errors;
- ``<name>_phat.png``: histograms of the agreement p-hat per iteration, before the filter
  (all questions, votes.jsonl) and after it (solver_dataset.jsonl), bins of width 0.1;
- ``<name>_calibration.png``: pseudo-label accuracy vs mean p-hat per bucket with 95 % Wilson
  error bars, one line per iteration, and the diagonal (perfect calibration).

A figure whose data are missing (no run directory, no label_accuracy.json) is skipped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rzero_bench.report.rundata import label_accuracy_by_iteration, phat_distributions
from rzero_bench.store import atomic_write_bytes

__all__ = ["write_plots", "plot_accuracy", "plot_phat", "plot_calibration"]

DPI = 100
SIZE = (8.0, 5.0)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    _plt().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "report"


def _col_x(col: str, i: int) -> int:
    m = re.fullmatch(r"iter_(\d+)", col)
    return int(m.group(1)) if m else i


def plot_accuracy(group: Mapping[str, Any], path: Path) -> Path | None:
    """Accuracy (%) per iteration: suites bold, tasks thin; error bars 1.96 se."""
    cols = group["columns"]
    if not group["rows"]:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=SIZE)
    for r in group["rows"]:
        pts = [(_col_x(c, i), r["values"][c]) for i, c in enumerate(cols) if c in r["values"]]
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ys = [100 * p[1]["value"] for p in pts]
        es = [196 * p[1]["stderr"] for p in pts]
        suite = r["kind"] == "suite"
        ax.errorbar(
            xs,
            ys,
            yerr=es,
            marker="o" if suite else ".",
            linewidth=2.2 if suite else 0.9,
            alpha=1.0 if suite else 0.6,
            capsize=3,
            label=r["label"],
            linestyle="-" if suite else "--",
        )
    ax.set_xticks(sorted({_col_x(c, i) for i, c in enumerate(cols)}))
    ax.set_xticklabels(
        [("base" if _col_x(c, i) == 0 and c.startswith("iter_") else c) for i, c in enumerate(cols)]
    )
    ax.set_xlabel("iteration")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{group['name']}: accuracy per iteration (error bars: 95% normal)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return _save(fig, path)


def plot_phat(dists: Mapping[int, Mapping[str, list[float]]], title: str, path: Path) -> Path | None:
    """p-hat histograms per iteration, before and after the filter."""
    if not dists:
        return None
    plt = _plt()
    its = sorted(dists)
    fig, axes = plt.subplots(
        1, len(its), figsize=(max(SIZE[0], 4.0 * len(its)), SIZE[1]), squeeze=False, sharey=True
    )
    bins = [i / 10 - 0.05 for i in range(12)]
    for ax, k in zip(axes[0], its, strict=True):
        before, after = dists[k]["before"], dists[k]["after"]
        ax.hist(before, bins=bins, alpha=0.5, label=f"all questions (n={len(before)})", color="tab:gray")
        ax.hist(after, bins=bins, alpha=0.8, label=f"kept by the filter (n={len(after)})", color="tab:blue")
        ax.set_title(f"iter_{k}")
        ax.set_xlabel("p-hat (majority agreement)")
        ax.set_xlim(-0.05, 1.05)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("questions")
    fig.suptitle(f"{title}: agreement before and after the filter")
    fig.tight_layout()
    return _save(fig, path)


def plot_calibration(label_acc: Mapping[int, Mapping[str, Any]], title: str, path: Path) -> Path | None:
    """Label accuracy vs mean p-hat per bucket (Wilson 95 % bars), one line per iteration."""
    if not label_acc:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 6.0))
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":", label="perfect calibration")
    for k in sorted(label_acc):
        r = label_acc[k]
        bs = [b for b in r.get("buckets", []) if b.get("n")]
        if not bs:
            continue
        xs = [b["mean_p_hat"] for b in bs]
        ys = [b["accuracy"] for b in bs]
        lo = [b["accuracy"] - b["ci95"][0] for b in bs]
        hi = [b["ci95"][1] - b["accuracy"] for b in bs]
        acc = r.get("accuracy")
        label = f"iter_{k} (acc {100 * acc:.1f}%, n={r.get('n')})" if acc is not None else f"iter_{k}"
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("p-hat (majority agreement)")
    ax.set_ylabel("pseudo-label accuracy")
    oracle = next((str(r.get("oracle")) for r in label_acc.values() if r.get("oracle")), "?")
    ax.set_title(f"{title}: label calibration vs {oracle}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def write_plots(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write every available figure for every group of ``report`` (from ``tables.build_report``)."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    for g in report["groups"]:
        slug = _slug(g["name"])
        p = plot_accuracy(g, out_dir / f"{slug}_accuracy.png")
        written += [p] if p else []
        if g.get("run_dir"):
            run_dir = Path(g["run_dir"])
            p = plot_phat(phat_distributions(run_dir), g["name"], out_dir / f"{slug}_phat.png")
            written += [p] if p else []
            p = plot_calibration(
                label_accuracy_by_iteration(run_dir), g["name"], out_dir / f"{slug}_calibration.png"
            )
            written += [p] if p else []
    return written
