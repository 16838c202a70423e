"""The micro recipe as data: model shapes, the two training phases and the nominal step budget.

A ``MicroRecipe`` determines a micro base model completely (with the prompts, the corpus and the
library versions that ``pretrain`` adds to its cache key). ``make_recipe`` turns a nominal budget
in minutes into fixed step counts: steps = minutes * 60 * ``NOMINAL_TOKENS_PER_S[size]`` /
(``block_len`` * ``batch_blocks``) tokens per step, ``PHASE2_SHARE`` of them for phase 2 (latent
reasoning), the rest for phase 1 (skill). Measured time never enters, so a recipe is the same on
every machine. Pure Python: importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from rzero_bench.errors import UserError
from rzero_bench.micro import arith
from rzero_bench.training.tiny import ModelSize

__all__ = [
    "DEFAULT_MINUTES",
    "MICRO_SIZES",
    "NOMINAL_TOKENS_PER_S",
    "PHASE2_SHARE",
    "RECIPE_VERSION",
    "MicroRecipe",
    "PhaseSpec",
    "make_recipe",
]

RECIPE_VERSION = 1

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
