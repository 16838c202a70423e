"""GRPO training of the two R-Zero roles with TRL's ``GRPOTrainer`` (the only module importing trl).

GRPO (DeepSeekMath; R-Zero section 2.2): for each prompt, G = ``num_generations`` completions are
sampled, rewards r_1..r_G are normalised within the group, ``A_i = (r_i - mean(r)) / std(r)``, and the
policy maximises the clipped importance-weighted advantage minus ``beta * KL(pi || pi_ref)``.

Batch arithmetic: the official code (EasyR1) samples a *rollout batch* of P prompts x G completions
per step, then makes P / P_mini optimizer updates on mini-batches of P_mini prompts (PPO-style, one
pass, old log-probabilities from sampling time). In TRL 1.16 terms
(:func:`rzero_bench.config.split_batch` does the arithmetic, the same one the config check and the
preflight use):

- ``per_device_train_batch_size`` = completions per process per forward/backward pass
  (``micro_batch_per_device``, or ``P_mini * G / (processes * gradient_accumulation_steps)``);
- ``gradient_accumulation_steps`` = passes per optimizer update, so one update sees P_mini * G
  completions;
- ``steps_per_generation`` = ``gradient_accumulation_steps * P / P_mini`` passes per rollout, so the
  generation batch is ``per_device * processes * steps_per_generation = P * G`` completions, sampled
  once and consumed by P / P_mini updates (TRL counts ``steps_per_generation`` in passes);
- ``max_steps`` (TRL counts optimizer updates) = ``max_steps`` (rollout steps) x P / P_mini.

Official numbers: challenger P = 512, P_mini = 16: 32 updates per step, 160 per iteration; solver
P = 512, P_mini = 128: 4 per step, 60 per iteration. Each rollout takes P distinct dataset rows, so a
dataset with fewer than P rows cannot make a single step.

Clipping: ``epsilon_low``/``epsilon_high`` are TRL's ``epsilon``/``epsilon_high`` (clip-higher,
official 0.2/0.3); ``dual_clip`` is TRL's ``delta`` (the ratio is capped for negative advantages,
official 3.0). TRL's KL term is the k3 estimator, EasyR1's ``low_var_kl``.

Roles:

- ``train_challenger``: the dataset is the same challenger prompt repeated; the reward is
  :class:`rzero_bench.training.rewards.ChallengerReward` (solver uncertainty minus repetition
  penalty, format gate), every score appended to ``challenger_rewards.jsonl``.
- ``train_solver``: the dataset is the filtered questions with their majority pseudo-labels; the
  reward is :class:`rzero_bench.training.rewards.SolverReward` (graded last ``\\boxed{}``, optional
  format term).

Precision: on a machine without CUDA ``use_cpu=True``, ``bf16=False`` (GRPOConfig defaults bf16 to
True), float32 weights. On CUDA the weights are loaded in bfloat16 only under DeepSpeed, which keeps
fp32 master weights in its optimizer; otherwise they are loaded in float32 and the forward pass runs
under bf16 autocast, because AdamW on bf16 weights loses updates of lr 1e-6 (bf16 resolves about 3
significant digits). ``report_to`` is "none" unless ``rzero-bench run --report-to`` names
tensorboard, wandb or trackio; no intermediate checkpoints unless asked, and the
final model + tokenizer are written to a temporary directory beside ``out_dir`` and renamed into
place, so a killed stage never leaves half a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rzero_bench.backends.base import Generator, render_fallback
from rzero_bench.config import BatchSplit, RunConfig, split_batch
from rzero_bench.errors import ConfigError, TrainingError
from rzero_bench.prompts import challenger_messages, solver_messages
from rzero_bench.store import atomic_replace_dir
from rzero_bench.training.rewards import ChallengerReward, SolverReward, SolverRewardOptions

__all__ = [
    "GRPOSettings",
    "TrainStats",
    "ProgressFn",
    "build_grpo_config",
    "train_challenger",
    "train_solver",
]

ProgressFn = Callable[[int, int, dict[str, Any]], None]  # (step, total steps, latest logs)

_LOSS_TYPES = {"grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"}


@dataclass
class GRPOSettings:
    """GRPO settings for one role, independent of the pydantic config (the pipeline maps onto it).

    ``prompts_per_step`` distinct prompts x ``num_generations`` completions make one rollout step,
    split into ``prompts_per_step / mini_batch_prompts`` optimizer updates (one when None);
    ``max_steps`` counts rollout steps (see the module docstring). ``extra`` is passed to
    ``GRPOConfig`` verbatim and wins over everything derived here.
    """

    lr: float = 1e-6
    beta: float = 1e-2
    num_generations: int = 4
    prompts_per_step: int = 8
    max_steps: int = 5
    max_completion_length: int = 4096
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    loss_type: str = "grpo"
    seed: int = 0
    gradient_accumulation_steps: int = 1
    mini_batch_prompts: int | None = None  # None: one optimizer update per rollout batch
    micro_batch_per_device: int | None = None  # None: derived from gradient_accumulation_steps
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    dual_clip: float | None = None  # TRL delta
    gradient_checkpointing: bool = False
    use_vllm: bool = False
    vllm_mode: str = "colocate"  # "colocate" (in-process) | "server" (trl vllm-serve)
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: float = 0.3
    save_steps: int | None = None  # None = no intermediate checkpoints
    save_total_limit: int | None = 1
    logging_steps: int = 1
    # CPU only: torch threads while training (None = leave torch's setting). 1 is the default because
    # small models on a shared 2-core machine were 10x slower with 2 threads (thread contention).
    cpu_threads: int | None = 1
    # where TRL reports its training metrics: "none" or a comma-separated list of tensorboard, wandb,
    # trackio (``rzero-bench run --report-to``); run_name names the run there, tensorboard_dir holds
    # the TensorBoard event files
    report_to: str = "none"
    run_name: str | None = None
    tensorboard_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ConfigError(
                f"num_generations must be >= 2 for GRPO advantages (got {self.num_generations})"
            )
        if self.prompts_per_step < 1:
            raise ConfigError(f"prompts_per_step must be >= 1 (got {self.prompts_per_step})")
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1 (got {self.max_steps})")
        if self.max_completion_length < 1:
            raise ConfigError(f"max_completion_length must be >= 1 (got {self.max_completion_length})")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError(
                f"gradient_accumulation_steps must be >= 1 (got {self.gradient_accumulation_steps})"
            )
        if self.loss_type not in _LOSS_TYPES:
            raise ConfigError(f"unknown loss_type {self.loss_type!r}; choose one of {sorted(_LOSS_TYPES)}")
        if self.vllm_mode not in ("colocate", "server"):
            raise ConfigError(f"vllm_mode must be 'colocate' or 'server' (got {self.vllm_mode!r})")
        if self.temperature <= 0:
            raise ConfigError("GRPO needs sampling: temperature must be > 0")
        if self.mini_batch_prompts is not None and self.prompts_per_step % self.mini_batch_prompts:
            raise ConfigError(f"prompts_per_step {self.prompts_per_step} is not a multiple of mini_batch_prompts "
                              f"{self.mini_batch_prompts}")

    @classmethod
    def from_role(cls, cfg: RunConfig, role: str, seed: int) -> GRPOSettings:
        """The settings of ``role`` (challenger / solver) in a run config, with the layout's vLLM share."""
        rc = getattr(cfg, role)
        return cls(
            lr=rc.lr, beta=rc.beta, num_generations=rc.num_generations, prompts_per_step=rc.prompts_per_step,
            max_steps=rc.max_steps, max_completion_length=rc.max_completion_length, temperature=rc.temperature,
            top_p=rc.top_p, top_k=rc.top_k, loss_type=rc.loss_type,
            gradient_accumulation_steps=rc.gradient_accumulation_steps, mini_batch_prompts=rc.mini_batch_prompts,
            micro_batch_per_device=rc.micro_batch_per_device, weight_decay=rc.weight_decay,
            epsilon_low=rc.epsilon_low, epsilon_high=rc.epsilon_high, dual_clip=rc.dual_clip,
            gradient_checkpointing=rc.gradient_checkpointing, seed=seed, use_vllm=cfg.layout.trainer_use_vllm,
            vllm_gpu_memory_utilization=cfg.layout.gpu_memory_utilization, cpu_threads=cfg.layout.cpu_threads,
            extra=dict(rc.extra),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> GRPOSettings:
        """Build from a recipe section (``challenger:`` / ``solver:``); unknown keys are an error."""
        merged = {**dict(data), **overrides}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - names)
        if unknown:
            raise ConfigError(f"unknown GRPO setting(s) {unknown}; known: {sorted(names)}")
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def completions_per_step(self) -> int:
        return self.prompts_per_step * self.num_generations

    @property
    def updates_per_step(self) -> int:
        """Optimizer updates per rollout step."""
        return self.prompts_per_step // (self.mini_batch_prompts or self.prompts_per_step)

    @property
    def total_updates(self) -> int:
        """Optimizer updates of the whole stage (TRL's ``max_steps``)."""
        return self.max_steps * self.updates_per_step

    def split(self, processes: int) -> BatchSplit:
        """The batch split on ``processes`` training processes (ConfigError when it does not divide)."""
        try:
            return split_batch(self, processes)
        except ValueError as e:
            raise ConfigError(str(e)) from None


