"""lm-eval / lighteval interop: our lm-eval-format file is read by lm-eval's own code; their real
results files are read by ``report`` and ``leaderboard``, labelled with the harness, never mixed.

``tests/fixtures/lmeval/results_*.json`` is a real lm-eval 0.4.13 output (``make_fixture.py`` there
runs lm-eval's CLI on the tiny model over 5 GSM8K items); the lighteval file is hand-written in its
documented schema (lighteval is not installed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.evaluate import evaluate, package_versions
from rzero_bench.interop import detect_harness, map_task, read_foreign
from rzero_bench.interop.lighteval import split_task_key
from rzero_bench.interop.lmeval import write_lmeval_results
from rzero_bench.records import EvalResult, GenerationRequest
from rzero_bench.report.leaderboard import render_leaderboard
from rzero_bench.report.results import discover
from rzero_bench.report.tables import build_report
from rzero_bench.tasks import parse_task

REPO = Path(__file__).resolve().parents[2]
LMEVAL = next((REPO / "tests" / "fixtures" / "lmeval").glob("results_*.json"))
LIGHTEVAL = next((REPO / "tests" / "fixtures" / "lighteval").glob("results_*.json"))


def toy_spec(name: str = "toy") -> Any:
    import yaml

    return parse_task(
        yaml.safe_load(f"""
task: {name}
dataset_path: none/toy
doc_to_text: "{{{{ question }}}}"
doc_to_target: "{{{{ answer }}}}"
metadata:
  version: "2"
  grader: math
  local_file: toy/test.jsonl
