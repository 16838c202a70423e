"""Contamination: planted benchmark items (verbatim, lightly reworded, heavily reworded) among
generated questions are found exactly, per iteration and per task, with the longest shared span."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rzero_bench.errors import UserError
from rzero_bench.records import Question
from rzero_bench.report.contamination import (
    BenchmarkItem,
    contaminated_ids,
    contamination_report,
    find_hits,
    longest_common_span,
    normalize_tokens,
)
from rzero_bench.store import atomic_write_json, atomic_write_jsonl

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", REPO.parent / "shared" / "benchmarks"))
needs_data = pytest.mark.skipif(not (DATA_DIR / "math500").is_dir(), reason=f"no benchmark mirror at {DATA_DIR}")

# 30 distinct words: a long benchmark item
LONG = " ".join(f"w{i}" for i in range(30))


def item(task: str, doc_id: str, text: str) -> BenchmarkItem:
    return BenchmarkItem(task, doc_id, tuple(normalize_tokens(text)))


def test_normalization_ignores_case_spacing_and_punctuation_but_keeps_operators() -> None:
    assert normalize_tokens("What  is 23+45?") == normalize_tokens("what is 23 + 45")
    assert normalize_tokens("What is 23+45?") != normalize_tokens("What is 23-45?")
    assert normalize_tokens("Ｃompute 6×7") == ["compute", "6", "*", "7"]  # NFKC, × -> *
    assert normalize_tokens(r"\frac{a}{b}") == ["frac", "{", "a", "}", "{", "b", "}"]


def test_longest_common_span_finds_the_longest_run() -> None:
    a = "p q a b c d r a b".split()
    b = "z a b c d y".split()
    assert longest_common_span(a, b) == (4, 2)
    assert longest_common_span(["x"], ["y"]) == (0, 0)


def test_verbatim_light_and_heavy_rewording_with_13_grams() -> None:
    words = LONG.split()
    light = words.copy()
    light[14] = "CHANGED"  # one word changed: 14 tokens before it, 15 after -> still shares a 15-run
    heavy = words.copy()
    for i in range(5, 30, 6):  # a change every 6 words: no run of 13 survives
        heavy[i] = f"x{i}"
    questions = [
        "Generated: " + LONG + " Good luck.",  # verbatim inside a longer question
        " ".join(light),
        " ".join(heavy),
        "A fresh question about 7 apples.",
    ]
    hits = find_hits(questions, [item("bench", "d1", LONG), item("other", "o1", "unrelated words only here")], n=13)
    assert [len(h) for h in hits] == [1, 1, 0, 0]
    assert hits[0][0].span == 30 and hits[0][0].task == "bench" and hits[0][0].doc_id == "d1"
    assert hits[1][0].span == 15  # w15..w29
    assert hits[1][0].span_text == " ".join(words[15:])
    # a smaller n catches the heavy rewording (longest surviving run: w0..w4 = 5 words)
    assert [len(h) for h in find_hits(questions, [item("bench", "d1", LONG)], n=5)] == [1, 1, 1, 0]


def test_short_items_must_occur_whole() -> None:
    items = [item("micro", "L2-1", "What is 23+45?"), item("micro", "L2-2", "What is 23+46?")]
    questions = ["what is 23 + 45", "Please tell me: what is 23+45? Thanks", "What is 23+4?", "what is 23 + 456"]
    hits = find_hits(questions, items, n=13)
    assert [[h.doc_id for h in hs] for hs in hits] == [["L2-1"], ["L2-1"], [], []]
    assert hits[1][0].span == 5


def test_n_must_be_positive() -> None:
    with pytest.raises(UserError):
        find_hits(["a"], [], n=0)


def _fake_run(root: Path, iterations: dict[int, list[str]], tasks: list[str]) -> Path:
    root.mkdir(parents=True)
    atomic_write_json(root / "manifest.json", {"config": {"eval": {"suite": None, "tasks": tasks}}, "stages": {}})
    for k, texts in iterations.items():
        qs = [Question(id=f"it{k}-q{i:05d}", text=t, iteration=k).to_dict() for i, t in enumerate(texts)]
        qs.append(Question(id=f"it{k}-probe-1", text="What is 1+1?", iteration=k, source="probe:gsm8k", reference="2").to_dict())
        (root / f"iter_{k}").mkdir()
        atomic_write_jsonl(root / f"iter_{k}" / "questions.jsonl", qs)
    return root


def _math500_and_micro() -> tuple[str, str, str]:
    rows = [json.loads(line) for line in (DATA_DIR / "math500" / "test.jsonl").open()]
    long_problem = next(r["problem"] for r in rows if 40 <= len(normalize_tokens(r["problem"])) <= 80)
    from rzero_bench.micro.arith import micro_arith_docs

    micro_q = str(next(d for d in micro_arith_docs() if d["level"] == 3)["question"])
    return long_problem, long_problem.replace(" the ", " a ", 1), micro_q


@needs_data
def test_report_counts_planted_items_per_iteration_and_task(tmp_path: Path) -> None:
    problem, reworded, micro_q = _math500_and_micro()
    run = _fake_run(
        tmp_path / "run",
        {
            1: ["What is 1234+1?", problem, "Nothing to see here at all.", micro_q],
            2: [reworded, "Compute 999*999*999."],
        },
        ["math500", "micro_arith"],
    )
    rep = contamination_report(run, data_dir=DATA_DIR)
    assert rep["n"] == 13 and rep["tasks"]["math500"]["items"] == 500 and rep["tasks"]["micro_arith"]["items"] == 1000
    it1, it2 = rep["iterations"]["1"], rep["iterations"]["2"]
    assert (it1["questions"], it1["probes"], it1["contaminated"]) == (4, 1, 2)
    assert it1["by_task"]["math500"]["questions"] == 1 and it1["by_task"]["micro_arith"]["questions"] == 1
    assert it1["longest"]["span"] == len(normalize_tokens(problem)) and it1["longest"]["task"] == "math500"
    assert it2["contaminated"] == 1 and it2["by_task"]["math500"]["questions"] == 1
    assert it2["by_task"]["micro_arith"]["questions"] == 0
    assert it2["longest"]["span"] >= 13
    assert rep["total"] == {"questions": 6, "contaminated": 3}
    assert {h["question_id"] for h in rep["hits"]} == {"it1-q00001", "it1-q00003", "it2-q00000"}
    # the filter stage's helper agrees
    qs = [Question(id="a", text=problem), Question(id="b", text="What is 5 + 5 + 5 + 5 + 5 + 5 + 5 + 5 + 5 + 5?")]
    from rzero_bench.tasks import resolve_tasks

    assert set(contaminated_ids(qs, resolve_tasks(tasks=["math500"]), data_dir=DATA_DIR)) == {"a"}


@needs_data
def test_cli_writes_the_json_report(tmp_path: Path) -> None:
    problem, _, _ = _math500_and_micro()
    run = _fake_run(tmp_path / "run", {1: [problem, "fresh"]}, ["math500"])
    env = {**os.environ, "RZERO_DATA_DIR": str(DATA_DIR)}
    cmd = [sys.executable, "-m", "rzero_bench.cli", "contamination", str(run), "--n", "8", "--tasks", "math500"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr
    rep = json.loads((run / "contamination.json").read_text())
    assert rep["n"] == 8 and rep["iterations"]["1"]["contaminated"] == 1
    bad = subprocess.run([*cmd[:4], str(tmp_path / "missing")], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
