"""Leaderboard: snapshot of a constructed results/ tree, grouping, bold, hash sections, --check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rzero_bench.errors import RZeroError, UserError  # noqa: E402
from rzero_bench.report.leaderboard import collect_rows, leaderboard_command, render_leaderboard  # noqa: E402

DEMO = ROOT / "tests" / "fixtures" / "runs" / "demo"
SNAPSHOT = ROOT / "tests" / "fixtures" / "runs" / "leaderboard_snapshot.md"


def _results(tmp: Path) -> Path:
    res = tmp / "results"
    shutil.copytree(ROOT / "results" / "reference", res / "reference")
    run = res / "tiny-demo"
    shutil.copytree(DEMO / "results", run / "results")
    shutil.copy(DEMO / "manifest.json", run / "manifest.json")
    # a measured Qwen3-4B-Base row with the majority hash (joins the reported group, best MMLU-Pro)
    q = res / "qwen3-4b-mmlu"
    q.mkdir()
    r = json.loads((DEMO / "results" / "iter_0" / "mmlu_pro.json").read_text())
    r["model"] = "Qwen/Qwen3-4B-Base"
    r["metrics"]["acc"] = {"value": 0.6, "stderr": 0.01, "n": 2000}
    (q / "mmlu_pro.json").write_text(json.dumps(r))
    # a row whose gsm8k definition differs from the majority: not comparable
    bad = res / "tiny-other-gsm8k"
    bad.mkdir()
    g = json.loads((DEMO / "results" / "iter_2" / "gsm8k.json").read_text())
    g["task_hash"] = "gsm8k-hash-v2"
    g["model"] = "tiny:s"
    (bad / "gsm8k.json").write_text(json.dumps(g))
    (bad / "notes.json").write_text('{"not": "a result"}')
    return res


def test_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = _results(tmp_path)
    monkeypatch.chdir(tmp_path)
    text = render_leaderboard(Path("results"), Path("leaderboard"))
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8")
    assert render_leaderboard(Path("results"), Path("leaderboard")) == text  # deterministic
    assert res.exists()


def test_structure(tmp_path: Path) -> None:
    res = _results(tmp_path)
    rows, bad, majority = collect_rows(res)
    assert majority["gsm8k"] == "gsm8k-hash-v1"
    assert [r.name for r in bad] == ["tiny-other-gsm8k"]
    groups = {r.group for r in rows}
    assert groups == {"Qwen3-4B-Base", "Qwen3-8B-Base", "OctoThinker-3B", "OctoThinker-8B", "tiny:s"}
    measured = [r for r in rows if r.source == "measured"]
    assert [r.name for r in measured if r.group == "tiny:s"] == [
        "tiny-demo/results/iter_0",
        "tiny-demo/results/iter_1",
        "tiny-demo/results/iter_2",
    ]
    text = render_leaderboard(res)
    qwen = text.split("## Qwen3-4B-Base")[1].split("## ")[0]
    assert "| qwen3-4b-mmlu | measured | paper | 60.00† | – | – | **60.00** | – |" in qwen
    assert "| R-Zero (Iter 2) | reported | official | **34.92** | 48.44 | 27.72 | 53.75 | 9.76 |" in qwen
    assert "## Not comparable" in text and "task hash differs: gsm8k" in text


def test_reference_numbers_are_consistent() -> None:
    # Overall = mean(Math avg, SuperGPQA, MMLU-Pro, BBEH) to rounding, in every reported row
    files = sorted((ROOT / "results" / "reference").glob("*.json"))
    assert len(files) == 4
    for p in files:
        doc = json.loads(p.read_text())
        assert doc["source"] == "reported" and len(doc["rows"]) == 5
        for r in doc["rows"]:
            m = r["metrics"]
            assert (
                abs((m["math_avg"] + m["supergpqa"] + m["mmlu_pro"] + m["bbeh"]) / 4 - m["overall"]) <= 0.006
            )


def test_check_fails_on_stale_and_passes_when_fresh(tmp_path: Path) -> None:
    res = _results(tmp_path)
    out = tmp_path / "lb"
    with pytest.raises(RZeroError, match="missing; run `rzero-bench leaderboard"):
        leaderboard_command(check=True, results=res, out=out)
    leaderboard_command(check=False, results=res, out=out)
    leaderboard_command(check=True, results=res, out=out)  # fresh: no error
    (out / "README.md").write_text((out / "README.md").read_text() + "\nhand edit\n")
    with pytest.raises(RZeroError, match="stale"):
        leaderboard_command(check=True, results=res, out=out)
    leaderboard_command(check=False, results=res, out=out)
    shutil.rmtree(res / "qwen3-4b-mmlu")  # results changed after generation
    with pytest.raises(RZeroError, match="stale"):
        leaderboard_command(check=True, results=res, out=out)


def test_check_cli_exit_code(tmp_path: Path) -> None:
    res = _results(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "rzero_bench.cli",
        "leaderboard",
        "--check",
        "--results",
        str(res),
        "--out",
        str(tmp_path / "lb"),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert (
        p.returncode == 1
        and "rzero-bench leaderboard" in p.stderr
        and len(p.stderr.strip().splitlines()) == 1
    )


def test_committed_leaderboard_is_fresh() -> None:
    committed = (ROOT / "leaderboard" / "README.md").read_text(encoding="utf-8")
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        assert render_leaderboard(Path("results"), Path("leaderboard")) == committed, (
            "run `rzero-bench leaderboard`"
        )
    finally:
        os.chdir(cwd)


def test_missing_results_dir_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        render_leaderboard(tmp_path / "none")
