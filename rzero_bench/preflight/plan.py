"""The plan: every check of a run on some hardware, and the tokens and time of each stage.

:func:`build_plan` checks, in order, and lists every outcome as a :class:`Check` (``ok``,
``fail``, ``warn``, or ``there``: only the machine planned for with ``--gpus`` can tell):

- **the model**: a hub id in the local cache (offline) or on the hub (one bounded request);
- **serving packages**: ``fastapi`` and ``uvicorn`` for ``transformers serve``;
- **GPUs** (GPU layouts only): the highest GPU index of the layout against the GPUs visible;
- **packages**: ``vllm`` (served/vllm sampling, colocated rollouts), ``deepspeed`` (a DeepSpeed
  accelerate config), the ``accelerate`` launcher, and the node launch for several nodes;
- **lengths** (:mod:`.lengths`) against ``layout.max_model_len``, and the served model's weights
  plus the KV cache of one ``max_model_len`` sequence against ``serve_gpu_memory_utilization`` x
  device memory;
- **memory per GPU** of each GRPO stage (:mod:`.memory`) against the device memory;
- **disk** for the checkpoints: (2 x iterations + 1) x 2 bytes x parameters (bf16 safetensors,
  one staging copy), plus 5%.

Tokens and time per stage (:func:`_stage_rows`) are upper bounds: every completion runs to its
``max_tokens``. Time = generated tokens / (GPUs x generation throughput) + trained tokens / (GPUs x
training throughput), with throughputs per GPU given for a 4B model (``REFERENCE_PARAMS``) and
scaled by 4B / N (``--gen-tokens-per-s``, ``--train-tokens-per-s`` override the defaults below).
The challenger's generated tokens include the solver samples of its reward (``reward_m`` or ``m``
per completion, on the serving GPUs); trained tokens count a 512-token challenger prompt and a
2048-token solver prompt per completion.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rzero_bench.config import RunConfig
from rzero_bench.models import ModelShape, Resolution, check_hub, model_shape
from rzero_bench.preflight.hardware import Hardware, _gpu_list, _span, needs_gpu
from rzero_bench.preflight.lengths import (
    CHARS_PER_TOKEN,
    LengthRow,
    _Counter,
    _tok,
    derived_max_model_len,
    selfplay_lengths,
    task_lengths,
)
from rzero_bench.preflight.memory import (
    GIB,
    SOLVER_PROMPT_TOKENS,
    DeepSpeedPlan,
    MemoryRow,
    _role_processes,
    deepspeed_plan,
    grpo_memory,
)
from rzero_bench.training.launch import accelerate_executable

DEFAULT_GEN_TOKENS_PER_S = 3000.0  # per GPU, 4B model: vLLM bf16 decoding with hundreds of sequences
DEFAULT_TRAIN_TOKENS_PER_S = 2000.0  # per GPU, 4B model: forward + backward + recompute + ref/old log-probs
REFERENCE_PARAMS = 4.0e9  # the throughputs above are for this size and scale with REFERENCE_PARAMS / N


@dataclass(frozen=True)
class Check:
    name: str
    status: Literal["ok", "fail", "there", "warn"]
    detail: str


@dataclass(frozen=True)
class StageRow:
    stage: str
    where: str
    generated: int
    trained: int
    seconds: float


@dataclass
class Plan:
    cfg: RunConfig
    preset: str
    preset_why: str
    res: Resolution
    shape: ModelShape | None
    shape_source: str
    hardware: Hardware
    gen_tps: float
    train_tps: float
    checks: list[Check] = field(default_factory=list)
    memory: list[MemoryRow] = field(default_factory=list)
    lengths: list[LengthRow] = field(default_factory=list)
    max_model_len: int | None = None
    max_model_len_source: str = ""
    stages: list[StageRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]


def _cpu_hint() -> str:
    return ("to run on CPU instead: `rzero-bench run` (tiny preset, micro:s@2 model, minutes) or "
            "`rzero-bench run --preset micro`; to plan for a GPU machine: add --dry-run --gpus 8 --gpu-memory-gib 80")


def _package_check(name: str, why: str, planned: bool) -> Check:
    if importlib.util.find_spec(name) is not None:
        return Check(name, "ok", f"{name} importable ({why})")
    text = f"{name} is not installed; {why} needs it: pip install 'rzero-bench[gpu]'"
    return Check(name, "there" if planned else "fail", text)


def _stage_rows(cfg: RunConfig, shape: ModelShape, lengths: Sequence[LengthRow], gen_tps: float,
                train_tps: float) -> list[StageRow]:
    scale = REFERENCE_PARAMS / shape.params
    gen, train = gen_tps * scale, train_tps * scale
    lay, sp = cfg.layout, cfg.selfplay
    nodes = lay.nodes
    sampling = len(_gpu_list(lay.sampling_gpus or lay.serve_gpus)) or 1
    serve = len(_gpu_list(lay.serve_gpus)) or sampling
    rows: list[StageRow] = []
    c, s = cfg.challenger, cfg.solver
    cg = _role_processes(cfg, "challenger")
    rollout = c.max_steps * c.prompts_per_step * c.num_generations
    c_gen = rollout * c.max_completion_length
    reward = rollout * (sp.reward_m or sp.m) * sp.solver_max_tokens
    c_train = rollout * (512 + c.max_completion_length)
    rows.append(StageRow("challenger GRPO", f"GPUs {lay.challenger_gpus or '-'} (+ server on {lay.serve_gpus or '-'})",
                         c_gen + reward, c_train, c_gen / (cg * gen) + reward / (serve * gen) + c_train / (cg * train)))
    q = sp.num_questions * sp.question_max_tokens
    rows.append(StageRow("questions", f"server on {lay.sampling_gpus or lay.serve_gpus or '-'}", q, 0, q / (sampling * gen)))
    v = (sp.num_questions + cfg.probes.n) * sp.m * sp.solver_max_tokens
    rows.append(StageRow("votes", f"server on {lay.sampling_gpus or lay.serve_gpus or '-'}", v, 0, v / (sampling * gen)))
    rows.append(StageRow("filter", "CPU", 0, 0, 0.0))
    sg = _role_processes(cfg, "solver")
    s_roll = s.max_steps * s.prompts_per_step * s.num_generations
    s_gen = s_roll * s.max_completion_length
    s_train = s_roll * (SOLVER_PROMPT_TOKENS + s.max_completion_length)
    rows.append(StageRow("solver GRPO", f"GPUs {lay.solver_gpus or '-'}" + (f" x {nodes} nodes" if nodes > 1 else ""),
                         s_gen, s_train, s_gen / (sg * gen) + s_train / (sg * train)))
    e = sum(r.items * r.samples_per_item * r.max_tokens for r in lengths if r.items)
    rows.append(StageRow("eval", f"server on {lay.sampling_gpus or lay.serve_gpus or '-'}", e, 0, e / (sampling * gen)))
    return rows


def build_plan(cfg: RunConfig, *, res: Resolution, preset: str, preset_why: str, hardware: Hardware,
               data_dir: Path | None, run_dir: Path, gen_tps: float = DEFAULT_GEN_TOKENS_PER_S,
               train_tps: float = DEFAULT_TRAIN_TOKENS_PER_S, hub_check: bool = True) -> Plan:
    """Every check and estimate for ``cfg`` on ``hardware`` (nothing is written)."""
    shape, shape_src = model_shape(res)
    plan = Plan(cfg, preset, preset_why, res, shape, shape_src, hardware, gen_tps, train_tps)
    checks = plan.checks
    lay = cfg.layout
    planned = hardware.planned
    gpu = needs_gpu(cfg)

    # the model
    if res.kind == "hub" and hub_check:
        hc = check_hub(res.model)
        if hc.ok:
            checks.append(Check("model", "ok", hc.detail))
        else:
            checks.append(Check("model", "there" if planned and hc.local else "fail", hc.detail))

    if lay.generation_backend == "served" and lay.serve_engine == "transformers":
        for name in ("fastapi", "uvicorn"):
            if importlib.util.find_spec(name) is None:
                checks.append(Check(name, "there" if planned else "fail",
                                    f"{name} is not installed; `transformers serve` (layout.serve_engine) needs it: "
                                    "pip install 'rzero-bench[serving]'"))
    if not gpu:
        return plan

    # GPUs
    used = sorted(set(_gpu_list(lay.serve_gpus) + _gpu_list(lay.sampling_gpus) + _gpu_list(lay.challenger_gpus)
                      + _gpu_list(lay.solver_gpus)))
    need = (max(used) + 1) if used else 1
    if hardware.gpus == 0:
        checks.append(Check("gpus", "fail", f"the {preset} preset needs CUDA GPUs (its layout is chosen from them) "
                                            f"and none is visible ({hardware.source}); {_cpu_hint()}"))
    elif hardware.gpus < need:
        checks.append(Check("gpus", "fail", f"the layout uses GPUs {_span(used)} but only {hardware.gpus} are visible; "
                                            "drop --gpus or set layout.auto=true to fit the layout to the machine"))
    else:
        what = f"{hardware.gpus} x {hardware.memory_gib:.0f} GiB" if hardware.memory_gib else f"{hardware.gpus}"
        checks.append(Check("gpus", "ok", f"{what} GPUs per node, {hardware.nodes} node(s); the layout uses {need}"))

    # packages
    if (lay.generation_backend == "vllm" or (lay.generation_backend == "served" and lay.serve_engine == "vllm")
            or lay.trainer_use_vllm):
        checks.append(_package_check("vllm", "sampling with vLLM (served/vllm backend, colocated rollouts)", planned))
    ds = deepspeed_plan(lay.accelerate_config) if lay.accelerate_config else DeepSpeedPlan(0, False, "in process")
    if lay.auto and not lay.accelerate_config:  # no GPU to derive the layout from: every auto layout uses DeepSpeed
        checks.append(_package_check("deepspeed", "the GRPO stages of the auto GPU layouts (DeepSpeed ZeRO)", planned))
    elif ds.stage:
        checks.append(_package_check("deepspeed", f"the accelerate config {lay.accelerate_config}", planned))
        if ds.offload_optimizer:
            checks.append(Check("deepspeed-cpu-adam", "there", "DeepSpeed's CPU Adam op builds on first use (ds_report "
                                                               "shows whether it can)"))
    if lay.accelerate_config and shutil.which(accelerate_executable()) is None:
        checks.append(Check("accelerate", "there" if planned else "fail",
                            "the `accelerate` launcher is not on PATH (pip install accelerate)"))
    if lay.nodes > 1:
        checks.append(Check("nodes", "there", f"{lay.launch_prefix or 'the launch prefix'} reaches {lay.nodes} nodes "
                                              "and MASTER_ADDR (this host) is reachable from them"))

    # lengths and max_model_len
    counter = _Counter(res)
    if lay.generation_backend in ("served", "vllm"):
        rows, missing = task_lengths(cfg, data_dir, counter)
        rows += selfplay_lengths(cfg, counter)
        plan.lengths = rows
        limit = shape.max_position_embeddings if shape else None
        if missing:
            plan.notes.append(f"prompt lengths of {', '.join(missing)} not checked: no local data "
                              "(--data-dir / RZERO_DATA_DIR)")
        if lay.max_model_len is not None:
            plan.max_model_len, plan.max_model_len_source = lay.max_model_len, "layout.max_model_len"
            for r in rows:
                if r.need > lay.max_model_len:
                    where = f"item {r.item}: " if r.item else ""
                    checks.append(Check("length", "fail",
                                        f"{r.what}: {where}prompt {_tok(r.prompt_tokens, r.exact)} + max_tokens "
                                        f"{r.max_tokens} = {r.need} tokens > layout.max_model_len {lay.max_model_len}; "
                                        "the server would refuse it (HTTP 400); raise layout.max_model_len or leave "
                                        "it null (derived from the tasks)"))
            if limit and lay.max_model_len > limit:
                checks.append(Check("length", "warn", f"layout.max_model_len {lay.max_model_len} exceeds the model's "
                                                      f"max_position_embeddings {limit}"))
        else:
            plan.max_model_len = derived_max_model_len(rows, limit)
            longest = max(rows, key=lambda r: r.need) if rows else None
            plan.max_model_len_source = (f"derived: longest need {longest.what} {longest.need} tokens"
                                         + (f", capped at the model's {limit}" if limit and longest.need > limit else "")
                                         if longest else "the model's limit")
            for r in rows:
                if limit and r.need > limit:
                    checks.append(Check("length", "warn", f"{r.what}: item {r.item} needs {r.need} tokens > the model's "
                                                          f"limit {limit}; its max_tokens will be clamped"))
        if not plan.lengths or not counter.exact:
            plan.notes.append(f"prompt tokens estimated as characters / {CHARS_PER_TOKEN:g} (the model's "
                              "tokenizer.json is not at hand)")
        if shape and plan.max_model_len:
            kv = shape.kv_bytes_per_token * plan.max_model_len / GIB
            weights = 2 * shape.params / GIB
            if hardware.memory_gib:
                room = lay.serve_gpu_memory_utilization * hardware.memory_gib - weights
                if room < kv:
                    checks.append(Check("memory", "fail", f"vllm serve: {weights:.1f} GiB of weights + {kv:.1f} GiB of KV "
                                                          f"cache for one {plan.max_model_len}-token sequence do not fit "
                                                          f"{lay.serve_gpu_memory_utilization:g} x {hardware.memory_gib:.0f} GiB"))

    # memory per GRPO stage
    if shape is None:
        checks.append(Check("memory", "warn", f"memory not estimated: the shape of {res.model} is unknown here "
                                              "(no config.json at hand)"))
    elif hardware.memory_gib is None:
        if hardware.gpus:
            plan.notes.append("memory per GPU not checked: no GPU memory known (pass --gpu-memory-gib with --gpus)")
    elif hardware.gpus:
        ch_prompt = selfplay_lengths(cfg, counter)[0].prompt_tokens
        for role in ("challenger", "solver"):
            row = grpo_memory(cfg, role, shape, hardware.memory_gib, ch_prompt if role == "challenger" else None)
            plan.memory.append(row)
            if not row.ok:
                big = sorted(row.parts.items(), key=lambda kv: -kv[1])[:3]
                ckpt = getattr(cfg, role).gradient_checkpointing
                hint = (f"set {role}.gradient_checkpointing=true" if not ckpt else
                        f"lower {role}.micro_batch_per_device, use ZeRO-3 (layout.accelerate_config="
                        "accelerate/8gpu_zero3.yaml) or more GPUs")
                checks.append(Check("memory", "fail",
                                    f"{role} GRPO needs ~{row.total:.0f} GiB per GPU > {hardware.memory_gib:.0f} GiB "
                                    f"({', '.join(f'{k} {v:.0f}' for k, v in big)}; {row.zero}, "
                                    f"{getattr(cfg, role).micro_batch_per_device or 'derived'} sequences per pass); {hint}"))
            if row.host_gib:
                checks.append(Check("host-memory", "there", f"{role} GRPO keeps ~{row.host_gib:.0f} GiB of optimizer "
                                                            "state in host memory (CPU Adam)"))
        # disk
        need_disk = (2 * cfg.iterations + 1) * 2 * shape.params * 1.05
        disk_at = _existing_parent(run_dir)
        if planned:
            checks.append(Check("disk", "there", f"~{need_disk / GIB:.0f} GiB free for checkpoints under the run directory"))
        else:
            free = shutil.disk_usage(disk_at).free
            checks.append(Check("disk", "ok" if free >= need_disk else "fail",
                                f"{free / GIB:.0f} GiB free at {disk_at}; checkpoints need ~{need_disk / GIB:.0f} GiB"))
        plan.stages = _stage_rows(cfg, shape, plan.lengths, gen_tps, train_tps)
    return plan


def _existing_parent(path: Path) -> Path:
    p = Path(path).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p