"""),
        "toy.yaml",
    )


@pytest.fixture
def ours(tmp_path: Path) -> Path:
    """A results directory of ours: 4 toy items, 3 right (acc 0.75)."""
    d = tmp_path / "data" / "toy"
    d.mkdir(parents=True)
    d.joinpath("test.jsonl").write_text(
        "".join(json.dumps({"question": f"q{i}", "answer": str(i)}) + "\n" for i in range(4))
    )

    def responder(req: GenerationRequest, i: int) -> str:
        n = int(req.messages[-1]["content"][1:])
        return f"\\boxed{{{n if n != 2 else 99}}}"

    out = tmp_path / "results" / "toy-model"
    evaluate(
        ScriptedGenerator(responder, model_id="org/toy-model"),
        [toy_spec()],
        out,
        data_dir=tmp_path / "data",
        progress=False,
    )
    # the same items as a "gsm8k" of ours, so the leaderboard has a column for it
    evaluate(
        ScriptedGenerator(responder, model_id="org/toy-model"),
        [toy_spec("gsm8k")],
        tmp_path / "results" / "gsm-model",
        data_dir=tmp_path / "data",
        progress=False,
    )
    return out


# ----------------------------------------------------------------------------- writing lm-eval's schema
def test_our_lmeval_file_is_read_by_lmeval_itself(ours: Path) -> None:
    lm_utils = pytest.importorskip("lm_eval.utils")
    result = EvalResult.from_dict(json.loads((ours / "toy.json").read_text()))
    path = write_lmeval_results(
        ours,
        {"toy": result},
        model="org/toy-model",
        backend="scripted",
        seed=3,
        specs={"toy": toy_spec()},
        package_versions=package_versions(),
    )
    doc = json.loads(path.read_text())
    real = json.loads(LMEVAL.read_text())
    # the keys lm-eval's readers use, with lm-eval's meanings
    for key in (
        "results",
        "configs",
        "versions",
        "n-shot",
        "higher_is_better",
        "n-samples",
        "config",
        "date",
        "model_name",
        "group_subtasks",
    ):
        assert key in doc and type(doc[key]) is type(real[key]), key
    assert doc["results"]["rzero_toy"]["acc,none"] == 0.75
    assert doc["versions"] == {
        "rzero_toy": 2.0
    }  # task versions (numbers, as lm-eval writes), not package versions
    assert doc["n-samples"]["rzero_toy"] == {"original": 4, "effective": 4}
    assert doc["configs"]["rzero_toy"]["metadata"]["rzero_task_hash"] == result.task_hash
    assert doc["configs"]["rzero_toy"]["doc_to_text"] == "{{ question }}"
    # lm-eval's own results-reading code
    assert lm_utils.get_results_filenames([str(path)]) == [str(path)]
    assert lm_utils.get_file_datetime(path.name).startswith(path.name[len("results_") : -len(".json")][:10])
    table = lm_utils.make_table(doc)
    assert "rzero_toy" in table or "toy (rzero-bench)" in table
    row = next(line for line in table.splitlines() if "toy (rzero-bench)" in line)
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "toy (rzero-bench)",
        "2",
        "none",
        "0",
        "acc",
        "↑",
        "0.75",
        "±",
        "0.25",
    ]
    samples = next(ours.glob("samples_rzero_toy_*.jsonl"))
    assert lm_utils.get_file_task_name(samples.name) == "rzero_toy"
    recs = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(recs) == 4 and sum(r["acc"] for r in recs) == 3
    # our own file is recognized as ours: never read as a foreign harness next to the files it came from
    assert detect_harness(doc) == "rzero-bench"
    assert [s.harness for s in discover(ours)] == ["rzero-bench"]


# ----------------------------------------------------------------------------- reading other harnesses
def test_real_lmeval_file_maps_gsm8k() -> None:
    fr = read_foreign(LMEVAL)
    assert fr is not None and fr.harness == "lm-eval" and fr.version == "0.4.13"
    assert set(fr.tasks) == {"gsm8k"}
    g = fr.tasks["gsm8k"]
    assert (
        g["task"] == "gsm8k"
        and g["metric"] == "exact_match,strict-match"
        and g["n"] == 5
        and g["value"] == 0.0
    )


def test_lighteval_file_maps_shared_tasks_and_skips_others() -> None:
    fr = read_foreign(LIGHTEVAL)
    assert fr is not None and fr.harness == "lighteval" and fr.model == "Qwen/Qwen3-4B-Base"
    assert fr.tasks["aime24"]["value"] == 0.1 and fr.tasks["aime24"]["n"] == 30
    assert fr.tasks["math500"]["metric"] == "extractive_match" and fr.tasks["math500"]["n"] == 500
    assert fr.skipped == ["lighteval|gpqa:diamond|0"]
    assert split_task_key("harness|gsm8k|5") == ("harness", "gsm8k", 5)
    assert split_task_key("gsm8k|0") == ("", "gsm8k", 0)


def test_mapping_refuses_same_name_other_data() -> None:
    assert map_task("lm-eval", "minerva_math") is None  # Hendrycks MATH, not Minerva OCW
    assert map_task("lm-eval", "bbh") is None  # BIG-Bench Hard, not BBEH
    assert map_task("lm-eval", "rzero_gsm8k", frozenset({"gsm8k"})).task == "gsm8k"  # type: ignore[union-attr]
    assert map_task("lm-eval", "rzero_nope", frozenset({"gsm8k"})) is None


def test_report_labels_foreign_results_and_never_mixes_them(ours: Path, tmp_path: Path) -> None:
    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    shutil.copy(LMEVAL, lm_dir / LMEVAL.name)
    rep = build_report([ours, lm_dir, LIGHTEVAL])
    assert len(rep["groups"]) == 3  # ours, lm-eval's, lighteval's: one group each
    lm = next(g for g in rep["groups"] if "lm-eval 0.4.13" in g["name"])
    assert lm["columns"] == ["lm (lm-eval 0.4.13)"]
    assert [(r["row"], r["metric"]) for r in lm["rows"]] == [
        ("gsm8k", "exact_match,strict-match")
    ]  # no suite rows
    assert lm["iterations"] == []
    light = next(g for g in rep["groups"] if "lighteval" in g["name"])
    assert {r["row"] for r in light["rows"]} == {"aime24", "math500"}
    ours_group = next(g for g in rep["groups"] if g["name"] == "toy-model")
    assert ours_group["columns"] == ["toy-model"] and {r["row"] for r in ours_group["rows"]} == {"toy"}
    assert all("lm-eval" not in c and "lighteval" not in c for c in ours_group["columns"])


def test_report_in_a_pipe_is_not_cut_to_80_columns(ours: Path) -> None:
    exe = Path(sys.executable).with_name("rzero-bench")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run(
        [str(exe), "report", str(ours)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    assert "no-answer %" in proc.stdout and "eval tokens" in proc.stdout  # headers not wrapped
    assert max(len(line) for line in proc.stdout.splitlines()) > 80


def test_leaderboard_lists_other_harnesses_apart(ours: Path, tmp_path: Path) -> None:
    results = ours.parent
    (results / "lmeval-tiny").mkdir()
    shutil.copy(LMEVAL, results / "lmeval-tiny" / LMEVAL.name)
    text = render_leaderboard(results)
    main, _, rest = text.partition("## Other harnesses")
    assert (
        "| results/" not in main
        and "lm-eval" not in main.split("# Leaderboard")[1].split("## Task hashes")[0].split("Protocol = ")[0]
    )
    row = next(line for line in rest.splitlines() if line.startswith("| tiny-xs"))
    assert "| lm-eval 0.4.13 | gsm8k | gsm8k | exact_match,strict-match | 0.00 | 5 |" in row
    assert (
        "| gsm-model | measured | paper | **75.00†** | **75.00†** |" in main
    )  # ours: Overall, Math avg from our gsm8k
    assert "75.00" not in rest and "| tiny-xs" not in main


def test_schema1_results_still_read() -> None:
    # the former tiny baseline's gsm8k result
    old = next((REPO / "tests" / "fixtures" / "results-schema1").rglob("gsm8k.json"), None)
    if old is None:
        pytest.skip("no committed schema-1 result")
    data = json.loads(old.read_text())
    r = EvalResult.from_dict(data)
    assert ("versions" in data) == (r.schema_version == 1)
    assert r.package_versions == data.get("versions", data.get("package_versions")) and r.protocol == "paper"
