"""evaluate / rescore / metrics with the scripted backend on small local data; CLI error paths."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.errors import RunStateError
from rzero_bench.evaluate import SUMMARY_FILE, evaluate, extract_answer, request_seed, rescore
from rzero_bench.metrics import majority_correct, mean_stderr, pass_at_k
from rzero_bench.records import EvalResult, GenerationRequest
from rzero_bench.tasks import load_task, parse_task

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
ROW_KEYS = {"doc_id", "prompt_hash", "reference", "completions", "answers", "verdicts", "correct", "subtask"}


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from rzero_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["rzero-bench", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tiny data directory: 4 arithmetic items for a gsm8k-like task and 3 for an aime-like one."""
    d = tmp_path / "data"
    (d / "toy").mkdir(parents=True)
    rows = [{"question": f"What is {i} + {i}?", "answer": f"double\n#### {2 * i}", "kind": "even" if i % 2 == 0 else "odd"} for i in range(1, 5)]
    (d / "toy" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return d


def toy_spec(metrics: str = "    - name: acc\n") -> Any:
    import yaml

    text = f"""
task: toy
dataset_path: none/toy
doc_to_text: "{{{{ question }}}}"
doc_to_target: "{{{{ answer.split('####')[-1] | trim }}}}"
metadata:
  version: "1"
  grader: math
  local_file: toy/test.jsonl
  category_field: kind
  metrics:
{metrics}"""
    return parse_task(yaml.safe_load(text), "toy.yaml")


def answer_of(req: GenerationRequest) -> int:
    q = req.messages[-1]["content"]
    a = int(q.split()[2])
    return 2 * a


# ----------------------------------------------------------------------------- metrics
def test_pass_at_k() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert math.isclose(pass_at_k(10, 3, 1), 0.3)
    assert math.isclose(pass_at_k(5, 2, 2), 1 - math.comb(3, 2) / math.comb(5, 2))
    assert pass_at_k(4, 1, 4) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_mean_stderr_and_majority() -> None:
    assert mean_stderr([]) == (0.0, 0.0)
    assert mean_stderr([1.0]) == (1.0, 0.0)
    m, se = mean_stderr([1, 0, 1, 0])
    assert m == 0.5 and math.isclose(se, math.sqrt((4 * 0.25 / 3) / 4))
    assert majority_correct([[0, 2], [1]], [True, False, True])
    assert majority_correct([[1], [0]], [True, False])  # tie: the cluster seen first wins
    assert not majority_correct([[1], [0]], [False, True])
    assert majority_correct([[0], [1]], [True, False]) and not majority_correct([], [])


def test_extract_answer_kinds() -> None:
    assert extract_answer("so \\boxed{12}.", "math") == "12"
    assert extract_answer("no box", "math") is None
    assert extract_answer("The answer is \\boxed{C}", "choice", "ABCD") == "C"
    assert extract_answer("The answer is: (b)", "bbeh") == "(b)"
    assert extract_answer("so \\boxed{yes, no}", "bbeh") == "yes, no"


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_writes_schema_and_scores(data_dir: Path, tmp_path: Path) -> None:
    spec = toy_spec()

    def responder(req: GenerationRequest, i: int) -> str:
        a = answer_of(req)
        return f"so the answer is \\boxed{{{a if a != 4 else 5}}}"  # item 2 wrong

    gen = ScriptedGenerator(responder, model_id="toy-model")
    out = tmp_path / "out"
    results = evaluate(gen, [spec], out, data_dir=data_dir, progress=False)
    r = results["toy"]
    assert r.metrics["acc"]["value"] == 0.75 and r.metrics["acc"]["n"] == 4
    assert r.task_hash == spec.hash and r.task_version == "1" and r.model == "toy-model" and r.backend == "scripted"
    assert r.boxed_rate == 1.0 and r.counts["items"] == 4 and r.counts["no_answer"] == 0
    assert set(r.subtasks) == {"even", "odd"} and r.subtasks["even"]["acc"]["value"] == 0.5
    saved = json.loads((out / "toy.json").read_text())
    assert EvalResult.from_dict(saved) == r
    assert saved["sampling"]["passes"][0]["temperature"] == 0 and saved["sampling"]["passes"][0]["max_tokens"] == 4096
    assert "reason step by step" in saved["sampling"]["system_prompt"]
    rows = [json.loads(line) for line in (out / "toy.samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(set(row) == ROW_KEYS for row in rows)
    assert [row["correct"] for row in rows] == [[True], [False], [True], [True]]
    assert rows[1]["reference"] == "4" and rows[1]["answers"] == ["5"]
    assert all(len(row["prompt_hash"]) == 64 for row in rows)
    assert (out / SUMMARY_FILE).read_text().count("| toy |") == 1
    # every request carries the solver system prompt and greedy params
    assert all(req.messages[0]["role"] == "system" and req.params.temperature == 0 for req in gen.requests)


def test_sampled_metrics_are_sampled(data_dir: Path, tmp_path: Path) -> None:
    spec = toy_spec(
        "    - name: acc\n"
        "    - {name: mean@k, k: 4, temperature: 0.6, top_p: 0.95}\n"
        "    - {name: maj@k, k: 4, temperature: 0.6, top_p: 0.95}\n"
        "    - {name: pass@k, k: 2, temperature: 0.6, top_p: 0.95}\n"
    )

    def responder(req: GenerationRequest, i: int) -> str:
        a = answer_of(req)
        if req.params.temperature == 0:
            return f"\\boxed{{{a}}}"
        # samples: right, wrong, right, no answer -> mean 0.5, maj right (2 vs 1), pass@2 = 1 - C(2,2)/C(4,2)
        return [f"\\boxed{{{a}}}", "\\boxed{-1}", f"\\boxed{{{a}}}", "I give up"][i]

    gen = ScriptedGenerator(responder)
    r = evaluate(gen, [spec], tmp_path / "out", data_dir=data_dir, max_tokens=64, seed=7, progress=False)["toy"]
    assert r.metrics["acc"]["value"] == 1.0
    assert r.metrics["mean@4"]["value"] == 0.5
    assert r.metrics["maj@4"]["value"] == 1.0
    assert math.isclose(r.metrics["pass@2"]["value"], 1 - 1 / 6)
    sampled = [q for q in gen.requests if q.params.temperature > 0]
    assert len(sampled) == 4 and all(q.params.n == 4 and q.params.top_p == 0.95 for q in sampled)
    # each item's sampled request has its own seed, derived from --seed 7, the task, the item and the pass
    assert [q.params.seed for q in sampled] == [
        request_seed(7, "toy", q.id.split("/")[1], q.id.split("/")[2]) for q in sampled
    ]
    assert all(q.params.max_tokens == 64 for q in gen.requests)
    passes = r.sampling["passes"]
    assert [(p["n"], p["offset"]) for p in passes] == [(1, 0), (4, 1)]
    assert r.counts["no_answer"] == 4 and r.counts["completions"] == 20


def test_limit_recorded(data_dir: Path, tmp_path: Path) -> None:
    gen = ScriptedGenerator("\\boxed{2}")
    r = evaluate(gen, [toy_spec()], tmp_path / "o", data_dir=data_dir, limit=2, seed=5, progress=False)["toy"]
    assert r.limit == 2 and r.seed == 5 and r.counts["items"] == 2


def test_suite_skips_missing_local_data(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = evaluate(ScriptedGenerator("\\boxed{A}"), [toy_spec(), load_task("supergpqa")], out, data_dir=data_dir,
                   progress=False, skip_missing=True)
    assert list(res) == ["toy"]
    assert "| supergpqa | skipped |" in (out / SUMMARY_FILE).read_text()


def test_supergpqa_fixture_end_to_end(tmp_path: Path) -> None:
    spec = load_task("supergpqa")

    def responder(req: GenerationRequest, i: int) -> str:
        return "The answer is \\boxed{B}."

    r = evaluate(ScriptedGenerator(responder), [spec], tmp_path / "o", data_dir=FIXTURES, progress=False)["supergpqa"]
    n_b = sum(json.loads(line)["answer_letter"] == "B" for line in (FIXTURES / "supergpqa" / "SuperGPQA-all.jsonl").open())
    assert r.metrics["acc"]["value"] == n_b / 12 and r.counts["items"] == 12


# ----------------------------------------------------------------------------- rescore
def test_rescore_roundtrip_and_regrade(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    evaluate(ScriptedGenerator(lambda req, i: f"\\boxed{{{answer_of(req)}}}"), [toy_spec()], out, data_dir=data_dir,
             progress=False)
    before = json.loads((out / "toy.json").read_text())
    again = rescore(out)["toy"]
    assert again.metrics == before["metrics"]
    # edit one completion: the new grade must show up in the metrics
    rows = [json.loads(line) for line in (out / "toy.samples.jsonl").read_text().splitlines()]
    rows[0]["completions"] = ["oops \\boxed{999}"]
    (out / "toy.samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, stdout, err = run_cli(["rescore", str(out)], monkeypatch, capsys)
    assert code == 0, err
    after = json.loads((out / "toy.json").read_text())
    assert after["metrics"]["acc"]["value"] == 0.75 and "toy: acc 75.00" in stdout


@pytest.mark.parametrize("damage", ["truncated-json", "missing-key", "wrong-width", "not-utf8"])
def test_rescore_corrupted_samples_exit_2_untouched(damage: str, data_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    evaluate(ScriptedGenerator("\\boxed{2}"), [toy_spec()], out, data_dir=data_dir, progress=False)
    sf = out / "toy.samples.jsonl"
    lines = sf.read_text().splitlines()
    if damage == "truncated-json":
        data = ("\n".join(lines[:2]) + "\n" + lines[2][:40]).encode()
    elif damage == "missing-key":
        row = json.loads(lines[1])
        del row["completions"]
        data = "\n".join([lines[0], json.dumps(row), *lines[2:]]).encode()
    elif damage == "wrong-width":
        row = json.loads(lines[1])
        row["completions"] = row["completions"] * 2
        data = "\n".join([lines[0], json.dumps(row), *lines[2:]]).encode()
    else:
        data = sf.read_bytes()[:50] + b"\xff\xfe" + sf.read_bytes()[50:]
    sf.write_bytes(data)
    result_before = (out / "toy.json").read_bytes()
    with pytest.raises(RunStateError):
        rescore(out)
    code, _o, err = run_cli(["rescore", str(out)], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "corrupted" in err
    assert sf.read_bytes() == data and (out / "toy.json").read_bytes() == result_before


# ----------------------------------------------------------------------------- CLI bad input
def test_eval_unknown_task(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _o, err = run_cli(["eval", "some-model", "--tasks", "gsm8k,mmlu-pro"], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown task 'mmlu-pro'" in err and "did you mean 'mmlu_pro'" in err


def test_eval_missing_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _o, err = run_cli(["eval", "some-model", "--tasks", "gsm8k", "--data-dir", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "gsm8k/test.jsonl not found" in err


def test_eval_offline_without_data_dir(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("RZERO_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _o, err = run_cli(["eval", "some-model", "--suite", "math"], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "RZERO_DATA_DIR" in err


def test_rescore_missing_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _o, err = run_cli(["rescore", str(tmp_path / "nope")], monkeypatch, capsys)
    assert code == 2 and "not found" in err


# ----------------------------------------------------------------------------- seeds (issue 12)
class StreamGenerator(ScriptedGenerator):
    """Plays a sampling backend by the seeding contract every backend follows: sample ``j`` of a
    request with seed ``s`` draws from the stream ``row_rng(s, j)`` (the hf backend's own function),
    so a completion here is the first number of that stream."""

    def generate(self, requests: Any, progress: Any = None) -> Any:
        from rzero_bench.backends.hf import row_rng
        from rzero_bench.records import Generation

        self.requests.extend(requests)
        out = []
        for r in requests:
            texts = tuple(f"\\boxed{{{row_rng(r.params.seed, j).random():.12f}}}" for j in range(r.params.n))
            out.append(Generation(texts=texts, finish_reasons=("stop",) * len(texts), completion_tokens=(1,) * len(texts), id=r.id))
        return out


def test_every_item_and_sample_draws_its_own_stream(tmp_path: Path) -> None:
    """Sampled metrics draw a distinct random stream per item and per sample. Items 0 and 1 have the
    same prompt: with one seed shared by every item (the old behaviour) their 4 samples would be the
    same 4 texts, and sample j of every item would share one stream."""
    d = tmp_path / "data"
    (d / "toy").mkdir(parents=True)
    rows = [{"question": "What is 1 + 1?", "answer": "#### 2", "kind": "a"}] * 2 + [
        {"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}", "kind": "b"} for i in (2, 3)
    ]
    (d / "toy" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = toy_spec("    - {name: mean@k, k: 4, temperature: 0.6, top_p: 0.95}\n")

    def completions(seed: int) -> list[list[str]]:
        out = tmp_path / f"out{seed}"
        evaluate(StreamGenerator(lambda r, i: ""), [spec], out, data_dir=d, seed=seed, progress=False)
        return [json.loads(line)["completions"] for line in (out / "toy.samples.jsonl").read_text().splitlines()]

    first = completions(7)
    flat = [c for item in first for c in item]
    assert len(flat) == 16 and len(set(flat)) == 16  # 4 items x 4 samples, all distinct streams
    assert first[0] != first[1]  # same prompt, different items: different samples
    assert completions(7) == first  # fixed by the seed ...
    assert not set(flat) & {c for item in completions(8) for c in item}  # ... and changed by it


class CuttingGenerator(ScriptedGenerator):
    """Reports that the prompts of items with an odd operand did not fit the context (as the hf backend does)."""

    def generate(self, requests: Any, progress: Any = None) -> Any:
        import dataclasses

        out = super().generate(requests, progress)
        return [dataclasses.replace(g, prompt_cut=7 if (answer_of(r) // 2) % 2 else 0) for r, g in zip(requests, out, strict=True)]


def test_cut_prompts_are_counted_and_noted(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = evaluate(CuttingGenerator(lambda req, i: f"\\boxed{{{answer_of(req)}}}"), [toy_spec()], out, data_dir=data_dir,
                 progress=False)["toy"]
    odd = sum(1 for line in (out / "toy.samples.jsonl").read_text().splitlines()
              if (int(json.loads(line)["reference"]) // 2) % 2)
    assert odd > 0 and r.counts["prompt_cut"] == odd
    assert f"toy: {odd} of 4 prompts were longer than the model's context" in (out / SUMMARY_FILE).read_text()
    # nothing cut: no count and no note
    r2 = evaluate(ScriptedGenerator("\\boxed{2}"), [toy_spec()], tmp_path / "o2", data_dir=data_dir, progress=False)["toy"]
    assert "prompt_cut" not in r2.counts and "context" not in (tmp_path / "o2" / SUMMARY_FILE).read_text()
