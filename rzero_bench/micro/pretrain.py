"""Pretraining of the micro base model: a ~1M-parameter Qwen3 that knows a little arithmetic.

Recipe (``/work/shared/notes/micro-world.md``, "The base that leaves room for self-play"):

1. **Tokenizer**: byte-level BPE (``rzero_bench.training.tiny.build_tokenizer``), every digit its
   own token, ChatML template, trained on rendered examples of the corpus below (vocab 512).
2. **Phase 1 (skill)**: a plain torch loop, AdamW, lr 2e-3 with warmup and cosine decay, on
   worked solutions ("23+45 = 68. \\boxed{68}") for problems drawn with level weights
   0.2/0.35/0.25/0.12/0.08, plus 10% challenger-format turns (a plan,
   ``<question>...</question>``, ``\\boxed{}``; levels uniform).
3. **Phase 2 (latent reasoning)**: a short continuation (2 nominal minutes, lr 1e-3 cosine) where
   60% of the solutions are direct answers (``\\boxed{68}``). Greedy decoding then answers
   directly (and badly on L3+) while samples at temperature 1 still reason step by step part of the
   time, so majority@m is well above greedy: the headroom self-consistency and R-Zero rely on.
   Measured on this machine (seed 0, 40 items per level): the notes' one minute at lr 3e-4 left
   the first token undecided (P(direct) 0.33-0.55), so greedy still reasoned on 60-90% of the
   items and maj@8 was barely above greedy; 80% direct made greedy direct but left too few
   stepwise samples (L3 maj@8 0.15); 2 minutes at lr 1e-3 with 60% direct gave L3 greedy 0.125
   vs maj@8 0.625.

Every example is a chat rendered through the tokenizer's chat template exactly as the pipeline
renders it (:func:`rzero_bench.backends.base.render_chat` with the shipped ``solver`` and
``challenger`` prompts); the loss covers only the assistant turn and its ``<|im_end|>``. Examples
are packed whole into fixed-length blocks.

Determinism: the number of optimizer steps is fixed by the recipe (``minutes`` is turned into
steps with a nominal throughput, never measured time), data come from seeded ``random.Random``
streams, the init from a seeded torch generator; on one machine with the same thread count two
builds give identical weights. The held-out micro_arith expressions (levels 2-5, 1,000 per level)
never appear in the corpus. Results are cached under
``rzero_home()/models/micro-<size>-s<seed>-<recipe hash>/`` (atomic rename) with a
``micro_meta.json``: steps, tokens, wall time, and greedy / maj@8 (T=1.0) accuracy per level on a
held-out sample. The tokenizer and phase-1 model are cached on their own
(``micro-phase1-<size>-s<seed>-<hash>/``, hash without the phase-2 and evaluation settings), so
variants of the latent-reasoning phase cost only that phase.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rzero_bench.errors import UserError
from rzero_bench.micro import arith
from rzero_bench.prompts import challenger_messages, load_prompt, solver_messages
from rzero_bench.training.tiny import (
    CHAT_TEMPLATE,
    IM_END,
    IM_START,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    ModelSize,
    build_cached,
    build_tokenizer,
    init_model,
    library_versions,
    make_model_config,
    padded_vocab_size,
    recipe_hash,
    rzero_home,
    save_model_and_tokenizer,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

RECIPE_VERSION = 1
META_FILE = "micro_meta.json"

# Micro model shapes. "s": hidden 128, 5 layers (~1.05M params with the 512 vocabulary).
MICRO_SIZES: dict[str, ModelSize] = {
    "s": ModelSize(128, 5, 4, 2, 32, 384, target_params=1_000_000, max_position_embeddings=1024),
    "m": ModelSize(256, 5, 4, 2, 64, 704, target_params=4_000_000, max_position_embeddings=1024),
}
# Nominal training throughput on 2 unloaded cores (tokens/s), used only to turn minutes into steps.
NOMINAL_TOKENS_PER_S: dict[str, float] = {"s": 12_500.0, "m": 5_800.0}


@dataclass(frozen=True)
class PhaseSpec:
    """One training phase: steps, learning rate schedule and corpus mix."""

    steps: int
    lr: float
    warmup: int
    direct_fraction: float  # share of solver turns answered directly (no steps)
    challenger_fraction: float = 0.10
    min_lr_ratio: float = 0.1


@dataclass(frozen=True)
class MicroRecipe:
    """Everything that determines a micro base model (its hash names the cache directory)."""

    size: str
    seed: int
    phase1: PhaseSpec
    phase2: PhaseSpec
    vocab_size: int = 512
    block_len: int = 256
    batch_blocks: int = 16
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    level_weights: tuple[float, ...] = arith.PRETRAIN_LEVEL_WEIGHTS
    eval_per_level: int = 40
    eval_samples: int = 8
    eval_temperature: float = 1.0
    eval_max_tokens: int = 64

    @property
    def tokens_per_step(self) -> int:
        return self.block_len * self.batch_blocks


DEFAULT_MINUTES = 9.5  # training time at the nominal rate; + tokenizer and evaluation <= 10 min
PHASE2_SHARE = 2.0 / 9.5  # two minutes of latent-reasoning tuning in 9.5


def make_recipe(
    size: str = "s",
    seed: int = 0,
    minutes: float | None = None,
    *,
    phase1_steps: int | None = None,
    phase2_steps: int | None = None,
    eval_per_level: int | None = None,
) -> MicroRecipe:
    """The recipe for ``size``/``seed``; ``minutes`` (nominal) or explicit step counts override the budget."""
    if size not in MICRO_SIZES:
        raise UserError(f"unknown micro model size {size!r}; valid sizes: {', '.join(MICRO_SIZES)}")
    if minutes is not None and not (0 < minutes <= 600):
        raise UserError(f"--minutes must be in (0, 600], got {minutes}")
    base = MicroRecipe(
        size=size, seed=seed, phase1=PhaseSpec(1, 2e-3, 1, 0.0), phase2=PhaseSpec(1, 3e-4, 1, 0.6)
    )
    total = (minutes if minutes is not None else DEFAULT_MINUTES) * 60 * NOMINAL_TOKENS_PER_S[size]
    steps = max(2, int(total // base.tokens_per_step))
    s2 = max(1, round(steps * PHASE2_SHARE))
    s1 = max(1, steps - s2)
    if phase1_steps is not None:
        s1 = phase1_steps
    if phase2_steps is not None:
        s2 = phase2_steps
    if s1 < 1 or s2 < 0:
        raise UserError("phase1_steps must be >= 1 and phase2_steps >= 0")
    return MicroRecipe(
        size=size,
        seed=seed,
        phase1=PhaseSpec(steps=s1, lr=2e-3, warmup=min(50, max(1, s1 // 10)), direct_fraction=0.0),
        phase2=PhaseSpec(steps=s2, lr=1e-3, warmup=min(10, max(1, s2 // 10)), direct_fraction=0.6),
        eval_per_level=base.eval_per_level if eval_per_level is None else eval_per_level,
    )


def _recipe_dict(recipe: MicroRecipe) -> dict[str, Any]:
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "micro",
        **asdict(recipe),
        "shape": asdict(MICRO_SIZES[recipe.size]),
        "prompts": {"solver": load_prompt("solver"), "challenger": load_prompt("challenger")},
        "corpus_fingerprint": corpus_fingerprint(recipe.seed),
        "chat_template": CHAT_TEMPLATE,
        "special_tokens": list(SPECIAL_TOKENS),
        "versions": library_versions(),
    }


def micro_model_dir(recipe: MicroRecipe, home: Path | None = None) -> Path:
    """Cache directory of a recipe."""
    h = recipe_hash(_recipe_dict(recipe))
    return Path(home or rzero_home()) / "models" / f"micro-{recipe.size}-s{recipe.seed}-{h}"


# ----------------------------------------------------------------------------- corpus
def _chatml(messages: Sequence[dict[str, str]], completion: str) -> str:
    """Plain ChatML text for training the tokenizer (the model's inputs use the real template)."""
    turns = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return f"{turns}{IM_START}assistant\n{completion}{IM_END}\n"


def _examples(
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
    stream = _examples(rng, mixed, arith.PRETRAIN_LEVEL_WEIGHTS, frozenset())
    out = []
    for _ in range(n):
        role, q, completion = next(stream)
        msgs = challenger_messages(cp) if role == "challenger" else solver_messages(sp, q or "")
        out.append(_chatml(msgs, completion))
    return out


def corpus_fingerprint(seed: int) -> str:
    """Hash of generated text that changes whenever the corpus or held-out generators change."""
    from rzero_bench.store import sha256_text

    held = sorted(arith.heldout_expressions())
    return sha256_text("\n".join(tokenizer_corpus(seed) + held))[:16]


class _Encoder:
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


def _batches(
    encoder: _Encoder, examples: Iterator[tuple[str, str | None, str]], recipe: MicroRecipe, pad_id: int
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


# ----------------------------------------------------------------------------- training
def auto_threads() -> int:
    """Torch threads for this moment: ``$RZERO_THREADS`` if set, else all cores unless the machine is busy.

    On a loaded machine (1-minute load average >= cores) one thread is several times faster than
    two: OpenMP threads spin waiting for cores other processes hold. The thread count does not
    change the results of this model's kernels (checked: identical weights with 1 and 2 threads).
    """
    env = os.environ.get("RZERO_THREADS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without getloadavg
        return cores
    return 1 if load >= cores else cores


ProgressCallback = Callable[[str, int, int, float], None]  # (phase, step, total steps, loss)


def _lr_at(step: int, phase: PhaseSpec) -> float:
    if step < phase.warmup:
        return phase.lr * (step + 1) / phase.warmup
    t = (step - phase.warmup) / max(1, phase.steps - phase.warmup)
    floor = phase.lr * phase.min_lr_ratio
    return floor + (phase.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _train_phase(
    model: PreTrainedModel,
    encoder: _Encoder,
    recipe: MicroRecipe,
    phase: PhaseSpec,
    name: str,
    exclude: frozenset[str],
    pad_id: int,
    progress: ProgressCallback | None,
) -> dict[str, Any]:
    import torch

    if phase.steps == 0:
        return {"steps": 0, "tokens": 0, "loss_tokens": 0, "wall_time_s": 0.0, "loss_curve": []}
    rng = random.Random(f"rzero-micro/{name}/{recipe.seed}")
    batches = _batches(encoder, _examples(rng, phase, recipe.level_weights, exclude), recipe, pad_id)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=phase.lr,
        betas=(0.9, 0.95),
    )
    model.train()
    t0 = time.perf_counter()
    curve: list[list[float]] = []
    loss_tokens = 0
    window: list[float] = []
    every = max(1, phase.steps // 50)
    for step in range(phase.steps):
        if step % 25 == 0:
            torch.set_num_threads(auto_threads())
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, phase)
        inputs, labels, n_loss = next(batches)
        loss_tokens += n_loss
        out = model(input_ids=torch.tensor(inputs), labels=torch.tensor(labels))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        window.append(float(out.loss.detach()))
        if (step + 1) % every == 0 or step + 1 == phase.steps:
            mean = sum(window) / len(window)
            curve.append([step + 1, round(mean, 4)])
            window = []
            if progress is not None:
                progress(name, step + 1, phase.steps, mean)
    model.eval()
    wall = time.perf_counter() - t0
    tokens = phase.steps * recipe.tokens_per_step
    return {
        "steps": phase.steps,
        "tokens": tokens,
        "loss_tokens": loss_tokens,
        "wall_time_s": round(wall, 2),
        "tokens_per_s": round(tokens / max(wall, 1e-9), 1),
        "lr": phase.lr,
        "direct_fraction": phase.direct_fraction,
        "loss_curve": curve,
    }


# ----------------------------------------------------------------------------- evaluation
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


# ----------------------------------------------------------------------------- build
PHASE1_FILE = "micro_phase1.json"


def _phase1_recipe_dict(recipe: MicroRecipe) -> dict[str, Any]:
    """The part of the recipe phase 1 depends on (phase 2 and the evaluation settings left out)."""
    d = _recipe_dict(recipe)
    for key in ("phase2", "eval_per_level", "eval_samples", "eval_temperature", "eval_max_tokens"):
        d.pop(key)
    return d


def _phase1_dir(recipe: MicroRecipe, home: Path | None) -> Path:
    h = recipe_hash(_phase1_recipe_dict(recipe))
    return Path(home or rzero_home()) / "models" / f"micro-phase1-{recipe.size}-s{recipe.seed}-{h}"


def _build_phase1(
    recipe: MicroRecipe, home: Path | None, exclude: frozenset[str], progress: ProgressCallback | None
) -> Path:
    """Tokenizer + phase-1 model, cached on their own so phase-2 variants reuse them."""
    d = _phase1_recipe_dict(recipe)
    target = _phase1_dir(recipe, home)

    def _build(tmp: Path) -> None:
        import torch

        from rzero_bench.store import atomic_write_json

        tokenizer = build_tokenizer(tokenizer_corpus(recipe.seed), recipe.vocab_size)
        eos_id = int(tokenizer.convert_tokens_to_ids(IM_END))  # type: ignore[arg-type]
        pad_id = int(tokenizer.convert_tokens_to_ids(PAD_TOKEN))  # type: ignore[arg-type]
        config = make_model_config(
            MICRO_SIZES[recipe.size],
            padded_vocab_size(len(tokenizer)),
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )
        model = init_model(config, seed=recipe.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            stats = _train_phase(
                model, _Encoder(tokenizer), recipe, recipe.phase1, "phase1", exclude, pad_id, progress
            )
        save_model_and_tokenizer(model, tokenizer, tmp)
        atomic_write_json(tmp / PHASE1_FILE, {"recipe": d, "phase1": stats})

    return build_cached(target, _build)


def pretrain_micro(
    size: str = "s",
    seed: int = 0,
    minutes: float | None = None,
    home: Path | None = None,
    *,
    phase1_steps: int | None = None,
    phase2_steps: int | None = None,
    eval_per_level: int | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Pretrain (or reuse from the cache) the micro base model; returns its directory.

    ``minutes`` is a nominal budget turned into a fixed number of steps (default 9.5 minutes of
    training at 12.5k tokens/s for size "s"); ``phase1_steps``/``phase2_steps`` set the steps
    directly (tests). ``eval_per_level=0`` skips the held-out check in ``micro_meta.json``.
    """
    recipe = make_recipe(
        size,
        seed,
        minutes,
        phase1_steps=phase1_steps,
        phase2_steps=phase2_steps,
        eval_per_level=eval_per_level,
    )
    return build_micro(recipe, home=home, progress=progress)


def build_micro(
    recipe: MicroRecipe, *, home: Path | None = None, progress: ProgressCallback | None = None
) -> Path:
    """Build (or reuse) the micro model of an explicit recipe (for recipe experiments)."""
    target = micro_model_dir(recipe, home)
    if target.is_dir():
        return target
    recipe_d = _recipe_dict(recipe)

    def _build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        from rzero_bench.store import atomic_write_json, read_json

        t_start = time.perf_counter()
        threads_before = torch.get_num_threads()
        exclude = arith.heldout_expressions()
        phase1_cached = _phase1_dir(recipe, home).is_dir()
        phase1_dir = _build_phase1(recipe, home, exclude, progress)
        phases = {"phase1": read_json(phase1_dir / PHASE1_FILE)["phase1"]}
        tokenizer: Any = AutoTokenizer.from_pretrained(phase1_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(phase1_dir, dtype=torch.float32)
        eos_id = int(tokenizer.convert_tokens_to_ids(IM_END))
        pad_id = int(tokenizer.convert_tokens_to_ids(PAD_TOKEN))
        encoder = _Encoder(tokenizer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            phases["phase2"] = _train_phase(
                model, encoder, recipe, recipe.phase2, "phase2", exclude, pad_id, progress
            )
        model.generation_config = GenerationConfig(eos_token_id=[eos_id, pad_id], pad_token_id=pad_id)
        save_model_and_tokenizer(model, tokenizer, tmp)
        train_wall = time.perf_counter() - t_start
        evaluation: dict[str, Any] = {}
        t_eval = time.perf_counter()
        if recipe.eval_per_level > 0:
            if progress is not None:
                progress("eval", 0, 1, float("nan"))
            docs = arith.micro_arith_docs(per_level=recipe.eval_per_level)
            evaluation = evaluate_levels(
                tmp,
                docs,
                samples=recipe.eval_samples,
                temperature=recipe.eval_temperature,
                max_tokens=recipe.eval_max_tokens,
                seed=recipe.seed,
            )
        eval_wall = time.perf_counter() - t_eval
        steps = sum(p["steps"] for p in phases.values())
        tokens = sum(p["tokens"] for p in phases.values())
        n_params = sum(p.numel() for p in model.parameters())
        meta = {
            "recipe": recipe_d,
            "recipe_hash": recipe_hash(recipe_d),
            "n_params": n_params,
            "tokenizer_len": len(tokenizer),
            "steps": steps,
            "tokens": tokens,
            "phases": phases,
            # wall times: this build's own (phase 1 may come from its cache), and the recipe's
            # total counting phase 1's recorded time, so both are comparable across builds
            "phase1_from_cache": phase1_cached,
            "train_wall_time_s": round(train_wall, 2),
            "recipe_wall_time_s": round(sum(p["wall_time_s"] for p in phases.values()) + eval_wall, 2),
            "eval_wall_time_s": round(eval_wall, 2),
            "wall_time_s": round(train_wall + eval_wall, 2),
            "tokens_per_s": round(tokens / max(sum(p["wall_time_s"] for p in phases.values()), 1e-9), 1),
            "torch_threads_at_end": torch.get_num_threads(),
            "load_avg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "eval": {
                "held_out": "micro_arith_docs(seed=1234)",
                "per_level": recipe.eval_per_level,
                "samples": recipe.eval_samples,
                "temperature": recipe.eval_temperature,
                "levels": evaluation,
            },
        }
        atomic_write_json(tmp / META_FILE, meta)
        torch.set_num_threads(threads_before)

    return build_cached(target, _build)


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The ``micro_meta.json`` of a built micro model."""
    from rzero_bench.store import read_json

    meta: dict[str, Any] = read_json(Path(model_dir) / META_FILE)
    return meta


def pretrain_command(size: str = "s", seed: int = 0, minutes: float | None = None) -> None:
    """CLI: pretrain (cached) with a progress bar, print the path and the per-level accuracy table."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    recipe = make_recipe(size, seed, minutes)
    err = Console(stderr=True)
    target = micro_model_dir(recipe)
    cached = target.is_dir()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
        console=err, disable=cached,
    ) as bar:  # fmt: skip
        tasks: dict[str, Any] = {}

        def on_progress(phase: str, step: int, total: int, loss: float) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total, info="")
            info = "" if math.isnan(loss) else f"loss {loss:.3f}"
            bar.update(tasks[phase], completed=step, info=info)

        path = pretrain_micro(size, seed, minutes, progress=on_progress)
    meta = read_meta(path)
    err.print(
        f"micro-{size} seed {seed}: {meta['n_params']:,} params, {meta['steps']} steps, {meta['tokens']:,} tokens, "
        f"{meta['tokens_per_s']:,.0f} tokens/s, {meta.get('recipe_wall_time_s', meta['wall_time_s']):.0f} s"
        + (" (cached)" if cached else "")
    )
    levels = meta["eval"]["levels"]
    if levels:
        k = meta["eval"]["samples"]
        table = Table(
            title=f"held-out sample ({meta['eval']['per_level']} per level), maj@{k} at T={meta['eval']['temperature']}"
        )
        for col in ("level", "greedy", f"maj@{k}", f"mean@{k}", "greedy direct"):
            table.add_column(col, justify="right")
        for level, row in levels.items():
            table.add_row(
                level,
                f"{row['greedy']:.2f}",
                f"{row[f'maj@{k}']:.2f}",
                f"{row[f'mean@{k}']:.2f}",
                f"{row['greedy_direct']:.2f}",
            )
        err.print(table)
    print(path)
