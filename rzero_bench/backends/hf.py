"""The ``hf`` backend: transformers ``generate`` on CPU or GPU, batched, seeded, with stop strings.

Prompts are rendered by :func:`rzero_bench.backends.base.render_chat` (the model's chat template,
else the declared fallback; the name used is ``HFGenerator.chat_template_name``).

Scheduling: every request is expanded into ``n`` rows (a greedy request into one row, copied
``n`` times). Rows are grouped by sampling settings (temperature, top_p, top_k, max_tokens, stop),
sorted by prompt length (longest first) and run ``batch_size`` rows at a time with left padding.

Seeding guarantee: sampling does not use torch's global RNG. Row ``j`` of a request with seed
``s`` draws its uniform numbers from its own ``random.Random`` stream keyed by ``(s, j)``, one per
generated token, and picks the token by inverse-CDF over the temperature/top-k/top-p filtered
distribution. A request's texts therefore depend only on its prompt, its parameters and its seed,
not on the other requests in the call, on ``batch_size`` or on the order of requests, up to
floating-point differences in the logits caused by padding inside a batch (on CPU in float32 these
almost never change a sampled token; on GPU in bf16 they can). ``seed=None`` draws a fresh seed.
Greedy decoding (temperature 0) is deterministic in the same sense.

Stop strings: generation of a row stops early as soon as one of them appears in its decoded tail;
the text is cut before the first occurrence (the stop string is not included) with finish reason
"stop". An eos token also gives "stop"; reaching ``max_tokens`` gives "length". Token counts are
the tokens generated for the row (including the eos token; up to the step that produced the stop
string).
"""

from __future__ import annotations

import gc
import os
import random
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rzero_bench.backends.base import BaseGenerator, ProgressFn, render_chat
from rzero_bench.errors import BackendError, UserError
from rzero_bench.records import Generation, GenerationRequest, SamplingParams

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


def _hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - very old huggingface_hub
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def resolve_device(device: str) -> str:
    """``"auto"`` -> "cuda" when available, else "cpu"; anything else is returned unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: Any, device: str) -> Any:
    """``"auto"`` -> bfloat16 on a GPU that supports it, float16 on other GPUs, float32 on CPU."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).strip().lower()
    if key == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if key not in _DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return getattr(torch, _DTYPES[key])


def row_rng(seed: int, index: int) -> random.Random:
    """The uniform-number stream of sample ``index`` of a request with ``seed``."""
    return random.Random(f"rzero-hf:{seed}:{index}")


class _SeededSampler:
    """Logits processor that samples each row from its own RNG stream and forces that token.

    Returns scores that are -inf everywhere except the chosen token, so ``generate`` run in greedy
    mode emits exactly the token sampled here.
    """

    def __init__(self, rngs: list[random.Random], temperature: float, top_p: float, top_k: int) -> None:
        self.rngs = rngs
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / self.temperature
        vocab = logits.shape[-1]
        if 0 < self.top_k < vocab:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
            sorted_probs = torch.softmax(sorted_logits, dim=-1)
            before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass strictly above each token
            drop_sorted = before >= self.top_p
            drop_sorted[:, 0] = False
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        cdf = torch.cumsum(probs, dim=-1)
        u = torch.tensor([rng.random() for rng in self.rngs], dtype=cdf.dtype, device=cdf.device)
        u = (u * cdf[:, -1]).unsqueeze(-1)
        chosen = torch.searchsorted(cdf, u, right=True).clamp_(max=vocab - 1)
        # never pick a zero-probability token (possible only through rounding at the top of the cdf)
        bad = probs.gather(-1, chosen) <= 0
        if bool(bad.any()):
            chosen = torch.where(bad, probs.argmax(dim=-1, keepdim=True), chosen)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, chosen, 0.0)
        return out