@dataclass(frozen=True)
class TrainStats:
    """What one GRPO stage did: ``steps`` optimizer updates; ``rewards`` one value per rollout."""

    role: str
    steps: int
    wall_time_s: float
    seconds_per_step: float | None
    tokens_generated: int
    reward_first: float | None
    reward_last: float | None
    loss: float | None  # mean training loss over the run
    rewards: tuple[float, ...] = ()
    losses: tuple[float, ...] = ()
    num_processes: int = 1
    device: str = "cpu"
    updates_per_step: int = 1  # optimizer updates per rollout step (``steps`` counts updates)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --report-to targets and the package each needs (transformers' integrations import them)
REPORT_TARGETS: dict[str, tuple[str, ...]] = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",),
                                              "trackio": ("trackio",)}


def report_to_list(value: str | Sequence[str] | None) -> list[str]:
    """``"none"`` / ``"tensorboard,wandb"`` as the list TRL takes; ConfigError names a bad target or
    a missing package (checked before any stage runs)."""
    import importlib.util

    items = [value] if isinstance(value, str) else list(value or [])
    names = [t.strip().lower() for item in items for t in str(item).split(",") if t.strip()]
    names = [n for n in names if n != "none"]
    for n in names:
        if n not in REPORT_TARGETS:
            raise ConfigError(f"--report-to {n!r}: choose none or any of {', '.join(REPORT_TARGETS)}")
        if not any(importlib.util.find_spec(mod) is not None for mod in REPORT_TARGETS[n]):
            raise ConfigError(f"--report-to {n} needs the {REPORT_TARGETS[n][0]} package: pip install "
                              f"{REPORT_TARGETS[n][0]}")
    return names


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _num_processes() -> int:
    return int(_state().num_processes)


