"""Real TRL GRPO steps on the tiny model (CPU) for both roles, plus the GRPOConfig mapping."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.errors import ConfigError, TrainingError
from rzero_bench.training.grpo import GRPOSettings, build_grpo_config, train_challenger, train_solver
from rzero_bench.training.rewards import ChallengerReward

SOLVER_PROMPT = {"system": "Please reason step by step.", "user": "{question}"}


def _tiny_settings(**kw) -> GRPOSettings:
    base = dict(
        lr=5e-3,
        beta=0.0,
        num_generations=4,
        prompts_per_step=2,
        max_steps=2,
        max_completion_length=16,
        seed=0,
    )
    return GRPOSettings(**{**base, **kw})


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _changed(before: dict, after: dict) -> bool:
    return any(not before[k].equal(after[k]) for k in before)


# ---- settings -> GRPOConfig (no training)


def test_settings_from_dict_is_strict():
    s = GRPOSettings.from_dict({"lr": 1e-6, "num_generations": 5, "prompts_per_step": 3}, seed=7)
    assert s.seed == 7 and s.completions_per_step == 15
    with pytest.raises(ConfigError, match="unknown GRPO setting"):
        GRPOSettings.from_dict({"learning_rate": 1e-6})
    with pytest.raises(ConfigError, match="num_generations"):
        GRPOSettings(num_generations=1)


def test_grpo_config_cpu_mapping(tmp_path):
    cfg = build_grpo_config(_tiny_settings(num_generations=5, prompts_per_step=3), output_dir=tmp_path)
    assert cfg.use_cpu is True and cfg.bf16 is False and cfg.report_to in ([], "none", ["none"])
    assert cfg.per_device_train_batch_size == 15 and cfg.num_generations == 5
    assert cfg.generation_batch_size == 15 and cfg.steps_per_generation == 1
    assert cfg.save_strategy == "no" and cfg.max_steps == 2 and cfg.beta == 0.0
    cfg2 = build_grpo_config(
        _tiny_settings(gradient_accumulation_steps=2, prompts_per_step=2), output_dir=tmp_path
    )
    assert cfg2.per_device_train_batch_size == 4 and cfg2.generation_batch_size == 8
    with pytest.raises(ConfigError, match="not divisible"):
        build_grpo_config(_tiny_settings(gradient_accumulation_steps=3), output_dir=tmp_path)


def test_solver_refuses_empty_or_too_small_dataset(tmp_path):
    with pytest.raises(TrainingError, match="empty") as e:
        train_solver(
            model_path=tmp_path,
            out_dir=tmp_path / "o",
            settings=_tiny_settings(),
            dataset=[],
            solver_prompt=SOLVER_PROMPT,
        )
    assert "\n" not in str(e.value)
    with pytest.raises(TrainingError, match="needs 2"):
        train_solver(
            model_path=tmp_path,
            out_dir=tmp_path / "o",
            settings=_tiny_settings(),
            dataset=[{"question": "1+1?", "label": "2"}],
            solver_prompt=SOLVER_PROMPT,
        )
    assert not (tmp_path / "o").exists()


# ---- real GRPO steps


@pytest.mark.slow
def test_solver_grpo_steps_change_weights_and_save(tmp_path, tiny_model_path):
    out = tmp_path / "solver"
    dataset = [{"question": f"What is {i} plus {i}?", "label": str(2 * i)} for i in range(8)]
    seen: list[tuple[int, int]] = []
    # A random tiny model never boxes the right answer; the format term (any digit) varies across
    # completions, so GRPO advantages are non-zero and the weights must move.
    start = time.perf_counter()
    stats = train_solver(
        model_path=tiny_model_path,
        out_dir=out,
        settings=_tiny_settings(),
        dataset=dataset,
        solver_prompt=SOLVER_PROMPT,
        reward_options={"format_weight": 0.5, "format_regex": r".*[0-9].*"},
        progress=lambda step, total, logs: seen.append((step, total)),
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 60
    assert stats.steps == 2 and stats.role == "solver" and stats.tokens_generated > 0
    assert stats.reward_first is not None and len(stats.rewards) == 2
    assert (1, 2) in seen and (2, 2) in seen
    assert _changed(_weights(tiny_model_path), _weights(out))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(str(out))
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.chat_template
    assert not (out / "training_args.bin").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "solver"]
    assert leftovers == []  # no staging or trainer work directory left behind
    print(f"\nsolver xs: {stats.seconds_per_step:.2f} s/step, {stats.tokens_generated} tokens")


@pytest.mark.slow
def test_challenger_grpo_steps_with_scripted_solver(tmp_path, tiny_model_path, monkeypatch):
    out = tmp_path / "challenger"
    log = tmp_path / "challenger_rewards.jsonl"
    solver = ScriptedGenerator("\\boxed{1}")
    real_score = ChallengerReward.score_batch
    calls: list[int] = []

    def score_batch(self, texts, p_hats):
        # The real reward (a random model writes no <question> block, so every score is the format
        # value 0), plus a length-dependent bonus so that GRPO has something to learn from.
        scores = real_score(self, texts, p_hats)
        calls.append(len(texts))
        import dataclasses

        return [
            dataclasses.replace(s, reward=s.reward + 0.01 * (len(t) % 7))
            for s, t in zip(scores, texts, strict=True)
        ]

    monkeypatch.setattr(ChallengerReward, "score_batch", score_batch)
    stats = train_challenger(
        model_path=tiny_model_path,
        out_dir=out,
        settings=_tiny_settings(),
        solver=solver,
        solver_prompt=SOLVER_PROMPT,
        m=3,
        reward_options={"variant": "paper", "lam": 1.0, "threshold": 0.5},
        log_path=log,
    )
    assert stats.steps == 2 and stats.role == "challenger"
    assert calls == [8, 8]  # the whole batch (2 prompts x 4 generations) scored once per step
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 16 and {r["step"] for r in rows} == {0, 1}
    assert all(
        set(r) >= {"text", "well_formed", "p_hat", "uncertainty", "repetition", "reward"} for r in rows
    )
    assert _changed(_weights(tiny_model_path), _weights(out))
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(out))
    print(f"\nchallenger xs: {stats.seconds_per_step:.2f} s/step")


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path, tiny_model_path):
    dataset = [{"question": f"What is {i} plus {i}?", "label": str(2 * i)} for i in range(4)]
    opts = {"format_weight": 0.5, "format_regex": r".*[0-9].*"}
    outs = []
    for name in ("a", "b"):
        train_solver(
            model_path=tiny_model_path,
            out_dir=tmp_path / name,
            settings=_tiny_settings(max_steps=1),
            dataset=dataset,
            solver_prompt=SOLVER_PROMPT,
            reward_options=opts,
        )
        outs.append(_weights(tmp_path / name))
    assert not _changed(outs[0], outs[1])


@pytest.mark.slow
def test_lr_zero_leaves_every_weight_unchanged(tmp_path, tiny_model_path):
    """The planted regression ``solver.lr=0`` of the micro loop test: real GRPO steps with lr 0 write a
    checkpoint whose weights equal the base's bit for bit (AdamW's update and its decoupled weight
    decay both scale with lr), so that run's greedy answers are the base's. This is what lets
    tests/integration/test_micro_loop.py plant it as "iteration 1 results = iteration 0 results"."""
    out = tmp_path / "solver-lr0"
    dataset = [{"question": f"What is {i} plus {i}?", "label": str(2 * i)} for i in range(8)]
    stats = train_solver(
        model_path=tiny_model_path,
        out_dir=out,
        settings=_tiny_settings(lr=0.0, weight_decay=0.1),
        dataset=dataset,
        solver_prompt=SOLVER_PROMPT,
        reward_options={"format_weight": 0.5, "format_regex": r".*[0-9].*"},
    )
    assert stats.steps == 2
    before, after = _weights(tiny_model_path), _weights(out)
    assert set(before) == set(after) and not _changed(before, after)