class _StopStrings:
    """Stopping criterion: a row is done once a stop string appears in the decoded tail of its output."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], start: int, n_rows: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.start = start
        self.window = max((len(s) for s in self.stops), default=1) + 4
        self.hit_at: list[int | None] = [None] * n_rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        generated = input_ids[:, self.start :]
        steps = generated.shape[1]
        done = []
        for i, row in enumerate(generated[:, -self.window :].tolist()):
            if self.hit_at[i] is None:
                tail = self.tokenizer.decode(row, skip_special_tokens=True)
                if any(s in tail for s in self.stops):
                    self.hit_at[i] = steps
            done.append(self.hit_at[i] is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class HFGenerator(BaseGenerator):
    """Local transformers model; ``batch_size`` is the number of sequences (rows) per ``generate`` call.

    ``threads`` sets torch's intra-op thread count while generating (restored afterwards); None
    leaves it alone. On a CPU shared with other processes, ``threads=1`` is often much faster for
    the tiny models (OpenMP threads spin-wait for each other on an oversubscribed machine).
    """

    name = "hf"

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str = "auto",
        dtype: Any = "auto",
        batch_size: int = 16,
        trust_remote_code: bool = False,
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = str(model)
        self.batch_size = int(batch_size)
        self.threads = threads
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.tokenizer, self.model = self._load(trust_remote_code)
        self.chat_template_name = render_chat(self.tokenizer, [{"role": "user", "content": ""}])[1]
        self._closed = False

    # ---------------------------------------------------------------- loading
    def _load(self, trust_remote_code: bool) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
        from transformers.utils import logging as hf_logging

        ident = self.model_id
        local = Path(ident).expanduser()
        if local.exists():
            if not local.is_dir() or not (local / "config.json").is_file():
                raise UserError(
                    f"model path {ident} is not a model directory (no config.json); pass a checkpoint directory"
                )
            ident = str(local)
        elif ident.startswith((".", "/", "~")) or os.sep in ident.strip("/").replace("/", "", 1):
            raise UserError(f"model path {ident} does not exist; pass a checkpoint directory or a hub id")
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(ident, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                ident, dtype=self.dtype, trust_remote_code=trust_remote_code
            )
        except Exception as exc:  # transformers raises OSError/ValueError/HF errors for missing models
            if not local.exists() and _hub_offline():
                raise UserError(
                    f"cannot load model {ident!r}: no such local directory and the Hugging Face hub is offline "
                    "(HF_HUB_OFFLINE=1) with no cached copy; pass a local checkpoint directory"
                ) from None
            raise UserError(f"cannot load model {ident!r}: {_first_line(exc)}") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        model.to(self.device)  # type: ignore[arg-type]
        model.eval()

        eos_ids: list[int] = []
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        for value in (gen_eos, getattr(model.config, "eos_token_id", None), tokenizer.eos_token_id):
            if value is None:
                continue
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if int(v) not in eos_ids:
                    eos_ids.append(int(v))
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise UserError(f"tokenizer of {ident!r} has neither a pad nor an eos token; cannot batch")
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.eos_ids = eos_ids
        self.pad_id = int(tokenizer.pad_token_id)
        # a clean generation config: no sampling defaults from the checkpoint leak into our decoding
        model.generation_config = GenerationConfig(
            eos_token_id=eos_ids or None, pad_token_id=self.pad_id, do_sample=False, num_beams=1
        )
        return tokenizer, model

    # ---------------------------------------------------------------- generation
    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[Generation]:
        """One Generation per request, in order (see the module docstring for batching and seeds)."""
        if self._closed:
            raise BackendError("the hf generator is closed; create a new one")
        if not requests:
            return []
        add_special = self.chat_template_name != "model"
        prompt_ids: list[list[int]] = []
        for req in requests:
            prompt, _ = render_chat(self.tokenizer, req.messages)
            prompt_ids.append(list(self.tokenizer(prompt, add_special_tokens=add_special)["input_ids"]))
        seeds = [r.params.seed if r.params.seed is not None else secrets.randbits(63) for r in requests]

        # rows: (request index, sample index); greedy requests get one row, copied n times below
        groups: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
        for i, req in enumerate(requests):
            p = req.params
            key = (
                (0.0, 1.0, 0, p.max_tokens, p.stop)
                if p.greedy
                else (p.temperature, p.top_p, p.top_k, p.max_tokens, p.stop)
            )
            n_rows = 1 if p.greedy else p.n
            groups.setdefault(key, []).extend((i, j) for j in range(n_rows))

        import torch

        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            results = self._run_groups(requests, prompt_ids, seeds, groups, progress)
        finally:
            if self.threads:
                torch.set_num_threads(old_threads)

        generations = []
        for i, req in enumerate(requests):
            n = req.params.n
            samples = [results[(i, 0)]] * n if req.params.greedy else [results[(i, j)] for j in range(n)]
            generations.append(
                Generation(
                    texts=tuple(s[0] for s in samples),
                    finish_reasons=tuple(s[1] for s in samples),
                    completion_tokens=tuple(s[2] for s in samples),
                    prompt_tokens=len(prompt_ids[i]),
                    id=req.id,
                )
            )
        return generations

    def _run_groups(
        self,
        requests: Sequence[GenerationRequest],
        prompt_ids: list[list[int]],
        seeds: list[int],
        groups: dict[tuple[Any, ...], list[tuple[int, int]]],
        progress: ProgressFn | None,
    ) -> dict[tuple[int, int], tuple[str, str, int]]:
        results: dict[tuple[int, int], tuple[str, str, int]] = {}
        rows_left = [1 if r.params.greedy else r.params.n for r in requests]
        for key, rows in groups.items():
            temperature, top_p, top_k, max_tokens, stop = key
            rows.sort(key=lambda ij: (-len(prompt_ids[ij[0]]), ij))
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                outs = self._run_batch(
                    [prompt_ids[i] for i, _ in chunk],
                    [row_rng(seeds[i], j) for i, j in chunk],
                    SamplingParams(
                        temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_tokens, stop=stop
                    ),
                )
                finished = 0
                for ij, out in zip(chunk, outs, strict=True):
                    results[ij] = out
                    rows_left[ij[0]] -= 1
                    finished += rows_left[ij[0]] == 0
                if progress is not None and finished:
                    progress(finished)
        return results

    def _run_batch(
        self, prompts: list[list[int]], rngs: list[random.Random], params: SamplingParams
    ) -> list[tuple[str, str, int]]:
        """Generate one sequence per prompt; returns (text, finish_reason, completion_tokens) per row."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, p in enumerate(prompts):
            if p:
                ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                mask[r, width - len(p) :] = 1
        processors = LogitsProcessorList()
        if not params.greedy:
            processors.append(_SeededSampler(rngs, params.temperature, params.top_p, params.top_k))
        criteria = StoppingCriteriaList()
        stopper = None
        if params.stop:
            stopper = _StopStrings(self.tokenizer, params.stop, width, len(prompts))
            criteria.append(stopper)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=params.max_tokens,
                do_sample=False,
                logits_processor=processors,
                stopping_criteria=criteria,
            )
        generated = out[:, width:].tolist()

        eos = set(self.eos_ids)
        rows = []
        for r, toks in enumerate(generated):
            length = len(toks)
            reason = "length"
            eos_at = next((t for t, tok in enumerate(toks) if tok in eos), None)
            if eos_at is not None:
                length, reason = eos_at + 1, "stop"
            hit = stopper.hit_at[r] if stopper is not None else None
            if hit is not None and hit <= length:
                length = hit
                reason = "stop"
            content = toks[:length]
            if content and content[-1] in eos:
                content = content[:-1]
            text = self.tokenizer.decode(content, skip_special_tokens=True)
            cuts = [text.find(s) for s in params.stop if s and s in text]
            if cuts:
                text = text[: min(cuts)]
                reason = "stop"
            elif reason == "length" and length < params.max_tokens:
                reason = "stop"  # pragma: no cover - a row ends early only through eos or a stop string
            rows.append((text, reason, length))
        return rows

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Free the model (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        on_cuda = str(self.device).startswith("cuda")
        self.model = None
        self.tokenizer = None
        gc.collect()
        if on_cuda:
            import torch

            torch.cuda.empty_cache()

    @property
    def closed(self) -> bool:
        return self._closed
