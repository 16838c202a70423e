"""Label accuracy: exact calibration numbers on a constructed case, the reference oracle on a run
directory, and the openai oracle against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rzero_bench.errors import UserError  # noqa: E402
from rzero_bench.records import Question, Vote  # noqa: E402
from rzero_bench.report.label_acc import (  # noqa: E402
    OpenAIOracle,
    ReferenceOracle,
    compute_label_accuracy,
    label_accuracy,
    parse_oracle,
)
from rzero_bench.store import atomic_write_jsonl  # noqa: E402


def exact(reference: str, prediction: str) -> bool:
    return reference.strip() == prediction.strip()


def _case() -> tuple[list[Question], list[Vote], dict[str, str | None]]:
    #            id     p_hat label  oracle
    rows = [
        ("q1", 1.0, "4", "4"),
        ("q2", 0.9, "5", "5"),
        ("q3", 0.9, "6", "7"),
        ("q4", 0.7, "1", "1"),
        ("q5", 0.6, "2", "3"),
        ("q6", 0.5, "2", "2"),
        ("q7", 0.3, "x", "y"),
        ("q8", 0.1, "a", None),
        ("q9", 0.0, None, "3"),
    ]
    questions = [Question(id=i, text=f"question {i}") for i, *_ in rows]
    votes = [Vote(question_id=i, label=lab, p_hat=p, m=10, answered=10) for i, p, lab, _ in rows]
    votes.append(Vote(question_id="q10", label="1", p_hat=0.8, m=10, answered=10))  # no question text
    return questions, votes, {i: o for i, _, _, o in rows}


def test_exact_calibration_numbers() -> None:
    questions, votes, oracle = _case()
    r = compute_label_accuracy(questions, votes, oracle, grader=exact, kept_ids={"q1", "q3", "q5"})
    assert (r["n"], r["correct"]) == (7, 4)
    assert r["accuracy"] == pytest.approx(4 / 7)
    assert r["ci95"] == pytest.approx([0.2504, 0.8418], abs=1e-4)
    assert r["excluded"] == {"no_label": 1, "no_question": 1, "no_oracle": 1, "ungraded": 0}
    b = {(x["lo"], x["hi"]): x for x in r["buckets"]}
    assert b[(0.0, 0.2)]["n"] == 0 and b[(0.0, 0.2)]["accuracy"] is None
    assert (b[(0.2, 0.4)]["n"], b[(0.2, 0.4)]["correct"], b[(0.2, 0.4)]["mean_p_hat"]) == (
        1,
        0,
        pytest.approx(0.3),
    )
    assert (b[(0.4, 0.6)]["n"], b[(0.4, 0.6)]["accuracy"], b[(0.4, 0.6)]["mean_p_hat"]) == (
        2,
        0.5,
        pytest.approx(0.55),
    )
    assert (b[(0.6, 0.8)]["n"], b[(0.6, 0.8)]["accuracy"]) == (1, 1.0)
    assert b[(0.8, 1.0)]["n"] == 3 and b[(0.8, 1.0)]["accuracy"] == pytest.approx(2 / 3)
    assert b[(0.8, 1.0)]["mean_p_hat"] == pytest.approx(2.8 / 3)
    # ECE = (1*0.3 + 2*0.05 + 1*0.3 + 3*(0.9333-0.6667)) / 7 = 1.5 / 7
    assert r["ece"] == pytest.approx(1.5 / 7)
    by_p = {x["p_hat"]: (x["n"], x["correct"]) for x in r["by_p_hat"]}
    assert by_p == {0.3: (1, 0), 0.5: (1, 1), 0.6: (1, 0), 0.7: (1, 1), 0.9: (2, 1), 1.0: (1, 1)}
    assert (r["kept"]["n"], r["kept"]["correct"]) == (3, 1)
    statuses = {it["question_id"]: it["status"] for it in r["items"]}
    assert statuses["q8"] == "no_oracle" and statuses["q9"] == "no_label" and statuses["q10"] == "no_question"


def test_ungraded_items_are_excluded() -> None:
    questions, votes, oracle = _case()
    r = compute_label_accuracy(
        questions, votes, oracle, grader=lambda ref, pred: None if pred == "4" else exact(ref, pred)
    )
    assert r["excluded"]["ungraded"] == 1 and r["n"] == 6


def test_parse_oracle_specs() -> None:
    o = parse_oracle("openai:gpt-4o@http://127.0.0.1:9/v1", api_key_env="K")
    assert isinstance(o, OpenAIOracle) and o.model == "gpt-4o" and o.base_url == "http://127.0.0.1:9/v1"
    assert parse_oracle("openai:gpt-4o").base_url == "https://api.openai.com/v1"  # type: ignore[attr-defined]
    assert isinstance(parse_oracle("reference"), ReferenceOracle)
    assert parse_oracle("hf:/models/x", samples=5).spec == "hf:/models/x (majority of 5)"
    for bad in ("nope", "openai:", "hf:"):
        with pytest.raises(UserError):
            parse_oracle(bad)


def _write_run(run: Path, questions: list[Question], votes: list[Vote], kept: list[str]) -> None:
    d = run / "iter_1"
    atomic_write_jsonl(d / "questions.jsonl", [q.to_dict() for q in questions])
    atomic_write_jsonl(d / "votes.jsonl", [v.to_dict() for v in votes])
    atomic_write_jsonl(
        d / "solver_dataset.jsonl",
        [{"question_id": k, "question": "", "label": "", "p_hat": 0.5} for k in kept],
    )


def test_reference_oracle_on_run_dir(tmp_path: Path) -> None:
    qs = [
        Question(id="p1", text="1+1", source="probe:gsm8k", reference="2"),
        Question(id="p2", text="2+2", source="probe:gsm8k", reference="4"),
        Question(id="c1", text="challenger question"),
    ]
    vs = [
        Vote(question_id="p1", label="2", p_hat=0.8, m=10, answered=10),
        Vote(question_id="p2", label="5", p_hat=0.4, m=10, answered=10),
        Vote(question_id="c1", label="9", p_hat=0.5, m=10, answered=10),
    ]
    _write_run(tmp_path, qs, vs, kept=["c1"])
    res = label_accuracy(tmp_path, "reference", grader=exact)
    r = res["iterations"][1]
    assert (r["n"], r["correct"], r["oracle"]) == (2, 1, "reference")
    assert r["excluded"]["no_oracle"] == 1
    on_disk = json.loads((tmp_path / "iter_1" / "label_accuracy.json").read_text())
    assert on_disk["accuracy"] == 0.5 and "items" not in on_disk
    items = (tmp_path / "iter_1" / "label_accuracy.items.jsonl").read_text().splitlines()
    assert len(items) == 3


def test_label_accuracy_needs_votes(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        label_accuracy(tmp_path, "reference")


def test_openai_oracle_against_local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name in (
        ("rzero_bench.parsing", "last_boxed"),
        ("rzero_bench.grading", "grade"),
        ("rzero_bench.backends.openai", "OpenAIGenerator"),
    ):
        if not hasattr(pytest.importorskip(module), name):
            pytest.skip(f"{module}.{name} has not landed yet")
    from tests.fixtures.openai_server import chat_reply, serve

    # The oracle knows the sums: it answers "a + b" questions correctly, in \boxed{}, like GPT-4o would.
    def handler(body: dict) -> tuple[int, dict]:
        user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        a, b = map(int, re.findall(r"(\d+) \+ (\d+)", user)[0])
        return 200, chat_reply([f"Adding gives {a + b}. The answer is \\boxed{{{a + b}}}."])

    qs = [Question(id=f"q{i}", text=f"What is {i} + {10 * i}?") for i in range(1, 7)]
    labels = {"q1": "11", "q2": "22", "q3": "33", "q4": "45", "q5": "55.0", "q6": "67"}
    p_hats = {"q1": 1.0, "q2": 0.9, "q3": 0.9, "q4": 0.5, "q5": 0.7, "q6": 0.3}
    vs = [Vote(question_id=q.id, label=labels[q.id], p_hat=p_hats[q.id], m=10, answered=10) for q in qs]
    _write_run(tmp_path, qs, vs, kept=["q4", "q5"])
    monkeypatch.setenv("ORACLE_KEY", "sk-test")
    with serve(handler) as server:
        res = label_accuracy(tmp_path, f"openai:gpt-4o@{server.base_url}", api_key_env="ORACLE_KEY")
        assert len(server.posts) == 6
        body = server.posts[0].body
        assert body["model"] == "gpt-4o" and body["messages"][0]["role"] == "system"
        assert "\\boxed{}" in body["messages"][0]["content"]
        assert server.posts[0].headers["authorization"] == "Bearer sk-test"
    r = res["iterations"][1]
    assert (r["n"], r["correct"]) == (6, 4)  # q4 and q6 are wrong; 55.0 == 55 by the math grader
    assert r["kept"] == {**r["kept"], "n": 2, "correct": 1}
    assert r["oracle"] == f"openai:gpt-4o@{server.base_url}"
    high = [b for b in r["buckets"] if b["lo"] == 0.8][0]
    assert (high["n"], high["correct"]) == (3, 3)


def test_exact_arith_oracle(tmp_path: Path) -> None:
    arith = pytest.importorskip("rzero_bench.micro.arith")
    if not hasattr(arith, "solve"):
        pytest.skip("rzero_bench.micro.arith.solve has not landed yet")
    qs = [
        Question(id="a", text="What is 3 + 4?"),
        Question(id="b", text="What is 12 * 3?"),
        Question(id="c", text="Write a poem about numbers."),
    ]
    vs = [
        Vote(question_id="a", label="7", p_hat=0.9, m=10, answered=10),
        Vote(question_id="b", label="35", p_hat=0.6, m=10, answered=10),
        Vote(question_id="c", label="1", p_hat=0.2, m=10, answered=10),
    ]
    _write_run(tmp_path, qs, vs, kept=["b"])
    r = label_accuracy(tmp_path, "exact-arith", grader=exact)["iterations"][1]
    assert (r["n"], r["correct"], r["excluded"]["no_oracle"], r["oracle"]) == (2, 1, 1, "exact-arith")


def test_pipeline_stage_function(tmp_path: Path) -> None:
    from rzero_bench.report.label_acc import label_accuracy_for_iteration

    qs = [Question(id="p1", text="1+1", source="probe:gsm8k", reference="2")]
    vs = [Vote(question_id="p1", label="2", p_hat=0.8, m=10, answered=10)]
    _write_run(tmp_path, qs, vs, kept=[])
    r = label_accuracy_for_iteration(tmp_path / "iter_1", "reference", data_dir=None, grader=exact)
    assert r["overall"] == {
        "n": 1,
        "correct": 1,
        "accuracy": 1.0,
        "stderr": 0.0,
        "ci95": [pytest.approx(0.2065, abs=1e-4), 1.0],
    }
    assert r["iteration"] == 1 and "items" not in r and r["kept"]["n"] == 0
    assert (tmp_path / "iter_1" / "label_accuracy.items.jsonl").exists()


def test_cli_never_rewrites_the_pipeline_stage_output_and_refuses_an_empty_oracle(tmp_path):
    import json
    import shutil

    from rzero_bench.errors import UserError
    from rzero_bench.report.label_acc import label_accuracy

    src = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "demo"
    run = tmp_path / "run"
    shutil.copytree(src, run)
    it = sorted(p for p in run.glob("iter_*") if (p / "votes.jsonl").exists())[0]
    stage_output = it / "label_accuracy.json"
    stage_output.write_text('{"from": "the pipeline stage"}\n')
    for q in run.glob("iter_*/questions.jsonl"):  # a run without probe questions
        q.write_text("".join(x + "\n" for x in q.read_text().splitlines() if "probe" not in x))
    with pytest.raises(UserError, match="could answer none"):
        label_accuracy(run, "reference")
    assert json.loads(stage_output.read_text()) == {"from": "the pipeline stage"}
    res = label_accuracy(run, "exact-arith")
    assert json.loads(stage_output.read_text()) == {"from": "the pipeline stage"}
    written = Path(res["files"][int(it.name.split("_")[1])])
    assert written.name == "label_accuracy.exact-arith.json" and written.exists()


# ------------------------------------------------------------------ the paper's 200-question sample
def _arith_run(run: Path, k: int, n: int, wrong_every: int, kept_every: int = 1) -> dict[str, str]:
    """Iteration k: n questions "What is i+k?"; every ``wrong_every``-th label is off by one."""
    qs = [Question(id=f"it{k}-q{i}", text=f"What is {i}+{k}?", iteration=k) for i in range(n)]
    labels = {q.id: str(i + k + (1 if i % wrong_every == 0 else 0)) for i, q in enumerate(qs)}
    vs = [Vote(question_id=q.id, label=labels[q.id], p_hat=0.5, m=8, answered=8) for q in qs]
    d = run / f"iter_{k}"
    atomic_write_jsonl(d / "questions.jsonl", [q.to_dict() for q in qs])
    atomic_write_jsonl(d / "votes.jsonl", [v.to_dict() for v in vs])
    atomic_write_jsonl(d / "solver_dataset.jsonl", [
        {"question_id": q.id, "question": q.text, "label": labels[q.id], "p_hat": 0.5}
        for i, q in enumerate(qs) if i % kept_every == 0])
    return labels


def test_seeded_sample_next_to_the_full_population(tmp_path: Path) -> None:
    pytest.importorskip("rzero_bench.micro.arith")
    # 1000 questions, labels wrong for i % 4 == 0 (250 wrong); kept = even i (500, of which 250 wrong)
    _arith_run(tmp_path, 1, 1000, wrong_every=4, kept_every=2)
    res = label_accuracy(tmp_path, "exact-arith", sample=200, seed=0, grader=exact)
    r = res["iterations"][1]
    assert (r["n"], r["correct"]) == (1000, 750)
    assert (r["kept"]["n"], r["kept"]["correct"]) == (500, 250)
    s = r["sample"]
    assert (s["size"], s["drawn"], s["n"], s["population"], s["population_n"]) == (200, 200, 200, "kept", 500)
    assert 0.35 < s["accuracy"] < 0.65 and s["ci95"][0] < 0.5 < s["ci95"][1]
    again = label_accuracy(tmp_path, "exact-arith", sample=200, seed=0, grader=exact)["iterations"][1]["sample"]
    other = label_accuracy(tmp_path, "exact-arith", sample=200, seed=1, grader=exact)["iterations"][1]["sample"]
    assert again == s  # same seed, same sample
    assert other["seed"] == 1 and other["n"] == 200


def test_sample_ids_is_seeded_and_ordered() -> None:
    from rzero_bench.report.label_acc import sample_ids

    ids = [f"q{i}" for i in range(50)]
    a = sample_ids(ids, 10, seed=0, iteration=1)
    assert len(a) == 10 and a == sorted(a, key=ids.index)
    assert a == sample_ids(ids, 10, seed=0, iteration=1) and a != sample_ids(ids, 10, seed=0, iteration=2)
    with pytest.raises(UserError):
        sample_ids(ids, 0, seed=0, iteration=1)


def test_cross_iteration_table_with_scripted_solvers(tmp_path: Path) -> None:
    pytest.importorskip("rzero_bench.micro.arith")
    from rzero_bench.backends.scripted import ScriptedGenerator
    from rzero_bench.report.label_acc import cross_iteration
    from rzero_bench.store import atomic_write_json

    # iteration 1: 10 questions (labels wrong for i % 5 == 0: 8/10 right); iteration 2: 6 questions (i % 3: 4/6)
    _arith_run(tmp_path, 1, 10, wrong_every=5)
    _arith_run(tmp_path, 2, 6, wrong_every=3)
    for k in (1, 2):
        (tmp_path / f"iter_{k}" / "solver").mkdir()
        (tmp_path / f"iter_{k}" / "solver" / "config.json").write_text("{}")
    atomic_write_json(tmp_path / "manifest.json", {"base_model": "BASE", "config": {"selfplay": {"grader": "math", "solver_max_tokens": 32}}})

    def solver(path: str) -> ScriptedGenerator:
        # base: always answers 0; solver_1: right on iteration-1 questions only; solver_2: right on all
        def respond(req: object, _i: int) -> str:
            user = [m["content"] for m in req.messages if m["role"] == "user"][-1]  # type: ignore[attr-defined]
            a, b = map(int, re.findall(r"What is (\d+)\+(\d+)\?", user)[0])
            if path == "BASE" or (path.endswith("iter_1/solver") and b == 2):
                return "\\boxed{0}"
            return f"\\boxed{{{a + b}}}"
        return ScriptedGenerator(respond, model_id=path)

    rep = cross_iteration(tmp_path, "exact-arith", generator_factory=solver, grader=exact)
    acc = {k: {j: (c["n"], c["correct"]) for j, c in row.items()} for k, row in rep["cells"].items()}
    # base answers 0: right only for "What is 0+k?" when the true answer is 0 — never (k >= 1)
    assert acc == {"0": {"1": (10, 0), "2": (6, 0)}, "1": {"1": (10, 10), "2": (6, 0)}, "2": {"1": (10, 10), "2": (6, 6)}}
    assert {j: (b["n"], b["correct"]) for j, b in rep["label"].items()} == {"1": (10, 8), "2": (6, 4)}
    assert rep["max_tokens"] == 32
    small = cross_iteration(tmp_path, "exact-arith", generator_factory=solver, grader=exact, sample=3)
    assert {j: b["n"] for j, b in small["label"].items()} == {"1": 3, "2": 3}
