"""Run configuration: strict pydantic models, presets and YAML loading.

Defaults follow the R-Zero paper (arXiv 2508.05004). Every place where the official code differs
is a named option; the ``official-code`` preset (``variant: official-code``) sets them all:

| option | paper | official code |
|---|---|---|
| ``selfplay.reward_variant`` | ``paper``: r = 1 - 2|p - 1/2| | ``official``: r = min(p, 1 - p) |
| ``selfplay.m`` | 10 | 9 |
| ``selfplay.filter_mode`` | ``paper``: |p - 1/2| <= delta (0.25) | ``band``: 0.3 <= p <= 0.8 |
| ``selfplay.format_penalty`` | 0 | -1 |
| ``selfplay.none_is_answer`` | False | True (the string "None" is voted on) |
| ``selfplay.answer_match_gate`` | False | True in the first release (challenger's own answer must match the majority) |
| ``solver.format_weight`` | 0 | 0.1 (reward 0.9*acc + 0.1*format) |

Every field carries a ``description`` (its meaning, and the paper section or official-code value it
comes from); ``rzero-bench config show`` prints them beside the resolved values, and a bad value
reports the field's description. Section numbers and official values are those tabulated in
``../shared/notes/official-code-settings.md`` (paper vs official code vs presets).

Checked when the config loads, not when a stage first needs the value (each with a one-line
:class:`~rzero_bench.errors.ConfigError` naming the key to change):

* GRPO group sizes ``challenger/solver.num_generations >= 2`` (advantages are normalised within a
  group) and ``selfplay.m >= 2`` (one sample always agrees with itself);
* ``prompts_per_step * num_generations`` divisible by processes x ``gradient_accumulation_steps``
  (TRL's per-device batch must be whole; processes = length of the role's GPU list under
  ``layout.accelerate_config``, else 1);
* ``selfplay.num_questions`` at least ``solver.prompts_per_step`` and ``selfplay.min_kept``;
* ``format_weight`` only on the solver; ``loss_type`` one of TRL's;
* layout: ``openai`` needs ``solver_server_url``; ``accelerate_config`` needs the solver reachable
  over HTTP (``served`` or ``openai``); a ``served`` command has ``{model}`` and ``{port}``;
* the oracle spec parses; ``oracle: reference`` needs ``probes.n > 0`` and probes need it.

Unknown keys (in a YAML file or ``--set``) get a did-you-mean and the section's valid keys.

Presets live as YAML in the top-level ``trainers/<name>.yaml`` (shipped inside the wheel); a user
config may start from a preset (``preset: tiny``) and override any field.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rzero_bench.errors import ConfigError
from rzero_bench.resources import shipped_dir

# TRL 1.16 GRPOConfig.loss_type values (rzero_bench.training.grpo checks the same set at train time).
LOSS_TYPES: tuple[str, ...] = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class RoleConfig(_Strict):
    """GRPO settings for one role (challenger or solver); paper §2.2 (GRPO) and §4 (training details)."""

    lr: float = Field(1e-6, description=(
        "Learning rate of GRPO (constant schedule). Paper §4 and official code: 1e-6 for both roles."))
    beta: float = Field(1e-2, description=(
        "KL coefficient against the frozen starting model. Paper §4 and official code: 1e-2 (official "
        "uses the low_var_kl estimator); 0 loads no reference model (half the forward passes)."))
    num_generations: int = Field(4, ge=2, description=(
        "GRPO group size G: completions sampled per prompt. Advantages are rewards normalised within a "
        "group, so G >= 2. Paper §4 and official code: challenger 4, solver 5."))
    prompts_per_step: int = Field(1, ge=1, description=(
        "Rollout batch: distinct prompts sampled per GRPO step; one step samples prompts_per_step x "
        "num_generations completions and splits them into optimizer mini-batches (mini_batch_prompts). "
        "Not in the paper; official (EasyR1 data.rollout_batch_size): 512 for both roles."))
    mini_batch_prompts: int | None = Field(None, ge=1, description=(
        "Optimizer mini-batch in prompts: each rollout batch gives prompts_per_step / mini_batch_prompts "
        "optimizer updates (PPO-style, on the same samples). null: one update per rollout batch. "
        "Official (EasyR1 worker.actor.global_batch_size): challenger 16 (32 updates per step), "
        "solver 128 (4 updates per step)."))
    max_steps: int = Field(5, ge=0, description=(
        "GRPO steps (rollout batches) per iteration; optimizer updates = max_steps x prompts_per_step / "
        "mini_batch_prompts. Paper §4 and official code (global_step_5 / global_step_15): challenger 5, "
        "solver 15. Challenger only: 0 skips its training (the stage records the skip and the previous "
        "challenger writes the questions; baseline: base-challenger sets it); the solver needs >= 1."))
    max_completion_length: int = Field(4096, ge=1, description=(
        "Token limit of each GRPO rollout completion. Paper §4 and official code: 4096."))
    temperature: float = Field(1.0, gt=0, description=(
        "Sampling temperature of GRPO rollouts (> 0: GRPO needs varied samples). Paper and official: 1.0."))
    top_p: float = Field(1.0, gt=0, le=1, description=(
        "Nucleus sampling of GRPO rollouts. Official (EasyR1 worker.rollout.top_p): 0.99 (paper and "
        "official-code presets); tiny/micro: 1.0."))
    top_k: int = Field(0, ge=0, description=(
        "Top-k sampling of GRPO rollouts; 0: off. Official rollouts: off."))
    loss_type: str = Field("grpo", description=(
        "TRL GRPO loss normalisation, one of " + ", ".join(LOSS_TYPES) + ". Paper: grpo (DeepSeekMath "
        "GRPO, §2.2); dapo normalises over all tokens of the batch (micro preset)."))
    gradient_accumulation_steps: int = Field(1, ge=1, description=(
        "Micro-batches per optimizer update (memory only, same update) when micro_batch_per_device is "
        "null: the mini-batch's completions must be divisible by processes x this, so TRL's per-device "
        "batch is whole."))
    micro_batch_per_device: int | None = Field(None, ge=1, description=(
        "Completions per GPU per forward/backward pass; gradient accumulation is derived from it: "
        "mini-batch completions / (processes x this), so the update is the same on 1 or 8 GPUs. "
        "Official (EasyR1 micro_batch_size_per_device_for_update): 2 (challenger), 1 (solver). null: "
        "use gradient_accumulation_steps."))
    gradient_checkpointing: bool = Field(False, description=(
        "Recompute activations in the backward pass instead of storing them: about 30% slower, but a "
        "4B model at 4096-token completions needs tens of GB of activations per sequence without it. "
        "Official (EasyR1 enable_gradient_checkpointing): true; paper presets: true; tiny/micro: false."))
    weight_decay: float = Field(0.0, ge=0, description=(
        "AdamW weight decay. Official (EasyR1 optim.weight_decay): 1e-2; tiny/micro: 0."))
    epsilon_low: float = Field(0.2, ge=0, lt=1, description=(
        "PPO clip: the probability ratio is clipped below at 1 - epsilon_low. Official (EasyR1 "
        "clip_ratio_low): 0.2."))
    epsilon_high: float = Field(0.2, ge=0, description=(
        "PPO clip: the ratio is clipped above at 1 + epsilon_high; above epsilon_low is clip-higher "
        "(DAPO). Official (EasyR1 clip_ratio_high): 0.3; tiny/micro: 0.2."))
    dual_clip: float | None = Field(None, gt=1, description=(
        "Dual clip: for negative advantages the ratio is capped at this value (TRL delta). Official "
        "(EasyR1 clip_ratio_dual): 3.0. null: off."))
    format_weight: float = Field(0.0, ge=0, le=1, description=(
        "Solver only: reward = (1 - w) * accuracy + w * format, format = the answer is in \\boxed{}. "
        "Paper §3.3: 0 (accuracy against the pseudo-label); official code: 0.1."))
    format_regex: str | None = Field(None, description=(
        "Solver only: a completion is well formatted when it fully matches this regex (DOTALL); null: "
        "when it has a \\boxed{} answer. Official (EasyR1 math.py format_reward): "
        "<think>.*</think>.*\\\\boxed\\{.*\\}.*"))
    extra: dict[str, Any] = Field(default_factory=dict, description=(
        "Keyword arguments passed verbatim to trl.GRPOConfig, winning over the derived ones (e.g. "
        "{num_iterations: 2})."))

    @field_validator("loss_type")
    @classmethod
    def _loss_type_ok(cls, v: str) -> str:
        if v not in LOSS_TYPES:
            raise ValueError(f"unknown loss_type {v!r}{_did_you_mean(v, LOSS_TYPES)}; "
                             f"choose one of {', '.join(LOSS_TYPES)}")
        return v


class SelfPlayConfig(_Strict):
    """Question generation, self-consistency voting, challenger reward and filtering (paper §3.2-3.3)."""

    num_questions: int = Field(8000, ge=1, description=(
        "Candidate questions the trained challenger writes per iteration, before voting and filtering. "
        "Paper §3.3 and official code (8 x 1000): 8000."))
    question_max_tokens: int = Field(4096, ge=1, description=(
        "Token limit of one challenger output when writing questions. Paper and official: 4096."))
    question_temperature: float = Field(1.0, gt=0, description=(
        "Sampling temperature when writing questions. Official: 1.0 (with top_p 0.95; ours 1.0)."))
    question_top_p: float = Field(1.0, gt=0, le=1, description=(
        "Nucleus sampling when writing questions. Official (question_generate.py): 0.95 "
        "(official-code preset); paper presets: 1.0 (the paper does not say)."))
    m: int = Field(10, ge=2, description=(
        "Solver samples per question; p_hat is the share agreeing with the majority answer, which "
        "becomes the pseudo-label (paper §3.2-3.3). At least 2: one sample always agrees with itself. "
        "Paper: 10; official: 10 in the challenger reward, 9 for the votes (official-code preset: 9)."))
    reward_m: int | None = Field(None, ge=2, description=(
        "Solver samples per question inside the challenger's reward; null: m. Official "
        "(start_vllm_server.py): 10 in the reward while the votes use 9 (official-code preset)."))
    solver_top_k: int = Field(0, ge=0, description=(
        "Top-k of the solver samples (challenger reward and votes); 0: off. Official "
        "(start_vllm_server.py, question_evaluate/evaluate.py): 40 with top_p 1.0."))
    solver_temperature: float = Field(1.0, gt=0, description=(
        "Sampling temperature of the m solver samples (challenger reward and votes). Paper and "
        "official: 1.0."))
    solver_max_tokens: int = Field(4096, ge=1, description=(
        "Token limit of each of the m solver samples. Paper and official: 4096."))
    reward_variant: Literal["paper", "official"] = Field("paper", description=(
        "Challenger uncertainty reward from p_hat: 'paper' r = 1 - 2|p_hat - 1/2| (§3.2); 'official' "
        "r = min(p_hat, 1 - p_hat) (official caller_penalty.py)."))
    format_penalty: float = Field(0.0, description=(
        "Challenger reward for an output without a well-formed <question> block (it is not sent to "
        "the solver). Paper §3.2: 0; official code: -1 (no clipping)."))
    require_boxed: bool = Field(True, description=(
        "The challenger's format check also requires its own \\boxed{} answer after the question. "
        "Ours in every preset; the official check for it is inert."))
    lam: float = Field(1.0, ge=0, description=(
        "Scale lambda of the repetition penalty lambda * |C| / B (C: the question's BLEU cluster, B: "
        "the challenger batch). Paper §3.2 and official: 1."))
    bleu_threshold: float = Field(0.5, gt=0, le=1, description=(
        "Distance cut of the average-linkage clustering on 1 - BLEU that groups near-identical "
        "questions for the repetition penalty. Paper §3.2 and official: 0.5."))
    none_is_answer: bool = Field(False, description=(
        "Whether a solver sample with no \\boxed{} answer votes for the string 'None'. Paper: false "
        "(it has no vote); official code: true (its extractor returns 'None', which is voted on)."))
    answer_match_gate: bool = Field(False, description=(
        "Keep a question only when the challenger's own \\boxed{} answer matches the solver majority. "
        "Paper: false; official first release (af4a941): true, dropped at HEAD (5699329)."))
    filter_mode: Literal["paper", "band"] = Field("paper", description=(
        "Which questions train the solver: 'paper' keeps |p_hat - 1/2| <= delta (§3.3); 'band' keeps "
        "band[0] <= p_hat <= band[1] (official code: 0.3 <= p_hat <= 0.8)."))
    delta: float = Field(0.25, ge=0, le=0.5, description=(
        "Half-width of the paper filter |p_hat - 1/2| <= delta (§3.3: 0.25). Used with filter_mode: paper."))
    band: tuple[float, float] = Field((0.3, 0.8), description=(
        "[low, high] of the band filter low <= p_hat <= high, 0 <= low <= high <= 1 (official: "
        "[0.3, 0.8]). Used with filter_mode: band."))
    dedup: bool = Field(True, description=(
        "Drop repeated questions (same text, or same after case, punctuation and whitespace are "
        "removed) from the solver's training set, keeping the first. Ours: on in every preset; the "
        "paper does not say; official code: no dedup."))
    min_kept: int = Field(1, ge=1, description=(
        "Fewer questions surviving the filter than this stops the run before solver training. Ours."))
    grader: Literal["math", "exact"] = Field("math", description=(
        "How two answers are compared in votes and rewards: 'math' (symbolic equivalence, our "
        "rzero_bench.grading; official: mathruler grade_answer) or 'exact' (normalised strings)."))
    decontaminate: bool = Field(False, description=(
        "Drop from the solver's training set every question that shares a contamination_n-gram of "
        "normalized text with an item of the evaluated (and dev) tasks; counted as drop reason "
        "'contaminated' (rzero-bench contamination reports the same rule). Ours; the paper does not check."))
    contamination_n: int = Field(13, ge=1, description=(
        "n of the contamination rule: shared runs of n normalized tokens (13: GPT-3 and lm-eval "
        "decontamination); a benchmark item shorter than n must occur whole."))

    @field_validator("band")
    @classmethod
    def _band_ok(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"band [{lo}, {hi}] must satisfy 0 <= low <= high <= 1 (official: [0.3, 0.8])")
        return v


class EvalConfig(_Strict):
    """Which tasks each iteration's solver is scored on (paper §4, Tables 1-2)."""

    suite: str | None = Field("rzero", description=(
        "Task suite scored after every iteration (`rzero-bench tasks list`); rzero = the paper's "
        "math and general benchmarks. Ignored when tasks is set."))
    tasks: list[str] | None = Field(None, description="Task names to score instead of the suite.")
    protocol: str = Field("paper", description=(
        "Evaluation protocol (tasks/protocols/): paper = sampled mean@32 for AMC/AIME and our prompts "
        "(§4); official = the official scripts (greedy AMC/AIME, General-Reasoner prompts and 8192 "
        "tokens for MMLU-Pro/SuperGPQA, OlympiadBench's first answer, BBEH from MrLight/bbeh-eval). "
        "Recorded in every result."))
    include_paths: list[str] = Field(default_factory=list, description=(
        "Directories of extra task YAML files (and suites/) added to the shipped tasks, as "
        "`eval --include-path` (run --include-path sets it); a task named twice is an error."))
    limit: int | None = Field(None, ge=1, description=(
        "Score a seeded subsample of this many items per task (null: all, as the paper does)."))
    max_tokens: int | None = Field(None, ge=1, description=(
        "Generation length for every task (null: each task's own; ours 4096, official 8192 for "
        "MMLU-Pro/SuperGPQA)."))
    seed: int = Field(0, description="Seed of the limit subsample and of sampled metrics.")
    batch_size: int = Field(
        16, ge=1, description=("hf backend: prompts per generate() call, in every stage that samples.")
    )
    max_samples: int | None = Field(
        None,
        ge=1,
        description=(
            "Cap k of sampled metrics (mean@k, maj@k) for quick runs; labels show the k used (null: each "
            "task's k, e.g. mean@32)."
        ),
    )
    dev_tasks: list[str] | None = Field(
        None,
        description=(
            "Tasks every iteration (and the base) is also scored on as a held-out dev split, to pick the "
            "best iteration and detect collapse without looking at the test scores (ours). A task that is "
            "not evaluated for the test (e.g. micro_arith_dev, its own generated split) is used whole; a "
            "test task gives up a seeded slice of dev_size items, left out of its test results. Written "
            "to dev_results/iter_<k>/."
        ),
    )
    dev_size: int = Field(
        100,
        ge=1,
        description=(
            "Items of the seeded dev slice taken out of a test task named in dev_tasks (a separate dev "
            "task is used whole)."
        ),
    )
    dev_seed: int = Field(20250807, description="Seed of the dev slice (independent of eval.seed).")
    collapse_label_floor: float | None = Field(None, ge=0, le=1, description=(
        "Collapse alarm: kept-question pseudo-label accuracy (label_acc stage) below this floor "
        "raises it, as does a dev score below the best iteration's by more than the paired 95% CI. "
        "null: only the dev rule. `run --stop-on-collapse` stops the loop at an alarm."))


