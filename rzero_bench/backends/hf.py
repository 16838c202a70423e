"""The ``hf`` backend: a transformers causal LM on CPU or GPU, batched, seeded, with stop strings.

Prompts are rendered by :func:`rzero_bench.backends.base.render_chat` (the model's chat template,
else the declared fallback; the name used is ``HFGenerator.chat_template_name``).

Decoding is our own loop over the model's forward pass with a KV cache (not ``model.generate``):
the same left padding, attention mask and position ids (0.. over real tokens) that ``generate``
uses, greedy = argmax of the same logits, so greedy outputs are token-for-token those of
``model.generate`` (tested). The cache appends into preallocated buffers instead of re-concatenating.

Scheduling: every request is expanded into ``n`` rows (a greedy request into one row, copied ``n``
times). Rows are grouped by sampling settings (temperature, top_p, top_k, max_tokens, stop) and
sorted by prompt length (longest first). Each group is decoded with continuous batching: at most
``batch_size`` rows run together; a row leaves the batch (its cache rows are dropped) as soon as it
finishes, and waiting rows are prefilled and merged in once a quarter of the slots are free, so a
long tail never holds a batch of finished rows. Rows with the same prompt prefilled together (the
``n`` samples of a request) share one prompt forward pass.

Seeding guarantee: sampling does not use torch's global RNG. Row ``j`` of a request with seed
``s`` draws its uniform numbers from its own ``random.Random`` stream keyed by ``(s, j)``, one per
generated token, and picks the token by inverse-CDF over the temperature/top-k/top-p filtered
distribution. A request's texts therefore depend only on its prompt, its parameters and its seed,
not on the other requests in the call, on ``batch_size`` or on the order of requests, up to
floating-point differences in the logits caused by padding inside a batch (on CPU in float32 these
almost never change a sampled token; on GPU in bf16 they can). ``seed=None`` draws a fresh seed.
Greedy decoding (temperature 0) is deterministic in the same sense.

Stop strings: generation of a row stops early as soon as one of them appears in its decoded tail
(the last few tokens, decoded after each step); the text is cut before the first occurrence (the
stop string is not included) with finish reason "stop". An eos token also gives "stop"; reaching
``max_tokens`` gives "length". Token counts are the tokens generated for the row (including the eos
token; up to the step that produced the stop string).

Supported models: decoder-only transformers models whose attention layers use the standard
transformers KV cache (Llama, Qwen2/2.5/3, Mistral, OctoThinker, the tiny models, ...).

Modules: this one loads the model and schedules and decodes the rows; ``hf_sampling`` holds the
seeded sampler, ``hf_cache`` the preallocated KV-cache layer and the batch state.
"""

from __future__ import annotations

import gc
import inspect
import os
import random
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rzero_bench.backends.base import BaseGenerator, ProgressFn, render_chat
from rzero_bench.backends.hf_cache import DecodeBatch, buffer_layer_class
from rzero_bench.backends.hf_sampling import row_rng, sample_tokens
from rzero_bench.errors import BackendError, UserError
from rzero_bench.records import Generation, GenerationRequest, SamplingParams

__all__ = ["HFGenerator", "resolve_device", "resolve_dtype", "row_rng", "sample_tokens"]

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


