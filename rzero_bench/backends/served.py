"""A model served by a child process (``vllm serve`` or ``transformers serve``), reached over the openai backend.

The R-Zero GPU layout serves the current solver on its own GPUs while the challenger trains on the
others. The served checkpoint changes every iteration, so the pipeline starts the server for the
stage that needs it and stops it afterwards. The engine (:mod:`rzero_bench.backends.engines`)
gives the command template, the readiness path and the wire differences; ``command`` overrides the
template. ``CUDA_VISIBLE_DEVICES`` selects the server's GPUs.

Lifetime: the server runs in its own process group and is stopped (SIGTERM to the group, SIGKILL
after ``stop_timeout`` seconds, then waited for) by :meth:`ServedGenerator.close`, which every exit
path reaches: the ``with`` block, an error during start-up, :func:`stop_all` (registered with
``atexit``; the pipeline also calls it from its SIGTERM/SIGINT handling). On Linux the server also
gets SIGTERM from the kernel when the thread that started it dies (``PR_SET_PDEATHSIG``), which
covers a SIGKILLed orchestrator. With ``pid_dir`` set, a JSON pidfile (pid, process start time,
command) lives there while the server runs; :func:`reap_orphans` stops any server a killed run left
behind (the pipeline calls it on resume).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rzero_bench.backends.base import BaseGenerator, ProgressFn
from rzero_bench.backends.engines import ENGINES, format_command, get_engine
from rzero_bench.errors import BackendError
from rzero_bench.records import Generation, GenerationRequest

DEFAULT_SERVE_COMMAND = ENGINES["vllm"].command

_LIVE: set[ServedGenerator] = set()
_LIVE_LOCK = threading.Lock()


PORT_ATTEMPTS = 3  # server starts tried on fresh ports when the one picked was taken meanwhile


class _PortTaken(BackendError):
    """The server exited because its port was taken before it could bind it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: ask the kernel to SIGTERM this child when the thread that started it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def process_start_time(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22),
    which tells a live process from a later one that reused its pid; None when unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """True when ``pid`` runs (and, given ``start_time``, is the same process); zombies count as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return start_time is None
    if state == "Z":
        return False
    return start_time is None or process_start_time(pid) == start_time


def stop_group(pid: int, wait_fn: Any, timeout: float) -> None:
    """SIGTERM the process group ``pid``, wait up to ``timeout`` s with ``wait_fn``, then SIGKILL it."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_fn(timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    wait_fn(None)


