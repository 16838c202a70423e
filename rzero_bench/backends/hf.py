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


def sample_tokens(
    logits: Any, uniforms: Sequence[float], temperature: float, top_p: float, top_k: int
) -> Any:
    """Pick one token per row by inverse CDF of ``uniforms`` over the temperature/top-k/top-p distribution.

    ``logits`` is ``[rows, vocab]``; returns a ``[rows]`` long tensor. Top-k keeps tokens whose logit is
    at least the k-th largest; top-p keeps the smallest prefix (by probability) whose mass before
    each kept token is below ``top_p`` (the most likely token is always kept).
    """
    import torch

    logits = logits.float() / temperature
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass strictly above each token
        drop_sorted = before >= top_p
        drop_sorted[:, 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    u = torch.tensor(list(uniforms), dtype=cdf.dtype, device=cdf.device)
    u = (u * cdf[:, -1]).unsqueeze(-1)
    chosen = torch.searchsorted(cdf, u, right=True).clamp_(max=vocab - 1)
    # never pick a zero-probability token (possible only through rounding at the top of the cdf)
    bad = probs.gather(-1, chosen) <= 0
    if bool(bad.any()):
        chosen = torch.where(bad, probs.argmax(dim=-1, keepdim=True), chosen)
    return chosen.squeeze(-1)


def _kv_layer_class() -> Any:
    """A transformers cache layer that appends into a preallocated buffer instead of concatenating."""
    from transformers.cache_utils import DynamicLayer

    class _BufferLayer(DynamicLayer):  # type: ignore[misc]
        """``keys``/``values`` are views ``[:, :, :length]`` of buffers with spare room for new tokens.

        The values seen by attention are exactly those a ``DynamicLayer`` would hold; only the
        per-step copy of the whole cache (``torch.cat``) is avoided.
        """

        reserve = 64  # spare positions allocated beyond the current length
        buf_k: Any = None
        buf_v: Any = None
        keys: Any
        values: Any

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self.buf_k = self.buf_v = None

        def _alloc(self, like: Any, batch: int, capacity: int, zero: bool) -> Any:
            import torch

            make = torch.zeros if zero else torch.empty
            return make((batch, like.shape[1], capacity, like.shape[3]), dtype=like.dtype, device=like.device)

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = 0 if self.buf_k is None else self.keys.shape[-2]
            q = key_states.shape[-2]
            if self.buf_k is None or n + q > self.buf_k.shape[-2]:
                cap = n + q + max(self.reserve, n // 2)
                bk = self._alloc(key_states, key_states.shape[0], cap, zero=False)
                bv = self._alloc(value_states, value_states.shape[0], cap, zero=False)
                if n:
                    bk[:, :, :n] = self.keys
                    bv[:, :, :n] = self.values
                self.buf_k, self.buf_v = bk, bv
            self.buf_k[:, :, n : n + q] = key_states
            self.buf_v[:, :, n : n + q] = value_states
            self.keys = self.buf_k[:, :, : n + q]
            self.values = self.buf_v[:, :, : n + q]
            return self.keys, self.values

        def select_rows(self, idx: Any) -> None:
            n = self.keys.shape[-2]
            self.buf_k = self.buf_k.index_select(0, idx)
            self.buf_v = self.buf_v.index_select(0, idx)
            self.keys, self.values = self.buf_k[:, :, :n], self.buf_v[:, :, :n]

        def drop_left(self, first: int) -> None:
            self.buf_k, self.buf_v = self.buf_k[:, :, first:], self.buf_v[:, :, first:]
            self.keys, self.values = self.keys[:, :, first:], self.values[:, :, first:]

        def append_rows(self, other: Any) -> None:
            """Stack ``other``'s rows below ours, both right-aligned (left padding, zero-filled)."""
            a, b = self.keys.shape[-2], other.keys.shape[-2]
            n = max(a, b)
            rows_a, rows_b = self.keys.shape[0], other.keys.shape[0]
            cap = n + max(self.reserve, n // 2)
            for name, mine, theirs in (("k", self.keys, other.keys), ("v", self.values, other.values)):
                buf = self._alloc(mine, rows_a + rows_b, cap, zero=True)
                buf[:rows_a, :, n - a : n] = mine
                buf[rows_a:, :, n - b : n] = theirs
                setattr(self, "buf_" + name, buf)
            self.keys, self.values = self.buf_k[:, :, :n], self.buf_v[:, :, :n]

    return _BufferLayer


class _Batch:
    """The rows being decoded together: their KV cache, 2D attention mask and next position ids.

    Rows are left-padded to a common cache length; the mask marks real tokens. Rows can be dropped
    (``select``) and a freshly prefilled batch can be appended (``merge``); leading columns that
    are padding in every row are cut away so the cache never grows wider than its longest row.
    """

    def __init__(self, rows: list[int], cache: Any, mask: Any, pos: Any, logits: Any) -> None:
        self.rows = rows  # row ids, in batch order
        self.cache = cache  # transformers Cache of _BufferLayer, [batch, heads, length, dim] per layer
        self.mask = mask  # [batch, length] long
        self.pos = pos  # [batch] long: position id of the next token of each row
        self.logits = logits  # [batch, vocab] float32: next-token logits

    def select(self, keep: list[int]) -> None:
        import torch

        idx = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.rows = [self.rows[b] for b in keep]
        for layer in self.cache.layers:
            layer.select_rows(idx)
        self.mask = self.mask.index_select(0, idx)
        self.pos = self.pos.index_select(0, idx)
        self.logits = self.logits.index_select(0, idx)
        self.trim()

    def trim(self) -> None:
        """Drop leading cache columns that are padding in every row."""
        import torch

        used = self.mask.any(dim=0)
        first = int(used.to(torch.int8).argmax()) if bool(used.any()) else 0
        if first > 0:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.drop_left(first)

    def merge(self, other: _Batch) -> None:
        import torch
        import torch.nn.functional as F

        a, b = self.mask.shape[1], other.mask.shape[1]
        for la, lb in zip(self.cache.layers, other.cache.layers, strict=True):
            la.append_rows(lb)
        self.mask = torch.cat(
            [F.pad(self.mask, (max(0, b - a), 0)), F.pad(other.mask, (max(0, a - b), 0))], dim=0
        )
        self.pos = torch.cat([self.pos, other.pos])
        self.logits = torch.cat([self.logits, other.logits], dim=0)
        self.rows = self.rows + other.rows
        self.trim()


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
        self._layer_cls = _kv_layer_class()
        # only the last position's logits are needed after the prompt (as generate does)
        accepts = inspect.signature(model.forward).parameters
        self._prefill_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in accepts else {}
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

    def _prefill(self, rows: list[int], prompts: list[list[int]], reserve: int) -> _Batch:
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
        batch = _Batch(list(range(len(seqs))), out.past_key_values, mask, pos[:, -1] + 1, logits)
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
        batch: _Batch | None = None
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