def _state() -> Any:
    """accelerate's process state. The first ``PartialState`` built in a process fixes the backend for
    every later one (the Trainer's too): without CUDA it must be built with ``cpu=True``, or two
    ranks under ``accelerate launch`` each believe they are alone (DistributedType.NO) instead of
    joining one gloo group."""
    from accelerate import PartialState

    return PartialState(cpu=not _cuda_available())


def _under_deepspeed() -> bool:
    """True inside ``accelerate launch`` with a DeepSpeed config (it sets ACCELERATE_USE_DEEPSPEED)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "").strip().lower() in ("1", "true")


def grpo_config_kwargs(settings: GRPOSettings, *, output_dir: str | os.PathLike[str],
                       num_processes: int | None = None, cuda: bool | None = None,
                       bf16_supported: bool = True, deepspeed: bool | None = None) -> dict[str, Any]:
    """The keyword arguments of ``trl.GRPOConfig`` for ``settings`` (see the module docstring).

    ``num_processes``, ``cuda`` and ``deepspeed`` default to this process's situation; giving them
    resolves the arguments for another machine (the preflight and the tests use this).
    """
    world = _num_processes() if num_processes is None else int(num_processes)
    split = settings.split(world)
    cuda = _cuda_available() if cuda is None else cuda
    deepspeed = _under_deepspeed() if deepspeed is None else deepspeed
    bf16 = bool(cuda and bf16_supported)
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": settings.lr,
        "beta": settings.beta,
        "num_generations": settings.num_generations,
        "per_device_train_batch_size": split.per_device,
        "gradient_accumulation_steps": split.accumulation,
        # passes per rollout: the generation batch is per_device x processes x this = P x G completions
        "steps_per_generation": split.accumulation * split.updates,
        "max_completion_length": settings.max_completion_length,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "top_k": settings.top_k,
        "loss_type": settings.loss_type,
        "epsilon": settings.epsilon_low,
        "epsilon_high": settings.epsilon_high,
        "delta": settings.dual_clip,
        "max_steps": settings.max_steps * split.updates,  # TRL counts optimizer updates
        "num_train_epochs": 1,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "lr_scheduler_type": settings.lr_scheduler,
        "warmup_steps": settings.warmup_steps,
        "weight_decay": settings.weight_decay,
        "max_grad_norm": settings.max_grad_norm,
        "gradient_checkpointing": settings.gradient_checkpointing,
        "use_cpu": not cuda,
        "bf16": bf16,
        "fp16": False,
        "report_to": report_to_list(settings.report_to) or "none",
        "run_name": settings.run_name,
        # no parameter of these models goes unused in the forward pass: skip DDP's extra graph walk
        "ddp_find_unused_parameters": False,
        "logging_steps": settings.logging_steps,
        "save_strategy": "steps" if settings.save_steps else "no",
        "save_only_model": True,
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
        "log_completions": False,
        # bf16 weights only where DeepSpeed keeps fp32 master weights (module docstring, "Precision")
        "model_init_kwargs": {"dtype": "bfloat16" if bf16 and deepspeed else "float32"},
        "use_vllm": settings.use_vllm,
        "vllm_mode": settings.vllm_mode,
    }
    if settings.save_steps:
        kwargs["save_steps"] = settings.save_steps
        kwargs["save_total_limit"] = settings.save_total_limit
    if settings.use_vllm:
        kwargs["vllm_gpu_memory_utilization"] = settings.vllm_gpu_memory_utilization
        if settings.vllm_server_base_url:
            kwargs["vllm_server_base_url"] = settings.vllm_server_base_url
    kwargs.update(settings.extra)
    return kwargs


def build_grpo_config(settings: GRPOSettings, *, output_dir: str | os.PathLike[str]) -> Any:
    """The ``trl.GRPOConfig`` for ``settings`` on this machine (CPU or CUDA, 1..N processes)."""
    from trl import GRPOConfig

    bf16_supported = True
    if _cuda_available():
        import torch

        bf16_supported = bool(torch.cuda.is_bf16_supported())
    return GRPOConfig(**grpo_config_kwargs(settings, output_dir=output_dir, bf16_supported=bf16_supported))


def _load_tokenizer(model_path: str | os.PathLike[str]) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _prompt(tokenizer: Any, messages: Sequence[dict[str, str]]) -> Any:
    """TRL's conversational prompt when the tokenizer has a chat template, else the fallback text."""
    if getattr(tokenizer, "chat_template", None):
        return [dict(m) for m in messages]
    return render_fallback(messages)