class HFGenerator(BaseGenerator):
    """Local transformers model; ``batch_size`` is the most sequences (rows) decoded together.

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
        revision: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = str(model)
        self.batch_size = int(batch_size)
        self.threads = threads
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.revision = revision  # a hub commit, branch or tag (``eval --model-args revision=...``)
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
            rev = {"revision": self.revision} if self.revision else {}
            tokenizer = AutoTokenizer.from_pretrained(ident, trust_remote_code=trust_remote_code, **rev)
            model = AutoModelForCausalLM.from_pretrained(
                ident, dtype=self.dtype, trust_remote_code=trust_remote_code, **rev
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
        self._layer_cls = buffer_layer_class()
        # only the last position's logits are needed after the prompt (as generate does)
        accepts = inspect.signature(model.forward).parameters
        self._prefill_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in accepts else {}
        self.pad_id = int(tokenizer.pad_token_id)
        # a clean generation config: no sampling defaults from the checkpoint leak into our decoding
        model.generation_config = GenerationConfig(
            eos_token_id=eos_ids or None, pad_token_id=self.pad_id, do_sample=False, num_beams=1
        )
        return tokenizer, model

    @property
    def context_length(self) -> int | None:
        """The model's context in tokens (``max_position_embeddings``), None when it does not say."""
        n = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        return int(n) if isinstance(n, int) and n > 0 else None

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
        cut: list[int] = []
        context = self.context_length
        for req in requests:
            prompt, _ = render_chat(self.tokenizer, req.messages)
            ids = list(self.tokenizer(prompt, add_special_tokens=add_special)["input_ids"])
            # a prompt the model's positions cannot hold next to its completion loses its beginning
            # (lm-eval's hf convention); the count goes back with the generation
            keep = max(1, context - req.params.max_tokens) if context else len(ids)
            cut.append(max(0, len(ids) - keep))
            prompt_ids.append(ids[-keep:] if len(ids) > keep else ids)
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
                    prompt_cut=cut[i],
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
            params = SamplingParams(
                temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_tokens, stop=stop
            )
            rows.sort(key=lambda ij: (-len(prompt_ids[ij[0]]), ij))
            rngs = None if params.greedy else [row_rng(seeds[i], j) for i, j in rows]

            def done(r: int, out: tuple[str, str, int], rows: list[tuple[int, int]] = rows) -> int:
                ij = rows[r]
                results[ij] = out
                rows_left[ij[0]] -= 1
                return int(rows_left[ij[0]] == 0)

            self._decode([prompt_ids[i] for i, _ in rows], rngs, params, done, progress)
        return results

    def _prefill(self, rows: list[int], prompts: list[list[int]], reserve: int) -> DecodeBatch:
        """Run the prompts of ``rows`` (left-padded) through the model; returns their batch state.

        Rows with the same prompt (the ``n`` samples of a request) share one forward pass: the
        prompt is encoded once and its cache rows are copied.
        """
        import torch
        from transformers.cache_utils import Cache

        unique: dict[tuple[int, ...], int] = {}
        which = [unique.setdefault(tuple(prompts[r] or [self.pad_id]), len(unique)) for r in rows]
        seqs = list(unique)
        width = max(len(p) for p in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, p in enumerate(seqs):
            ids[b, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[b, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        # position ids as transformers' generate computes them: 0.. over real tokens, 0 on padding
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        layer_cls = self._layer_cls
        layer_cls.reserve = reserve
        cache = Cache(layer_class_to_replicate=layer_cls)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            past_key_values=cache,
            use_cache=True,
            **self._prefill_kwargs,
        )
        logits = out.logits[:, -1, :].to(dtype=torch.float32)
        batch = DecodeBatch(list(range(len(seqs))), out.past_key_values, mask, pos[:, -1] + 1, logits)
        if which != batch.rows:
            batch.select(which)
        batch.rows = list(rows)
        return batch

    def _decode(
        self,
        prompts: list[list[int]],
        rngs: list[random.Random] | None,
        params: SamplingParams,
        done: Any,
        progress: ProgressFn | None,
    ) -> None:
        """Decode every prompt with continuous batching; calls ``done(row, (text, reason, tokens))``.

        At most ``batch_size`` rows are in the batch; a row leaves it as soon as it finishes and
        waiting rows are prefilled and merged in once a quarter of the slots (or all that remain)
        are free, so long generations never hold a batch of finished rows.
        """
        import torch

        eos = set(self.eos_ids)
        stops = [s for s in params.stop if s]
        window = max((len(s) for s in stops), default=1) + 4
        greedy = params.greedy
        max_tokens = params.max_tokens
        capacity = self.batch_size
        refill_at = max(1, capacity // 4)
        reserve = min(max_tokens, 256)
        queue = list(range(len(prompts)))
        queue.reverse()  # pop() takes the next row (longest prompts first)
        tokens: dict[int, list[int]] = {}
        batch: DecodeBatch | None = None
        with torch.inference_mode():
            while queue or batch is not None:
                active = 0 if batch is None else len(batch.rows)
                free = capacity - active
                if queue and (active == 0 or free >= min(refill_at, len(queue))):
                    new = [queue.pop() for _ in range(min(free, len(queue)))]
                    for r in new:
                        tokens[r] = []
                    fresh = self._prefill(new, prompts, reserve)
                    if batch is None:
                        batch = fresh
                    else:
                        batch.merge(fresh)
                assert batch is not None
                if greedy:
                    chosen = batch.logits.argmax(dim=-1)
                else:
                    assert rngs is not None
                    chosen = sample_tokens(
                        batch.logits,
                        [rngs[r].random() for r in batch.rows],
                        params.temperature,
                        params.top_p,
                        params.top_k,
                    )
                keep: list[int] = []
                finished = 0
                for b, (r, tok) in enumerate(zip(batch.rows, chosen.tolist(), strict=True)):
                    seq = tokens[r]
                    seq.append(tok)
                    if tok in eos:
                        finished += done(r, self._finish(seq[:-1], len(seq), "stop", stops))
                    elif stops and any(
                        s in self.tokenizer.decode(seq[-window:], skip_special_tokens=True) for s in stops
                    ):
                        finished += done(r, self._finish(seq, len(seq), "stop", stops))
                    elif len(seq) >= max_tokens:
                        finished += done(r, self._finish(seq, len(seq), "length", stops))
                    else:
                        keep.append(b)
                        continue
                    del tokens[r]
                if progress is not None and finished:
                    progress(finished)
                if not keep:
                    batch = None
                    continue
                if len(keep) < len(batch.rows):
                    batch.select(keep)
                    chosen = chosen.index_select(
                        0, torch.tensor(keep, dtype=torch.long, device=chosen.device)
                    )
                batch.mask = torch.cat([batch.mask, batch.mask.new_ones((batch.mask.shape[0], 1))], dim=1)
                out = self.model(
                    input_ids=chosen.unsqueeze(-1),
                    attention_mask=batch.mask,
                    position_ids=batch.pos.unsqueeze(-1),
                    past_key_values=batch.cache,
                    use_cache=True,
                )
                batch.cache = out.past_key_values
                batch.pos = batch.pos + 1
                batch.logits = out.logits[:, -1, :].to(dtype=torch.float32)

    def _finish(self, content: list[int], length: int, reason: str, stops: list[str]) -> tuple[str, str, int]:
        """(text, finish_reason, completion_tokens) of a finished row; the text is cut at a stop string."""
        text = self.tokenizer.decode(content, skip_special_tokens=True)
        cuts = [text.find(s) for s in stops if s in text]
        if cuts:
            text = text[: min(cuts)]
            reason = "stop"
        return text, reason, length

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
