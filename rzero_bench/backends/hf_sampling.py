"""The ``hf`` backend's sampler: per-row seeded uniform streams and inverse-CDF token choice.

Sampling never touches torch's global RNG. Row ``j`` of a request with seed ``s`` draws one uniform
number per generated token from its own ``random.Random`` keyed by ``(s, j)`` (``row_rng``);
``sample_tokens`` scales the logits by 1/temperature, masks tokens outside top-k and top-p, and
picks per row the first token whose cumulative probability exceeds ``u * total``. A row's tokens
therefore depend only on its logits and its own stream, not on the other rows in the batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

__all__ = ["row_rng", "sample_tokens"]


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
