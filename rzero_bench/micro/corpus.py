"""The micro pretraining corpus: seeded example streams, the tokenizer corpus and packed batches.

- ``example_stream``: endless (role, question, completion) examples for one phase: solver turns
  with problems drawn with the recipe's level weights, worked or (``direct_fraction``) direct
  solutions, and ``challenger_fraction`` challenger-format turns (levels uniform); held-out
  expressions are never drawn;
- ``tokenizer_corpus``: 4,000 ChatML texts the micro BPE tokenizer is trained on;
  ``corpus_fingerprint`` hashes them with the held-out set (part of the recipe's cache key);
- ``Encoder``: renders a turn through the tokenizer's chat template exactly as the hf backend does
  (:func:`rzero_bench.backends.base.render_chat`, shipped ``solver``/``challenger`` prompts);
- ``pack_batches``: whole examples packed into ``block_len`` blocks, the loss on the completion and
  its ``<|im_end|>`` only (prompt and padding labels are -100).

Every random draw comes from a ``random.Random`` the caller seeds, so the stream is reproducible.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rzero_bench.micro import arith
from rzero_bench.micro.recipe import MicroRecipe, PhaseSpec
from rzero_bench.prompts import challenger_messages, load_prompt, solver_messages
from rzero_bench.training.tiny import IM_END, IM_START

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

__all__ = ["Encoder", "corpus_fingerprint", "example_stream", "pack_batches", "tokenizer_corpus"]


def _chatml(messages: Sequence[dict[str, str]], completion: str) -> str:
    """Plain ChatML text for training the tokenizer (the model's inputs use the real template)."""
    turns = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return f"{turns}{IM_START}assistant\n{completion}{IM_END}\n"


def example_stream(
    rng: random.Random, phase: PhaseSpec, weights: Sequence[float], exclude: frozenset[str]
) -> Iterator[tuple[str, str | None, str]]:
    """Endless (role, question or None, completion) stream for one phase."""
    uniform = (1.0,) * len(arith.LEVELS)
    solver_stream = arith.iter_problems(rng, weights, exclude)
    challenger_stream = arith.iter_problems(rng, uniform, exclude)
    while True:
        if rng.random() < phase.challenger_fraction:
            p = next(challenger_stream)
            yield "challenger", None, arith.challenger_example(p)
        else:
            p = next(solver_stream)
            direct = rng.random() < phase.direct_fraction
            yield "solver", p.question, arith.direct_solution(p) if direct else arith.worked_solution(p)


def tokenizer_corpus(seed: int, n: int = 4000) -> list[str]:
    """Deterministic ChatML texts (solver and challenger turns) to train the micro tokenizer on."""
    rng = random.Random(f"rzero-micro/tokenizer/{seed}")
    sp, cp = load_prompt("solver"), load_prompt("challenger")
    mixed = PhaseSpec(steps=1, lr=0.0, warmup=1, direct_fraction=0.5)
    stream = example_stream(rng, mixed, arith.PRETRAIN_LEVEL_WEIGHTS, frozenset())
    out = []
    for _ in range(n):
        role, q, completion = next(stream)
        msgs = challenger_messages(cp) if role == "challenger" else solver_messages(sp, q or "")
        out.append(_chatml(msgs, completion))
    return out


@functools.lru_cache(maxsize=8)  # ~4 s of generation; every cache-key computation of a build asks for it
def corpus_fingerprint(seed: int) -> str:
    """Hash of generated text that changes whenever the corpus or held-out generators change."""
    from rzero_bench.store import sha256_text

    held = sorted(arith.heldout_expressions())
    return sha256_text("\n".join(tokenizer_corpus(seed) + held))[:16]


class Encoder:
    """Renders and tokenizes examples exactly as the hf backend does (prompt ids + completion ids)."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast) -> None:
        from rzero_bench.backends.base import render_chat

        self.tok = tokenizer
        self.render_chat = render_chat
        self.sp = load_prompt("solver")
        self.eos = int(tokenizer.convert_tokens_to_ids(IM_END))  # type: ignore[arg-type]
        prompt, _ = render_chat(tokenizer, challenger_messages(load_prompt("challenger")))
        self.challenger_ids = self._ids(prompt)

    def _ids(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def encode(self, role: str, question: str | None, completion: str) -> tuple[list[int], list[int]]:
        if role == "challenger":
            prompt_ids = self.challenger_ids
        else:
            prompt, _ = self.render_chat(self.tok, solver_messages(self.sp, question or ""))
            prompt_ids = self._ids(prompt)
        return prompt_ids, self._ids(completion) + [self.eos]


def pack_batches(
    encoder: Encoder, examples: Iterator[tuple[str, str | None, str]], recipe: MicroRecipe, pad_id: int
) -> Iterator[tuple[list[list[int]], list[list[int]], int]]:
    """Blocks of whole examples packed to ``block_len``: (input ids, labels, loss tokens) per step."""
    pending: tuple[list[int], list[int]] | None = None
    while True:
        inputs: list[list[int]] = []
        labels: list[list[int]] = []
        n_loss = 0
        for _ in range(recipe.batch_blocks):
            ids: list[int] = []
            lab: list[int] = []
            while True:
                if pending is None:
                    pending = encoder.encode(*next(examples))
                prompt_ids, comp_ids = pending
                n = len(prompt_ids) + len(comp_ids)
                if n > recipe.block_len:  # cannot fit any block: skip it
                    pending = None
                    continue
                if len(ids) + n > recipe.block_len:
                    break
                ids += prompt_ids + comp_ids
                lab += [-100] * len(prompt_ids) + comp_ids
                n_loss += len(comp_ids)
                pending = None
            pad = recipe.block_len - len(ids)
            inputs.append(ids + [pad_id] * pad)
            labels.append(lab + [-100] * pad)
        yield inputs, labels, n_loss