class ServedGenerator(BaseGenerator):
    """Start the engine for ``model``, wait until it is ready, generate through HTTP, stop it on close."""

    name = "served"

    def __init__(self, model: str, *, engine: str = "vllm", command: str | None = None, gpus: str | None = None,
                 port: int | None = None, startup_timeout: float = 900.0, stop_timeout: float = 30.0,
                 api_key_env: str = "OPENAI_API_KEY", served_name: str = "solver",
                 max_model_len: int | None = None, gpu_memory_utilization: float | None = None,
                 pid_dir: str | os.PathLike[str] | None = None, log_path: str | os.PathLike[str] | None = None,
                 threads: int | None = None, **openai_options: Any) -> None:
        import httpx

        from rzero_bench.backends.openai import OpenAIGenerator

        self.engine = get_engine(engine)
        self.model_id = str(model)
        self.stop_timeout = float(stop_timeout)
        self.log_path = Path(log_path) if log_path else None
        n_gpus = len([g for g in gpus.split(",") if g.strip()]) if gpus else 1
        env = dict(os.environ)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        if threads is not None:  # CPU engines: torch's intra-op threads (1 is fastest for small models)
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(int(threads))
        # A port we pick can be taken by someone else before the server binds it (seconds later):
        # then the server exits saying so, and we try again on another one.
        attempts = 1 if port else PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self.port = port or free_port()
            argv = format_command(command or self.engine.command, model=str(model), port=self.port,
                                  name=served_name, data_parallel_size=n_gpus, max_model_len=max_model_len,
                                  gpu_memory_utilization=gpu_memory_utilization)
            if argv and os.sep not in argv[0] and shutil.which(argv[0]) is None:
                beside = Path(sys.executable).with_name(argv[0])  # an unactivated venv: its bin/ is not on PATH
                if beside.is_file():
                    argv[0] = str(beside)
            self.argv = argv
            t0 = time.monotonic()
            self._spawn(argv, env, pid_dir)
            try:
                self._wait_ready(httpx, startup_timeout)
            except _PortTaken as e:
                self.close()
                if attempt == attempts:
                    raise BackendError(str(e)) from None
                continue
            except BaseException:
                self.close()
                raise
            break
        root = f"http://127.0.0.1:{self.port}"
        self.info["ready_s"] = round(time.monotonic() - t0, 2)
        options = dict(openai_options)
        if self.engine.concurrency is not None:
            options.setdefault("concurrency", self.engine.concurrency)
        options.setdefault("supports_n", self.engine.supports_n)
        options.setdefault("top_k_mode", self.engine.top_k)
        self.served_name = served_name if self.engine.names_model else str(model)
        self.inner = OpenAIGenerator(self.served_name, base_url=f"{root}/v1", api_key_env=api_key_env, **options)

    def _spawn(self, argv: list[str], env: dict[str, str], pid_dir: str | os.PathLike[str] | None) -> None:
        """Start ``argv`` in its own process group (output to the log), write its pidfile, register it."""
        out: Any = subprocess.DEVNULL
        self._log_start = 0  # this start's part of the log (earlier starts appended before it)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it; closed below
            self._log_start = out.tell()
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)
        except FileNotFoundError:
            raise BackendError(f"cannot start the {self.engine.name} server: {argv[0]!r} not found "
                               f"({self.engine.install})") from None
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        self.pid = self._proc.pid
        self.info: dict[str, Any] = {"engine": self.engine.name, "pid": self.pid, "port": self.port,
                                     "command": shlex.join(argv), "model": self.model_id}
        self._pidfile: Path | None = None
        if pid_dir is not None:
            self._pidfile = Path(pid_dir) / f"{self.pid}.json"
            from rzero_bench.store import atomic_write_json

            atomic_write_json(self._pidfile, {**self.info, "start_time": process_start_time(self.pid),
                                              "started_at": time.time()})
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _wait_ready(self, httpx: Any, startup_timeout: float) -> None:
        """Poll the engine's readiness path until it answers 200; BackendError when the server exits
        or the time is up (_PortTaken when it exited because its port was taken)."""
        assert self._proc is not None
        url = f"http://127.0.0.1:{self.port}{self.engine.ready_path}"
        deadline = time.monotonic() + startup_timeout
        while True:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                msg = (f"the {self.engine.name} server exited with code {self._proc.returncode} before it was "
                       f"ready: {shlex.join(self.argv)}{tail}")
                if "address already in use" in tail.lower():
                    raise _PortTaken(msg)
                raise BackendError(msg)
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BackendError(f"the {self.engine.name} server did not answer within {startup_timeout:.0f}s: "
                                   f"{shlex.join(self.argv)}{self._log_tail()}")
            time.sleep(0.25)

    def client_spec(self) -> dict[str, Any]:
        """How another process (a launched trainer rank) reaches this server: the ``openai`` backend's
        model name and options, as :func:`rzero_bench.backends.make_generator` takes them."""
        inner = self.inner
        return {
            "backend": "openai",
            "model": self.served_name,
            "options": {
                "base_url": inner.base_url,
                "api_key_env": inner.api_key_env,
                "concurrency": inner.concurrency,
                "supports_n": inner.supports_n,
                "top_k_mode": inner.top_k_mode,
            },
        }

    def _log_tail(self, lines: int = 5) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(getattr(self, "_log_start", 0))
            text = fh.read().decode("utf-8", errors="replace")
        tail = text.strip().splitlines()[-lines:]
        return ("; its log ends: " + " | ".join(t.strip() for t in tail)) if tail else ""

    def generate(self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None) -> list[Generation]:
        return self.inner.generate(requests, progress=progress)

    def close(self) -> None:
        """Stop the server and wait for it (idempotent); remove its pidfile."""
        inner = getattr(self, "inner", None)
        if inner is not None:
            inner.close()
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is not None:
            def wait(timeout: float | None) -> bool:
                try:
                    proc.wait(timeout=timeout)
                    return True
                except subprocess.TimeoutExpired:
                    return False

            if proc.poll() is None:
                stop_group(proc.pid, wait, self.stop_timeout)
            else:  # the leader is gone; its group may not be
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            self.info["exit_code"] = proc.returncode
            self.info["stopped"] = True
        pidfile, self._pidfile = getattr(self, "_pidfile", None), None
        if pidfile is not None:
            pidfile.unlink(missing_ok=True)
        with _LIVE_LOCK:
            _LIVE.discard(self)


def stop_all() -> int:
    """Stop every server this process started and has not stopped yet; returns how many."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for gen in live:
        gen.close()
    return len(live)


atexit.register(stop_all)


def reap_orphans(pid_dir: str | os.PathLike[str], *, timeout: float = 30.0) -> list[int]:
    """Stop the servers recorded in ``pid_dir`` that still run (a run killed with SIGKILL leaves its
    pidfile behind); returns their pids. Pidfiles of servers already gone are removed."""
    d = Path(pid_dir)
    if not d.is_dir():
        return []
    reaped: list[int] = []
    for f in sorted(d.glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            pid = int(rec["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            f.unlink(missing_ok=True)
            continue
        start = rec.get("start_time")
        if process_alive(pid, start):
            def wait(limit: float | None, pid: int = pid, start: Any = start) -> bool:
                end = None if limit is None else time.monotonic() + limit
                while process_alive(pid, start):
                    if end is not None and time.monotonic() > end:
                        return False
                    time.sleep(0.1)
                return True

            stop_group(pid, wait, timeout)
            reaped.append(pid)
        f.unlink(missing_ok=True)
    return reaped
