"""What a run directory holds besides its evaluation results, read for the report and the plots.

A run directory ``runs/<run>/`` (see ``rzero_bench.store``) has, next to ``results/``:

- ``manifest.json``: the config (its ``model`` is the base model) and ``stages``, one entry per
  ``iter_<k>/<stage>`` with ``status``, ``wall_time_s`` and token counts (any key containing
  ``tokens``; nested mappings are summed);
- per iteration ``iter_<k>/``: ``label_accuracy.json`` (pseudo-label accuracy against an oracle,
  with calibration buckets), ``filter.json`` (``generated``, ``kept``, ``drops``),
  ``votes.jsonl`` (every question with its agreement ``p_hat``) and ``solver_dataset.jsonl`` (the
  questions the filter kept, with their ``p_hat``).

Every reader returns empty/None when the run directory or the file is missing, so a report over
plain results directories (no run) works unchanged. ``tables`` and ``plots`` both read from here;
neither reads run files itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rzero_bench.store import read_json, read_jsonl

__all__ = [
    "STAGE_ORDER",
    "base_model",
    "iteration_dirs",
    "label_accuracy",
    "label_accuracy_by_iteration",
    "filter_yield",
    "phat_distributions",
    "stage_rows",
]

STAGE_ORDER = ("challenger", "questions", "votes", "filter", "solver", "label_acc", "eval")


def iteration_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """``(k, run_dir/iter_<k>)`` for every iteration directory, sorted by path name."""
    out = []
    for d in sorted(run_dir.glob("iter_*")):
        suffix = d.name[len("iter_") :]
        if suffix.isdigit():
            out.append((int(suffix), d))
    return out


def base_model(run_dir: Path | None, default: str) -> str:
    """The run's base model as its manifest's config names it; ``default`` without a manifest."""
    if run_dir is None or not (run_dir / "manifest.json").exists():
        return default
    m = read_json(run_dir / "manifest.json")
    return str(((m.get("config") or {}) if isinstance(m, dict) else {}).get("model", default))


def _sum_tokens(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, Mapping):
        parts = [p for p in (_sum_tokens(x) for x in v.values()) if p is not None]
        return sum(parts) if parts else None
    return None


def _stage_order(name: str) -> tuple[int, int, str]:
    """Run order: by iteration, then by the pipeline's stage order (the manifest's keys are sorted)."""
    it, _, stage = name.partition("/")
    k = int(it.removeprefix("iter_")) if it.removeprefix("iter_").isdigit() else 10**6
    pos = STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
    return k, pos, name


def stage_rows(run_dir: Path | None) -> list[dict[str, Any]]:
    """One row per manifest stage (status, wall time, summed tokens), in run order."""
    if run_dir is None or not (run_dir / "manifest.json").exists():
        return []
    manifest = read_json(run_dir / "manifest.json")
    stages = manifest.get("stages") if isinstance(manifest, dict) else None
    out = []
    for name, st in (stages or {}).items():
        if not isinstance(st, Mapping):
            continue
        tokens = [_sum_tokens(v) for k, v in st.items() if "tokens" in str(k)]
        tok = [x for x in tokens if x is not None]
        out.append(
            {
                "stage": name,
                "status": st.get("status"),
                "wall_time_s": st.get("wall_time_s"),
                "tokens": sum(tok) if tok else None,
            }
        )
    return sorted(out, key=lambda r: _stage_order(str(r["stage"])))


def label_accuracy(run_dir: Path, k: int) -> dict[str, Any] | None:
    """The summary of ``iter_<k>/label_accuracy.json`` (accuracy, ci95, n, oracle, ece), or None."""
    path = run_dir / f"iter_{k}" / "label_accuracy.json"
    if not path.exists():
        return None
    la = read_json(path)
    return {key: la.get(key) for key in ("accuracy", "ci95", "n", "oracle", "ece")}


def label_accuracy_by_iteration(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Every iteration's full ``label_accuracy.json`` (with its calibration buckets), by k."""
    return {
        k: read_json(d / "label_accuracy.json")
        for k, d in iteration_dirs(run_dir)
        if (d / "label_accuracy.json").exists()
    }


def filter_yield(run_dir: Path, k: int) -> dict[str, Any] | None:
    """``iter_<k>/filter.json`` as yield = kept / generated with the drop counts, or None."""
    path = run_dir / f"iter_{k}" / "filter.json"
    if not path.exists():
        return None
    f = read_json(path)
    gen, kept = int(f.get("generated", 0) or 0), int(f.get("kept", 0) or 0)
    return {"generated": gen, "kept": kept, "rate": kept / gen if gen else None, "drops": f.get("drops", {})}


def phat_distributions(run_dir: Path | None) -> dict[int, dict[str, list[float]]]:
    """p-hat values per iteration before (votes.jsonl) and after (solver_dataset.jsonl) the filter."""
    out: dict[int, dict[str, list[float]]] = {}
    if run_dir is None:
        return out
    for k, d in iteration_dirs(run_dir):
        if not (d / "votes.jsonl").exists():
            continue
        before = [float(r["p_hat"]) for r in read_jsonl(d / "votes.jsonl") if r.get("p_hat") is not None]
        after = []
        if (d / "solver_dataset.jsonl").exists():
            after = [
                float(r["p_hat"])
                for r in read_jsonl(d / "solver_dataset.jsonl")
                if r.get("p_hat") is not None
            ]
        out[k] = {"before": before, "after": after}
    return out
