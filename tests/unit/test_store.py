"""Run store: atomic writes, manifest, config-hash refusal, lock, corruption detection."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rzero_bench.errors import RunStateError, UserError
from rzero_bench.store import (
    RunLock,
    RunStore,
    atomic_write_json,
    atomic_write_jsonl,
    read_json,
    read_jsonl,
    sha256_json,
    sha256_tree,
)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    p = tmp_path / "a" / "b.json"
    atomic_write_json(p, {"x": 1, "é": "ü"})
    assert json.loads(p.read_text(encoding="utf-8")) == {"x": 1, "é": "ü"}
    atomic_write_json(p, {"x": 2})
    assert read_json(p) == {"x": 2}
    assert sorted(os.listdir(p.parent)) == ["b.json"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_json(p, {"ok": True})

    class Boom:
        def to_dict(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write_json(p, {"bad": Boom()})
    assert read_json(p) == {"ok": True}
    assert sorted(os.listdir(tmp_path)) == ["f.json"]


def test_jsonl_roundtrip_and_corruption(tmp_path):
    p = tmp_path / "r.jsonl"
    atomic_write_jsonl(p, [{"a": 1}, {"a": 2}])
    assert read_jsonl(p) == [{"a": 1}, {"a": 2}]
    p.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(RunStateError, match="r.jsonl:2"):
        read_jsonl(p)
    p.write_bytes(b'{"a": "\xff\xfe"}\n')
    with pytest.raises(RunStateError, match="not UTF-8"):
        read_jsonl(p)
    with pytest.raises(UserError, match="not found"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_hashes_are_canonical(tmp_path):
    assert sha256_json({"a": 1, "b": 2}) == sha256_json({"b": 2, "a": 1})
    assert sha256_json({"a": 1}) != sha256_json({"a": 2})
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("1")
    h1 = sha256_tree(tmp_path / "d")
    (tmp_path / "d" / "x").write_text("2")
    assert sha256_tree(tmp_path / "d") != h1


def test_manifest_resume_and_refusal(tmp_path):
    rd = tmp_path / "run"
    s = RunStore(rd)
    assert s.open(config={"a": 1}, config_hash="h1", seeds={"run": 0}, extra={}) is False
    s.start("iter_0/eval")
    (rd / "out.txt").write_text("result")
    s.finish("iter_0/eval", outputs=["out.txt"], wall_time_s=1.25, tokens=10)
    s2 = RunStore(rd)
    assert s2.open(config={"a": 1}, config_hash="h1", seeds={"run": 0}, extra={}) is True
    assert s2.is_done("iter_0/eval")
    assert s2.manifest["stages"]["iter_0/eval"]["tokens"] == 10
    assert s2.manifest["resumes"] == 1
    with pytest.raises(RunStateError, match="another config"):
        RunStore(rd).open(config={"a": 2}, config_hash="h2", seeds={}, extra={})
    # tampering with a finished output is detected
    (rd / "out.txt").write_text("changed")
    with pytest.raises(RunStateError, match="modified"):
        s2.is_done("iter_0/eval")
    (rd / "out.txt").unlink()
    with pytest.raises(RunStateError, match="missing"):
        s2.is_done("iter_0/eval")


def test_corrupted_manifest_is_refused(tmp_path):
    rd = tmp_path / "run"
    rd.mkdir()
    (rd / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunStateError, match="corrupted"):
        RunStore(rd).open(config={}, config_hash="h", seeds={}, extra={})
    (rd / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RunStateError, match="not an rzero-bench manifest"):
        RunStore(rd).open(config={}, config_hash="h", seeds={}, extra={})


def test_non_empty_foreign_directory_is_refused(tmp_path):
    (tmp_path / "somefile").write_text("x")
    with pytest.raises(RunStateError, match="not empty"):
        RunStore(tmp_path).open(config={}, config_hash="h", seeds={}, extra={})


def test_lock_blocks_live_owner_and_takes_over_dead_one(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / ".lock").write_text(str(proc.pid))
        with pytest.raises(RunStateError, match=f"in use by process {proc.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    with RunLock(tmp_path) as lock:
        assert lock.path.read_text() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_resume_removes_what_a_killed_writer_left(tmp_path):
    """SIGKILL inside an atomic write leaves ``.<name>.<random>.tmp`` (file or directory) or a staged
    ``.<name>.saving`` checkpoint; the next open of the run (under its lock) removes them and nothing else."""
    rd = tmp_path / "run"
    RunStore(rd).open(config={"a": 1}, config_hash="h1", seeds={"run": 0}, extra={})
    (rd / "iter_1" / ".solver.saving").mkdir(parents=True)
    (rd / "iter_1" / ".solver.saving" / "model.safetensors").write_bytes(b"half")
    (rd / ".manifest.json.hqay1guj.tmp").write_text("{")
    (rd / "iter_1" / ".votes.jsonl.x1.tmp").write_text("")
    (rd / "iter_1" / ".questions.jsonl.ab.tmp").mkdir()
    keep = [rd / "iter_1" / "votes.jsonl", rd / ".lock.tmp-like", rd / ".servers" / "p.pid", rd / "notes.tmp"]
    for p in keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    s = RunStore(rd)
    assert s.open(config={"a": 1}, config_hash="h1", seeds={"run": 0}, extra={}) is True
    left = sorted(p.relative_to(rd).as_posix() for p in rd.rglob("*"))
    assert left == [".lock.tmp-like", ".servers", ".servers/p.pid", "iter_1", "iter_1/votes.jsonl",
                    "manifest.json", "notes.tmp"]
