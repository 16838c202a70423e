"""`rzero-bench eval` options: protocol, output directory, model specs, --model-args, --gen-kwargs,
--include-path, --apply-chat-template, --system-instruction, --max-k (and its deprecated alias),
--output-format. The model is the scripted backend (``make_generator`` is replaced), so every
test runs the real command path in well under a second.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import rzero_bench.backends as backends
from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.errors import UserError
from rzero_bench.evaluate import eval_command, model_dir_name, parse_gen_kwargs, parse_kv
from rzero_bench.protocols import plan_tasks
from rzero_bench.records import GenerationRequest

TOY = """\
task: toy
dataset_path: none/toy
doc_to_text: "{{ question }}"
doc_to_target: "{{ answer }}"
generation_kwargs: {max_gen_toks: 32}
metadata:
  version: "1"
  grader: math
  local_file: toy/test.jsonl
  metrics:
    - name: acc
    - {name: mean@k, k: 8, temperature: 0.6, top_p: 0.95}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A tasks directory with one toy task (as --include-path), its data, and a scripted model that
    answers every item right; ``made`` records each make_generator call (backend, model, options)."""
    inc = tmp_path / "mytasks"
    inc.mkdir()
    (inc / "toy.yaml").write_text(TOY, encoding="utf-8")
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    data.joinpath("test.jsonl").write_text(
        "".join(json.dumps({"question": f"{i}", "answer": str(i)}) + "\n" for i in range(3)), encoding="utf-8"
    )
    made: list[tuple[str, str, dict[str, Any]]] = []
    gens: list[ScriptedGenerator] = []

    def fake(backend: str, model: str, **options: Any) -> ScriptedGenerator:
        made.append((backend, model, options))

        def responder(req: GenerationRequest, i: int) -> str:
            return f"\\boxed{{{req.messages[-1]['content']}}}"

        gens.append(ScriptedGenerator(responder, model_id=model))
        return gens[-1]

    monkeypatch.setattr(backends, "make_generator", fake)
    monkeypatch.chdir(tmp_path)
    return {"inc": inc, "data": tmp_path / "data", "made": made, "gens": gens, "tmp": tmp_path}


def run(env: dict[str, Any], model: str = "org/model", **kw: Any) -> dict[str, Any]:
    kw.setdefault("tasks", "toy")
    kw.setdefault("include_paths", [env["inc"]])
    kw.setdefault("data_dir", env["data"])
    return eval_command(model=model, **kw)


# ----------------------------------------------------------------------------- output directory
def test_default_output_dir_names() -> None:
    assert model_dir_name("Qwen/Qwen3-4B-Base") == "Qwen__Qwen3-4B-Base"
    assert model_dir_name("gpt2") == "gpt2"


def test_two_checkpoints_named_solver_never_share_a_directory(env: dict[str, Any]) -> None:
    a = env["tmp"] / "runs" / "tiny" / "iter_1" / "solver"
    b = env["tmp"] / "runs" / "tiny" / "iter_2" / "solver"
    for d in (a, b):
        d.mkdir(parents=True)
    run(env, str(a))
    run(env, str(b))
    dirs = sorted(p.name for p in (env["tmp"] / "results").iterdir())
    assert len(dirs) == 2 and dirs[0].startswith("iter_1__solver-") and dirs[1].startswith("iter_2__solver-")
    models = {json.loads((env["tmp"] / "results" / d / "toy.json").read_text())["model"] for d in dirs}
    assert models == {str(a), str(b)}
    run(env, str(a))  # the same checkpoint again: its own directory, rewritten
    assert len(list((env["tmp"] / "results").iterdir())) == 2
    with pytest.raises(UserError, match="another model"):  # never over another model's results
        run(env, str(b), output=env["tmp"] / "results" / dirs[0])


def test_hub_model_default_dir(env: dict[str, Any]) -> None:
    run(env, "org/model")
    assert (env["tmp"] / "results" / "org__model" / "toy.json").is_file()


# ----------------------------------------------------------------------------- protocol
def test_protocol_recorded_and_unknown_refused(env: dict[str, Any]) -> None:
    r = run(env, protocol="official")["toy"]
    assert r.protocol == "official"  # a task the protocol leaves alone keeps its definition and hash
    assert r.task_hash == plan_tasks(tasks="toy", include_paths=[env["inc"]])[0].task_hash
    with pytest.raises(UserError, match="did you mean 'official'"):
        run(env, protocol="oficial")


# ----------------------------------------------------------------------------- --include-path
def test_include_path_adds_to_the_shipped_tasks(env: dict[str, Any]) -> None:
    names = [t.task for t in plan_tasks(suite="math", tasks="toy", include_paths=[env["inc"]])]
    assert names[-1] == "toy" and "gsm8k" in names  # shipped suite + the user's task
    (env["inc"] / "gsm8k.yaml").write_text(TOY.replace("task: toy", "task: gsm8k"), encoding="utf-8")
    with pytest.raises(UserError, match="defined twice"):
        plan_tasks(tasks="gsm8k", include_paths=[env["inc"]])
    with pytest.raises(UserError, match="unknown task 'toy'"):
        plan_tasks(tasks="toy")  # without the include path it is not known
    with pytest.raises(UserError, match="not a directory"):
        plan_tasks(tasks="toy", include_paths=[env["tmp"] / "missing"])


# ----------------------------------------------------------------------------- --gen-kwargs
def test_gen_kwargs_override_the_main_pass(env: dict[str, Any]) -> None:
    base = run(env, output=env["tmp"] / "a")["toy"]
    r = run(env, gen_kwargs="max_new_tokens=7,until=END|STOP", output=env["tmp"] / "b")["toy"]
    main = [q for q in env["gens"][-1].requests if q.params.temperature == 0]
    assert {q.params.max_tokens for q in main} == {7} and main[0].params.stop == ("END", "STOP")
    assert r.sampling["passes"][0]["max_tokens"] == 7
    assert r.task_hash != base.task_hash  # a different definition is never averaged with the other
    assert parse_gen_kwargs("temperature=0.5,top_k=20") == {"temperature": 0.5, "top_k": 20}
    with pytest.raises(UserError, match="unknown key 'temprature'"):
        parse_gen_kwargs("temprature=0.5")
    with pytest.raises(UserError, match="key=value"):
        parse_gen_kwargs("temperature")


# ----------------------------------------------------------------------------- --system-instruction
def test_system_instruction_replaces_or_removes_the_system_prompt(env: dict[str, Any]) -> None:
    r = run(env, system_instruction="Answer tersely.", output=env["tmp"] / "a")["toy"]
    assert {q.messages[0]["content"] for q in env["gens"][-1].requests} == {"Answer tersely."}
    assert r.sampling["system_prompt"] == "Answer tersely."
    run(env, system_instruction="", output=env["tmp"] / "b")
    assert {q.messages[0]["role"] for q in env["gens"][-1].requests} == {"user"}


# ----------------------------------------------------------------------------- --model-args, chat template
def test_model_args_reach_the_backend(env: dict[str, Any]) -> None:
    run(env, model_args="dtype=bfloat16,tensor_parallel_size=2,trust_remote_code=true,revision=abc123")
    backend, _, options = env["made"][-1]
    assert backend == "hf" and options == {"batch_size": 16, "dtype": "bfloat16", "tensor_parallel_size": 2,
                                           "trust_remote_code": True, "revision": "abc123"}
    with pytest.raises(UserError, match="unknown key"):
        run(env, model_args="dtyp=bfloat16")
    assert parse_kv("a=1, b = x ,c=0.5,d=false", "--model-args") == {"a": 1, "b": "x", "c": 0.5, "d": False}


def test_no_chat_template_sends_a_plain_prompt(env: dict[str, Any]) -> None:
    from rzero_bench.backends.base import render_chat
    from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT

    r = run(env, apply_chat_template=False)["toy"]
    msgs = [q.messages for q in env["gens"][-1].requests]
    assert ({"role": "prompt", "content": f"{SOLVER_SYSTEM_PROMPT}\n\n1"},) in msgs and all(len(m) == 1 for m in msgs)
    assert r.sampling["chat_template"] == "none (plain prompt)"

    class Tok:  # a tokenizer with a chat template: a plain prompt must bypass it
        chat_template = "{{ messages }}"

        def apply_chat_template(self, *a: Any, **k: Any) -> str:
            raise AssertionError("chat template applied to a plain prompt")

    assert render_chat(Tok(), [{"role": "prompt", "content": "Q: 1+1?"}]) == ("Q: 1+1?", "none")
    with pytest.raises(UserError, match="local backend"):
        run(env, apply_chat_template=False, backend="openai", base_url="http://127.0.0.1:9/v1")


# ----------------------------------------------------------------------------- --max-k
def test_max_k_caps_sampled_metrics(env: dict[str, Any]) -> None:
    r = run(env, max_k=2)["toy"]
    assert set(r.metrics) == {"acc", "mean@2"}


# ----------------------------------------------------------------------------- --output-format
def test_output_format_lmeval(env: dict[str, Any]) -> None:
    run(env, output_format="lm-eval", output=env["tmp"] / "out")
    (path,) = (env["tmp"] / "out").glob("results_*.json")
    doc = json.loads(path.read_text())
    assert doc["results"]["rzero_toy"]["acc,none"] == 1.0 and doc["model_name"] == "org/model"
    with pytest.raises(UserError, match="--output-format"):
        run(env, output_format="lighteval")


# ----------------------------------------------------------------------------- the CLI layer
def cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from rzero_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["rzero-bench", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def test_cli_flags_reach_eval_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    import rzero_bench.evaluate as ev
    import rzero_bench.pipeline as pipeline

    seen: dict[str, Any] = {}
    monkeypatch.setattr(ev, "eval_command", lambda **kw: seen.update(kw))
    monkeypatch.setattr(pipeline, "resolve_model", lambda spec, seed=0: str(tmp_path / "built"))
    code, err = cli(["eval", "tiny:xs", "--tasks", "gsm8k", "--protocol", "official", "--max-samples", "4",
                     "--no-apply-chat-template", "--system-instruction", "", "--gen-kwargs", "temperature=0",
                     "--model-args", "dtype=float32", "--include-path", str(tmp_path), "--include-path", str(tmp_path),
                     "--output-format", "lm-eval"], monkeypatch, capsys)
    assert code == 0, err
    assert "--max-samples is deprecated" in err
    assert seen["model"] == str(tmp_path / "built") and seen["model_label"] == "tiny:xs"
    assert seen["max_k"] == 4 and seen["protocol"] == "official" and seen["apply_chat_template"] is False
    assert seen["system_instruction"] == "" and seen["gen_kwargs"] == "temperature=0"
    assert seen["model_args"] == "dtype=float32" and seen["include_paths"] == [tmp_path, tmp_path]
    assert seen["output_format"] == "lm-eval"
    code, err = cli(["eval", "m", "--tasks", "gsm8k", "--max-k", "2", "--max-samples", "4"], monkeypatch, capsys)
    assert code == 2 and "pass only --max-k" in err


def test_eval_help_explains_every_flag(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rzero_bench.cli import app

    out = " ".join(CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"}).output.split())
    for flag, words in {
        "--protocol": "official", "--model-args": "tensor_parallel_size", "--gen-kwargs": "max_gen_toks",
        "--include-path": "added to the shipped", "--apply-chat-template": "chat template",
        "--no-apply-chat-template": "plain", "--system-instruction": "System prompt", "--max-k": "Cap k",
        "--max-samples": "Deprecated alias", "--output-format": "lm-eval", "--output": "org__name", "--judge": "both ways",
    }.items():
        assert flag in out and words in out, flag


def test_run_include_path_sets_the_eval_stage_tasks(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import rzero_bench.pipeline as pipeline
    from rzero_bench.config import load_config

    seen: dict[str, Any] = {}
    monkeypatch.setattr(pipeline, "run_command", lambda **kw: seen.update(kw))
    code, err = cli(["run", "--preset", "micro", "--include-path", str(tmp_path)], monkeypatch, capsys)
    assert code == 0, err
    (override,) = [o for o in seen["overrides"] if o.startswith("eval.include_paths=")]
    cfg = load_config(None, preset="micro", overrides=[override, "eval.protocol=official"])
    assert cfg.eval.include_paths == [str(tmp_path.resolve())] and cfg.eval.protocol == "official"
    # what the eval stage plans from that config (rzero_bench.stages.eval.run): shipped + included, under the protocol
    (tmp_path / "toy.yaml").write_text(TOY, encoding="utf-8")
    planned = plan_tasks(tasks=["micro_arith", "toy"], protocol=cfg.eval.protocol, include_paths=cfg.eval.include_paths)
    assert [(t.task, t.protocol) for t in planned] == [("micro_arith", "official"), ("toy", "official")]


def test_model_args_load_the_real_hf_backend(tiny_model_path: Path) -> None:
    """--model-args reach HFGenerator's constructor as typed keyword options (revision included)."""
    import torch

    from rzero_bench.backends import make_generator as real_make_generator

    opts = parse_kv("dtype=float32,revision=main,threads=1,device=cpu", "--model-args")
    with real_make_generator("hf", str(tiny_model_path), **opts) as gen:
        assert gen.revision == "main" and gen.dtype == torch.float32 and gen.device == "cpu"  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="bad options"):
        real_make_generator("hf", str(tiny_model_path), tensor_parallel_size=2)  # a vllm option


def test_eval_summary_in_a_log_is_not_cut_to_80_columns(tiny_model_path: Path, tmp_path: Path) -> None:
    import os
    import subprocess

    from rzero_bench.resources import shipped_dir

    long = "micro_arith_with_a_name_long_enough_to_widen_the_table"  # the table needs > 80 columns
    inc = tmp_path / "inc"
    inc.mkdir()
    text = (shipped_dir("tasks") / "micro_arith.yaml").read_text().replace("task: micro_arith", f"task: {long}")
    (inc / f"{long}.yaml").write_text(text)
    exe = Path(sys.executable).with_name("rzero-bench")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([str(exe), "eval", str(tiny_model_path), "--tasks", long, "--include-path", str(inc),
                           "--limit", "2", "--max-tokens", "4", "-o", str(tmp_path / "out")], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    header = next(line for line in proc.stderr.splitlines() if "metric" in line and "task" in line)
    assert "no answer" in header and "wall s" in header and len(header) > 80 and "…" not in proc.stderr
    assert any(long in line for line in proc.stderr.splitlines())  # the name is not cut either
