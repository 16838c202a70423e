"""Pipeline stage logic with scripted generators and fake trainers (no torch): artefacts, counts,
resume semantics, error paths. The real TRL run is in tests/integration/test_run_tiny.py."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from rzero_bench import pipeline as pl
from rzero_bench import stages
from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.config import load_config
from rzero_bench.errors import RunStateError, TrainingError, UserError
from rzero_bench.records import GenerationRequest
from rzero_bench.stages._context import StageContext
from rzero_bench.stages.challenger import reward_options

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", REPO.parent / "shared" / "benchmarks"))
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "gsm8k").is_dir() and not os.environ.get("RZERO_REQUIRE_DATA"),
    reason=f"local benchmark mirror not found at {DATA_DIR} (set RZERO_DATA_DIR)",
)


def responder(req: GenerationRequest, j: int) -> str:
    """Challenger: 'What is a+b?' questions (a few malformed). Solver: right on even samples."""
    system = req.messages[0]["content"]
    if "set problems" in system:  # the challenger prompt
        i = (req.params.seed or 0) % 1000 * 8 + j
        if i % 5 == 4:
            return "I think I will write something without tags."
        a, b = i % 13, i % 7 + 1
        return f"Let me think. <question>What is {a}+{b} apples?</question> \\boxed{{{a + b}}}"
    q = req.messages[-1]["content"]
    m = re.search(r"(\d+)\+(\d+)", q)
    if not m:
        return "no idea"
    a, b = int(m.group(1)), int(m.group(2))
    right = a + b
    if j % 4 == 3:
        return "I cannot decide."
    return f"so the answer is \\boxed{{{right if j % 2 == 0 else right + 1}}}"


def fake_model(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"fake": true}')


calls: list[str] = []


def fake_train_challenger(*, model_path, out_dir, settings, solver, solver_prompt, m, reward_options, log_path,
                          challenger_prompt=None, progress=None, **_):
    calls.append("challenger")
    fake_model(Path(out_dir))
    Path(log_path).write_text(json.dumps({"reward": 0.5}) + "\n")
    return {"steps": settings.max_steps, "wall_time_s": 0.01}


def fake_train_solver(*, model_path, out_dir, settings, dataset, solver_prompt, reward_options, progress=None):
    calls.append("solver")
    assert dataset and all(r["label"] is not None for r in dataset)
    fake_model(Path(out_dir))
    return {"steps": settings.max_steps, "wall_time_s": 0.01, "examples": len(dataset)}


@pytest.fixture
def patched(monkeypatch, tmp_path):
    import rzero_bench.training.grpo as grpo

    calls.clear()
    monkeypatch.setattr(grpo, "train_challenger", fake_train_challenger)
    monkeypatch.setattr(grpo, "train_solver", fake_train_solver)
    monkeypatch.setattr(StageContext, "generator", lambda self, path, role="solver": ScriptedGenerator(responder))
    base = tmp_path / "base"
    fake_model(base)
    return base


def make_cfg(base: Path, **over):
    sets = [f"model={base}", "iterations=1", "selfplay.num_questions=40", "selfplay.m=4", "eval.tasks=[gsm8k]",
            "eval.limit=3", "selfplay.filter_mode=paper", "selfplay.delta=0.25", "solver.prompts_per_step=2"]
    sets += [f"{k}={v}" for k, v in over.items()]
    return load_config(preset="tiny", overrides=sets)


@needs_data
def test_stages_write_artefacts_with_exact_counts(patched, tmp_path):
    cfg = make_cfg(patched)
    manifest = pl.Pipeline(cfg, tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    it = tmp_path / "run" / "iter_1"
    st = manifest["stages"]
    # 40 candidates, every 5th malformed
    assert st["iter_1/questions"]["well_formed"] == 32 and st["iter_1/questions"]["malformed"] == 8
    votes = [json.loads(x) for x in (it / "votes.jsonl").read_text().splitlines()]
    # samples: j=0 right, j=1 right+1, j=2 right, j=3 no answer -> majority 2/4
    assert {v["p_hat"] for v in votes} == {0.5} and all(v["answered"] == 3 for v in votes)
    assert len((it / "attempts.jsonl").read_text().splitlines()) == 32 * 4
    f = json.loads((it / "filter.json").read_text())
    # 32 questions, a+b with a = i%13, b = i%7+1: duplicates are dropped and counted
    assert f["generated"] == 40 and f["malformed"] == 8
    assert f["kept"] + f["drops"]["exact_duplicate"] + f["drops"].get("near_duplicate", 0) == 32
    kept = [json.loads(x) for x in (it / "solver_dataset.jsonl").read_text().splitlines()]
    assert len(kept) == f["kept"] > 0
    q = {json.loads(x)["id"]: json.loads(x) for x in (it / "questions.jsonl").read_text().splitlines()}
    for row in kept:  # the label is the majority answer: the right sum
        a, b = map(int, re.search(r"(\d+)\+(\d+)", q[row["question_id"]]["text"]).groups())
        assert row["label"] == str(a + b)
    assert calls == ["challenger", "solver"]
    assert (tmp_path / "run" / "results" / "iter_1" / "gsm8k.json").is_file()
    assert manifest["finished"]


@needs_data
def test_finished_stages_never_rerun(patched, tmp_path):
    cfg = make_cfg(patched)
    pl.Pipeline(cfg, tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    before = (tmp_path / "run" / "iter_1" / "votes.jsonl").read_bytes()
    calls.clear()
    m = pl.Pipeline(cfg, tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    assert calls == [] and m["resumes"] == 1
    assert all(s["attempts"] == 1 for s in m["stages"].values())
    assert (tmp_path / "run" / "iter_1" / "votes.jsonl").read_bytes() == before


@needs_data
def test_too_few_questions_is_a_clear_error_not_a_silent_zero_step_run(patched, tmp_path):
    cfg = make_cfg(patched, **{"selfplay.filter_mode": "band", "selfplay.band": "[0.9, 1.0]"})
    with pytest.raises(TrainingError, match=r"only 0 question\(s\) survived the filter"):
        pl.Pipeline(cfg, tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    assert "solver" not in calls
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["stages"]["iter_1/filter"]["status"] == "done"
    assert m["stages"]["iter_1/solver"]["status"] == "running"


@needs_data
def test_disk_full_while_saving_a_checkpoint_keeps_finished_work(patched, tmp_path, monkeypatch, capsys):
    import rzero_bench.training.grpo as grpo
    from rzero_bench import cli

    def full_disk(**kw):
        Path(kw["out_dir"]).mkdir(parents=True)
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(kw["out_dir"]) / "model.safetensors"))

    monkeypatch.setattr(grpo, "train_solver", full_disk)
    run_dir = tmp_path / "run"
    argv = ["rzero-bench", "run", "--run-dir", str(run_dir), "--set", f"model={patched}", "-n", "1",
            "--set", "eval.tasks=[gsm8k]", "--set", "eval.limit=2", "--set", "selfplay.num_questions=16",
            "--set", "selfplay.m=4", "--set", "solver.prompts_per_step=2", "--data-dir", str(DATA_DIR)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2
    err = [x for x in capsys.readouterr().err.strip().splitlines() if x.startswith("error:")]
    assert len(err) == 1 and "disk full" in err[0]  # progress lines aside, one error line
    m = json.loads((run_dir / "manifest.json").read_text())
    done = {k: v["outputs"] for k, v in m["stages"].items() if v["status"] == "done"}
    assert set(done) == {"iter_0/eval", "iter_1/challenger", "iter_1/questions", "iter_1/votes", "iter_1/filter"}
    # rerun with space available: resumes at the solver stage, finished outputs unchanged
    monkeypatch.setattr(grpo, "train_solver", fake_train_solver)
    calls.clear()
    with pytest.raises(SystemExit) as e2:
        cli.main()
    assert e2.value.code in (0, None)
    m2 = json.loads((run_dir / "manifest.json").read_text())
    assert calls == ["solver"]
    for k, outputs in done.items():
        assert m2["stages"][k]["outputs"] == outputs


def test_unknown_model_path_and_preset_are_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from rzero_bench import cli

    for argv, needle in [
        (["run", "--run-dir", str(tmp_path / "a"), "--model", "./no/such/model"], "model path not found"),
        (["run", "--run-dir", str(tmp_path / "b"), "--preset", "nope"], "unknown preset"),
        (["run", "--run-dir", str(tmp_path / "c"), "--set", "selfplay.bogus=1"], "unknown config key"),
    ]:
        monkeypatch.setattr("sys.argv", ["rzero-bench", *argv])
        with pytest.raises(SystemExit) as e:
            cli.main()
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and needle in err[0], err
        assert not (tmp_path / argv[2]).exists() or not any((tmp_path / argv[2]).iterdir())


def test_corrupted_run_directory_is_refused(patched, tmp_path):
    cfg = make_cfg(patched)
    rd = tmp_path / "run"
    rd.mkdir()
    (rd / "manifest.json").write_text("{broken")
    with pytest.raises(RunStateError, match="corrupted"):
        pl.Pipeline(cfg, rd, quiet=True).run()


def test_stage_seeds_are_distinct_and_stable():
    seeds = {pl.stage_seed(0, k, s) for k in range(3) for s in pl.STAGES}
    assert len(seeds) == 3 * len(pl.STAGES)
    assert pl.stage_seed(0, 1, "votes") == pl.stage_seed(0, 1, "votes")


def test_resolve_model_specs(tmp_path):
    fake_model(tmp_path / "m")
    assert pl.resolve_model(str(tmp_path / "m")) == str((tmp_path / "m").resolve())
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        pl.resolve_model(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="bad model spec"):
        pl.resolve_model("micro:s@fast")
    assert pl.resolve_model("Qwen/Qwen3-4B-Base") == "Qwen/Qwen3-4B-Base"
    shutil.rmtree(tmp_path / "m")


@needs_data
def test_shuffle_labels_control_permutes_pseudo_labels(patched, tmp_path):
    cfg = make_cfg(patched, **{"controls.shuffle_labels": "true"})
    pl.Pipeline(cfg, tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    rows = [json.loads(x) for x in (tmp_path / "run" / "iter_1" / "solver_dataset.jsonl").read_text().splitlines()]
    assert sorted(r["label"] for r in rows) == sorted(r["label_unshuffled"] for r in rows)
    assert sum(r["label"] != r["label_unshuffled"] for r in rows) > len(rows) // 2


def test_flip_control_reaches_the_challenger_reward(patched):
    cfg = make_cfg(patched, **{"controls.flip_challenger_reward": "true"})
    assert reward_options(cfg)["reward_sign"] == -1.0
    assert reward_options(make_cfg(patched))["reward_sign"] == 1.0


@needs_data
def test_a_finished_run_can_be_extended_with_more_iterations(patched, tmp_path):
    pl.Pipeline(make_cfg(patched), tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    calls.clear()
    m = pl.Pipeline(make_cfg(patched, iterations=2), tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    assert calls == ["challenger", "solver"]  # only iteration 2 ran
    assert m["config"]["iterations"] == 2 and m["finished"]
    assert all(m["stages"][f"iter_1/{s}"]["attempts"] == 1 for s in ("challenger", "votes", "solver", "eval"))
    with pytest.raises(RunStateError, match="another config"):
        pl.Pipeline(make_cfg(patched, **{"selfplay.m": 3}), tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()


def test_stage_registry_lists_the_seven_stages_in_run_order_with_one_signature():
    import importlib
    import inspect

    assert list(stages.STAGES) == ["challenger", "questions", "votes", "filter", "solver", "label_acc", "eval"]
    assert pl.STAGES is stages.STAGES
    signatures = set()
    for name, fn in stages.STAGES.items():
        module = importlib.import_module(f"rzero_bench.stages.{name}")
        assert fn is module.run and fn.__module__ == module.__name__
        # every stage module opens by naming the files it reads and writes
        assert "Reads:" in module.__doc__ and "Writes:" in module.__doc__, name
        sig = inspect.signature(module.run)
        assert list(sig.parameters) == ["ctx", "p"], name
        signatures.add(str(sig))
    assert signatures == {"(ctx: 'StageContext', p: 'IterPaths') -> 'StageResult'"}


def test_old_import_paths_still_resolve_to_the_one_implementation():
    from rzero_bench.selfconsistency import self_consistency
    from rzero_bench.stages._context import resolve_model, stage_seed

    assert pl.self_consistency is self_consistency and pl.stage_seed is stage_seed
    assert pl.resolve_model is resolve_model and pl.reward_options is reward_options