def _progress_callback(progress: ProgressFn | None) -> list[Any]:
    if progress is None:
        return []
    from transformers import TrainerCallback

    report: ProgressFn = progress

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if state.is_world_process_zero:
                report(int(state.global_step), int(state.max_steps), dict(logs or {}))

    return [_Progress()]


@contextlib.contextmanager
def _cpu_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` torch threads on a CPU-only machine for the duration (restored afterwards)."""
    if n is None or _cuda_available():
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _save_final(trainer: Any, out_dir: Path) -> None:
    """``save_model`` (model + tokenizer) into ``.<name>.saving`` beside ``out_dir``, then rename.

    The staging name is fixed so every rank (DeepSpeed gathers weights on all of them) writes to the
    same place; only the main process renames.
    """
    state = _state()
    staging = out_dir.with_name(f".{out_dir.name}.saving")
    if state.is_main_process:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    state.wait_for_everyone()
    trainer.save_model(str(staging))
    state.wait_for_everyone()
    if state.is_main_process:
        # the pickled GRPOConfig holds temp paths: keep checkpoints reproducible and trl-free to load
        (staging / "training_args.bin").unlink(missing_ok=True)
        atomic_replace_dir(staging, out_dir)
    state.wait_for_everyone()


def _stats(
    role: str, trainer: Any, settings: GRPOSettings, wall: float, train_loss: float | None
) -> TrainStats:
    steps = int(trainer.state.global_step)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    rewards = tuple(float(h["reward"]) for h in logs)
    losses = tuple(float(h["loss"]) for h in logs if "loss" in h)
    # TRL logs the sampling metrics (reward, lengths) once per rollout, at the first update after it
    rollouts_per_log = max(1, settings.logging_steps // settings.updates_per_step)
    tokens = 0.0
    for h in logs:
        tokens += float(h.get("completions/mean_length", 0.0)) * settings.completions_per_step * rollouts_per_log
    return TrainStats(
        role=role,
        steps=steps,
        wall_time_s=round(wall, 3),
        seconds_per_step=round(wall / steps, 4) if steps else None,
        tokens_generated=int(round(tokens)),
        reward_first=rewards[0] if rewards else None,
        reward_last=rewards[-1] if rewards else None,
        loss=train_loss,
        rewards=rewards,
        losses=losses,
        num_processes=_num_processes(),
        device="cuda" if _cuda_available() else "cpu",
        updates_per_step=settings.updates_per_step,
    )


def _train(
    role: str,
    *,
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: GRPOSettings,
    rows: list[dict[str, Any]],
    reward_fn: Any,
    tokenizer: Any,
    progress: ProgressFn | None,
) -> tuple[TrainStats, Any]:
    from datasets import Dataset
    from trl import GRPOTrainer

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(f".{out.name}.work")  # trainer output_dir: only used when checkpoints are asked for
    if settings.tensorboard_dir and "tensorboard" in report_to_list(settings.report_to):
        os.environ["TENSORBOARD_LOGGING_DIR"] = settings.tensorboard_dir  # transformers' TensorBoardCallback
    config = build_grpo_config(settings, output_dir=work)
    trainer = GRPOTrainer(
        model=str(model_path),
        reward_funcs=reward_fn,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=_progress_callback(progress),
    )
    if progress is not None:  # the caller shows progress: drop the Trainer's dict printing
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    with _cpu_threads(settings.cpu_threads):
        start = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - start
    if int(trainer.state.global_step) < settings.total_updates:
        raise TrainingError(
            f"{role} GRPO stopped after {trainer.state.global_step} of {settings.total_updates} optimizer updates; "
            "the dataset is too small for the requested steps"
        )
    _save_final(trainer, out)
    if not settings.save_steps:
        shutil.rmtree(work, ignore_errors=True)
    loss = getattr(result, "training_loss", None)
    return _stats(role, trainer, settings, wall, float(loss) if loss is not None else None), trainer


def _option(options: Any, name: str, default: Any) -> Any:
    if isinstance(options, Mapping):
        return options.get(name, default)
    return getattr(options, name, default)


def train_challenger(
    *,
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: GRPOSettings,
    solver: Generator,
    solver_prompt: dict[str, str],
    m: int,
    reward_options: Any,
    log_path: str | os.PathLike[str] | None,
    challenger_prompt: dict[str, str] | None = None,
    solver_max_tokens: int | None = None,
    none_is_answer: bool | None = None,
    solver_top_k: int | None = None,
    progress: ProgressFn | None = None,
    sampling_progress: Callable[[int, int], None] | None = None,
) -> TrainStats:
    """GRPO on the challenger prompt with the R-Zero challenger reward; saves the model to ``out_dir``.

    ``solver`` answers each well-formed question ``m`` times inside the reward. ``reward_options``
    (mapping or object) holds the reward formula options handed to
    ``selfplay.rewards.challenger_rewards`` (variant, format_penalty, lam, threshold, require_boxed)
    and the solver sampling options (temperature 1.0, max_tokens, none_is_answer, kind); explicit
    ``solver_max_tokens`` / ``none_is_answer`` win. ``solver_top_k`` (default: ``top_k`` of
    ``reward_options``, else off) is the top-k of the solver samples (official: 40).
    ``challenger_prompt`` defaults to the shipped ``challenger`` prompt file.
    ``sampling_progress(done, total)`` follows the solver sampling inside each reward call.
    """
    from rzero_bench.prompts import load_prompt

    prompt = challenger_prompt or load_prompt("challenger")
    tokenizer = _load_tokenizer(model_path)
    # one optimizer step consumes P distinct rows; one spare step's worth keeps the sampler full
    n_rows = settings.prompts_per_step * (settings.max_steps + 1)
    rows = [{"prompt": _prompt(tokenizer, challenger_messages(prompt))} for _ in range(n_rows)]
    top_k = solver_top_k if solver_top_k is not None else _option(reward_options, "top_k", 0)
    if top_k:
        from rzero_bench.sampling import with_top_k

        solver = with_top_k(solver, int(top_k))
    reward = ChallengerReward(
        solver=solver,
        solver_prompt=solver_prompt,
        m=m,
        reward_options=reward_options,
        log_path=log_path,
        solver_max_tokens=solver_max_tokens,
        none_is_answer=none_is_answer,
        seed=settings.seed,
        progress=sampling_progress,
    )
    stats, _ = _train(
        "challenger",
        model_path=model_path,
        out_dir=out_dir,
        settings=settings,
        rows=rows,
        reward_fn=reward,
        tokenizer=tokenizer,
        progress=progress,
    )
    well = [h["well_formed"] for h in reward.history]
    extra = {
        "solver_tokens": reward.solver_tokens,
        "well_formed_first": well[0] if well else None,
        "well_formed_last": well[-1] if well else None,
    }
    return dataclasses.replace(stats, extra=extra)


def train_solver(
    *,
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: GRPOSettings,
    dataset: Sequence[Mapping[str, Any]],
    solver_prompt: dict[str, str],
    reward_options: SolverRewardOptions | Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> TrainStats:
    """GRPO of the solver against the pseudo-labels in ``dataset`` (rows with ``question``, ``label``)."""
    need = settings.prompts_per_step
    if not dataset:
        raise TrainingError(
            "the solver dataset is empty (no question survived the filter); widen the band or generate more questions"
        )
    if len(dataset) < need:
        raise TrainingError(
            f"the solver dataset has {len(dataset)} questions but one GRPO step needs {need} (prompts_per_step); "
            "lower prompts_per_step or generate more questions"
        )
    tokenizer = _load_tokenizer(model_path)
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(dataset):
        if "question" not in item or "label" not in item or item["label"] is None:
            raise TrainingError(f"solver dataset row {i} needs 'question' and a non-null 'label'")
        rows.append(
            {
                "prompt": _prompt(tokenizer, solver_messages(solver_prompt, str(item["question"]))),
                "label": str(item["label"]),
                "question_id": str(item.get("question_id", i)),
            }
        )
    reward = SolverReward(reward_options)
    stats, _ = _train(
        "solver",
        model_path=model_path,
        out_dir=out_dir,
        settings=settings,
        rows=rows,
        reward_fn=reward,
        tokenizer=tokenizer,
        progress=progress,
    )
    acc = [h["accuracy"] for h in reward.history]
    return dataclasses.replace(
        stats, extra={"accuracy_first": acc[0] if acc else None, "accuracy_last": acc[-1] if acc else None}
    )
