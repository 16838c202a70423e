"""The vllm backend at its boundary: a fake ``vllm`` module checks the mapping; no GPU needed."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from rzero_bench.backends import make_generator
from rzero_bench.backends.vllm import MISSING_EXTRA, VLLMGenerator
from rzero_bench.errors import UserError
from rzero_bench.records import GenerationRequest, SamplingParams


@dataclass
class FakeCompletion:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class FakeRequestOutput:
    prompt: str
    prompt_token_ids: list[int]
    outputs: list[FakeCompletion] = field(default_factory=list)


class FakeTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(
        self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool
    ) -> str:
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class FakeLLM:
    instances: list[FakeLLM] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[tuple[list[str], list[Any], dict[str, Any]]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(self, prompts: list[str], params: list[Any], **kw: Any) -> list[FakeRequestOutput]:
        self.calls.append((prompts, params, kw))
        outs = []
        for prompt, p in zip(prompts, params, strict=True):
            comps = [
                FakeCompletion(
                    index=i,
                    text=f"{prompt}|{i}",
                    token_ids=[1] * (i + 2),
                    finish_reason="length" if i == 1 else "stop",
                )
                for i in reversed(range(p.kwargs["n"]))
            ]
            outs.append(FakeRequestOutput(prompt=prompt, prompt_token_ids=[0] * 5, outputs=comps))
        return outs


class FakeSamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    mod = types.ModuleType("vllm")
    mod.LLM = FakeLLM  # type: ignore[attr-defined]
    mod.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    FakeLLM.instances = []
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


def req(rid: str, text: str, **params: object) -> GenerationRequest:
    return GenerationRequest(
        messages=({"role": "system", "content": "S"}, {"role": "user", "content": text}),
        params=SamplingParams(**params),  # type: ignore[arg-type]
        id=rid,
    )


def test_engine_kwargs_params_mapping_and_output_conversion(fake_vllm: types.ModuleType) -> None:
    calls: list[int] = []
    with VLLMGenerator("org/model", gpu_memory_utilization=0.5, tensor_parallel_size=2, seed=3) as g:
        llm = FakeLLM.instances[0]
        assert llm.kwargs == {
            "model": "org/model",
            "gpu_memory_utilization": 0.5,
            "tensor_parallel_size": 2,
            "seed": 3,
        }
        out = g.generate(
            [
                req(
                    "a", "x", n=2, temperature=0.8, top_p=0.9, top_k=0, max_tokens=64, stop=("</s>",), seed=7
                ),
                req("b", "y", top_k=20, seed=None),
            ],
            progress=calls.append,
        )
        prompts, params, kw = llm.calls[0]
        assert g.chat_template == "model"
    assert prompts == ["<system>S<user>x<assistant>", "<system>S<user>y<assistant>"]
    assert kw == {"use_tqdm": False}
    assert params[0].kwargs == {
        "n": 2,
        "temperature": 0.8,
        "top_p": 0.9,
        "top_k": -1,
        "max_tokens": 64,
        "stop": ["</s>"],
        "seed": 7,
    }
    assert (
        params[1].kwargs["top_k"] == 20
        and params[1].kwargs["stop"] is None
        and params[1].kwargs["seed"] is None
    )
    assert out[0].id == "a" and out[1].id == "b"
    assert out[0].texts == (
        "<system>S<user>x<assistant>|0",
        "<system>S<user>x<assistant>|1",
    )  # sorted by index
    assert out[0].finish_reasons == ("stop", "length")
    assert out[0].completion_tokens == (2, 3)
    assert out[0].prompt_tokens == 5
    assert calls == [2]
    assert g._llm is None
    g.close()  # idempotent


def test_max_model_len_and_factory(fake_vllm: types.ModuleType) -> None:
    g = make_generator("vllm", "m", max_model_len=4096, enforce_eager=True)
    assert isinstance(g, VLLMGenerator)
    assert FakeLLM.instances[0].kwargs["max_model_len"] == 4096
    assert FakeLLM.instances[0].kwargs["enforce_eager"] is True
    assert g.generate([]) == []


def test_missing_vllm_is_a_one_line_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail like a missing package
    with pytest.raises(UserError) as ei:
        VLLMGenerator("m")
    assert str(ei.value) == MISSING_EXTRA
    assert (
        str(ei.value)
        == "the vllm backend needs the optional extra: pip install 'rzero-bench[vllm]' (GPU only)"
    )
    assert ei.value.exit_code == 2
