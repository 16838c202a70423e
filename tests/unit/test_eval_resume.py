"""The eval stage resumes per task: a server error on one item keeps the tasks already finished."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.config import load_config
from rzero_bench.errors import BackendError
from rzero_bench.stages import eval as eval_stage
from rzero_bench.stages._context import IterPaths, StageContext
from rzero_bench.tasks import resolve_tasks

DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "benchmarks"))
pytestmark = pytest.mark.skipif(not (DATA_DIR / "gsm8k").is_dir(), reason="needs RZERO_DATA_DIR")
MODEL = "solver-under-test"


def _ctx(tmp_path, monkeypatch, respond):
    cfg = load_config(preset="tiny", overrides=["eval.tasks=[gsm8k, amc23]", "eval.limit=2", "eval.max_samples=2"])
    ctx = StageContext(cfg, tmp_path / "run", data_dir=DATA_DIR, quiet=True)
    made: list[ScriptedGenerator] = []

    def generator(model_path, *, role="solver"):
        gen = ScriptedGenerator(respond, model_id=model_path)
        made.append(gen)
        return gen

    monkeypatch.setattr(ctx, "generator", generator)
    monkeypatch.setattr(ctx, "model_for", lambda role, k: MODEL)
    return ctx, made


def test_a_failing_item_keeps_the_finished_tasks(tmp_path, monkeypatch):
    def flaky(request, j):
        if request.id.startswith("amc23/"):
            raise BackendError("openai backend: POST /v1/chat/completions returned HTTP 400: too long")
        return "so \\boxed{42}"

    ctx, _ = _ctx(tmp_path, monkeypatch, flaky)
    out = ctx.run_dir / "results" / "iter_1"
    with pytest.raises(BackendError):
        eval_stage.run(ctx, IterPaths(ctx.run_dir, 1))  # gsm8k runs first and finishes, amc23 fails
    assert (out / "gsm8k.json").is_file() and not (out / "amc23.json").exists()
    gsm8k_before = (out / "gsm8k.samples.jsonl").read_bytes()

    ctx2, made = _ctx(tmp_path, monkeypatch, "so \\boxed{42}")
    info = eval_stage.run(ctx2, IterPaths(ctx2.run_dir, 1))
    asked = {r.id.split("/")[0] for g in made for r in g.requests}
    assert asked == {"amc23"}  # only the unfinished task is generated again
    assert set(info["scores"]) == {"gsm8k", "amc23"}
    assert (out / "gsm8k.samples.jsonl").read_bytes() == gsm8k_before
    summary = (out / "eval_summary.md").read_text()
    assert "| gsm8k |" in summary and "| amc23 |" in summary


def test_stale_or_foreign_task_files_are_redone(tmp_path, monkeypatch):
    ctx, _ = _ctx(tmp_path, monkeypatch, "so \\boxed{42}")
    eval_stage.run(ctx, IterPaths(ctx.run_dir, 1))
    out = ctx.run_dir / "results" / "iter_1"
    # another model's result, and a truncated samples file: neither counts as finished
    r = json.loads((out / "gsm8k.json").read_text())
    (out / "gsm8k.json").write_text(json.dumps({**r, "model": "some-other-model"}))
    (out / "amc23.samples.jsonl").write_text((out / "amc23.samples.jsonl").read_text().splitlines()[0] + "\n")
    specs = resolve_tasks(tasks=["gsm8k", "amc23"])
    assert eval_stage.finished_results(out, specs, model=MODEL) == {}
    assert not any(out.iterdir())  # the stale files are gone before the rerun writes new ones
