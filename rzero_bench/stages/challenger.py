"""Stage 1, ``challenger``: GRPO on challenger_{k-1} → challenger_k (R-Zero, arXiv 2508.05004, §3.2).

Reads: the checkpoints challenger_{k-1} and solver_{k-1} (``iter_<k-1>/challenger``,
``iter_<k-1>/solver``; the base model at k = 1).
Writes: ``iter_<k>/challenger/`` (checkpoint) and ``iter_<k>/challenger_rewards.jsonl`` (one
:class:`~rzero_bench.records.ChallengerScore` per scored completion).

Reward per completion x_i of a batch of B (see :mod:`rzero_bench.training.rewards` and
:mod:`rzero_bench.selfplay.rewards`): solver_{k-1} answers the question m times, ``p_hat`` is the
majority agreement, ``r = max(0, r_unc(p_hat) - r_rep(i))`` with ``r_unc = 1 - 2|p_hat - 1/2|``
(paper) or ``min(p_hat, 1 - p_hat)`` (official code) and ``r_rep = lam * |cluster(i)| / B`` from
BLEU-distance clustering; a completion without a ``<question>`` block gets ``format_penalty``.
``controls.flip_challenger_reward`` multiplies the reward by -1 (a control run).

``challenger.max_steps: 0`` (``baseline: base-challenger``, the paper's "Base Challenger" row)
skips training: nothing is written, the manifest records ``skipped_training`` and the checkpoint
used instead (challenger_{k-1}), and later stages sample that one.

Layouts: in process (the solver is a generator held open for the whole stage); under
``accelerate launch`` with the solver behind an OpenAI-compatible server, either one the user runs
(``generation_backend=openai``) or one this stage starts and stops (``served``).
"""

from __future__ import annotations

from typing import Any

from rzero_bench.config import RunConfig
from rzero_bench.errors import UserError
from rzero_bench.stages._context import (
    IterPaths,
    StageContext,
    StageResult,
    remove_path,
    stats_dict,
)


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Train challenger_k against solver_{k-1}'s uncertainty."""
    cfg = ctx.cfg
    out = p.it / "challenger"
    log_path = p.it / "challenger_rewards.jsonl"
    remove_path(out)
    remove_path(log_path)
    if cfg.challenger.max_steps == 0:
        previous = ctx.model_for("challenger", p.k - 1)
        ctx.log(f"  challenger.max_steps is 0: no challenger training, questions come from {previous}")
        return {
            "outputs": [],
            "skipped_training": True,
            "checkpoint": previous,
            "steps": 0,
            "inputs": {"challenger": previous},
        }
    solver_path = ctx.model_for("solver", p.k - 1)
    settings = ctx.grpo_settings("challenger", p.k)
    common = {"model_path": ctx.model_for("challenger", p.k - 1), "out_dir": out, "settings": settings,
              "solver_prompt": ctx.prompts["solver"], "challenger_prompt": ctx.prompts["challenger"],
              "m": cfg.selfplay.reward_m or cfg.selfplay.m, "reward_options": reward_options(cfg),
              "log_path": log_path}
    stats: Any
    if cfg.layout.accelerate_config and cfg.layout.generation_backend == "served":
        with ctx.generator(solver_path, role="reward") as served:
            stats = ctx.launch("challenger", p, common, solver_backend=served.client_spec())
    elif cfg.layout.accelerate_config:
        stats = ctx.launch("challenger", p, common, solver_backend=_solver_backend_spec(cfg, solver_path))
    else:
        from rzero_bench.training.grpo import train_challenger

        with ctx.generator(solver_path, role="reward") as solver:
            display = ctx.train_progress("challenger GRPO")
            try:
                stats = train_challenger(solver=solver, progress=display, sampling_progress=display.sampling, **common)
            finally:
                display.close()
    return {
        "outputs": [p.rel(out), p.rel(log_path)],
        **stats_dict(stats),
        "inputs": {"challenger": str(common["model_path"]), "solver": solver_path},
    }


def reward_options(cfg: RunConfig) -> dict[str, Any]:
    """The challenger reward's options (``ChallengerReward``) from the run config."""
    sp = cfg.selfplay
    return {"variant": sp.reward_variant, "format_penalty": sp.format_penalty, "lam": sp.lam,
            "threshold": sp.bleu_threshold, "require_boxed": sp.require_boxed, "none_is_answer": sp.none_is_answer,
            "temperature": sp.solver_temperature, "max_tokens": sp.solver_max_tokens, "kind": sp.grader,
            "top_k": sp.solver_top_k,
            "reward_sign": -1.0 if cfg.controls.flip_challenger_reward else 1.0}


def _solver_backend_spec(cfg: RunConfig, solver_path: str) -> dict[str, Any]:
    """How the launched trainer reaches a solver the user serves (``generation_backend=openai``)."""
    lay = cfg.layout
    if lay.generation_backend != "openai" or not lay.solver_server_url:
        raise UserError("multi-process GRPO (layout.accelerate_config) needs the solver served by `vllm serve`: "
                        "set layout.generation_backend=openai and layout.solver_server_url")
    return {"backend": "openai", "model": lay.served_solver_name or solver_path,
            "options": {"base_url": lay.solver_server_url, "api_key_env": lay.api_key_env}}
