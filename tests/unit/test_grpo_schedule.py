"""The GRPO schedule the presets resolve to: rollout batch, optimizer mini-batches and TRL's arguments.

Official numbers (EasyR1 configs of the R-Zero code, ../shared/notes/official-code-settings.md):
challenger 512 prompts x 4 per step in mini-batches of 16 prompts -> 32 optimizer updates per step,
5 steps -> 160 per iteration; solver 512 x 5 in mini-batches of 128 -> 4 per step, 15 steps -> 60.
The counts are computed from the resolved ``trl.GRPOConfig`` (what TRL itself derives), not from our
own arithmetic.
"""

from __future__ import annotations

import pytest

from rzero_bench.config import load_config, split_batch
from rzero_bench.errors import ConfigError
from rzero_bench.training.grpo import GRPOSettings, grpo_config_kwargs


def _trl_config(monkeypatch, settings: GRPOSettings, processes: int, tmp_path):
    from trl import GRPOConfig

    # resolve for a machine with `processes` training processes (TRL reads the world size from
    # accelerate's state; this machine has one process)
    monkeypatch.setattr(GRPOConfig, "world_size", property(lambda self: processes))
    kwargs = grpo_config_kwargs(settings, output_dir=tmp_path, num_processes=processes, cuda=False)
    return GRPOConfig(**kwargs)


def _updates(cfg, processes: int) -> tuple[int, int, int]:
    """(completions per optimizer update, updates per rollout, rollout completions) as TRL runs them."""
    per_update = cfg.per_device_train_batch_size * processes * cfg.gradient_accumulation_steps
    # TRL samples once every steps_per_generation forward/backward passes; an update is
    # gradient_accumulation_steps passes
    assert cfg.steps_per_generation % cfg.gradient_accumulation_steps == 0
    return per_update, cfg.steps_per_generation // cfg.gradient_accumulation_steps, cfg.generation_batch_size


@pytest.mark.parametrize("preset", ["paper", "official-code"])
@pytest.mark.parametrize(("role", "processes", "per_update", "per_step", "rollout", "per_iteration"), [
    ("challenger", 4, 16 * 4, 32, 512 * 4, 5 * 32),   # official layout: challenger on GPUs 0-3
    ("challenger", 1, 16 * 4, 32, 512 * 4, 5 * 32),   # one GPU: the same updates, more accumulation
    ("solver", 8, 128 * 5, 4, 512 * 5, 15 * 4),       # solver on all 8 GPUs
    ("solver", 2, 128 * 5, 4, 512 * 5, 15 * 4),
])
def test_preset_reproduces_the_official_optimizer_updates(monkeypatch, tmp_path, preset, role, processes,
                                                          per_update, per_step, rollout, per_iteration):
    cfg = load_config(preset=preset)
    settings = GRPOSettings.from_role(cfg, role, seed=0)
    trl_cfg = _trl_config(monkeypatch, settings, processes, tmp_path)
    got_per_update, got_per_step, got_rollout = _updates(trl_cfg, processes)
    assert (got_per_update, got_per_step, got_rollout) == (per_update, per_step, rollout)
    assert trl_cfg.max_steps == per_iteration  # TRL's max_steps counts optimizer updates
    # the rollout holds whole groups of distinct prompts
    assert trl_cfg.generation_batch_size // trl_cfg.num_generations == 512


def test_paper_preset_trl_arguments_follow_the_official_optimizer(monkeypatch, tmp_path):
    cfg = load_config(preset="paper")
    trl_cfg = _trl_config(monkeypatch, GRPOSettings.from_role(cfg, "challenger", seed=0), 4, tmp_path)
    assert trl_cfg.weight_decay == pytest.approx(1e-2)
    assert (trl_cfg.epsilon, trl_cfg.epsilon_high, trl_cfg.delta) == (0.2, 0.3, 3.0)
    assert trl_cfg.top_p == pytest.approx(0.99) and trl_cfg.top_k == 0
    assert trl_cfg.gradient_checkpointing is True
    assert trl_cfg.beta == pytest.approx(1e-2) and trl_cfg.learning_rate == pytest.approx(1e-6)
    assert trl_cfg.per_device_train_batch_size == 2  # micro_batch_per_device: 64 / (4 x 2) = 8 passes
    assert trl_cfg.gradient_accumulation_steps == 8


def test_tiny_preset_keeps_one_update_per_rollout(monkeypatch, tmp_path):
    cfg = load_config(preset="tiny")
    trl_cfg = _trl_config(monkeypatch, GRPOSettings.from_role(cfg, "solver", seed=0), 1, tmp_path)
    _, per_step, rollout = _updates(trl_cfg, 1)
    assert per_step == 1 and rollout == cfg.solver.prompts_per_step * cfg.solver.num_generations
    assert trl_cfg.max_steps == cfg.solver.max_steps
    assert trl_cfg.gradient_checkpointing is False and trl_cfg.weight_decay == 0.0


@pytest.mark.parametrize(("deepspeed", "dtype"), [(True, "bfloat16"), (False, "float32")])
def test_bf16_weights_only_under_deepspeed(tmp_path, deepspeed, dtype):
    # AdamW on bf16 weights drops lr 1e-6 updates; DeepSpeed keeps fp32 master weights
    s = GRPOSettings(prompts_per_step=4, num_generations=2)
    kw = grpo_config_kwargs(s, output_dir=tmp_path, num_processes=1, cuda=True, deepspeed=deepspeed)
    assert kw["bf16"] is True and kw["model_init_kwargs"]["dtype"] == dtype


def test_split_batch_arithmetic_and_errors():
    s = GRPOSettings(prompts_per_step=512, num_generations=4, mini_batch_prompts=16, micro_batch_per_device=2)
    b = split_batch(s, 4)
    assert (b.rollout, b.mini_batch, b.updates, b.per_device, b.accumulation) == (2048, 64, 32, 2, 8)
    assert split_batch(s, 1).accumulation == 32
    with pytest.raises(ValueError, match="3 processes"):
        split_batch(s, 3)  # 64 completions do not split over 3 GPUs x 2
    with pytest.raises(ConfigError, match="not a multiple of mini_batch_prompts"):
        GRPOSettings(prompts_per_step=10, mini_batch_prompts=4)
    both = GRPOSettings(prompts_per_step=8, num_generations=2, micro_batch_per_device=2, gradient_accumulation_steps=2)
    with pytest.raises(ConfigError, match="not both"):
        both.split(1)
