"""The `served` backend: starts a server command per checkpoint, talks openai to it, stops it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rzero_bench.backends import make_generator
from rzero_bench.errors import BackendError
from rzero_bench.records import GenerationRequest, SamplingParams

FAKE = Path(__file__).resolve().parents[1] / "fixtures" / "fake_vllm_serve.py"
CMD = f"{sys.executable} {FAKE} {{model}} --port {{port}} --served-model-name {{name}}"


def test_served_generator_starts_generates_and_stops(tmp_path):
    ckpt = tmp_path / "iter_1" / "solver"
    with make_generator("served", str(ckpt), command=CMD, startup_timeout=60) as gen:
        proc = gen._proc
        assert proc is not None and proc.poll() is None
        out = gen.generate([GenerationRequest(messages=({"role": "user", "content": "q"},),
                                              params=SamplingParams(n=3, temperature=1.0))])
        assert out[0].texts == tuple(f"served solver seed 0 sample {i}: \\boxed{{{i}}}" for i in range(3))
    assert proc.poll() is not None  # the server was stopped on exit


def test_server_that_dies_at_start_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="exited with code 3 before it was ready"):
        make_generator("served", str(tmp_path), command=CMD + " --fail", startup_timeout=60)


def test_missing_server_binary_names_the_extra(tmp_path):
    with pytest.raises(BackendError, match="not found"):
        make_generator("served", str(tmp_path), command="no-such-vllm-binary serve {model} --port {port}")
