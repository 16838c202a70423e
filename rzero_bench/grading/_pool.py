"""A pool of killable worker processes with a hard wall-clock timeout per item.

One dispatcher thread owns the workers; callers (any thread) submit jobs and wait on futures.
Workers are started with ``spawn``. Each worker publishes the step it is executing in a shared
array; when a step outlives its deadline the worker is killed (SIGKILL), replaced, and the job is
resubmitted with that step marked ``timeout`` (a crash marks it ``error``), so one pathological
string never blocks the others.

Warm workers. A worker reports ``ready`` once math-verify is imported and ``warm`` once it has
parsed one answer of each common shape (``_worker._WARM_UP``; the first parse of a shape loads
lazily imported parts of sympy). The first workers of a pool take jobs as soon as they are ready.
After the first kill a hot spare is kept; a killed worker's replacement (the spare, or a fresh
worker) takes no job until it is warm, so a job's timeout never pays for a replacement's start-up:
while no worker can take it, a job waits in the queue.

A missing or broken math-verify is an error, never a degraded grader: a worker that cannot import
it says so in its ``ready`` message, and from then on every queued and every later job fails with
:class:`GraderUnavailable`, a one-line :class:`~rzero_bench.errors.UserError`.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from rzero_bench.errors import UserError

_READY_TIMEOUT = 120.0  # seconds a fresh worker may take to import math-verify
_MAX_CRASHES = 3


class GraderUnavailable(UserError):
    """math-verify cannot run in the grading workers (not installed, or its import fails)."""


@dataclass
class _Job:
    kind: str
    payload: Any
    timeout: float
    future: Future[Any]
    skip: dict[tuple[int, int, int], str] = field(default_factory=dict)
    crashes: int = 0
    id: int = 0


class _Worker:
    def __init__(self, ctx: Any, replacement: bool = False) -> None:
        from rzero_bench.grading._worker import worker_main

        self.cursor = ctx.RawArray("d", 5)
        parent, child = ctx.Pipe(duplex=True)
        self.conn = parent
        self.proc = ctx.Process(
            target=worker_main, args=(child, self.cursor), daemon=True, name="rzero-grader"
        )
        self.proc.start()
        child.close()
        self.started = time.monotonic()
        self.ready = False
        self.warm = False
        self.replacement = replacement  # takes jobs only once warm
        self.job: _Job | None = None
        self.dispatched = 0.0
        self.seq = 0.0

    def available(self) -> bool:
        """Ready for a job: started, idle, and (for a replacement) warmed up."""
        return self.ready and self.job is None and (self.warm or not self.replacement)

    def send(self, job: _Job) -> None:
        self.job = job
        self.dispatched = time.monotonic()
        self.seq = self.cursor[0]
        self.conn.send((job.id, job.kind, job.payload, dict(job.skip)))

    def deadline(self) -> float:
        assert self.job is not None
        start = self.dispatched
        if self.cursor[0] != self.seq:
            start = max(start, self.cursor[4])
        return start + self.job.timeout

    def step(self) -> tuple[int, int, int] | None:
        if self.cursor[0] == self.seq:
            return None
        return (int(self.cursor[1]), int(self.cursor[2]), int(self.cursor[3]))

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


class WorkerPool:
    """Process pool; ``submit(kind, payload, timeout)`` returns a Future of the worker's result."""

    def __init__(self, size: int | None = None) -> None:
        self.size = max(1, size or _cpu_count())
        self.pid = os.getpid()
        self._ctx = _context()
        self._lock = threading.Lock()
        self._queue: collections.deque[_Job] = collections.deque()
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.kills = 0
        self.cold_jobs = 0  # jobs a worker began before its warm-up was done (see the module docstring)
        self.broken: str | None = None  # why math-verify cannot run, once a worker has said so
        self._spare: _Worker | None = None
        self._start_failures = 0
        self._prestart = False
        self._thread = threading.Thread(target=self._run, name="rzero-grading-dispatcher", daemon=True)
        self._thread.start()

    # -- public -------------------------------------------------------------------------------
    def submit(self, kind: str, payload: Any, timeout: float) -> Future[Any]:
        fut: Future[Any] = Future()
        job = _Job(kind, payload, float(timeout), fut, id=next(self._ids))
        with self._lock:
            if self.broken is not None:
                raise GraderUnavailable(self.broken)
            if self._closed:
                raise RuntimeError("grading pool is shut down")
            self._queue.append(job)
        self._wake()
        return fut

    def wait_ready(self, timeout: float = _READY_TIMEOUT) -> bool:
        """Start all workers now and wait until they (and the hot spare) have imported and warmed
        up math-verify, so that later timings exclude the start-up; False after ``timeout``."""
        self._prestart = True
        self._wake()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.broken is not None:
                raise GraderUnavailable(self.broken)
            workers = list(self._workers)
            spare = self._spare
            if (
                len(workers) == self.size
                and all(w.warm for w in workers)
                and spare is not None
                and spare.warm
            ):
                return True  # the hot spare too: its start-up would otherwise compete for the CPUs
            time.sleep(0.01)
        return False

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        workers = self._workers + ([self._spare] if self._spare is not None else [])
        for w in workers:
            with contextlib.suppress(Exception):
                w.conn.send(None)
            w.kill()
        self._workers.clear()
        self._spare = None
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- dispatcher -----------------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - never leave callers waiting
            msg = f"grading pool failed: {type(exc).__name__}: {exc}"
            with self._lock:
                self._closed = True
                pending = list(self._queue)
                self._queue.clear()
            pending += [w.job for w in self._workers if w.job is not None]
            for job in pending:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(msg))

    def _loop(self) -> None:
        while True:
            with self._lock:
                closed = self._closed
                queued = len(self._queue)
            if closed:
                return
            if self.broken is None and (queued or self._prestart) and len(self._workers) < self.size:
                while len(self._workers) < self.size:
                    self._workers.append(_Worker(self._ctx))
            if (
                self._spare is None
                and self.broken is None
                and len(self._workers) == self.size
                and all(w.ready for w in self._workers)
            ):
                self._spare = _Worker(self._ctx)  # hot spare: replacing a killed worker is instant
            self._assign()
            now = time.monotonic()
            wait_for = 0.5
            for w in self._workers:
                if w.job is not None:
                    wait_for = min(wait_for, max(0.0, w.deadline() - now) + 0.005)
            spare = [self._spare.conn] if self._spare is not None else []
            ready = wait([self._wake_r] + [w.conn for w in self._workers] + spare, timeout=wait_for)
            for obj in ready:
                if obj == self._wake_r:
                    with contextlib.suppress(OSError):
                        while os.read(self._wake_r, 4096):
                            pass
                    continue
                if self._spare is not None and obj is self._spare.conn:
                    self._receive_spare(self._spare)
                    continue
                owner = next((x for x in self._workers if x.conn is obj), None)
                if owner is not None:
                    self._receive(owner)
            self._check_deadlines()

    def _assign(self) -> None:
        for w in self._workers:
            if w.available():
                with self._lock:
                    if not self._queue:
                        return
                    job = self._queue.popleft()
                try:
                    w.send(job)
                except (OSError, ValueError):
                    self._replace(w)
                    with self._lock:
                        self._queue.appendleft(job)

    def _receive(self, w: _Worker) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            self._crashed(w)
            return
        tag = msg[0]
        if tag == "ready":
            if msg[2]:
                self._set_broken(msg[2])
                return
            w.ready = True
            self._start_failures = 0
            return
        if tag == "warm":
            w.warm = True
            return
        job = w.job
        w.job = None
        if job is None or msg[1] != job.id:
            return
        if msg[3]:
            self.cold_jobs += 1
        if tag == "done":
            job.future.set_result(msg[2])
        else:
            job.future.set_exception(RuntimeError(msg[2]))

    def _receive_spare(self, w: _Worker) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            w.kill()
            self._spare = None
            return
        if msg[0] == "ready":
            if msg[2]:
                self._set_broken(msg[2])
                return
            w.ready = True
        elif msg[0] == "warm":
            w.warm = True

    def _crashed(self, w: _Worker) -> None:
        job = w.job
        step = w.step() if job is not None else None
        self._replace(w)
        if job is None:
            if not w.ready:
                self._start_failures += 1
                if self._start_failures >= 3:
                    self._set_broken(
                        "grading workers die while starting, three times in a row "
                        "(is math-verify installed and importable? try: python -c 'import math_verify')"
                    )
            return
        job.crashes += 1
        if step is not None and step not in job.skip and job.crashes <= _MAX_CRASHES:
            job.skip[step] = "error"
            if not self._resolve_locally(job):
                self._requeue(job)
        elif job.crashes <= _MAX_CRASHES:
            self._requeue(job)
        else:
            job.future.set_exception(RuntimeError("grading worker crashed repeatedly"))

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for w in list(self._workers):
            if w.job is None and not w.available() and now - w.started > _READY_TIMEOUT:
                self._replace(w)
                self._fail_all(f"grading worker did not start and warm up within {_READY_TIMEOUT:.0f} s")
                continue
            job = w.job
            if job is None or now < w.deadline():
                continue
            step = w.step()
            self.kills += 1
            self._replace(w)
            if step is None or step in job.skip:
                step = (1, -1, 0) if job.kind == "grade" else (0, 0, 0)
                if step in job.skip:
                    job.future.set_exception(RuntimeError("grading job timed out"))
                    continue
            job.skip[step] = "timeout"
            if not self._resolve_locally(job):
                self._requeue(job)

    @staticmethod
    def _resolve_locally(job: _Job) -> bool:
        """Finish a grade job whose every item is already known (timed out / crashed) without
        waiting for a replacement worker."""
        if job.kind != "grade":
            return False
        preds = job.payload[1]
        gold = job.skip.get((1, -1, 0))
        results = []
        for i in range(len(preds)):
            status = gold or job.skip.get((1, i, 0)) or job.skip.get((2, i, 0))
            if status is None:
                return False
            results.append((status, None, ("reference: " if gold else "prediction: ") + status))
        job.future.set_result(results)
        return True

    def _requeue(self, job: _Job) -> None:
        with self._lock:
            self._queue.appendleft(job)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        if self.broken is not None:
            if w in self._workers:
                self._workers.remove(w)
            return
        idx = self._workers.index(w)
        spare, self._spare = self._spare, None
        new = spare if spare is not None else _Worker(self._ctx)
        new.replacement = True
        self._workers[idx] = new
        self._spare = _Worker(self._ctx)

    def _set_broken(self, reason: str) -> None:
        """math-verify cannot run: stop every worker and fail every job, now and later."""
        if self.broken is None:
            self.broken = " ".join(reason.split())
        with self._lock:
            pending = list(self._queue)
            self._queue.clear()
        pending += [w.job for w in self._workers if w.job is not None]
        workers = self._workers + ([self._spare] if self._spare is not None else [])
        self._workers, self._spare = [], None
        for x in workers:
            x.kill()
        for job in pending:
            if not job.future.done():
                job.future.set_exception(GraderUnavailable(self.broken))

    def _fail_all(self, msg: str) -> None:
        with self._lock:
            pending = list(self._queue)
            self._queue.clear()
        for job in pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError(msg))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _context() -> Any:
    # "spawn" talks to its children over pipes only: no fork of a threaded parent (unsafe), and no
    # AF_UNIX connect (the forkserver's), which socket-restricted environments such as
    # pytest-socket refuse. Its cost, a sympy import per new worker, is hidden by a hot spare.
    return mp.get_context("spawn")
