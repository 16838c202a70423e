"""Per-level report rows and the leaderboard's measured-baseline section (the micro world's tables)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzero_bench.report.check import write_baseline
from rzero_bench.report.micro_board import baseline_sections
from rzero_bench.report.tables import build_report, render


def _task(d: Path, task: str, correct: dict[str, list[bool]], *, subtasks: bool = True) -> None:
    """``<task>.json`` + samples: ``correct`` maps subtask -> one greedy verdict per item."""
    d.mkdir(parents=True, exist_ok=True)
    rows, subs = [], {}
    for sub, flags in correct.items():
        for i, c in enumerate(flags):
            rows.append({"doc_id": f"{sub}-{i}", "correct": [c], "subtask": sub if subtasks else None})
        subs[sub] = {"acc": {"value": sum(flags) / len(flags), "stderr": 0.01, "n": len(flags)}}
    n = len(rows)
    value = sum(r["correct"][0] for r in rows) / n
    data = {
        "task": task,
        "task_hash": "h",
        "model": "m",
        "metrics": {"acc": {"value": value, "stderr": 0.01, "n": n}},
        "subtasks": subs if subtasks else {},
    }
    (d / f"{task}.json").write_text(json.dumps(data))
    (d / f"{task}.samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(root: Path, seed: int = 0, l3_after: int = 40) -> Path:
    run = root / f"run{seed}"
    (run / "iter_1").mkdir(parents=True)
    cfg = {"model": "micro:s", "seed": seed, "solver": {"lr": 5e-5}}
    (run / "manifest.json").write_text(json.dumps({"config": cfg, "config_hash": "x", "stages": {}}))
    _task(run / "results" / "iter_0", "micro_arith", {"1": [True] * 50, "3": [False] * 50})
    _task(
        run / "results" / "iter_1",
        "micro_arith",
        {"1": [True] * 50, "3": [True] * l3_after + [False] * (50 - l3_after)},
    )
    for k in (0, 1):
        _task(run / "results" / f"iter_{k}", "gsm8k", {"a": [True, False], "b": [False, True]})
    (run / "iter_1" / "label_accuracy.json").write_text(json.dumps({"accuracy": 0.6, "n": 80}))
    (run / "iter_1" / "filter.json").write_text(json.dumps({"generated": 100, "kept": 40 + seed}))
    return run


def test_report_has_one_row_per_level_with_a_paired_ci(tmp_path: Path) -> None:
    rep = build_report([_run(tmp_path)], n_boot=500)
    rows = {r["row"]: r for r in rep["groups"][0]["rows"]}
    # benchmark tasks, then their suite means, then the micro world last (where a terminal ends)
    assert list(rows) == ["gsm8k", "math_avg", "overall", "micro_arith", "micro_arith/1", "micro_arith/3"]
    # micro_arith gets level rows; a benchmark task (gsm8k) keeps one row despite its subtasks
    assert {"micro_arith/1", "micro_arith/3"} <= set(rows) and not [r for r in rows if r.startswith("gsm8k/")]
    l3 = rows["micro_arith/3"]
    assert l3["label"] == "micro_arith L3" and l3["kind"] == "subtask"
    assert l3["values"]["iter_0"]["value"] == 0.0 and l3["values"]["iter_1"]["value"] == pytest.approx(0.8)
    d = l3["deltas"]["iter_1"]
    # 40 of 50 level-3 items flipped to right: delta +0.8, the paired interval over those 50 items excludes 0
    assert d["delta"] == pytest.approx(0.8) and d["ci"]["n_items"] == 50 and d["ci"]["lo"] > 0.6
    # level 1 did not move: delta 0 with a degenerate interval [0, 0]
    l1 = rows["micro_arith/1"]["deltas"]["iter_1"]
    assert l1["delta"] == 0 and l1["ci"]["lo"] == l1["ci"]["hi"] == 0 and not l1["ci"]["excludes_zero"]
    md = render(rep, "md")
    assert "| micro_arith L3 | acc | 0.00 ± 1.00 | 80.00 ± 1.00 | +80.00 [" in md and "]* |" in md


def test_leaderboard_section_lists_each_seed_and_the_mean(tmp_path: Path) -> None:
    runs = [_run(tmp_path / "runs", s, l3_after=a) for s, a in ((1, 40), (2, 30), (3, 35))]
    write_baseline(runs, tmp_path / "results" / "baselines" / "micro", method="three seeds")
    lines = baseline_sections(tmp_path / "results")
    text = "\n".join(lines)
    assert lines[0].startswith("## Measured: `baselines/micro`")
    assert "| Row | Source | L1 | L3 | all | label acc | yield |" in text
    assert "| base (iteration 0) | measured | 100.0 | 0.0 | 50.0 | – | – |" in text
    # L3: 80, 60, 70 -> mean 70, sd 10; yield 41, 42, 43 % -> mean 42, sd 1
    assert "| iteration 1, seed 2 | measured | 100.0 | 60.0 |" in text
    assert "| iteration 1, mean ± sd | measured | **100.0** ± 0.0 | **70.0** ± 10.0 |" in text
    assert text.rstrip().endswith("**42.0** ± 1.0 |")
    assert baseline_sections(tmp_path / "runs") == []
