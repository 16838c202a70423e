"""Stage 5, ``solver``: GRPO on solver_{k-1} against the pseudo-labels → solver_k (R-Zero, arXiv
2508.05004, §3.3).

Reads: ``iter_<k>/solver_dataset.jsonl`` (and ``iter_<k>/filter.json`` for the error message) and
the checkpoint solver_{k-1} (the base model at k = 1).
Writes: ``iter_<k>/solver/`` (checkpoint).

Reward per completion (:class:`rzero_bench.training.rewards.SolverReward`):
``r = (1 - w) * acc + w * fmt`` with ``acc = 1`` when the completion's last ``\\boxed{}`` grades
equal to the pseudo-label and ``fmt = 1`` when it has a ``\\boxed{}``; ``w = solver.format_weight``
is 0 in the paper (pure accuracy) and 0.1 in the official code.

Fewer than ``selfplay.min_kept`` kept questions is a :class:`~rzero_bench.errors.TrainingError`
that names the counts, never a silent zero-step run.
"""

from __future__ import annotations

from typing import Any

from rzero_bench.errors import TrainingError
from rzero_bench.stages._context import (
    IterPaths,
    StageContext,
    StageResult,
    remove_path,
    stats_dict,
)
from rzero_bench.store import read_json, read_jsonl


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Train solver_k on the filtered questions and their pseudo-labels."""
    from rzero_bench.training.grpo import train_solver

    cfg = ctx.cfg
    dataset = read_jsonl(p.it / "solver_dataset.jsonl")
    if len(dataset) < cfg.selfplay.min_kept:
        f = read_json(p.it / "filter.json")
        raise TrainingError(
            f"iteration {p.k}: only {len(dataset)} question(s) survived the filter (need >= {cfg.selfplay.min_kept}; "
            f"generated {f.get('generated')}, malformed {f.get('malformed')}, drops {f.get('drops')}); "
            "generate more questions (selfplay.num_questions) or widen the band")
    out = p.it / "solver"
    remove_path(out)
    settings = ctx.grpo_settings("solver", p.k)
    common = {"model_path": ctx.model_for("solver", p.k - 1), "out_dir": out, "settings": settings,
              "solver_prompt": ctx.prompts["solver"],
              "reward_options": {"format_weight": cfg.solver.format_weight, "kind": cfg.selfplay.grader,
                                 "format_regex": cfg.solver.format_regex}}
    stats: Any
    if cfg.layout.accelerate_config:
        stats = ctx.launch("solver", p, common, dataset_path=str(p.it / "solver_dataset.jsonl"))
    else:
        stats = train_solver(dataset=dataset, progress=ctx.train_progress("solver GRPO"), **common)
    return {"outputs": [p.rel(out)], "examples": len(dataset), **stats_dict(stats)}
