"""R-Zero vs Base Challenger: paired comparison per seed and the leaderboard section beside the paper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzero_bench.errors import UserError
from rzero_bench.report.base_challenger import compare_runs, comparison_section, write_comparison
from rzero_bench.report.leaderboard import render_leaderboard

REFERENCE = {
    "source": "reported",
    "base_model": "Qwen3-4B-Base",
    "columns": ["overall"],
    "rows": [
        {"name": "Base Model", "stage": "base", "metrics": {"overall": 27.10}},
        {"name": "Base Challenger", "stage": "base_challenger", "metrics": {"overall": 30.83}},
        {"name": "R-Zero (Iter 1)", "stage": "iter_1", "metrics": {"overall": 34.27}},
    ],
}


def _results(d: Path, flags: dict[str, list[bool]]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rows = [
        {"doc_id": f"L{lev}-{i}", "correct": [c], "subtask": lev} for lev, fl in flags.items() for i, c in enumerate(fl)
    ]
    (d / "micro_arith.samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(root: Path, name: str, seed: int, iter1: dict[str, list[bool]], *, bc: bool, model: str = "/m/micro-s") -> Path:
    run = root / name
    (run / "iter_1").mkdir(parents=True)
    cfg = {"model": model, "seed": seed, "name": "ci-micro", "baseline": "base-challenger" if bc else "none"}
    (run / "manifest.json").write_text(json.dumps({"config": cfg, "config_hash": "x", "stages": {}}))
    _results(run / "results" / "iter_0", {"1": [True] * 40, "3": [False] * 40})
    _results(run / "results" / "iter_1", iter1)
    (run / "iter_1" / "label_accuracy.json").write_text(json.dumps({"accuracy": 0.4 if bc else 0.5, "n": 90}))
    (run / "iter_1" / "filter.json").write_text(json.dumps({"generated": 100, "kept": 30 + seed}))
    return run


def _pair(root: Path, seed: int, bc_l3: int, rz_l3: int) -> tuple[Path, Path]:
    def lv(k: int) -> dict[str, list[bool]]:
        return {"1": [True] * 40, "3": [True] * k + [False] * (40 - k)}

    return (
        _run(root, f"rz{seed}", seed, lv(rz_l3), bc=False),
        _run(root, f"bc{seed}", seed, lv(bc_l3), bc=True),
    )


def test_paired_difference_per_seed_and_level(tmp_path: Path) -> None:
    pairs = [_pair(tmp_path, 1, 10, 30), _pair(tmp_path, 2, 12, 28)]
    c = compare_runs([p[0] for p in pairs], [p[1] for p in pairs], n_boot=500)
    s1 = c["seeds"]["1"]["levels"]
    # level 3: 10/40 -> 30/40 on the same items: +0.5, interval above 0; level 1 unchanged: 0 exactly
    assert s1["3"]["base_challenger"] == 0.25 and s1["3"]["rzero"] == 0.75
    assert s1["3"]["delta"] == pytest.approx(0.5) and s1["3"]["ci95"][0] > 0.2 and s1["3"]["excludes_zero"]
    assert s1["1"]["delta"] == 0 and s1["1"]["ci95"] == [0, 0] and not s1["1"]["excludes_zero"]
    assert s1["all"]["n"] == 80 and s1["all"]["delta"] == pytest.approx(0.25)
    # across seeds: level-3 deltas 0.5 and 0.4 -> mean 0.45, sd 0.0707
    l3 = c["summary"]["3"]["delta"]
    assert l3["mean"] == pytest.approx(0.45) and l3["sd"] == pytest.approx(0.070711, abs=1e-5)
    assert c["summary"]["3"]["seeds_excluding_zero"] == 2 and c["summary"]["1"]["seeds_excluding_zero"] == 0
    assert c["seeds"]["2"]["base_challenger"]["label_acc"] == 0.4 and c["seeds"]["2"]["rzero"]["yield"] == 0.32


def test_no_difference_is_not_a_gain(tmp_path: Path) -> None:
    pairs = [_pair(tmp_path, 1, 20, 20)]
    c = compare_runs([pairs[0][0]], [pairs[0][1]], n_boot=500)
    assert c["summary"]["all"]["delta"]["mean"] == 0 and c["summary"]["all"]["seeds_excluding_zero"] == 0


def test_mismatched_runs_are_refused(tmp_path: Path) -> None:
    rz, bc = _pair(tmp_path, 1, 10, 30)
    with pytest.raises(UserError, match="not an R-Zero run"):
        compare_runs([bc], [bc])
    with pytest.raises(UserError, match="not a base-challenger run"):
        compare_runs([rz], [rz])
    other = _run(tmp_path, "bc-other", 2, {"1": [True]}, bc=True)
    with pytest.raises(UserError, match="no Base Challenger run with seed 1"):
        compare_runs([rz], [other])
    far = _run(tmp_path, "bc-far", 1, {"1": [True]}, bc=True, model="/m/other")
    with pytest.raises(UserError, match="different base models"):
        compare_runs([rz], [far])
    (bc / "results" / "iter_1" / "micro_arith.samples.jsonl").unlink()
    with pytest.raises(UserError, match="eval stage"):
        compare_runs([rz], [bc])


def test_leaderboard_sets_measured_rows_beside_the_papers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / "reference").mkdir(parents=True)
    (results / "reference" / "qwen3-4b-base.json").write_text(json.dumps(REFERENCE))
    pairs = [_pair(tmp_path / "runs", s, 10, k) for s, k in ((1, 30), (2, 26), (3, 10))]
    write_comparison([p[0] for p in pairs], [p[1] for p in pairs], results / "baselines" / "micro", n_boot=500)
    text = "\n".join(comparison_section(results))
    assert "| Qwen3-4B-Base | reported | Overall | 27.10 | 30.83 | 34.27 | +3.44 | qwen3-4b-base.json |" in text
    # all: base 50.0; BC 62.5 each seed; R-Zero 87.5, 82.5, 62.5 -> 77.5 ± 13.2; delta +15.0 ± 13.2
    assert "| micro-s | measured | micro_arith (80 items) | 50.0 | 62.5 ± 0.0 | 77.5 ± 13.2 | +15.0 ± 13.2 |" in text
    assert "3 seeds, 2 with Δ > 0*" in text  # seed 3 has no difference
    assert "| L3 | 0.0 | 25.0 ± 0.0 | 55.0 ± 26.5 | +30.0 ± 26.5 |" in text
    assert "25.0 → 25.0: +0.0 [+0.0, +0.0] |" in text and "| label acc | – | – | – | – | 40.0 / 50.0 |" in text
    board = render_leaderboard(results)
    assert board.index("## Qwen3-4B-Base") < board.index("## Base Challenger vs R-Zero (Iter 1)")
    # without a comparison the section is absent
    (results / "baselines" / "micro" / "comparison.json").unlink()
    assert comparison_section(results) == [] and "Base Challenger vs" not in render_leaderboard(results)


def test_one_seed_shows_its_interval_not_a_spread(tmp_path: Path) -> None:
    results = tmp_path / "results"
    rz, bc = _pair(tmp_path / "runs", 0, 10, 30)
    write_comparison([rz], [bc], results / "comparisons" / "one", n_boot=500)
    text = "\n".join(comparison_section(results))
    row = next(line for line in text.splitlines() if line.startswith("| micro-s | measured"))
    # all 80 items: 62.5 -> 87.5, +25.0 with its paired interval, no "± 0.0" from a single seed
    assert "| 62.5 | 87.5 | +25.0 [+" in row and "]* | ci-micro preset; 1 seed; `comparisons/one` |" in row
    assert "±" not in row
