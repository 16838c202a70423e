"""`rzero-bench data fetch`, offline: a local dataset directory stands in for the hub (``--hub-dir``);
the mirror it builds is read by the tasks exactly like ../shared/benchmarks, and results record it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rzero_bench.datafetch import SOURCES_FILE, fetch, mirror_digest
from rzero_bench.errors import DataError
from rzero_bench.protocols import plan_tasks
from rzero_bench.store import sha256_file
from rzero_bench.tasks import DOC_ID_KEY, load_docs, load_task

REPO = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("RZERO_DATA_DIR", REPO.parent / "shared" / "benchmarks"))


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    """<hub>/openai/gsm8k/main/test.jsonl (5 GSM8K items), <hub>/BBEH/bbeh/train.jsonl (2 tasks x 2),
    <hub>/MrLight/bbeh-eval/train.jsonl (the official set's columns: question, answer, task)."""
    h = tmp_path / "hub"
    (h / "openai" / "gsm8k" / "main").mkdir(parents=True)
    gsm = [{"question": f"What is {i} + 1?", "answer": f"add one\n#### {i + 1}"} for i in range(5)]
    (h / "openai" / "gsm8k" / "main" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gsm))
    (h / "BBEH" / "bbeh").mkdir(parents=True)
    bb = [{"input": f"q{i}", "target": f"a{i}", "task": t} for i, t in enumerate(["dyck", "dyck", "nycc", "nycc"])]
    (h / "BBEH" / "bbeh" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bb))
    (h / "MrLight" / "bbeh-eval").mkdir(parents=True)
    official = [{"question": "Is it?", "answer": "yes", "task": "boolean"}, {"question": "No?", "answer": "no", "task": "web"}]
    (h / "MrLight" / "bbeh-eval" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in official))
    return h


def test_fetch_builds_the_mirror_layout(hub: Path, tmp_path: Path) -> None:
    data = tmp_path / "mirror"
    specs = [load_task("gsm8k"), load_task("bbeh"), load_task("micro_arith")]
    written = fetch(specs, data, hub_dir=hub)
    assert set(written) == {"gsm8k/test.jsonl", "bbeh/benchmark_tasks"}  # generated tasks have no data
    # the files are where the tasks read them, in the shared mirror's format
    docs = load_docs(load_task("gsm8k"), data_dir=data)
    assert [load_task("gsm8k").render_target(d) for d in docs] == ["1", "2", "3", "4", "5"]
    bbeh = load_docs(load_task("bbeh"), data_dir=data)
    assert sorted(d[DOC_ID_KEY] for d in bbeh) == ["dyck/0", "dyck/1", "nycc/0", "nycc/1"]
    assert json.loads((data / "bbeh" / "benchmark_tasks" / "bbeh_dyck" / "task.json").read_text()) == {
        "examples": [{"input": "q0", "target": "a0"}, {"input": "q1", "target": "a1"}]}
    # provenance
    src = json.loads((data / SOURCES_FILE).read_text())
    g = src["gsm8k/test.jsonl"]
    assert g["hub"] == "openai/gsm8k" and g["config"] == "main" and g["split"] == "test" and g["rows"] == 5
    assert g["revision"] == load_task("gsm8k").metadata.revision and g["source"].startswith("local:")
    assert g["sha256"] == sha256_file(data / "gsm8k" / "test.jsonl")
    assert src["bbeh/benchmark_tasks"]["sha256"] == mirror_digest(data / "bbeh" / "benchmark_tasks")
    # existing files are kept unless forced
    assert fetch(specs, data, hub_dir=hub) == {}
    assert set(fetch(specs, data, hub_dir=hub, force=True)) == {"gsm8k/test.jsonl", "bbeh/benchmark_tasks"}


def test_official_protocol_fetches_the_official_bbeh_set(hub: Path, tmp_path: Path) -> None:
    data = tmp_path / "mirror"
    (bbeh,) = plan_tasks(tasks="bbeh", protocol="official")
    fetch([bbeh.spec], data, hub_dir=hub)
    docs = load_docs(bbeh.spec, data_dir=data)
    assert [bbeh.spec.render_target(d) for d in docs] == ["yes", "no"] and {d["task"] for d in docs} == {"boolean", "web"}


def test_fetched_mirror_is_recorded_in_results(hub: Path, tmp_path: Path) -> None:
    from rzero_bench.backends.scripted import ScriptedGenerator
    from rzero_bench.evaluate import evaluate

    data = tmp_path / "mirror"
    fetch([load_task("gsm8k")], data, hub_dir=hub)
    r = evaluate(ScriptedGenerator(lambda req, i: "\\boxed{1}"), [load_task("gsm8k")], tmp_path / "out",
                 data_dir=data, progress=False)["gsm8k"]
    assert r.data_source["kind"] == "mirror" and r.data_source["file"] == "gsm8k/test.jsonl"
    assert r.data_source["sha256"] == sha256_file(data / "gsm8k" / "test.jsonl")
    assert r.data_source["fetched_from"]["hub"] == "openai/gsm8k"
    assert r.data_source["fetched_from"]["revision"] == "cc7b047b6e5bb11b4f1af84efc572db110a51b3c"


def test_fetch_offline_without_a_stand_in_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="cannot fetch openai/gsm8k offline"):
        fetch([load_task("gsm8k")], tmp_path / "m")


def test_cli_data_fetch(hub: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("rzero-bench")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("RZERO_DATA_DIR", None)
    proc = subprocess.run([str(exe), "data", "fetch", "--tasks", "gsm8k"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: data fetch needs a target: pass --data-dir or set RZERO_DATA_DIR"
    proc = subprocess.run([str(exe), "data", "fetch", "--tasks", "gsm8k,bbeh", "--hub-dir", str(hub), "--data-dir",
                           str(tmp_path / "m")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "gsm8k: 5 rows" in proc.stdout and "2 file(s) written" in proc.stdout
    assert (tmp_path / "m" / "gsm8k" / "test.jsonl").is_file()


def test_eval_without_hub_or_mirror_says_how_to_get_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from rzero_bench.errors import UserError
    from rzero_bench.evaluate import eval_command

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as e:
        eval_command(model="org/m", tasks="gsm8k", data_dir=None)
    msg = str(e.value)
    assert "\n" not in msg and "rzero-bench data fetch --data-dir DIR" in msg and "RZERO_DATA_DIR=DIR" in msg
