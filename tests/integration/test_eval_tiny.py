"""`rzero-bench eval <tiny model> --suite rzero --limit 5` end to end on CPU, in under 2 minutes.

Uses the cached tiny "xs" model (conftest ``tiny_model_path``), a reduced generation budget and
``--max-k 2`` (the sampled mean@k/maj@k passes of AIME/AMC run with k=2) for speed. The
local mirror has no SuperGPQA: the suite run skips it with a warning listed in eval_summary.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rzero_bench.records import EvalResult
from rzero_bench.tasks import load_suite, load_task

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", REPO.parent / "shared" / "benchmarks"))
ROW_KEYS = {"doc_id", "prompt_hash", "reference", "completions", "answers", "verdicts", "correct", "subtask"}
VERDICT_KEYS = {"correct", "status", "method", "detail"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATA_DIR / "gsm8k").is_dir() and not os.environ.get("RZERO_REQUIRE_DATA"),
        reason=f"local benchmark mirror not found at {DATA_DIR}",
    ),
]


def test_eval_tiny_suite_rzero(tiny_model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    exe = Path(sys.executable).with_name("rzero-bench")
    env = {**os.environ, "RZERO_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "COLUMNS": "160"}
    start = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "eval", str(tiny_model_path), "--suite", "rzero", "--limit", "5", "--max-tokens", "12",
         "--max-k", "2", "--batch-size", "32", "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert elapsed < 120, f"eval took {elapsed:.0f} s"
    assert "skipping supergpqa" in proc.stderr

    tasks = [t for t in load_suite("rzero").tasks if t != "supergpqa"]
    for task in tasks:
        data = json.loads((out / f"{task}.json").read_text())
        r = EvalResult.from_dict(data)  # schema: unknown or missing fields raise
        spec = load_task(task)
        assert r.task == task and r.task_hash == spec.hash and r.task_version == spec.version
        assert r.model == str(tiny_model_path) and r.backend == "hf" and r.limit == 5 and r.seed == 0
        assert r.counts["items"] == 5 and r.tokens > 0 and r.wall_time_s > 0 and "python" in r.package_versions
        assert r.protocol == "paper" and r.data_source["kind"] in ("mirror", "generated")
        assert 0.0 <= r.boxed_rate <= 1.0
        for m in r.metrics.values():
            assert set(m) == {"value", "stderr", "n"} and m["n"] == 5 and 0 <= m["value"] <= 1
        passes = r.sampling["passes"]
        assert passes[0]["temperature"] == 0 and passes[0]["max_tokens"] == 12
        if task in ("aime24", "aime25", "amc23"):
            assert {"acc", "mean@2", "maj@2"} == set(r.metrics)
            assert passes[1]["temperature"] == 0.6 and passes[1]["top_p"] == 0.95 and passes[1]["n"] == 2
        rows = [json.loads(line) for line in (out / f"{task}.samples.jsonl").read_text().splitlines()]
        assert len(rows) == 5
        width = sum(p["n"] for p in passes)
        for row in rows:
            assert set(row) == ROW_KEYS
            assert len(row["completions"]) == len(row["answers"]) == len(row["verdicts"]) == len(row["correct"]) == width
            assert all(set(v) == VERDICT_KEYS for v in row["verdicts"])
    bbeh = EvalResult.from_dict(json.loads((out / "bbeh.json").read_text()))
    assert 1 <= len(bbeh.subtasks) <= 5
    assert not (out / "supergpqa.json").exists()
    assert "| supergpqa | skipped |" in (out / "eval_summary.md").read_text()


def test_eval_tiny_official_protocol(tiny_model_path: Path, tmp_path: Path) -> None:
    """`--protocol official` on the tiny model: greedy AMC, General-Reasoner MMLU-Pro with the random-letter
    fallback counted, BBEH's fallback warning recorded; every result says its protocol."""
    out = tmp_path / "official"
    exe = Path(sys.executable).with_name("rzero-bench")
    env = {**os.environ, "RZERO_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [str(exe), "eval", str(tiny_model_path), "--tasks", "amc23,mmlu_pro,bbeh", "--protocol", "official",
         "--limit", "3", "--max-tokens", "8", "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    amc, mmlu, bbeh = (EvalResult.from_dict(json.loads((out / f"{t}.json").read_text())) for t in ("amc23", "mmlu_pro", "bbeh"))
    assert {amc.protocol, mmlu.protocol, bbeh.protocol} == {"official"}
    assert set(amc.metrics) == {"acc"}
    assert mmlu.sampling["unanswered"] == "random_letter" and mmlu.sampling["system_prompt"] == ""
    assert mmlu.counts["random_fallback"] == mmlu.counts["no_answer"]  # an 8-token answer rarely has a letter
    assert bbeh.warnings and "bbeh-eval" in bbeh.warnings[0] and "bbeh-eval" in proc.stderr
