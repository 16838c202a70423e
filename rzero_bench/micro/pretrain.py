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

Headroom (the precondition of the loop): the default recipe is checked after the build. The base
has headroom when on some held-out level majority@m beats greedy by at least
``HEADROOM_MARGIN`` = 0.2 (40 items per level: about two standard errors of the difference).
Without it self-consistency finds nothing greedy does not (measured: seed 1 of the first recipe had
none and gained nothing in the loop). Then phase 2 is extended deterministically, 1.5x and 2x its
steps (the same data stream, continued; phase 1 reused from its cache), and the first attempt with
headroom is used. If none has it, one line says so and the attempt with the largest headroom is
returned. A base that passes at once keeps its recipe and cache key.

Modules: ``recipe`` (the recipe as data), ``corpus`` (examples, tokenizer corpus, packing),
``train`` (one training phase), ``evaluate`` (the held-out check); this module computes the cache
keys, builds (phase 1, then phase 2, then the check) and holds the ``micro pretrain`` command.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rzero_bench.micro import arith
from rzero_bench.micro.corpus import (
    Encoder,
    corpus_fingerprint,
    example_stream,
    pack_batches,
    tokenizer_corpus,
)
from rzero_bench.micro.evaluate import boxed_answer, evaluate_levels, majority
from rzero_bench.micro.recipe import (
    BUDGETS,
    DEFAULT_MINUTES,
    MICRO_SIZES,
    NOMINAL_TOKENS_PER_S,
    PHASE2_SHARE,
    RECIPE_VERSION,
    MicroRecipe,
    PhaseSpec,
    make_recipe,
    warmup_steps,
)
from rzero_bench.micro.train import ProgressCallback, auto_threads, train_phase
from rzero_bench.prompts import load_prompt
from rzero_bench.training.tiny import (
    CHAT_TEMPLATE,
    IM_END,
    PAD_TOKEN,
    SPECIAL_TOKENS,
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

__all__ = [
    # the build (this module)
    "META_FILE",
    "PHASE1_FILE",
    "build_micro",
    "micro_model_dir",
    "pretrain_command",
    "pretrain_micro",
    "read_meta",
    # re-exported from recipe, corpus, train and evaluate (their import paths before the split)
    "DEFAULT_MINUTES",
    "MICRO_SIZES",
    "NOMINAL_TOKENS_PER_S",
    "BUDGETS",
    "PHASE2_SHARE",
    "RECIPE_VERSION",
    "Encoder",
    "MicroRecipe",
    "PhaseSpec",
    "ProgressCallback",
    "auto_threads",
    "boxed_answer",
    "corpus_fingerprint",
    "evaluate_levels",
    "example_stream",
    "majority",
    "make_recipe",
    "pack_batches",
    "tokenizer_corpus",
    "train_phase",
]

# names the module had before the split (tests use them)
_examples = example_stream
_batches = pack_batches
_Encoder = Encoder
_train_phase = train_phase

META_FILE = "micro_meta.json"
PHASE1_FILE = "micro_phase1.json"


# ----------------------------------------------------------------------------- cache keys
def _recipe_dict(recipe: MicroRecipe) -> dict[str, Any]:
    """What the cache key hashes: the recipe's fields, the model shape, the prompts, a hash of the
    generated corpus, the chat template, the special tokens and the library versions."""
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


def _phase1_recipe_dict(recipe: MicroRecipe) -> dict[str, Any]:
    """The part of the recipe phase 1 depends on (phase 2 and the evaluation settings left out)."""
    d = _recipe_dict(recipe)
    for key in ("phase2", "eval_per_level", "eval_samples", "eval_temperature", "eval_max_tokens"):
        d.pop(key)
    return d


def _phase1_dir(recipe: MicroRecipe, home: Path | None) -> Path:
    h = recipe_hash(_phase1_recipe_dict(recipe))
    return Path(home or rzero_home()) / "models" / f"micro-phase1-{recipe.size}-s{recipe.seed}-{h}"


# ----------------------------------------------------------------------------- build
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
            stats = train_phase(
                model, Encoder(tokenizer), recipe, recipe.phase1, "phase1", exclude, pad_id, progress
            )
        save_model_and_tokenizer(model, tokenizer, tmp)
        atomic_write_json(tmp / PHASE1_FILE, {"recipe": d, "phase1": stats})

    return build_cached(target, _build)


HEADROOM_MARGIN = 0.2
HEADROOM_EXTENSIONS: tuple[float, ...] = (1.5, 2.0)  # phase-2 step factors tried after the recipe


@dataclass(frozen=True)
class Headroom:
    """Majority@m against greedy on the held-out levels of a built base (``micro_meta.json``)."""

    level: str  # the level where majority@m beats greedy the most
    greedy: float
    majority: float
    samples: int

    @property
    def gap(self) -> float:
        return self.majority - self.greedy

    @property
    def ok(self) -> bool:
        return self.gap >= HEADROOM_MARGIN - 1e-9

    def describe(self) -> str:
        return (
            f"maj@{self.samples} {self.majority:.3f} vs greedy {self.greedy:.3f} on {self.level} "
            f"({self.gap:+.3f}; needs >= {HEADROOM_MARGIN:+.2f})"
        )


def headroom(meta: dict[str, Any]) -> Headroom | None:
    """The level with the largest majority@m - greedy gap, or None when the build was not evaluated."""
    k = int(meta["eval"]["samples"])
    levels = meta["eval"]["levels"] or {}
    rows = [(lv, float(r["greedy"]), float(r[f"maj@{k}"])) for lv, r in sorted(levels.items())]
    if not rows:
        return None
    lv, g, m = max(rows, key=lambda r: (round(r[2] - r[1], 9), r[0]))
    return Headroom(lv, g, m, k)


def _extended(recipe: MicroRecipe, factor: float) -> MicroRecipe:
    """The recipe with phase 2 extended to ``factor`` times its steps (warmup as make_recipe sets it)."""
    steps = max(1, round(recipe.phase2.steps * factor))
    return replace(recipe, phase2=replace(recipe.phase2, steps=steps, warmup=warmup_steps(steps, 10)))


def build_with_headroom(
    recipe: MicroRecipe,
    *,
    home: Path | None = None,
    progress: ProgressCallback | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Path, Headroom | None, int]:
    """Build ``recipe``; without headroom, the phase-2 extensions in turn (module docstring).

    Returns (model directory, its headroom, attempt: 0 = the recipe itself).
    """
    tried: list[tuple[Path, Headroom | None, int]] = []
    for attempt, factor in enumerate((1.0, *HEADROOM_EXTENSIONS)):
        r = recipe if attempt == 0 else _extended(recipe, factor)
        path = build_micro(r, home=home, progress=progress)
        room = headroom(read_meta(path))
        if room is None or room.ok:
            return path, room, attempt
        tried.append((path, room, attempt))
    best = max(tried, key=lambda t: t[1].gap if t[1] is not None else -1.0)
    assert best[1] is not None
    (log or _stderr)(
        f"micro-{recipe.size} seed {recipe.seed}: no self-consistency headroom after {len(tried)} attempts "
        f"(best: {best[1].describe()}); the loop is unlikely to gain on this base: try another seed"
    )
    return best


def _stderr(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def pretrain_micro(
    size: str = "s",
    seed: int = 0,
    minutes: float | None = None,
    home: Path | None = None,
    *,
    budget: str | None = None,
    phase1_steps: int | None = None,
    phase2_steps: int | None = None,
    eval_per_level: int | None = None,
    progress: ProgressCallback | None = None,
    ensure_headroom: bool | None = None,
) -> Path:
    """Pretrain (or reuse from the cache) the micro base model; returns its directory.

    ``minutes`` is a nominal budget turned into a fixed number of steps (default 9.5 minutes of
    training at 12.5k tokens/s for size "s"); ``phase1_steps``/``phase2_steps`` set the steps
    directly (tests); ``budget`` names a derived recipe (``recipe.BUDGETS``: "demo", half-size
    batches, ~61% of the default's compute). ``eval_per_level=0`` skips the held-out check in
    ``micro_meta.json``. ``ensure_headroom`` (default: for the recipe of a budget, ``micro:s``,
    ``micro:s@<minutes>`` or ``micro:s@demo``;
    not when steps or the held-out sample are set explicitly) retries with phase 2 extended until
    majority@m beats greedy (module docstring).
    """
    recipe = make_recipe(
        size,
        seed,
        minutes,
        budget=budget,
        phase1_steps=phase1_steps,
        phase2_steps=phase2_steps,
        eval_per_level=eval_per_level,
    )
    if ensure_headroom is None:
        ensure_headroom = (
            phase1_steps is None and phase2_steps is None and eval_per_level is None
        )
    if ensure_headroom and recipe.eval_per_level > 0:
        return build_with_headroom(recipe, home=home, progress=progress)[0]
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
        encoder = Encoder(tokenizer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            phases["phase2"] = train_phase(
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


def pretrain_command(
    size: str = "s", seed: int = 0, minutes: float | None = None, budget: str | None = None
) -> None:
    """CLI: pretrain (cached) with a progress bar, print the path, the per-level accuracy table and
    the headroom (majority@m against greedy; extended when missing, see the module docstring)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    recipe = make_recipe(size, seed, minutes, budget=budget)
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

        path, room, attempt = build_with_headroom(recipe, progress=on_progress)
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
    if room is not None:
        how = "the recipe" if attempt == 0 else f"phase 2 extended x{HEADROOM_EXTENSIONS[attempt - 1]:g}"
        verdict = "ok" if room.ok else "NONE (see the warning above)"
        err.print(f"headroom ({how}): {room.describe()}: {verdict}", markup=False)
    print(path)
