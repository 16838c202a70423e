"""Gold replay on the FULL local data: a scripted model that answers every item with its reference
("... so the answer is \\boxed{<gold>}", the letter for multiple choice) must score 100%, except
the items listed below with their reason; a deliberately wrong answer must score 0%.

Runs on every item of every task (about 20k items, ~20 s: exact matches are cheap, each distinct
(reference, answer) pair is graded once). SuperGPQA has no local mirror; it replays the fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.evaluate import evaluate_task
from rzero_bench.records import GenerationRequest
from rzero_bench.tasks import DOC_ID_KEY, list_tasks, load_docs, load_task

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", REPO.parent / "shared" / "benchmarks"))
FIXTURES = REPO / "tests" / "fixtures"

pytestmark = pytest.mark.skipif(
    not (DATA_DIR / "gsm8k").is_dir() and not os.environ.get("RZERO_REQUIRE_DATA"),
    reason=f"local benchmark mirror not found at {DATA_DIR}",
)

# (task, doc_id) -> why the gold answer, written as a model would, cannot score. Empty: every item
# of every task replays (checked against the grader at the time of writing; a grader change that
# breaks an item must either be fixed or add the item here with its reason).
CANNOT_REPLAY: dict[tuple[str, str], str] = {}


def _data_dir(task: str) -> Path:
    return FIXTURES if task == "supergpqa" else DATA_DIR


def _replay(task: str, wrong: bool) -> tuple[object, list[dict[str, object]]]:
    spec = load_task(task)
    docs = load_docs(spec, data_dir=_data_dir(task))
    gold = {f"{spec.task}/{d[DOC_ID_KEY]}": spec.render_target(d) for d in docs}
    choices = {f"{spec.task}/{d[DOC_ID_KEY]}": spec.render_choices(d) for d in docs}

    def responder(req: GenerationRequest, i: int) -> str:
        key = req.id.rsplit("/", 1)[0]
        answer = gold[key]
        if wrong:
            letters = choices[key]
            if letters:  # another valid letter
                answer = letters[(letters.index(answer) + 1) % len(letters)]
            elif spec.metadata.grader == "bbeh":
                answer = "zzqx-not-an-answer"
            else:
                answer = "-987654321.5"
        return f"Let me work through this step by step. ... so the answer is \\boxed{{{answer}}}."

    result, rows = evaluate_task(ScriptedGenerator(responder, honour_max_tokens=False), spec, docs)
    return result, rows


@pytest.mark.parametrize("task", list_tasks())
def test_gold_replay_scores_100(task: str) -> None:
    result, rows = _replay(task, wrong=False)
    failing = {(task, str(r["doc_id"])): (r["reference"], r["answers"], r["verdicts"]) for r in rows if not all(r["correct"])}  # type: ignore[call-overload]
    expected = {k for k in CANNOT_REPLAY if k[0] == task}
    assert set(failing) == expected, {k: v for k, v in failing.items() if k not in expected}
    n = len(rows)
    for name, metric in result.metrics.items():  # type: ignore[attr-defined]
        assert metric["n"] == n
        assert metric["value"] == pytest.approx((n - len(expected)) / n), name
    assert result.counts["no_answer"] == 0 and result.counts["timeouts"] == 0 and result.counts["errors"] == 0  # type: ignore[attr-defined]
    if task == "bbeh":
        assert len(result.subtasks) == 23  # type: ignore[attr-defined]


@pytest.mark.parametrize("task", list_tasks())
def test_wrong_answer_scores_0(task: str) -> None:
    result, rows = _replay(task, wrong=True)
    right = [r["doc_id"] for r in rows if any(r["correct"])]  # type: ignore[call-overload]
    assert right == []
    for metric in result.metrics.values():  # type: ignore[attr-defined]
        assert metric["value"] == 0.0
