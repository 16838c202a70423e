"""Which iteration to keep, and when the loop collapses: the dev-split rule and the label floor.

R-Zero's gains peak and then fall (paper §4: the solver's gains shrink by iteration 3 while the
pseudo-label accuracy drops from 79% to 63%). A run that scores every iteration on a held-out dev
split (``eval.dev_tasks``, written to ``dev_results/iter_<k>/``; iteration 0 is the base model)
can say which iteration to keep without looking at the test scores:

- dev score of iteration k: the mean over dev tasks of the task's mean item score (an item's score
  is the mean of its ``correct`` flags: the accuracy for a greedy task);
- best iteration: the highest dev score (the earliest on a tie);
- dev alarm at iteration k: with b the best of iterations 0..k (what the loop knows at k), the
  paired 95% bootstrap CI of ``score_k - score_b`` (items resampled within each task, pairs kept
  together; ``rzero_bench.report.stats``) lies entirely below 0, i.e. the drop exceeds its CI;
- label alarm at iteration k: the pseudo-label accuracy of the kept questions
  (``iter_<k>/label_accuracy.json``, ``kept``) is below ``eval.collapse_label_floor``.

The first iteration with an alarm is where ``run --stop-on-collapse`` stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rzero_bench.report.stats import stratified_paired_bootstrap
from rzero_bench.store import read_json, read_jsonl

__all__ = ["DEV_DIR", "collapse_status", "dev_item_scores", "render_collapse"]

DEV_DIR = "dev_results"


def dev_item_scores(results_dir: Path) -> dict[str, dict[str, float]]:
    """task -> doc id -> item score, from the ``<task>.samples.jsonl`` files of one dev evaluation."""
    out: dict[str, dict[str, float]] = {}
    for sf in sorted(Path(results_dir).glob("*.samples.jsonl")):
        task = sf.name.removesuffix(".samples.jsonl")
        scores = {}
        for row in read_jsonl(sf):
            flags = [bool(c) for c in row.get("correct", [])]
            scores[str(row["doc_id"])] = sum(flags) / len(flags) if flags else 0.0
        out[task] = scores
    return out


def _mean_of_tasks(values: Mapping[str, float]) -> float:
    return sum(values.values()) / len(values)


def _kept_label_accuracy(it_dir: Path) -> float | None:
    path = it_dir / "label_accuracy.json"
    if not path.exists():
        return None
    kept = (read_json(path) or {}).get("kept") or {}
    return kept.get("accuracy") if kept.get("n") else None


def collapse_status(
    run_dir: Path, *, label_floor: float | None = None, seed: int = 0, n_boot: int = 2000
) -> dict[str, Any] | None:
    """Dev scores, the best iteration and the collapse alarms of a run (None without dev results).

    ``label_floor`` defaults to the run's ``eval.collapse_label_floor``.
    """
    run_dir = Path(run_dir)
    root = run_dir / DEV_DIR
    if not root.is_dir():
        return None
    scores: dict[int, dict[str, dict[str, float]]] = {}
    for d in root.glob("iter_*"):
        suffix = d.name[len("iter_") :]
        if suffix.isdigit():
            s = dev_item_scores(d)
            if s:
                scores[int(suffix)] = s
    if not scores:
        return None
    if label_floor is None and (run_dir / "manifest.json").exists():
        label_floor = ((read_json(run_dir / "manifest.json").get("config") or {}).get("eval") or {}).get(
            "collapse_label_floor"
        )
    ks = sorted(scores)
    tasks = sorted(set.intersection(*(set(scores[k]) for k in ks)))
    common = {t: sorted(set.intersection(*(set(scores[k][t]) for k in ks))) for t in tasks}
    tasks = [t for t in tasks if common[t]]
    value = (
        {
            k: _mean_of_tasks({t: sum(scores[k][t][i] for i in common[t]) / len(common[t]) for t in tasks})
            for k in ks
        }
        if tasks
        else {}
    )
    rows: list[dict[str, Any]] = []
    first_alarm: int | None = None
    for k in ks:
        so_far = [j for j in ks if j <= k]
        best_so_far = max(so_far, key=lambda j: (value[j], -j))
        row: dict[str, Any] = {
            "iteration": k,
            "dev": value.get(k),
            "best_so_far": best_so_far,
            "delta": None,
            "ci95": None,
            "dev_alarm": False,
            "label_accuracy": None,
            "label_alarm": False,
        }
        if k != best_so_far and tasks:
            ci = stratified_paired_bootstrap(
                {
                    t: ([scores[best_so_far][t][i] for i in common[t]], [scores[k][t][i] for i in common[t]])
                    for t in tasks
                },
                _mean_of_tasks,
                n_boot=n_boot,
                seed=seed,
            )
            row.update(delta=ci.delta, ci95=[ci.lo, ci.hi], dev_alarm=ci.hi < 0)
        if k > 0:
            acc = _kept_label_accuracy(run_dir / f"iter_{k}")
            row["label_accuracy"] = acc
            row["label_alarm"] = bool(label_floor is not None and acc is not None and acc < label_floor)
        row["alarm"] = row["dev_alarm"] or row["label_alarm"]
        if row["alarm"] and first_alarm is None:
            first_alarm = k
        rows.append(row)
    best = max(ks, key=lambda j: (value[j], -j)) if value else None
    return {
        "tasks": tasks,
        "items": {t: len(common[t]) for t in tasks},
        "label_floor": label_floor,
        "best_iteration": best,
        "first_alarm": first_alarm,
        "iterations": rows,
    }


def render_collapse(c: Mapping[str, Any]) -> list[str]:
    """Markdown lines: one row per iteration, the best marked, alarms named."""
    lines = [
        f"Dev split ({', '.join(f'{t} n={n}' for t, n in c['items'].items())}); best iteration: "
        f"{c['best_iteration']}; collapse alarm: "
        + (f"iteration {c['first_alarm']}" if c["first_alarm"] is not None else "none"),
        "",
        "| iter | dev % | vs best so far (95% CI) | kept label acc % | alarm |",
        "|---|---|---|---|---|",
    ]
    for r in c["iterations"]:
        mark = " (best)" if r["iteration"] == c["best_iteration"] else ""
        dev = "–" if r["dev"] is None else f"{100 * r['dev']:.1f}{mark}"
        if r["ci95"] is None:
            vs = "–"
        else:
            vs = f"{100 * r['delta']:+.1f} [{100 * r['ci95'][0]:+.1f}, {100 * r['ci95'][1]:+.1f}] vs iter {r['best_so_far']}"
        lab = "–" if r["label_accuracy"] is None else f"{100 * r['label_accuracy']:.1f}"
        why = [
            w
            for w, on in (("dev drop", r["dev_alarm"]), (f"label < {c['label_floor']}", r["label_alarm"]))
            if on
        ]
        lines.append(f"| {r['iteration']} | {dev} | {vs} | {lab} | {', '.join(why) or '–'} |")
    return lines