class ProbeConfig(_Strict):
    """Probe questions with known answers mixed into self-consistency (the `reference` oracle)."""

    task: str = Field("gsm8k", description=(
        "Math task the probes are drawn from (items the run's evaluation does not use)."))
    n: int = Field(0, ge=0, description=(
        "Probe questions per iteration, voted on like challenger questions but never trained on; "
        "oracle: reference scores the pseudo-labels on them. 0: none. Ours (the paper checks 200 "
        "sampled questions against GPT-4o)."))
    seed: int = Field(0, description="Seed of the per-iteration probe sample.")


class LayoutConfig(_Strict):
    """Where generation runs. On CPU everything is `hf` in process.

    GPU node (official layout, 8 GPUs): ``generation_backend: served`` starts ``vllm serve`` for the
    current solver checkpoint on ``serve_gpus`` (4 GPUs) for each stage that samples it and reaches it
    through the ``openai`` backend, while the challenger trains on the other 4 under ``accelerate``;
    ``openai`` uses a server you run yourself (``solver_server_url``); on one GPU: ``vllm`` in process
    with ``gpu_memory_utilization``.
    """

    generation_backend: Literal["hf", "vllm", "openai", "served"] = Field(
        "hf",
        description=(
            "Backend of every sampling stage (questions, votes, eval, the solver in the challenger's "
            "reward): hf (transformers, CPU/CI), vllm (in process), openai (your server at "
            "solver_server_url), served (we start serve_command per stage, the official layout)."
        ),
    )
    solver_server_url: str | None = Field(
        None,
        description=(
            "openai backend: base URL of an already running OpenAI-compatible server for the solver, "
            "e.g. http://HOST:8000/v1 (you restart it with each iteration's solver)."
        ),
    )
    serve_engine: Literal["vllm", "transformers"] = Field(
        "vllm",
        description=(
            "served backend: the serving engine, vllm (GPU; honours n, continuous batching) or transformers "
            "(`transformers serve`, CPU/CI: one request per sample, one generate at a time; extra "
            "rzero-bench[serving]). It gives the default command, the readiness check and the wire "
            "differences (rzero_bench/backends/engines.py)."
        ),
    )
    serve_command: str | None = Field(
        None,
        description=(
            "served backend: command starting the server; null: the engine's template (vllm: `vllm serve "
            "{model} --host 127.0.0.1 --port {port} --served-model-name {name} --data-parallel-size "
            "{data_parallel_size} --max-model-len {max_model_len} --gpu-memory-utilization "
            "{gpu_memory_utilization}`). {model}, {port} (both required), {name}, {data_parallel_size} (the "
            "server's GPU count), {max_model_len} and {gpu_memory_utilization} are filled in per stage."
        ),
    )
    serve_gpus: str | None = Field(
        None,
        description=(
            "served backend: CUDA_VISIBLE_DEVICES of the solver server while the challenger trains, e.g. "
            '"4,5,6,7" (official: GPUs 4-7).'
        ),
    )
    sampling_gpus: str | None = Field(
        None,
        description=(
            "served backend: CUDA_VISIBLE_DEVICES of the server in the stages that only sample (questions, "
            "votes, eval), when no training runs; null: serve_gpus. Auto layouts: every GPU of the node."
        ),
    )
    auto: bool = Field(
        False,
        description=(
            "Fill the GPU fields not set explicitly (serve_gpus, sampling_gpus, challenger_gpus, "
            "solver_gpus, accelerate_config, launch_prefix, gpus_per_node) from the GPUs visible, or from "
            "--gpus/--nodes, before the run starts; the plan (--dry-run) shows the result. Paper presets: "
            "true; the official layout is the 8-GPU case."
        ),
    )
    gpus_per_node: int | None = Field(
        None,
        ge=1,
        description=(
            "GPUs per node the layout is planned for (auto layouts: filled in from the machine or --gpus)."
        ),
    )
    nodes: int = Field(
        1,
        ge=1,
        description=(
            "Nodes the GRPO stages run on (several: through launch_prefix, e.g. srun); sampling runs on the "
            "first node."
        ),
    )
    max_model_len: int | None = Field(
        None,
        ge=256,
        description=(
            "Longest prompt + completion the server accepts (vLLM --max-model-len). null: derived from the "
            "tasks (longest prompt + its max_tokens, over every eval task and the self-play prompts), "
            "capped by the model's own limit. A request that still does not fit gets its max_tokens "
            "clamped, or is refused with the task and item named."
        ),
    )
    serve_concurrency: int | None = Field(
        None,
        ge=1,
        description=(
            "served/openai backends: HTTP requests in flight; a vLLM server batches them itself. null: "
            "256 per serving GPU (vLLM's default max_num_seqs per engine)."
        ),
    )
    serve_gpu_memory_utilization: float = Field(
        0.9,
        gt=0,
        le=1,
        description=(
            "served backend: share of each serving GPU's memory vLLM may take when it has the GPUs to itself "
            "(vLLM's default: 0.9)."
        ),
    )
    shared_gpu_memory_utilization: float = Field(
        0.25,
        gt=0,
        le=1,
        description=(
            "served backend: the solver server's share when it shares GPUs with challenger training (the "
            "1-GPU layout); the rest is for the trainer and its colocated vLLM."
        ),
    )
    served_solver_name: str | None = Field(
        None,
        description=("openai backend: model name the server knows the current solver by (null: its path)."),
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description=("Name of the environment variable holding the API key of the openai/served server."),
    )
    gpu_memory_utilization: float = Field(
        0.4,
        gt=0,
        le=1,
        description=("vllm backend and colocated trainer vLLM: share of GPU memory vLLM may take."),
    )
    trainer_use_vllm: bool = Field(
        False,
        description=(
            "GRPO rollouts with vLLM colocated in the trainer (TRL use_vllm) instead of transformers."
        ),
    )
    accelerate_config: str | None = Field(
        None,
        description=(
            "Run GRPO stages under `accelerate launch` with this config (a path, or a name under "
            "trainers/, e.g. accelerate/8gpu_zero2.yaml); null: in process. Needs the solver over HTTP "
            "(served or openai)."
        ),
    )
    challenger_gpus: str | None = Field(
        None,
        description=(
            "Under accelerate_config: CUDA_VISIBLE_DEVICES of challenger GRPO, also its process count "
            '(official: "0,1,2,3"; the others serve the solver). null: accelerate\'s own setting.'
        ),
    )
    solver_gpus: str | None = Field(
        None,
        description=(
            "Under accelerate_config: CUDA_VISIBLE_DEVICES of solver GRPO, also its process count "
            "(official: all 8). null: accelerate's own setting."
        ),
    )
    launch_prefix: str | None = Field(
        None,
        description=(
            'Several nodes: command put before `accelerate launch`, e.g. "srun --nodes=2 --ntasks-per-node=1".'
        ),
    )
    cpu_threads: int | None = Field(
        1,
        ge=1,
        description=(
            "torch threads for CPU generation and training (1 is fastest for tiny models on shared "
            "cores); null: torch's default."
        ),
    )
    description: str = Field(
        "single process; generation with transformers",
        description=("Free text describing the layout, recorded in the manifest."),
    )


