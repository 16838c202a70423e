"""A model served by a child process (``vllm serve`` by default), reached over the openai backend.

The R-Zero GPU layout serves the current solver on its own GPUs while the challenger trains on the
others. The served checkpoint changes every iteration, so the pipeline starts the server for the
stage that needs it and stops it afterwards. The command is a template with ``{model}``,
``{port}`` and ``{name}``; ``CUDA_VISIBLE_DEVICES`` selects the server's GPUs.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from rzero_bench.backends.base import BaseGenerator, ProgressFn
from rzero_bench.errors import BackendError
from rzero_bench.records import Generation, GenerationRequest

DEFAULT_SERVE_COMMAND = "vllm serve {model} --host 127.0.0.1 --port {port} --served-model-name {name}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedGenerator(BaseGenerator):
    """Start ``command`` for ``model``, wait until ``/v1/models`` answers, generate through HTTP."""

    name = "served"

    def __init__(self, model: str, *, command: str = DEFAULT_SERVE_COMMAND, gpus: str | None = None,
                 port: int | None = None, startup_timeout: float = 900.0, api_key_env: str = "OPENAI_API_KEY",
                 served_name: str = "solver", **openai_options: Any) -> None:
        import httpx

        from rzero_bench.backends.openai import OpenAIGenerator

        self.model_id = str(model)
        self.port = port or free_port()
        argv = shlex.split(command.format(model=shlex.quote(str(model)), port=self.port, name=served_name))
        env = dict(os.environ)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(argv, env=env, start_new_session=True)
        except FileNotFoundError:
            raise BackendError(f"cannot start the solver server: {argv[0]!r} not found (install the vllm extra)") from None
        base_url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + startup_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BackendError(f"the solver server exited with code {code} before it was ready: {shlex.join(argv)}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise BackendError(f"the solver server did not answer within {startup_timeout:.0f}s: {shlex.join(argv)}")
            time.sleep(0.5)
        self.inner = OpenAIGenerator(served_name, base_url=base_url, api_key_env=api_key_env, **openai_options)

    def generate(self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None) -> list[Generation]:
        return self.inner.generate(requests, progress=progress)

    def close(self) -> None:
        inner = getattr(self, "inner", None)
        if inner is not None:
            inner.close()
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
