"""Task definitions: strict validation, suites, data loading, --limit stratification, CLI errors."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from rzero_bench.errors import ConfigError, DataError, UserError
from rzero_bench.tasks import (
    CATEGORY_KEY,
    DOC_ID_KEY,
    list_suites,
    list_tasks,
    load_docs,
    load_suite,
    load_task,
    load_task_file,
    resolve_tasks,
    subsample,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", REPO.parent / "shared" / "benchmarks"))
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "gsm8k").is_dir() and not os.environ.get("RZERO_REQUIRE_DATA"), reason="local benchmark mirror not found"
)

ALL = ["aime24", "aime25", "amc23", "bbeh", "gsm8k", "math500", "micro_arith", "micro_arith_dev", "minerva_math", "mmlu_pro", "olympiadbench",
       "supergpqa"]

GOOD = """\
task: {name}
dataset_path: openai/gsm8k
dataset_name: main
test_split: test
doc_to_text: "{{{{ question }}}}"
doc_to_target: "{{{{ answer.split('####')[-1] | trim }}}}"
metadata:
  version: "1"
  grader: math
  local_file: gsm8k/test.jsonl
"""


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``rzero-bench ARGS`` through ``cli.main()``; returns (exit code, stdout, stderr)."""
    from rzero_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["rzero-bench", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def write(tmp_path: Path, text: str, name: str = "mytask") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


# ----------------------------------------------------------------------------- shipped tasks
def test_all_shipped_tasks_validate() -> None:
    assert list_tasks() == ALL
    for name in ALL:
        spec = load_task(name)
        assert spec.task == name and spec.version and len(spec.hash) == 64
        assert spec.generation_kwargs.temperature == 0
        if not name.startswith("micro_arith"):  # the R-Zero protocol: long generations
            assert spec.generation_kwargs.max_gen_toks == 4096


def test_suites() -> None:
    assert list_suites() == ["general", "math", "rzero"]
    assert len(load_suite("math").tasks) == 7
    assert sorted(load_suite("general").tasks) == ["bbeh", "mmlu_pro", "supergpqa"]
    assert sorted(load_suite("rzero").tasks) == [t for t in ALL if not t.startswith("micro_arith")]
    specs = resolve_tasks(suite="general", tasks="gsm8k,mmlu_pro")
    assert [s.task for s in specs] == ["mmlu_pro", "supergpqa", "bbeh", "gsm8k"]


@pytest.mark.parametrize("name", ["aime24", "aime25", "amc23"])
def test_competition_tasks_declare_truly_sampled_mean_at_32(name: str) -> None:
    spec = load_task(name)
    labels = {m.label: m for m in spec.metadata.metrics}
    assert {"acc", "mean@32", "maj@32"} <= set(labels)
    passes = spec.passes()
    assert passes[0].temperature == 0 and passes[0].n == 1
    assert len(passes) == 2 and passes[1].n == 32 and passes[1].temperature == 0.6 and passes[1].top_p == 0.95
    assert spec.passes(max_tokens=64)[1].max_tokens == 64


def test_hash_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    a = load_task_file(write(tmp_path, GOOD.format(name="mytask")))
    (tmp_path / "x").mkdir()
    b = load_task_file(write(tmp_path / "x", "# a comment\n" + GOOD.format(name="mytask")))
    assert a.hash == b.hash
    c = load_task_file(write(tmp_path, GOOD.format(name="mytask").replace('version: "1"', 'version: "2"')))
    assert c.hash != a.hash


def test_unknown_task_did_you_mean() -> None:
    with pytest.raises(UserError, match=r"unknown task 'gsm8' ?; did you mean 'gsm8k'"):
        load_task("gsm8")
    with pytest.raises(UserError, match="did you mean 'math'"):
        load_suite("maths")


# ----------------------------------------------------------------------------- rejections
BAD_CASES = {
    "unknown key": (GOOD.format(name="mytask") + "output_type: generate_until\n", r"unknown key 'output_type'"),
    "unknown metadata key": (GOOD.format(name="mytask").replace("  grader: math", "  grader: math\n  colour: red"), r"unknown key 'metadata.colour'"),
    "function tag": (GOOD.format(name="mytask").replace('doc_to_target: "', "doc_to_target: !function utils.target\n#"), r"YAML tag !function .*not allowed"),
    "python tag": (GOOD.format(name="mytask") + "repeats: !!python/object/apply:os.system [ls]\n", r"YAML tag .*python.*not allowed"),
    "include": ("include: _base.yaml\n" + GOOD.format(name="mytask"), r"'include' is not supported"),
    "repeats at T=0": (GOOD.format(name="mytask") + "repeats: 4\n", r"repeats: 4 at temperature 0"),
    "sampled metric at T=0": (
        GOOD.format(name="mytask").replace("  grader: math", "  grader: math\n  metrics:\n    - {name: mean@k, k: 8}"),
        r"mean@k \(k=8\) at temperature 0",
    ),
    "bad grader": (GOOD.format(name="mytask").replace("grader: math", "grader: fuzzy"), r"metadata.grader"),
    "jinja syntax": (GOOD.format(name="mytask").replace("{{ question }}", "{{ question "), r"Jinja syntax error"),
    "name mismatch": (GOOD.format(name="other"), r"must match the file name"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_validate_rejects_one_line(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text, pattern = BAD_CASES[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern):
        load_task_file(path)
    code, _out, err = run_cli(["tasks", "validate", str(path)], monkeypatch, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_validate_missing_field_with_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """StrictUndefined: a template field missing from the data is a one-line error."""
    text = GOOD.format(name="mytask").replace("{{ question }}", "{{ problem }}")
    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text('{"question": "1+1?", "answer": "2\\n#### 2"}\n', encoding="utf-8")
    path = write(tmp_path, text)
    code, _out, err = run_cli(["tasks", "validate", str(path), "--data-dir", str(tmp_path / "data")], monkeypatch, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "field missing from the data" in err and "'problem' is undefined" in err and "answer, question" in err
    ok = write(tmp_path, GOOD.format(name="mytask"))
    code, out, _ = run_cli(["tasks", "validate", str(ok), "--data-dir", str(tmp_path / "data")], monkeypatch, capsys)
    assert code == 0 and "ok" in out


def test_validate_shipped_and_list(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["tasks", "validate"], monkeypatch, capsys)
    assert code == 0, err
    assert out.count("ok ") == len(ALL)
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["tasks", "list"], monkeypatch, capsys)
    assert code == 0, err
    for name in ALL:
        assert name in out


# ----------------------------------------------------------------------------- data
def test_supergpqa_loader_on_fixture() -> None:
    spec = load_task("supergpqa")
    docs = load_docs(spec, data_dir=FIXTURES)
    assert len(docs) == 12
    d = docs[0]
    assert d[DOC_ID_KEY] == d["uuid"] and d[CATEGORY_KEY] == d["discipline"]
    text = spec.render_text(d)
    assert text.startswith(d["question"]) and "A. " + d["options"][0] in text and "D. " + d["options"][3] in text
    assert spec.render_target(d) == d["answer_letter"]
    assert spec.render_choices(d) == list("ABCDEFGHIJ"[: len(d["options"])])
    ten = next(x for x in docs if len(x["options"]) == 10)
    assert "J. " + ten["options"][9] in spec.render_text(ten)
    # stratified by discipline: 5 disciplines, limit 5 -> one each
    sub = load_docs(spec, data_dir=FIXTURES, limit=5, seed=3)
    assert len({x["discipline"] for x in sub}) == 5


def test_hub_offline_is_fast_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DataError, match="RZERO_DATA_DIR") as info:
        load_docs(load_task("gsm8k"))
    assert time.perf_counter() - start < 1.0
    assert "\n" not in str(info.value)


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"local data file .*gsm8k/test.jsonl not found"):
        load_docs(load_task("gsm8k"), data_dir=tmp_path)


def test_subsample_stratified_and_seeded() -> None:
    docs = [{DOC_ID_KEY: str(i), CATEGORY_KEY: "a" if i < 60 else ("b" if i < 90 else "c")} for i in range(100)]
    s1 = subsample(docs, 10, 0, "cat")
    s2 = subsample(docs, 10, 0, "cat")
    assert s1 == s2 and len(s1) == 10
    cats = [d[CATEGORY_KEY] for d in s1]
    assert cats.count("a") == 6 and cats.count("b") == 3 and cats.count("c") == 1
    assert [int(d[DOC_ID_KEY]) for d in s1] == sorted(int(d[DOC_ID_KEY]) for d in s1)
    assert subsample(docs, 10, 1, "cat") != s1
    assert len(subsample(docs, 7, 0, None)) == 7
    assert subsample(docs, 500, 0, None) == docs


@needs_data
def test_local_references() -> None:
    gsm = load_task("gsm8k")
    assert gsm.render_target(load_docs(gsm, data_dir=DATA_DIR, limit=1, seed=0)[0]).isdigit()
    mm = load_task("minerva_math")
    assert mm.render_target(load_docs(mm, data_dir=DATA_DIR)[0]) == "1.6"
    amc = load_task("amc23")
    assert amc.render_target(load_docs(amc, data_dir=DATA_DIR)[0]) == "27"
    ob = load_task("olympiadbench")
    docs = {d["final_answer"][0]: d for d in load_docs(ob, data_dir=DATA_DIR)}
    assert ob.render_target(docs["$\\frac{41}{12}$"]) == "\\frac{41}{12}"
    mp = load_task("mmlu_pro")
    full = load_docs(mp, data_dir=DATA_DIR)
    sub = load_docs(mp, data_dir=DATA_DIR, limit=100, seed=0)
    assert len(sub) == 100 and len({d["category"] for d in sub}) == 14
    for cat in {d["category"] for d in full}:
        share = 100 * sum(d["category"] == cat for d in full) / len(full)
        assert abs(sum(d["category"] == cat for d in sub) - share) < 1
    bb = load_task("bbeh")
    docs = load_docs(bb, data_dir=DATA_DIR)
    assert len(docs) == 4520 and len({d[CATEGORY_KEY] for d in docs}) == 23


def test_generated_task_needs_no_data_dir_and_refuses_unknown_generators(tmp_path):
    from rzero_bench.errors import ConfigError
    from rzero_bench.tasks import has_local_data, load_docs, load_task_file

    spec = load_task("micro_arith")
    assert has_local_data(spec, None)
    docs = load_docs(spec, limit=10, seed=0)
    assert len(docs) == 10 and {d["_category"] for d in docs} == {"1", "2", "3", "4", "5"}
    assert docs == load_docs(spec, limit=10, seed=0)
    assert spec.render_target(docs[0]) == docs[0]["answer"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.format(name="bad").replace("  local_file: gsm8k/test.jsonl\n",
                                                   "  processor: generated\n  generator: os.system\n"))
    with pytest.raises(ConfigError, match="generator must be one of"):
        load_task_file(bad)


# ----------------------------------------------------------------------------- tasks inspect
QUIZ = """\
task: quiz
dataset_path: example/quiz
doc_to_text: "Q: {{ question }} Options: {{ options | join(' / ') }}"
doc_to_target: "{{ letters[answer_index] }}"
doc_to_choice: "{{ letters[:options | length] | list | tojson }}"
metadata:
  version: "3"
  grader: choice
  local_file: quiz/test.jsonl
  id_field: qid
  category_field: subject
  system_prompt: Answer with one letter.
"""
QUIZ_ROWS = [
    '{"qid": "q1", "subject": "geo", "question": "Capital of France?", "options": ["Berlin", "Paris"], "answer_index": 1}',
    '{"qid": "q2", "subject": "math", "question": "2+2?", "options": ["4", "5", "22"], "answer_index": 0}',
    '{"qid": "q3", "subject": "geo", "question": "Longest river?", "options": ["Nile", "Rhine"], "answer_index": 0}',
]


def quiz_dirs(tmp_path: Path) -> tuple[Path, Path]:
    tasks_dir = tmp_path / "tasks"
    tasks_dir.mkdir()
    write(tasks_dir, QUIZ, name="quiz")
    data = tmp_path / "data" / "quiz"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text("\n".join(QUIZ_ROWS) + "\n", encoding="utf-8")
    return tasks_dir, tmp_path / "data"


def test_inspect_prints_rendered_prompts_choices_and_targets_of_the_first_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks_dir, data_dir = quiz_dirs(tmp_path)
    code, out, err = run_cli(["tasks", "inspect", "quiz", "--n", "2", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir)],
                             monkeypatch, capsys)
    assert code == 0, err
    assert f"task quiz v3 (hash {load_task('quiz', tasks_dir).hash[:12]}), grader choice, 3 items from {data_dir / 'quiz/test.jsonl'}" in out
    assert "system prompt: 'Answer with one letter.'" in out
    assert "item 1/2: doc_id q1, category geo" in out and "item 2/2: doc_id q2, category math" in out
    assert "Q: Capital of France? Options: Berlin / Paris\n" in out
    assert "Q: 2+2? Options: 4 / 5 / 22\n" in out
    assert "choices (doc_to_choice): A, B\n" in out and "choices (doc_to_choice): A, B, C\n" in out
    assert "Longest river" not in out  # --n 2 stops before the third item
    targets = [line for i, line in enumerate(out.splitlines()) if i and "target" in out.splitlines()[i - 1]]
    assert targets == ["B", "A"]


def test_inspect_returns_what_evaluation_renders(tmp_path: Path) -> None:
    from rzero_bench.tasks import inspect_command

    tasks_dir, data_dir = quiz_dirs(tmp_path)
    shown = inspect_command("quiz", n=5, tasks_dir=tasks_dir, data_dir=data_dir)
    assert shown == [
        {"doc_id": "q1", "prompt": "Q: Capital of France? Options: Berlin / Paris", "choices": ["A", "B"], "target": "B"},
        {"doc_id": "q2", "prompt": "Q: 2+2? Options: 4 / 5 / 22", "choices": ["A", "B", "C"], "target": "A"},
        {"doc_id": "q3", "prompt": "Q: Longest river? Options: Nile / Rhine", "choices": ["A", "B"], "target": "A"},
    ]


def test_inspect_generated_task_shows_the_default_system_prompt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT

    monkeypatch.delenv("RZERO_DATA_DIR", raising=False)
    code, out, err = run_cli(["tasks", "inspect", "micro_arith"], monkeypatch, capsys)
    assert code == 0, err
    spec = load_task("micro_arith")
    docs = load_docs(spec)
    assert f"{len(docs)} items from generator micro_arith" in out
    assert f"system prompt: {SOLVER_SYSTEM_PROMPT!r}" in out
    for i, d in enumerate(docs[:2], start=1):
        assert f"item {i}/2: doc_id {d[DOC_ID_KEY]}, category {d[CATEGORY_KEY]}" in out
        assert spec.render_text(d) + "\n" in out
    assert f"doc_id {docs[2][DOC_ID_KEY]}," not in out
    assert "choices" not in out


def test_inspect_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["tasks", "inspect", "gsm8"], monkeypatch, capsys)
    assert code == 2 and "did you mean 'gsm8k'" in err and len(err.strip().splitlines()) == 1 and not out
    tasks_dir, _ = quiz_dirs(tmp_path)
    code, out, err = run_cli(["tasks", "inspect", "quiz", "--tasks-dir", str(tasks_dir), "--data-dir", str(tmp_path / "elsewhere")],
                             monkeypatch, capsys)
    assert code == 2 and "local data file" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _out, err = run_cli(["tasks", "inspect", "quiz", "--n", "0", "--tasks-dir", str(tasks_dir)], monkeypatch, capsys)
    assert code == 2 and "--n" in err
