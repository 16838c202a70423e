"""The micro training loop: one phase of AdamW with warmup and cosine decay on packed batches.

Plain torch, no Trainer: per step the learning rate is ``lr * (step + 1) / warmup`` during warmup,
then ``floor + (lr - floor) * (1 + cos(pi * t)) / 2`` with ``floor = lr * min_lr_ratio`` and t the
share of the post-warmup steps done; weight decay on matrices only, gradients clipped to
``grad_clip``, betas (0.9, 0.95). The batches come from a ``random.Random`` seeded by the phase
name and the recipe seed, so a phase is reproducible; ``auto_threads`` picks the torch thread count
(it does not change this model's results).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rzero_bench.micro.corpus import Encoder, example_stream, pack_batches
from rzero_bench.micro.recipe import MicroRecipe, PhaseSpec

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

__all__ = ["ProgressCallback", "auto_threads", "train_phase"]


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


def train_phase(
    model: PreTrainedModel,
    encoder: Encoder,
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
    batches = pack_batches(encoder, example_stream(rng, phase, recipe.level_weights, exclude), recipe, pad_id)
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
