"""The two-sided LLM judge (``eval --judge``) through the openai backend, against the fake
OpenAI-compatible server of tests/fixtures/openai_server.py on 127.0.0.1."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rzero_bench.backends.scripted import ScriptedGenerator  # noqa: E402
from rzero_bench.errors import UserError  # noqa: E402
from rzero_bench.evaluate import evaluate, rescore  # noqa: E402
from rzero_bench.judge import Judge, make_judge, needs_judge, parse_judge_reply  # noqa: E402
from rzero_bench.records import GenerationRequest  # noqa: E402
from rzero_bench.report.results import primary_metric  # noqa: E402
from rzero_bench.tasks import parse_task  # noqa: E402
from tests.fixtures.openai_server import chat_reply, serve  # noqa: E402

# item -> (reference, the model's boxed answer, what the judge says about that answer)
ITEMS = {
    "0": ("2", "2", None),  # exact match: never sent to the judge
    "1": ("2", "\\frac{4}{2}", "YES"),  # equivalent form, graded right; the judge agrees
    "2": ("3", "5", "YES"),  # graded wrong; the judge accepts it: flipped to correct
    "3": ("4", None, None),  # no answer: never sent
    "4": ("3", "6/2", "NO"),  # graded right (not an exact match); the judge rejects it: flipped to wrong
    "5": ("7", "8", "YES"),  # graded wrong, flipped to correct
}


def spec() -> Any:
    import yaml

    return parse_task(yaml.safe_load("""
task: toy
dataset_path: none/toy
doc_to_text: "Item {{ id }}: what is it?"
doc_to_target: "{{ answer }}"
metadata:
  version: "1"
  grader: math
  local_file: toy/test.jsonl
  id_field: id
"""), "toy.yaml")


def test_judge_flips_both_ways_in_a_separate_metric(tmp_path: Path) -> None:
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    data.joinpath("test.jsonl").write_text("".join(json.dumps({"id": k, "answer": v[0]}) + "\n" for k, v in ITEMS.items()))

    def model(req: GenerationRequest, i: int) -> str:
        item = re.search(r"Item (\d+)", req.messages[-1]["content"]).group(1)  # type: ignore[union-attr]
        ans = ITEMS[item][1]
        return "I do not know." if ans is None else f"so \\boxed{{{ans}}}"

    def judge_server(body: Any) -> Any:
        prompt = body["messages"][-1]["content"]
        item = re.search(r"Item (\d+)", prompt).group(1)  # type: ignore[union-attr]
        return 200, chat_reply([f"Comparing the two... {ITEMS[item][2]}"])

    out = tmp_path / "out"
    with serve(judge_server) as server:
        judge = make_judge(f"openai:judge-model@{server.base_url}", api_key_env="RZB_NO_KEY")
        r = evaluate(ScriptedGenerator(model), [spec()], out, data_dir=tmp_path / "data", progress=False,
                     judge=judge)["toy"]
        asked = sorted(re.search(r"Item (\d+)", q.body["messages"][-1]["content"]).group(1)  # type: ignore[union-attr]
                       for q in server.requests if q.path.endswith("/chat/completions"))
    assert asked == ["1", "2", "4", "5"]  # neither the exact match nor the unanswered item
    # headline untouched: grader says items 0, 1, 4 are right (3/6); judged: 0, 1, 2, 5 (4/6)
    assert r.metrics["acc"]["value"] == pytest.approx(3 / 6)
    assert r.metrics["acc+judge"]["value"] == pytest.approx(4 / 6)
    assert primary_metric(r.metrics) == "acc"
    assert r.judge == {"judge": f"openai:judge-model@{server.base_url}", "checked": 4, "flipped_to_correct": 2,
                       "flipped_to_wrong": 1, "unparsed": 0}
    rows = {row["doc_id"]: row for row in map(json.loads, (out / "toy.samples.jsonl").read_text().splitlines())}
    assert rows["0"]["judge"] == [None] and rows["4"]["judge"][0]["correct"] is False
    # rescoring keeps the saved judge decisions (no server needed)
    again = rescore(out)["toy"]
    assert again.metrics["acc+judge"] == r.metrics["acc+judge"] and again.judge["flipped_to_correct"] == 2


def test_judge_reply_parsing_and_selection() -> None:
    assert parse_judge_reply("YES") is True and parse_judge_reply("No.") is False
    assert parse_judge_reply("At first NO, but on reflection: YES") is True  # the last word counts
    assert parse_judge_reply("I cannot tell") is None and parse_judge_reply("NOTE: yesterday") is None
    assert not needs_judge(None, {"correct": False, "method": "no_answer"})
    assert not needs_judge("2", {"correct": True, "method": "exact"})
    assert needs_judge("2", {"correct": True, "method": "math-verify"})
    assert needs_judge("5", {"correct": False, "method": "math-verify"})
    assert needs_judge("5", {"correct": None, "status": "timeout", "method": "math-verify"})


def test_unparsed_judge_reply_keeps_the_grader_verdict() -> None:
    class Canned:
        def generate(self, reqs: Any) -> Any:
            from rzero_bench.records import Generation

            return [Generation(texts=("hmm",)) for _ in reqs]

    j = Judge("m", "http://127.0.0.1:1/v1", generator=Canned())
    (v,) = j.judge([("q", "1", "2")])
    assert v.correct is None and v.reply == "hmm"


def test_make_judge_errors() -> None:
    with pytest.raises(UserError, match="openai:<model>@<base_url>"):
        make_judge("gpt-4o")
    with pytest.raises(UserError, match="base URL"):
        make_judge("openai:gpt-4o")
