"""audit-grader: planted answers on which graders are known to disagree give exact two-sided counts;
a pathological answer times out in its worker without stopping the others; a missing mathruler
is reported, not fatal; an LLM judge on 127.0.0.1 is a grader like the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rzero_bench.errors import UserError
from rzero_bench.report import audit as audit_mod
from rzero_bench.report.audit import audit, disagreements, load_pairs, run_killable
from rzero_bench.store import atomic_write_json, atomic_write_jsonl

REPO = Path(__file__).resolve().parents[2]

# (reference, answer): math-verify accepts the first two (equal values; a set in another order),
# mathruler rejects them (unreduced fractions are compared as strings; sets are not split).
PLANTED = [
    (r"\frac{1}{2}", r"\frac{2}{4}"),
    (r"\{1,2\}", r"\{2,1\}"),
    ("2", "2.0"),  # both accept
    ("3", "4"),  # both reject
    ("7", None),  # nothing extracted: counted as blank, never compared
]


def _results(root: Path, task: str = "toy_math", kind: str = "math") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = [
        {"doc_id": str(i), "prompt_hash": "h", "reference": ref, "completions": [f"\\boxed{{{ans}}}"],
         "answers": [ans], "verdicts": [], "correct": [False], "subtask": None}
        for i, (ref, ans) in enumerate(PLANTED)
    ]
    atomic_write_jsonl(root / f"{task}.samples.jsonl", rows)
    atomic_write_json(root / f"{task}.json", {"task": task, "sampling": {"grader": kind}})
    return root


def test_disagreements_count_both_directions_and_skip_undecided() -> None:
    pairs = [{"task": "t", "doc_id": str(i), "reference": "r", "answer": f"a{i}"} for i in range(6)]
    a = [("ok", True), ("ok", True), ("ok", False), ("ok", False), ("timeout", None), ("unparseable", None)]
    b = [("ok", True), ("ok", False), ("ok", True), ("ok", True), ("ok", True), ("ok", True)]
    (row,) = disagreements({"A": a, "B": b}, pairs, examples=1)
    # item 0 both right; 1 A right B wrong; 2, 3 and 5 A wrong (unparseable counts as wrong) B right; 4 undecided
    assert (row["both_right"], row["both_wrong"], row["a_right_b_wrong"], row["a_wrong_b_right"]) == (1, 0, 1, 3)
    assert row["not_compared"] == 1 and row["compared"] == 5 and row["agreement"] == pytest.approx(0.2)
    assert [e["doc_id"] for e in row["examples"]["a_wrong_b_right"]] == ["2"]  # capped at 1 example


def test_load_pairs_skips_other_kinds_and_counts_blanks(tmp_path: Path) -> None:
    _results(tmp_path / "r")
    _results(tmp_path / "r" / "iter_1", task="mc", kind="choice")
    pairs, skipped, blank = load_pairs(tmp_path / "r")
    assert len(pairs) == 4 and blank == 1
    assert skipped == {"iter_1/mc": "grader choice (only math answers are audited)"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no \\*.samples.jsonl"):
        load_pairs(tmp_path / "empty")
    with pytest.raises(UserError):
        load_pairs(tmp_path / "missing")


def test_worker_timeout_marks_only_the_stuck_answer() -> None:
    pairs = [("5", "9^{9^{9^9}}"), (r"\frac{1}{2}", "0.5"), ("3", "4")]
    out = run_killable("math-verify", pairs, timeout=5, workers=1)
    assert out == [("timeout", None), ("ok", True), ("ok", False)]


def test_audit_planted_disagreements_with_llm_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.openai_server import chat_reply, serve

    def judge(body: dict) -> tuple[int, dict]:
        # a strict judge: equivalent only when the strings are identical
        user = body["messages"][-1]["content"]
        ref = user.split("Reference answer: ")[1].split("\n")[0]
        ans = user.split("Candidate answer: ")[1].split("\n")[0]
        return 200, chat_reply(["YES" if ref == ans else "NO."])

    results = _results(tmp_path / "r")
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    with serve(judge) as server:
        rep = audit(results, graders=["math-verify", "mathruler"], judge=f"openai:judge@{server.base_url}",
                    api_key_env="JUDGE_KEY", timeout=30, workers=1)
        assert len(server.posts) == 4  # one request per distinct pair
    assert rep["answers"] == 4 and rep["blank_answers"] == 1
    by = {(r["a"], r["b"]): r for r in rep["pairs"]}
    mv_mr = by[("math-verify", "mathruler")]
    assert (mv_mr["both_right"], mv_mr["both_wrong"], mv_mr["a_right_b_wrong"], mv_mr["a_wrong_b_right"]) == (1, 1, 2, 0)
    assert {e["answer"] for e in mv_mr["examples"]["a_right_b_wrong"]} == {r"\frac{2}{4}", r"\{2,1\}"}
    mv_llm = by[("math-verify", "llm")]  # the strict judge rejects all four
    assert (mv_llm["both_right"], mv_llm["both_wrong"], mv_llm["a_right_b_wrong"], mv_llm["a_wrong_b_right"]) == (0, 1, 3, 0)
    assert rep["graders"]["math-verify"]["right"] == 3 and rep["graders"]["mathruler"]["right"] == 1


def test_missing_mathruler_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = audit_mod.run_killable

    def fake(grader: str, pairs: list, **kw: object) -> object:
        if grader == "mathruler":
            return "ModuleNotFoundError: No module named 'mathruler'"
        return real(grader, pairs, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(audit_mod, "run_killable", fake)
    rep = audit(_results(tmp_path / "r"), graders=["fast", "mathruler", "rzero"], timeout=30)
    assert "mathruler is not installed" in rep["unavailable"]["mathruler"]
    assert set(rep["graders"]) == {"fast", "rzero"}
    (row,) = rep["pairs"]
    assert row["both_right"] + row["both_wrong"] + row["a_right_b_wrong"] + row["a_wrong_b_right"] + row["not_compared"] == 4


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ}
    p = subprocess.run([sys.executable, "-m", "rzero_bench.cli", "audit-grader", str(tmp_path), "--graders", "fast,bogus"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    _results(tmp_path / "r")
    p = subprocess.run([sys.executable, "-m", "rzero_bench.cli", "audit-grader", str(tmp_path / "r"), "--graders", "fast,rzero"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr
    rep = json.loads((tmp_path / "r" / "grader_audit.json").read_text())
    assert rep["graders"]["rzero"]["right"] == 3 and rep["answers"] == 4
