"""Run directories: atomic artefact writes, content hashes, the manifest, resume and a lock.

Every artefact is written to a temporary file in the same directory, flushed, fsynced and renamed
over the target, so a killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rzero_bench.errors import RunStateError, UserError


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON used for artefacts (sorted keys, UTF-8, trailing newline)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_default) + "\n"


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj))


def atomic_write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> Path:
    lines = [json.dumps(r, sort_keys=True, ensure_ascii=False, default=_default) for r in rows]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_json(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"file not found: {p}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunStateError(f"{p} is corrupted ({e.__class__.__name__}: {e}); delete it to redo that step") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    p = Path(path)
    rows = []
    try:
        with p.open("r", encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise RunStateError(f"{p}:{i} is not valid JSON ({e.msg}); the file is corrupted") from None
    except FileNotFoundError:
        raise UserError(f"file not found: {p}") from None
    except UnicodeDecodeError:
        raise RunStateError(f"{p} is not UTF-8; the file is corrupted") from None
    return rows


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_json(obj: Any) -> str:
    """Hash of the canonical JSON form of ``obj``."""
    return sha256_text(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=_default, separators=(",", ":")))


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike[str]) -> str:
    """Hash of a directory: relative paths and file contents, in sorted order."""
    root = Path(path)
    if root.is_file():
        return sha256_file(root)
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def atomic_replace_dir(tmp_dir: Path, target: Path) -> None:
    """Move a fully written directory into place (removing an older one first)."""
    if target.exists():
        trash = target.with_name(f".{target.name}.old")
        if trash.exists():
            shutil.rmtree(trash)
        os.replace(target, trash)
        os.replace(tmp_dir, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp_dir, target)
    _fsync_dir(target.parent)


class RunLock:
    """An exclusive lock file (``<run>/.lock``) holding the owner's pid.

    A lock left by a dead process (SIGKILL) is taken over; a live owner makes the second run fail.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or "0")
                except (OSError, ValueError):
                    pid = 0
                if pid and _pid_alive(pid) and pid != os.getpid():
                    raise RunStateError(
                        f"run directory {self.path.parent} is in use by process {pid}; wait for it or stop it"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            self._held = True
            return
        raise RunStateError(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self._held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as dead
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if ") Z " in stat:
            return False
    return True


@contextlib.contextmanager
def temp_dir_beside(target: Path) -> Iterator[Path]:
    """A temporary directory next to ``target`` (same filesystem, so it can be renamed in)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


STAGE_PENDING, STAGE_RUNNING, STAGE_DONE = "pending", "running", "done"


def package_versions(names: tuple[str, ...] = ("rzero-bench", "torch", "transformers", "trl", "accelerate",
                                               "datasets", "math-verify", "vllm")) -> dict[str, str]:
    """Installed versions of the packages that matter for reproducibility (missing ones omitted)."""
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


class RunStore:
    """A run directory: ``manifest.json`` (config, hash, versions, seeds, stages) plus artefacts.

    The manifest is rewritten atomically after every stage transition. A stage is ``done`` only
    after all of its outputs were renamed into place and their hashes recorded, so resume restarts
    the first stage that is not ``done`` and never reruns a finished one.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(run_dir)
        self.manifest_path = self.dir / "manifest.json"
        self.manifest: dict[str, Any] = {}

    # -- lifecycle
    def open(self, *, config: dict[str, Any], config_hash: str, seeds: dict[str, int], extra: dict[str, Any]) -> bool:
        """Create or reopen the run. Returns True when resuming an existing run.

        Refuses a run directory whose manifest has another config hash, and a corrupted manifest.
        """
        if self.manifest_path.exists():
            m = read_json(self.manifest_path)
            if not isinstance(m, dict) or "config_hash" not in m or "stages" not in m:
                raise RunStateError(f"{self.manifest_path} is not an rzero-bench manifest; use another --run-dir")
            if m["config_hash"] != config_hash:
                raise RunStateError(
                    f"{self.dir} was made with another config (hash {m['config_hash'][:12]} != {config_hash[:12]}); "
                    "use a new --run-dir or the original config"
                )
            self.manifest = m
            self.manifest.setdefault("resumes", 0)
            self.manifest["resumes"] += 1
            self.save()
            self.remove_leftovers()
            return True
        if self.dir.exists() and any(p for p in self.dir.iterdir() if p.name != ".lock"):
            raise RunStateError(f"{self.dir} exists, is not empty and has no manifest.json; use another --run-dir")
        self.manifest = {
            "schema_version": 1,
            "config": config,
            "config_hash": config_hash,
            "seeds": seeds,
            "versions": package_versions(),
            "stages": {},
            "resumes": 0,
            **extra,
        }
        self.save()
        return False

    def save(self) -> None:
        atomic_write_json(self.manifest_path, self.manifest)

    def remove_leftovers(self) -> list[Path]:
        """Delete what a killed writer left half-done: atomic-write temp files and directories
        (``.<name>.<random>.tmp``) and staged checkpoints (``.<name>.saving``). Only the run's
        lock holder calls this (on resume), so no live writer owns them. Returns what was removed."""
        found = [
            p
            for p in self.dir.rglob(".*")
            if (p.name.endswith(".tmp") or p.name.endswith(".saving")) and p.name.count(".") >= 2
        ]
        removed = []
        for p in sorted(found, key=lambda q: len(q.parts)):  # parents first; their children go with them
            if not p.exists() and not p.is_symlink():
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        return removed

    # -- stages
    def stage(self, name: str) -> dict[str, Any]:
        return self.manifest["stages"].setdefault(name, {"status": STAGE_PENDING})

    def is_done(self, name: str) -> bool:
        st = self.manifest["stages"].get(name)
        if not st or st.get("status") != STAGE_DONE:
            return False
        for rel, digest in (st.get("outputs") or {}).items():
            p = self.dir / rel
            if not p.exists():
                raise RunStateError(f"stage {name} is marked done but its output {p} is missing; the run directory is corrupted")
            if p.is_file() and digest and sha256_file(p) != digest:
                raise RunStateError(f"stage {name}: output {p} was modified after it was written (hash mismatch); the run directory is corrupted")
        return True

    def start(self, name: str, inputs: dict[str, str] | None = None) -> None:
        st = self.stage(name)
        st.update({"status": STAGE_RUNNING, "attempts": st.get("attempts", 0) + 1})
        if inputs:
            st["inputs"] = {k: self._digest(v) for k, v in inputs.items()}
        self.save()

    def finish(self, name: str, *, outputs: list[str], wall_time_s: float, **info: Any) -> None:
        st = self.stage(name)
        st.update(info)
        st["status"] = STAGE_DONE
        st["wall_time_s"] = round(wall_time_s, 3)
        st["outputs"] = {rel: (sha256_file(self.dir / rel) if (self.dir / rel).is_file() else sha256_tree(self.dir / rel))
                         for rel in outputs}
        self.save()

    def _digest(self, path: str) -> str:
        p = Path(path)
        if not p.is_absolute():
            p = self.dir / p
        if p.is_file():
            return sha256_file(p)
        if p.is_dir():
            return sha256_tree(p)
        return str(path)  # a hub id or other non-file input
