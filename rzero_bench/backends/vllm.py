"""Offline vLLM backend (GPU only): ``vllm.LLM`` with the model's chat template.

vllm is imported inside ``VLLMGenerator.__init__``, never at module import, so this module is
importable anywhere; without the extra, construction fails with one line naming it.

Prompts are rendered by :func:`rzero_bench.backends.base.render_chat` with ``llm.get_tokenizer()``
(the single place chat prompts are rendered). Our :class:`SamplingParams` map one to one onto
``vllm.SamplingParams`` (``n, temperature, top_p, top_k, max_tokens, stop, seed``) except
``top_k``: our 0 ("disabled") becomes vLLM's -1. Finish reasons other than ``"length"`` become
``"stop"``; completion token counts are the lengths of the generated token ids.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

from rzero_bench.backends.base import BaseGenerator, ProgressFn, render_chat
from rzero_bench.errors import BackendError, UserError
from rzero_bench.records import Generation, GenerationRequest, SamplingParams

MISSING_EXTRA = "the vllm backend needs the optional extra: pip install 'rzero-bench[vllm]' (GPU only)"


def _installed() -> bool:
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        if exc.name == "vllm" or (exc.name is None and not _installed()):
            raise UserError(MISSING_EXTRA) from None
        raise BackendError(
            f"vllm is installed but failed to import ({exc}); check the CUDA/torch install"
        ) from None
    return vllm


def to_vllm_params(vllm: Any, p: SamplingParams) -> Any:
    """Map our SamplingParams onto ``vllm.SamplingParams`` (top_k 0 -> -1, empty stop -> None)."""
    return vllm.SamplingParams(
        n=p.n,
        temperature=p.temperature,
        top_p=p.top_p,
        top_k=p.top_k if p.top_k > 0 else -1,
        max_tokens=p.max_tokens,
        stop=list(p.stop) or None,
        seed=p.seed,
    )


class VLLMGenerator(BaseGenerator):
    """Generator on an offline ``vllm.LLM`` (see the module docstring)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> None:
        self._vllm = _import_vllm()
        self.model_id = model
        kwargs: dict[str, Any] = {
            "model": model,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": seed,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(engine_kwargs)
        self.engine_kwargs = kwargs
        self._llm: Any = self._vllm.LLM(**kwargs)
        self._tokenizer: Any = self._llm.get_tokenizer()
        self.chat_template = ""  # "model" or the fallback name, set on the first generate()

    def __repr__(self) -> str:
        return f"VLLMGenerator(model={self.model_id!r}, open={self._llm is not None})"

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[Generation]:
        """Render each request with the chat template and generate all of them in one vLLM call."""
        if self._llm is None:
            raise BackendError("vllm backend: generate() called after close(); create a new generator")
        requests = list(requests)
        if not requests:
            return []
        prompts = []
        for r in requests:
            prompt, template = render_chat(self._tokenizer, r.messages)
            prompts.append(prompt)
            self.chat_template = template
        params = [to_vllm_params(self._vllm, r.params) for r in requests]
        outputs = self._llm.generate(prompts, params, use_tqdm=False)
        if len(outputs) != len(requests):
            raise BackendError(f"vllm backend: got {len(outputs)} outputs for {len(requests)} prompts")
        results = [self._convert(out, req) for out, req in zip(outputs, requests, strict=True)]
        if progress is not None:
            progress(len(requests))
        return results

    @staticmethod
    def _convert(out: Any, request: GenerationRequest) -> Generation:
        completions = sorted(out.outputs, key=lambda c: getattr(c, "index", 0))
        texts = tuple(str(c.text) for c in completions)
        finishes = tuple("length" if c.finish_reason == "length" else "stop" for c in completions)
        tokens = tuple(len(c.token_ids or ()) for c in completions)
        prompt_ids = getattr(out, "prompt_token_ids", None) or ()
        return Generation(
            texts=texts,
            finish_reasons=finishes,
            completion_tokens=tokens,
            prompt_tokens=len(prompt_ids),
            id=request.id,
        )

    def close(self) -> None:
        """Drop the engine and free GPU memory (idempotent)."""
        if getattr(self, "_llm", None) is None:
            return
        self._llm = None
        self._tokenizer = None
        try:  # best effort: tear down vLLM's distributed state so a new engine can start
            from vllm.distributed.parallel_state import (  # type: ignore[import-not-found]
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        except Exception:
            pass
        gc.collect()
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_available():
            cuda.empty_cache()
