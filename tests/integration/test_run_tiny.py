"""End to end: the tiny preset's full 2-iteration R-Zero run with real TRL GRPO steps, and resume
after SIGKILL at three points (inside a GRPO stage, between stages, during evaluation)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", REPO.parent / "shared" / "benchmarks"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATA_DIR / "gsm8k").is_dir() and not os.environ.get("RZERO_REQUIRE_DATA"),
        reason=f"local benchmark mirror not found at {DATA_DIR} (set RZERO_DATA_DIR)",
    ),
]

STAGE_FILES = {
    "challenger_rewards.jsonl": "jsonl",
    "questions.jsonl": "jsonl",
    "attempts.jsonl": "jsonl",
    "votes.jsonl": "jsonl",
    "solver_dataset.jsonl": "jsonl",
    "filter.json": "json",
}


def _env(tmp_home: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "RZERO_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("RZERO_HOME", str(REPO / ".rzero_home"))
    return env


# The default preset (tiny) on the CI's micro base (``micro:s``, seed 0) rather than its own
# ``micro:s@2``: one base for every slow test (the micro loop test builds it first, ~17 min on 2 cores;
# another base would cost ~4 more). Everything else is the default run's config.
BASE = "micro:s"


def _cmd(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "rzero_bench.cli", "run", "--run-dir", str(run_dir), "--model", BASE]


def _run(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(run_dir), env=_env(), capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    proc = _run(run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def _weights_hash(ckpt: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(ckpt.glob("*.safetensors")):
        h.update(f.read_bytes())
    return h.hexdigest()


def _tensors(ckpt: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(ckpt.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_full_run_artefacts_manifest_and_training(full_run: Path) -> None:
    manifest = json.loads((full_run / "manifest.json").read_text())
    assert manifest["finished"] is True
    assert manifest["config"]["iterations"] == 2
    assert len(manifest["config_hash"]) == 64
    assert {"torch", "transformers", "trl"} <= set(manifest["versions"])
    stages = manifest["stages"]
    expected = ["iter_0/eval"] + [f"iter_{k}/{s}" for k in (1, 2)
                                  for s in ("challenger", "questions", "votes", "filter", "solver", "eval")]
    for name in expected:
        st = stages[name]
        assert st["status"] == "done", name
        assert st["wall_time_s"] > 0 and st["outputs"], name
    assert stages["iter_1/challenger"]["steps"] > 0 and stages["iter_1/solver"]["steps"] > 0

    for k in (1, 2):
        it = full_run / f"iter_{k}"
        for name, kind in STAGE_FILES.items():
            text = (it / name).read_text(encoding="utf-8")
            rows = [json.loads(line) for line in text.splitlines()] if kind == "jsonl" else [json.loads(text)]
            assert rows, f"{it / name} is empty"
        votes = [json.loads(line) for line in (it / "votes.jsonl").read_text().splitlines()]
        assert all(0.0 <= v["p_hat"] <= 1.0 for v in votes)
        kept = [json.loads(line) for line in (it / "solver_dataset.jsonl").read_text().splitlines()]
        f = json.loads((it / "filter.json").read_text())
        assert f["kept"] == len(kept) and f["candidates"] == f["kept"] + sum(f["drops"].values()) - f["drops"].get("malformed", 0)
        for role in ("challenger", "solver"):
            assert (it / role / "config.json").is_file() and list((it / role).glob("*.safetensors"))

    # both roles' parameters changed, each iteration relative to the previous one
    base = Path(manifest["base_model"])
    for role in ("challenger", "solver"):
        prev = _tensors(base)
        for k in (1, 2):
            cur = _tensors(full_run / f"iter_{k}" / role)
            changed = sum(int(not (prev[n] == cur[n]).all()) for n in cur)
            assert changed > 0, f"{role} iteration {k}: no parameter changed"
            prev = cur

    # results for iterations 0, 1, 2 that validate against the EvalResult schema
    from rzero_bench.records import EvalResult

    for k in (0, 1, 2):
        files = sorted((full_run / "results" / f"iter_{k}").glob("*.json"))
        tasks = [f for f in files if not f.name.startswith(("eval_summary", "label_accuracy"))]
        assert tasks, f"no results for iteration {k}"
        for f in tasks:
            r = EvalResult.from_dict(json.loads(f.read_text()))
            assert "acc" in r.metrics and 0 <= r.metrics["acc"]["value"] <= 1
            assert (f.parent / f"{f.stem}.samples.jsonl").is_file()


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run exited early with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the kill point")


def _stage_status(run_dir: Path, name: str) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text())["stages"].get(name, {}).get("status")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _fingerprint(run_dir: Path) -> dict[str, str]:
    """What must be identical between an interrupted+resumed run and an uninterrupted one."""
    out = {}
    for k in (1, 2):
        it = run_dir / f"iter_{k}"
        for name in ("questions.jsonl", "attempts.jsonl", "votes.jsonl", "solver_dataset.jsonl", "filter.json",
                     "challenger_rewards.jsonl"):
            out[f"iter_{k}/{name}"] = hashlib.sha256((it / name).read_bytes()).hexdigest()
        for role in ("challenger", "solver"):
            out[f"iter_{k}/{role}"] = _weights_hash(it / role)
    for k in (0, 1, 2):
        for f in sorted((run_dir / "results" / f"iter_{k}").glob("*.json")):
            data = json.loads(f.read_text())
            if "metrics" in data:
                out[f"results/iter_{k}/{f.name}"] = json.dumps(data["metrics"], sort_keys=True)
    return out


def test_resume_after_sigkill_matches_uninterrupted_run(full_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    kill_points = [
        # inside a GRPO stage: the challenger has started training and logged a reward row
        lambda: _stage_status(run_dir, "iter_1/challenger") == "running"
        and (run_dir / "iter_1" / "challenger_rewards.jsonl").exists(),
        # between stages: right after the filter finished
        lambda: _stage_status(run_dir, "iter_1/filter") == "done",
        # during evaluation
        lambda: _stage_status(run_dir, "iter_1/eval") == "running" and any((run_dir / "results" / "iter_1").glob("*.json")),
    ]
    finished_before: dict[str, int] = {}
    for point in kill_points:
        proc = subprocess.Popen(_cmd(run_dir), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            _wait_for(point, proc)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        m = json.loads((run_dir / "manifest.json").read_text())
        for name, st in m["stages"].items():
            if st["status"] == "done":
                finished_before.setdefault(name, st["attempts"])
    proc = _run(run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["finished"] and m["resumes"] == 3
    # a finished stage never ran again
    for name, attempts in finished_before.items():
        assert m["stages"][name]["attempts"] == attempts, name
    # the interrupted stages were restarted
    assert m["stages"]["iter_1/challenger"]["attempts"] == 2
    assert m["stages"]["iter_1/eval"]["attempts"] == 2
    assert _fingerprint(run_dir) == _fingerprint(full_run)
    # no temp files or half checkpoints left behind
    leftovers = [p for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".saving")) or ".tmp" in p.name]
    assert not leftovers, leftovers


def test_second_run_on_same_directory_is_refused_while_locked(full_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "locked"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / ".lock").write_text(str(holder.pid))
        proc = _run(run_dir)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    assert "in use by process" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_changed_config_is_refused_and_work_untouched(full_run: Path) -> None:
    before = (full_run / "manifest.json").read_bytes()
    proc = subprocess.run(_cmd(full_run) + ["--set", "selfplay.m=3"], env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert "another config" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (full_run / "manifest.json").read_bytes() == before