class ControlsConfig(_Strict):
    """Control experiments that should break R-Zero (they exist to show that the gains are real)."""

    shuffle_labels: bool = Field(False, description=(
        "Permute the pseudo-labels among the kept questions before solver GRPO (ours)."))
    flip_challenger_reward: bool = Field(False, description=(
        "Train the challenger on the negated reward (ours)."))


class RunConfig(_Strict):
    """A complete, resolved R-Zero run."""

    name: str = Field("rzero", description=(
        "Run name: the default run directory is runs/<name>; a preset sets it to its own name."))
    variant: Literal["paper", "official-code"] = Field("paper", description=(
        "Which reading the run follows, recorded with the results: paper or official-code (the "
        "official-code preset sets every deviation)."))
    model: str = Field("Qwen/Qwen3-4B-Base", description=(
        "Base model both roles start from: hub id, local path, tiny:<size> or micro:<size>[@minutes|@demo] "
        "(built offline). Paper §4: Qwen3-4B-Base (also Qwen3-8B, OctoThinker)."))
    iterations: int = Field(3, ge=0, description=(
        "Co-evolution iterations (challenger, questions, votes, filter, solver, eval). Paper: 3; "
        "official main.sh: 5. Left out of config_hash: a finished run can be extended."))
    seed: int = Field(0, description="Run seed; each stage derives its own from it and the iteration.")
    challenger: RoleConfig = Field(default_factory=lambda: RoleConfig(num_generations=4, max_steps=5),
                                   description="GRPO settings of the challenger (paper §3.2).")
    solver: RoleConfig = Field(default_factory=lambda: RoleConfig(num_generations=5, max_steps=15),
                               description="GRPO settings of the solver (paper §3.3).")
    selfplay: SelfPlayConfig = Field(default_factory=SelfPlayConfig, description=(
        "Question generation, voting, challenger reward and filtering (paper §3.2-3.3)."))
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation after every iteration.")
    prompts: dict[str, str] = Field(
        default_factory=lambda: {"challenger": "challenger", "solver": "solver"}, description=(
            "Prompt per role: a shipped name (challenger, solver) or a path to a prompt file."))
    oracle: str | None = Field(None, description=(
        "Ground truth for the accuracy of the pseudo-labels (label_acc stage): reference | exact-arith "
        "| openai:<model>[@url] | hf:<path>; null skips the stage. Paper: GPT-4o on 200 sampled questions."))
    probes: ProbeConfig = Field(default_factory=ProbeConfig, description="Probe questions for oracle: reference.")
    layout: LayoutConfig = Field(default_factory=LayoutConfig, description="Where generation and training run.")
    controls: ControlsConfig = Field(default_factory=ControlsConfig, description=(
        "Control experiments that should remove the gains (ours)."))
    baseline: Literal["none", "base-challenger"] = Field("none", description=(
        "Named baselines of the paper's tables: base-challenger trains the solver on questions from "
        "the untrained challenger (sets challenger.max_steps to 0; paper Tables 1-2 'Base Challenger')."))

    @field_validator("prompts")
    @classmethod
    def _prompts_ok(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = set(v) - {"challenger", "solver"}
        if unknown:
            raise ValueError(f"unknown prompt role(s) {sorted(unknown)}; expected challenger, solver")
        return {"challenger": "challenger", "solver": "solver", **v}

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.baseline == "base-challenger" and self.challenger.max_steps != 0:
            self.challenger.max_steps = 0
        if self.solver.max_steps < 1:
            raise ValueError("solver.max_steps must be >= 1 (only the challenger's training can be skipped)")
        for problem in _combination_problems(self):
            raise ValueError(problem)
        if self.eval.suite is None and not self.eval.tasks:
            self.eval.suite = "rzero"
        return self


@dataclass(frozen=True)
class BatchSplit:
    """How one GRPO step's completions are cut up (EasyR1 / TRL batch arithmetic).

    A step samples ``rollout`` completions (prompts_per_step x G) once, then makes ``updates``
    optimizer updates of ``mini_batch`` completions each; one update is ``accumulation``
    forward/backward passes of ``per_device`` completions on each of ``processes`` GPUs.
    """

    rollout: int
    mini_batch: int
    updates: int
    processes: int
    per_device: int
    accumulation: int


class _Batching(Protocol):
    """What :func:`split_batch` reads: a :class:`RoleConfig` or the trainer's ``GRPOSettings``."""

    num_generations: int
    prompts_per_step: int
    mini_batch_prompts: int | None
    micro_batch_per_device: int | None
    gradient_accumulation_steps: int


def split_batch(rc: _Batching, processes: int, role: str = "") -> BatchSplit:
    """The batch split of ``rc`` on ``processes`` training processes; ValueError says what to change.

    ``role`` (challenger / solver) prefixes the key names in the message.
    """
    k = f"{role}." if role else ""
    g = rc.num_generations
    mini_prompts = rc.mini_batch_prompts or rc.prompts_per_step
    if rc.prompts_per_step % mini_prompts:
        raise ValueError(f"{k}prompts_per_step {rc.prompts_per_step} is not a multiple of {k}mini_batch_prompts "
                         f"{mini_prompts}: each rollout batch must split into whole optimizer mini-batches")
    mini = mini_prompts * g
    if rc.micro_batch_per_device is not None:
        if rc.gradient_accumulation_steps != 1:
            raise ValueError(f"set {k}micro_batch_per_device or {k}gradient_accumulation_steps, not both (the "
                             "accumulation is derived from micro_batch_per_device)")
        if mini % (processes * rc.micro_batch_per_device):
            raise ValueError(f"a mini-batch of {mini_prompts} x {g} = {mini} completions is not divisible into "
                             f"{_procs(processes)} x {k}micro_batch_per_device {rc.micro_batch_per_device}; "
                             f"change {k}micro_batch_per_device or {k}mini_batch_prompts")
        per_device = rc.micro_batch_per_device
        accumulation = mini // (processes * per_device)
    else:
        accumulation = rc.gradient_accumulation_steps
        if mini % (processes * accumulation):
            raise ValueError(f"a mini-batch of {mini_prompts} x {g} = {mini} completions is not divisible into "
                             f"{_procs(processes)} x {k}gradient_accumulation_steps {accumulation} whole "
                             f"micro-batches; change {k}gradient_accumulation_steps, {k}mini_batch_prompts or "
                             f"{k}prompts_per_step")
        per_device = mini // (processes * accumulation)
    return BatchSplit(rollout=rc.prompts_per_step * g, mini_batch=mini, updates=rc.prompts_per_step // mini_prompts,
                      processes=processes, per_device=per_device, accumulation=accumulation)


def _procs(n: int) -> str:
    return f"{n} processes" if n > 1 else "1 process"


def _gpu_count(gpus: str | None) -> int | None:
    if gpus is None:
        return None
    return len([g for g in gpus.split(",") if g.strip()]) or None


def _combination_problems(cfg: RunConfig) -> list[str]:
    """Settings that cannot work together, each as 'what is wrong; what to set' (first one wins)."""
    out: list[str] = []
    lay, sp = cfg.layout, cfg.selfplay
    if cfg.challenger.format_weight:
        out.append(f"challenger.format_weight={cfg.challenger.format_weight} has no effect: the format term "
                   "is part of the solver reward only; set it on solver.format_weight")
    for role in ("challenger", "solver"):
        rc: RoleConfig = getattr(cfg, role)
        gpus = lay.challenger_gpus if role == "challenger" else lay.solver_gpus
        procs = (_gpu_count(gpus) if lay.accelerate_config else 1) or 1  # unknown process count: check ga only
        try:
            split_batch(rc, procs * lay.nodes if lay.accelerate_config and gpus else procs, role)
        except ValueError as e:
            out.append(str(e))
    if sp.num_questions < cfg.solver.prompts_per_step:
        out.append(f"selfplay.num_questions={sp.num_questions} is below solver.prompts_per_step="
                   f"{cfg.solver.prompts_per_step}: one solver GRPO step needs that many distinct questions; "
                   "raise selfplay.num_questions or lower solver.prompts_per_step")
    if sp.num_questions < sp.min_kept:
        out.append(f"selfplay.min_kept={sp.min_kept} can never be met with selfplay.num_questions="
                   f"{sp.num_questions}; lower min_kept or raise num_questions")
    if lay.generation_backend == "openai" and not lay.solver_server_url:
        out.append("layout.generation_backend=openai needs layout.solver_server_url (an OpenAI-compatible "
                   "server for the solver, e.g. http://HOST:8000/v1); or set layout.generation_backend=served "
                   "to start one per stage")
    if lay.accelerate_config and lay.generation_backend not in ("served", "openai"):
        out.append(
            f"layout.accelerate_config={lay.accelerate_config} runs GRPO in several processes, which "
            "reach the solver over HTTP: set layout.generation_backend=served (or openai with "
            "layout.solver_server_url), or layout.accelerate_config=null"
        )
    if lay.generation_backend == "served" and lay.serve_command is not None:
        try:
            probe = lay.serve_command.format(model="\0m", port="\0p", name="\0n", data_parallel_size=1,
                                             max_model_len=1, gpu_memory_utilization=1)
        except (KeyError, IndexError, ValueError) as e:
            out.append(f"layout.serve_command {lay.serve_command!r} does not format ({e!r}); its "
                       "placeholders are {model}, {port} and {name}, plus {data_parallel_size}, {max_model_len} "
                       "and {gpu_memory_utilization}")
        else:
            missing = [p for p, mark in (("{model}", "\0m"), ("{port}", "\0p")) if mark not in probe]
            if missing:
                out.append(f"layout.serve_command lacks {' and '.join(missing)}: the server must load the "
                           "stage's checkpoint and listen on the port the pipeline polls")
    if cfg.oracle is not None:
        problem = _oracle_problem(cfg.oracle)
        if problem:
            out.append(problem)
        elif cfg.oracle.strip() == "reference" and cfg.probes.n == 0:
            out.append("oracle: reference scores only probe questions (known answers) and probes.n is 0; "
                       "set probes.n (e.g. 50) or another oracle (exact-arith, openai:<model>, hf:<path>)")
    if cfg.probes.n > 0 and (cfg.oracle or "").strip() != "reference":
        out.append(f"probes.n={cfg.probes.n} has no effect: probes are drawn only for oracle: reference; "
                   "set oracle=reference or probes.n=0")
    return out


ORACLE_FORMS = "openai:<model>[@<base_url>], hf:<path>, reference or exact-arith"


def _oracle_problem(spec: str) -> str | None:
    """Syntax of an oracle spec, the forms ``rzero_bench.report.label_acc.parse_oracle`` builds (a test
    keeps the two in step; config stays below report in the import graph)."""
    s = spec.strip()
    if s in ("reference", "exact-arith", "exact_arith"):
        return None
    for prefix in ("openai:", "hf:"):
        if s.startswith(prefix):
            rest = s[len(prefix):]
            name = rest.partition("@")[0] if prefix == "openai:" else rest
            return None if name else f"oracle {spec!r} names no model; use {ORACLE_FORMS}"
    hint = _did_you_mean(s, ["reference", "exact-arith", "openai:", "hf:"])
    return f"unknown oracle {spec!r}{hint}; use {ORACLE_FORMS}"


# ---------------------------------------------------------------- keys, did-you-mean, descriptions
def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _submodel(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _section(parts: Sequence[str]) -> type[BaseModel] | None:
    """The model holding the key ``parts[-1]``, or None when ``parts[:-1]`` is free-form or a value."""
    model: type[BaseModel] = RunConfig
    for p in parts[:-1]:
        field = model.model_fields.get(p)
        sub = _submodel(field.annotation) if field is not None else None
        if sub is None:
            return None
        model = sub
    return model


def config_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every settable dotted key, e.g. ``selfplay.lam`` (free-form dicts such as ``prompts`` end a key)."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        sub = _submodel(field.annotation)
        keys += config_keys(sub, f"{prefix}{name}.") if sub else [f"{prefix}{name}"]
    return keys


def field_description(key: str) -> str | None:
    """The description of a dotted key (``selfplay.delta``), or None for an unknown key."""
    parts = key.split(".")
    model = _section(parts)
    field = model.model_fields.get(parts[-1]) if model is not None else None
    return field.description if field is not None else None


def _unknown_key(parts: Sequence[str]) -> str | None:
    """None when ``parts`` names a settable key, else the did-you-mean message."""
    model: type[BaseModel] = RunConfig
    for i, p in enumerate(parts):
        where = ".".join(parts[:i]) or "the top level"
        field = model.model_fields.get(p)
        if field is None:
            dotted = ".".join(parts)
            names = list(model.model_fields)
            elsewhere = [k for k in config_keys() if k.rsplit(".", 1)[-1] == parts[-1]]
            close = difflib.get_close_matches(p, names, n=1)
            if len(elsewhere) == 1:  # the right key in the wrong section (solver.m -> selfplay.m)
                guess: str | None = elsewhere[0]
            elif close:
                guess = ".".join([*parts[:i], close[0]])
            else:
                guess = next(iter(difflib.get_close_matches(dotted, config_keys(), n=1)), None)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            return f"unknown config key {dotted!r}{hint}; valid keys of {where}: {', '.join(names)}"
        sub = _submodel(field.annotation)
        if sub is None:
            if i < len(parts) - 1 and not _is_mapping(field.annotation):
                return f"{'.'.join(parts[: i + 1])} is a value, not a section"
            return None
        model = sub
    return None


def _is_mapping(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is dict


# ---------------------------------------------------------------- presets and YAML
def preset_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir("trainers").glob("*.yaml"))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    return data


def preset_dict(name: str) -> dict[str, Any]:
    path = shipped_dir("trainers") / f"{name}.yaml"
    if not path.is_file():
        names = preset_names()
        raise ConfigError(f"unknown preset {name!r}{_did_you_mean(name, names)}; available: {', '.join(names)}")
    data = _read_yaml(path)
    parent = data.pop("preset", None)
    if parent:
        data = _deep_merge(preset_dict(parent), data)
    data.setdefault("name", name)
    return data


def _apply_override(data: dict[str, Any], spec: str) -> tuple[str, ...]:
    """Apply one ``--set key=value`` (the value read as YAML); returns the key's parts."""
    if "=" not in spec:
        raise ConfigError(f"--set expects key=value, got {spec!r}")
    key, raw = spec.split("=", 1)
    parts = tuple(key.strip().split("."))
    problem = _unknown_key(parts)
    if problem:
        raise ConfigError(f"--set {spec}: {problem}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {p} is not a section")
    node[parts[-1]] = value
    return parts


def _leaf_keys(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for k, v in data.items():
        key = (*prefix, str(k))
        out += _leaf_keys(v, key) if isinstance(v, dict) and _section(key + ("_",)) is not None else [key]
    return out


def _format_validation(e: ValidationError, origins: dict[tuple[str, ...], str], default: str) -> str:
    """One line: where the bad value came from, the key, what is wrong, and what the key means."""
    errors = e.errors()
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])  # a typo explains the rest
    loc = tuple(str(x) for x in err["loc"])
    source = next((origins[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in origins), default)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:
        return f"{source}: {msg}"
    dotted = ".".join(loc)
    if err["type"] == "extra_forbidden":
        return f"{source}: {_unknown_key(loc) or f'unknown config key {dotted!r}'}"
    desc = field_description(dotted)
    shown = err.get("input")
    value = "" if isinstance(shown, dict) else f"={shown!r}"
    what = "" if source.startswith("--set ") else f" {dotted}{value}:"  # --set already shows key=value
    more = f" [{len(errors) - 1} more problem(s) after this one]" if len(errors) > 1 else ""
    return f"{source}:{what} {msg}" + (f" ({dotted}: {desc})" if desc else "") + more


def load_config(
    path: Path | None = None,
    *,
    preset: str | None = None,
    model: str | None = None,
    iterations: int | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """Resolve a run config: preset (default tiny) ← YAML file ← CLI options ← --set overrides.

    Raises :class:`ConfigError` (one line, naming the file, option or ``--set`` the bad value came
    from) for unknown keys, bad values and impossible combinations.
    """
    data: dict[str, Any] = {}
    file_data: dict[str, Any] = {}
    if path is not None:
        file_data = _read_yaml(Path(path))
    base = preset or file_data.pop("preset", None) or ("tiny" if path is None else None)
    if preset and "preset" in file_data:
        file_data.pop("preset")
    if base:
        data = preset_dict(base)
    data = _deep_merge(data, file_data)
    origins: dict[tuple[str, ...], str] = dict.fromkeys(_leaf_keys(file_data), str(path))
    if model is not None:
        data["model"] = model
        origins[("model",)] = "--model"
    if iterations is not None:
        data["iterations"] = iterations
        origins[("iterations",)] = "--iterations"
    for spec in overrides or []:
        origins[_apply_override(data, spec)] = f"--set {spec}"
    layers = ([f"preset {base}"] if base else []) + ([str(path)] if path is not None else [])
    layers += ["--set"] if overrides else []
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, origins, " + ".join(layers) or "config")) from None


def config_hash(cfg: RunConfig) -> str:
    """Hash of everything that determines a run's results, except ``iterations``: a finished run
    can be extended with more iterations (the first k iterations do not depend on the total)."""
    from rzero_bench.store import sha256_json

    return sha256_json(cfg.model_dump(mode="json", exclude={"iterations"}))


# ---------------------------------------------------------------- config show
def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


def _comment(text: str, indent: str) -> list[str]:
    width = 100 - len(indent)
    wrapped = textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)
    return [f"{indent}# {line}" for line in wrapped]


def render_config(cfg: RunConfig) -> str:
    """The resolved config as YAML with each field's description as a comment above it.

    The text loads back (``rzero-bench run shown.yaml``) to the same config and ``config_hash``.
    """
    dumped = cfg.model_dump(mode="json")
    lines: list[str] = []
    for name, field in RunConfig.model_fields.items():
        sub = _submodel(field.annotation)
        lines += _comment(field.description or "", "")
        if sub is None:
            lines.append(f"{name}: {_yaml_value(dumped[name])}")
            continue
        lines.append(f"{name}:")
        for key, subfield in sub.model_fields.items():
            lines += _comment(subfield.description or "", "  ")
            lines.append(f"  {key}: {_yaml_value(dumped[name][key])}")
    return "\n".join(lines) + "\n"
