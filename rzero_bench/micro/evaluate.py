"""Held-out check of a micro model: greedy and majority-vote accuracy per level.

``evaluate_levels`` generates with the hf backend (CPU, float32) one greedy answer and ``samples``
sampled answers per item, reads the last ``\\boxed{...}`` of each, and reports per level: greedy
accuracy, maj@k (``majority`` of the sampled answers), mean@k (mean per-sample accuracy) and the
share of greedy answers written without steps (no `` = ``). maj@k well above greedy is the
headroom self-consistency and R-Zero rely on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rzero_bench.micro.train import auto_threads
from rzero_bench.prompts import load_prompt, solver_messages

__all__ = ["boxed_answer", "evaluate_levels", "majority"]

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def boxed_answer(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (no nesting needed for integer answers), stripped."""
    found = _BOXED.findall(text)
    return found[-1].strip() if found else None


def majority(answers: Sequence[str | None]) -> str | None:
    """Most common non-None answer (ties: the one seen first); None when there is none."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def evaluate_levels(
    model_dir: Path,
    docs: Sequence[dict[str, Any]],
    *,
    samples: int = 8,
    temperature: float = 1.0,
    max_tokens: int = 64,
    seed: int = 0,
    batch_size: int = 128,
) -> dict[str, dict[str, float]]:
    """Greedy accuracy and maj@``samples`` accuracy per level (``"L1"``...) with the hf backend.

    Also reports the share of greedy answers written without steps (``greedy_direct``) and
    the mean per-sample accuracy (``mean@samples``).
    """
    from rzero_bench.backends.hf import HFGenerator
    from rzero_bench.records import GenerationRequest, SamplingParams

    sp = load_prompt("solver")
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens, seed=seed)
    sampled = SamplingParams(n=samples, temperature=temperature, max_tokens=max_tokens, seed=seed)
    reqs_g = [
        GenerationRequest(tuple(solver_messages(sp, str(d["question"]))), greedy, str(d["id"])) for d in docs
    ]
    reqs_s = [
        GenerationRequest(
            tuple(solver_messages(sp, str(d["question"]))), replace(sampled, seed=seed + i), str(d["id"])
        )
        for i, d in enumerate(docs)
    ]
    import torch

    torch.set_num_threads(auto_threads())
    with HFGenerator(model_dir, device="cpu", dtype="float32", batch_size=batch_size) as gen:
        out_g = gen.generate(reqs_g)
        out_s = gen.generate(reqs_s)
    rows: dict[str, list[tuple[bool, bool, float, bool]]] = {}
    for d, g, s in zip(docs, out_g, out_s, strict=True):
        ref = str(d["answer"])
        answers = [boxed_answer(t) for t in s.texts]
        greedy_text = g.texts[0]
        rows.setdefault(f"L{d['level']}", []).append(
            (
                boxed_answer(greedy_text) == ref,
                majority(answers) == ref,
                sum(a == ref for a in answers) / len(answers),
                " = " not in greedy_text,
            )
        )
    table: dict[str, dict[str, float]] = {}
    for level in sorted(rows):
        r = rows[level]
        n = len(r)
        table[level] = {
            "n": n,
            "greedy": round(sum(x[0] for x in r) / n, 4),
            f"maj@{samples}": round(sum(x[1] for x in r) / n, 4),
            f"mean@{samples}": round(sum(x[2] for x in r) / n, 4),
            "greedy_direct": round(sum(x[3] for x in r) / n, 4),
        }
    return table
