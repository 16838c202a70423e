"""The scripted backend and the backend factory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rzero_bench.backends import BACKENDS, make_generator
from rzero_bench.backends.base import Generator
from rzero_bench.backends.scripted import ScriptedGenerator, apply_stop
from rzero_bench.errors import BackendError, UserError
from rzero_bench.records import GenerationRequest, SamplingParams


def req(rid: str = "", text: str = "q", **params: object) -> GenerationRequest:
    return GenerationRequest(
        messages=({"role": "user", "content": text},), params=SamplingParams(**params), id=rid
    )  # type: ignore[arg-type]


def test_callable_responder_gets_request_and_sample_index() -> None:
    g = ScriptedGenerator(lambda r, i: f"{r.id}-{i} \\boxed{{{i}}}")
    out = g.generate([req("a", n=3), req("b")])
    assert out[0].texts == ("a-0 \\boxed{0}", "a-1 \\boxed{1}", "a-2 \\boxed{2}")
    assert out[1].texts == ("b-0 \\boxed{0}",)
    assert out[0].finish_reasons == ("stop",) * 3
    assert out[0].completion_tokens == (2, 2, 2)
    assert [o.id for o in out] == ["a", "b"]
    assert [r.id for r in g.requests] == ["a", "b"]
    assert isinstance(g, Generator)


def test_dict_responder_cycles_per_id_and_falls_back_to_star() -> None:
    g = ScriptedGenerator({"x": ["1", "2", "3"], "*": ["default"]})
    assert g.generate([req("x", n=4)])[0].texts == ("1", "2", "3", "1")
    assert g.generate([req("x", n=2)])[0].texts == ("2", "3")  # the cursor continues
    assert g.generate([req("other")])[0].texts == ("default",)
    with pytest.raises(BackendError, match="no canned texts for request id 'y'"):
        ScriptedGenerator({"x": ["1"]}).generate([req("y")])


def test_list_responder_consumed_in_order_then_errors() -> None:
    g = ScriptedGenerator(["a", "b", "c"])
    out = g.generate([req(n=2), req()])
    assert [o.texts for o in out] == [("a", "b"), ("c",)]
    with pytest.raises(BackendError, match="ran out of canned texts after 3"):
        g.generate([req()])
    g.reset()
    assert g.generate([req()])[0].texts == ("a",) and len(g.requests) == 1


def test_stop_strings_and_max_tokens_honoured() -> None:
    g = ScriptedGenerator("one two three </question> four five")
    out = g.generate(
        [req(stop=("</question>", "five")), req(max_tokens=2), req(max_tokens=5, stop=("four",))]
    )
    assert out[0].texts == ("one two three ",) and out[0].finish_reasons == ("stop",)
    assert out[1].texts == ("one two",) and out[1].finish_reasons == ("length",)
    assert out[1].completion_tokens == (2,)
    assert out[2].texts == ("one two three </question> ",) and out[2].finish_reasons == ("stop",)
    assert apply_stop("abc", ("", "c", "b")) == ("a", True)
    assert apply_stop("abc", ()) == ("abc", False)


def test_progress_context_manager_and_reuse_after_close() -> None:
    calls: list[int] = []
    with ScriptedGenerator("x") as g:
        g.generate([req(), req()], progress=calls.append)
    assert calls == [1, 1] and g.closed
    assert g.generate([req()])[0].texts == ("x",)  # still usable in tests that share it


def test_bad_responder_is_a_user_error() -> None:
    with pytest.raises(UserError):
        ScriptedGenerator(42)  # type: ignore[arg-type]


def test_factory_scripted_and_errors() -> None:
    g = make_generator("scripted", "my-model", responder=["t"])
    assert isinstance(g, ScriptedGenerator) and g.model_id == "my-model"
    assert g.generate([req()])[0].texts == ("t",)
    with pytest.raises(UserError, match="unknown backend 'gpt'; valid backends: hf, vllm, openai, scripted"):
        make_generator("gpt", "m")
    with pytest.raises(UserError, match="backend 'openai': bad options .*valid options: .*base_url"):
        make_generator("openai", "m", base_url="http://127.0.0.1:1/v1", bogus=1)
    with pytest.raises(UserError, match="bad options"):
        make_generator("openai", "m")  # base_url is required
    assert set(BACKENDS) == {"hf", "vllm", "openai", "scripted", "served"}


def test_importing_backends_is_light() -> None:
    code = (
        "import sys, rzero_bench.backends, rzero_bench.backends.scripted, rzero_bench.backends.vllm;"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'httpx') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
