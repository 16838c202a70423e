"""Preflight and plan: what a run needs, checked before anything is written.

``rzero-bench run`` resolves the model name and the preset, chooses the GPU layout from the
hardware, and checks, before the run directory exists:

- **GPUs**: the layout's GPU indices against the GPUs visible (``nvidia-smi``, honouring
  ``CUDA_VISIBLE_DEVICES``); a GPU preset on a machine without one fails with how to run on CPU;
- **packages**: ``vllm`` (served/vllm sampling, colocated rollouts), ``deepspeed`` (a DeepSpeed
  accelerate config) and the ``accelerate`` launcher;
- **the model**: a hub id in the local cache (offline) or on the hub (one bounded request);
- **memory per GPU of each GRPO stage** (below) against the device memory;
- **lengths**: every eval task's longest prompt + its ``max_tokens``, and the self-play prompts
  (challenger prompt + ``question_max_tokens``; solver prompt + a question of up to
  ``question_max_tokens`` + ``solver_max_tokens``), against ``layout.max_model_len``, which is
  derived from them when not set (rounded up to 256, capped at the model's own limit);
- **disk** for the checkpoints: (2 x iterations + 1) x 2 bytes x parameters (bf16 safetensors,
  one staging copy), plus 5%.

``--gpus N --gpu-memory-gib G [--nodes K]`` plans for a machine you do not have: what only that
machine can tell (packages installed, the weights reachable, free disk and host memory) is listed
"to check there" instead of failing. ``--dry-run`` prints the plan and writes nothing. Every failed
check is one line; the run exits 2 without creating the run directory.

Memory model, per GPU, for a GRPO stage with N parameters on d processes (bytes; the ZeRO paper's
mixed-precision Adam accounting, K = 12 for fp32 master weights + two moments):

====================  =====================  ==============  ===================  ============
part                  no DeepSpeed (fp32)    ZeRO-2          ZeRO-2 + CPU Adam    ZeRO-3
====================  =====================  ==============  ===================  ============
weights               4N                     2N              2N                   2N/d + 2 GB
gradients             4N                     2N/d            2N/d                 2N/d
optimizer state       8N                     12N/d           0 (12N in host RAM)  12N/d
reference (beta > 0)  4N                     2N              2N                   2N/d
====================  =====================  ==============  ===================  ============

plus activations of one micro-batch of b sequences of T = prompt + completion tokens: with
gradient checkpointing ``b*T*(L*H + A)*2`` (each layer's input kept, one layer recomputed),
without it ``b*T*L*A*2``, where ``A = 4H + 5*Hq + 2*Hkv + 4*I`` values per token and layer
(norm inputs/outputs, q/k before their norms, q/k/v/output of attention with k/v repeated to the
query heads, the four SwiGLU tensors); the completion logits ``3*b*T_c*V*2`` (logits, their
temperature-scaled copy, their gradient, bf16); the colocated vLLM engine
(``gpu_memory_utilization`` x device memory); the solver server when it shares the GPU
(``shared_gpu_memory_utilization`` x device memory); and 4 GiB of CUDA context, NCCL buffers and
allocator slack. Solver prompts are taken as 2048 tokens (the official ``max_prompt_length``).

Tokens and time per stage are upper bounds: every completion runs to its ``max_tokens``. Time =
generated tokens / (GPUs x generation throughput) + trained tokens / (GPUs x training throughput),
with throughputs per GPU given for a 4B model and scaled by 4B / N (``--gen-tokens-per-s``,
``--train-tokens-per-s``). Prompt token counts are exact when the model's ``tokenizer.json`` is at
hand and otherwise characters / 3 (conservative for Qwen's and Llama's BPE on English and LaTeX).
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rzero_bench.config import RunConfig, load_config, split_batch
from rzero_bench.errors import UserError
from rzero_bench.models import ModelShape, Resolution, check_hub, is_small_model, model_shape, resolve_name
from rzero_bench.training.launch import accelerate_executable

__all__ = [
    "Check",
    "Hardware",
    "Plan",
    "PreflightError",
    "build_plan",
    "choose_preset",
    "derive_layout",
    "detect_hardware",
    "prepare_run",
    "render_plan",
]

GIB = 1024**3
DEFAULT_GEN_TOKENS_PER_S = 3000.0  # per GPU, 4B model: vLLM bf16 decoding with hundreds of sequences
DEFAULT_TRAIN_TOKENS_PER_S = 2000.0  # per GPU, 4B model: forward + backward + recompute + ref/old log-probs
REFERENCE_PARAMS = 4.0e9  # the throughputs above are for this size and scale with REFERENCE_PARAMS / N
CHARS_PER_TOKEN = 3.0
CHAT_TOKENS = 32  # chat-template tokens around the messages
OVERHEAD_GIB = 4.0
SOLVER_PROMPT_TOKENS = 2048  # official data.max_prompt_length (overlong prompts dropped)
TOP_CANDIDATES = 20  # items per task rendered exactly when searching the longest prompt
SMALL_PRESETS = ("tiny", "micro")


class PreflightError(UserError):
    """One or more preflight checks failed (each was printed on its own line)."""


# --------------------------------------------------------------------------- hardware
@dataclass(frozen=True)
class Hardware:
    """GPUs per node (all alike for planning), their memory, nodes; ``planned``: not this machine."""

    gpus: int
    memory_gib: float | None
    nodes: int = 1
    names: tuple[str, ...] = ()
    free_gib: float | None = None
    planned: bool = False
    source: str = ""


def _visible(indices: list[int]) -> list[int]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return indices
    keep: list[int] = []
    for part in env.split(","):
        part = part.strip()
        if part.isdigit() and int(part) in indices:
            keep.append(int(part))
    return keep


def detect_hardware(*, nodes: int | None = None) -> Hardware:
    """The GPUs this process may use (``nvidia-smi``; none when it is missing) and the node count."""
    n_nodes = nodes or int(os.environ.get("SLURM_JOB_NUM_NODES") or os.environ.get("SLURM_NNODES") or 1)
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return Hardware(0, None, n_nodes, source="nvidia-smi not found")
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Hardware(0, None, n_nodes, source=f"nvidia-smi failed ({type(e).__name__})")
    rows: dict[int, tuple[str, float, float]] = {}
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4 and parts[0].isdigit():
            try:
                rows[int(parts[0])] = (parts[1], float(parts[2]) / 1024, float(parts[3]) / 1024)
            except ValueError:
                continue
    use = _visible(sorted(rows))
    if not use:
        return Hardware(0, None, n_nodes, source="nvidia-smi lists no usable GPU")
    return Hardware(len(use), min(rows[i][1] for i in use), n_nodes, tuple(rows[i][0] for i in use),
                    min(rows[i][2] for i in use), source="nvidia-smi")


def _gpu_list(gpus: str | None) -> list[int]:
    return [int(g) for g in (gpus or "").split(",") if g.strip().isdigit()]


def _span(ids: Sequence[int]) -> str:
    ids = sorted(ids)
    if ids and ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}-{ids[-1]}"
    return ",".join(str(i) for i in ids)


def _csv(ids: Sequence[int]) -> str:
    return ",".join(str(i) for i in ids)


# --------------------------------------------------------------------------- layout from hardware
def needs_gpu(cfg: RunConfig) -> bool:
    """Whether the layout needs CUDA GPUs. The CPU form of the GPU layout (paper-cpu: ``transformers
    serve`` for sampling, an accelerate config with ``use_cpu: true`` for GRPO) does not."""
    lay = cfg.layout
    if lay.auto or lay.trainer_use_vllm or lay.generation_backend == "vllm":
        return True
    if lay.generation_backend == "served" and lay.serve_engine == "vllm":
        return True
    return bool(lay.accelerate_config) and not accelerate_on_cpu(lay.accelerate_config)


def accelerate_on_cpu(accelerate_config: str) -> bool:
    """True when the accelerate config sets ``use_cpu: true`` (ranks on CPU, gloo)."""
    import yaml

    from rzero_bench.training.launch import _config_path

    data = yaml.safe_load(_config_path(accelerate_config).read_text(encoding="utf-8")) or {}
    return bool(data.get("use_cpu"))


def derive_layout(cfg: RunConfig, gpus: int, nodes: int = 1, *, user_keys: Sequence[str] = (),
                  memory_gib: float | None = None, shape: ModelShape | None = None) -> RunConfig:
    """``cfg`` with the auto layout's GPU fields filled for ``gpus`` per node and ``nodes`` nodes.

    Keys in ``user_keys`` (``layout.<field>`` set in a config file or with ``--set``) are kept.
    One GPU: everything on GPU 0, DeepSpeed ZeRO-2 with the optimizer state in CPU memory, the
    solver server and the colocated vLLM sharing the GPU. G >= 2: the challenger trains on the first
    G/2 GPUs while the solver is served on the others for its reward; sampling-only stages serve on
    all G; solver GRPO trains on all G (the official layout is G = 8). ZeRO-3 replaces ZeRO-2 when the
    ZeRO-2 estimate does not fit ``memory_gib`` and ZeRO-3's does; several nodes always use ZeRO-3.
    """
    lay = cfg.layout
    if not lay.auto or gpus < 1:
        return cfg
    keep = {k.split(".", 1)[1] for k in user_keys if k.startswith("layout.")}
    everything = list(range(gpus))
    if gpus == 1:
        values: dict[str, Any] = {
            "serve_gpus": "0", "sampling_gpus": "0", "challenger_gpus": "0", "solver_gpus": "0",
            "accelerate_config": "accelerate/1gpu_zero2_offload.yaml", "gpu_memory_utilization": 0.25,
            "description": "1 GPU: sampling, the solver server and GRPO (ZeRO-2, CPU Adam) share GPU 0",
        }
    else:
        half = max(1, gpus // 2)
        values = {
            "serve_gpus": _csv(everything[half:]), "sampling_gpus": _csv(everything),
            "challenger_gpus": _csv(everything[:half]), "solver_gpus": _csv(everything),
            "accelerate_config": "accelerate/8gpu_zero2.yaml",
            "description": (f"{gpus} GPUs per node: sampling on all; challenger GRPO on {_span(everything[:half])} "
                            f"while the solver is served on {_span(everything[half:])}; solver GRPO on all"),
        }
    values["gpus_per_node"] = gpus
    values["nodes"] = nodes
    if nodes > 1:
        values["accelerate_config"] = "accelerate/multinode.yaml"
        values["launch_prefix"] = f"srun --nodes={nodes} --ntasks-per-node=1"
        values["description"] += f"; GRPO on {nodes} nodes (ZeRO-3)"
    data = cfg.model_dump(mode="json")
    for k, v in values.items():
        if k not in keep:
            data["layout"][k] = v
    out = RunConfig.model_validate(data)
    if (nodes == 1 and gpus > 1 and "accelerate_config" not in keep and memory_gib is not None
            and shape is not None):
        z2 = [grpo_memory(out, r, shape, memory_gib).total for r in ("challenger", "solver")]
        if max(z2) > memory_gib:
            data["layout"]["accelerate_config"] = "accelerate/8gpu_zero3.yaml"
            z3 = RunConfig.model_validate(data)
            if max(grpo_memory(z3, r, shape, memory_gib).total for r in ("challenger", "solver")) <= memory_gib:
                return z3
    return out


# --------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class DeepSpeedPlan:
    stage: int  # 0: no DeepSpeed
    offload_optimizer: bool
    config: str


def deepspeed_plan(accelerate_config: str | None) -> DeepSpeedPlan:
    """ZeRO stage and optimizer offload of an accelerate config (0 for none or not DeepSpeed)."""
    if not accelerate_config:
        return DeepSpeedPlan(0, False, "in process")
    import yaml

    from rzero_bench.training.launch import _config_path

    data = yaml.safe_load(_config_path(accelerate_config).read_text(encoding="utf-8")) or {}
    if str(data.get("distributed_type", "")).upper() != "DEEPSPEED":
        return DeepSpeedPlan(0, False, accelerate_config)
    ds = data.get("deepspeed_config") or {}
    return DeepSpeedPlan(int(ds.get("zero_stage", 0)), str(ds.get("offload_optimizer_device", "none")) == "cpu",
                         accelerate_config)


@dataclass(frozen=True)
class MemoryRow:
    stage: str
    gpus: str
    processes: int
    zero: str
    parts: dict[str, float]  # GiB
    device_gib: float | None
    host_gib: float  # optimizer state kept in host memory (offload)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def ok(self) -> bool:
        return self.device_gib is None or self.total <= self.device_gib


MEMORY_PARTS = ("weights", "grads", "optimizer", "reference", "activations", "logits", "vllm", "server", "other")


def _role_gpus(cfg: RunConfig, role: str) -> list[int]:
    lay = cfg.layout
    return _gpu_list(lay.challenger_gpus if role == "challenger" else lay.solver_gpus)


def _role_processes(cfg: RunConfig, role: str) -> int:
    lay = cfg.layout
    if not lay.accelerate_config:
        return 1
    return max(1, len(_role_gpus(cfg, role))) * lay.nodes


def grpo_memory(cfg: RunConfig, role: str, shape: ModelShape, device_gib: float | None,
                prompt_tokens: int | None = None) -> MemoryRow:
    """Per-GPU memory of one GRPO stage (module docstring, "Memory model")."""
    rc = getattr(cfg, role)
    lay = cfg.layout
    n = shape.params
    d = _role_processes(cfg, role)
    ds = deepspeed_plan(lay.accelerate_config)
    split = split_batch(rc, d)
    b = split.per_device
    t_c = rc.max_completion_length
    t_p = prompt_tokens if prompt_tokens is not None else (SOLVER_PROMPT_TOKENS if role == "solver" else 512)
    h, q, kv, i, layers = (shape.hidden_size, shape.num_heads * shape.head_dim, shape.num_kv_heads * shape.head_dim,
                           shape.intermediate_size, shape.num_layers)
    per_layer = 4 * h + 5 * q + 2 * kv + 4 * i
    tokens = b * (t_p + t_c)
    acts = tokens * (layers * h + per_layer) * 2 if rc.gradient_checkpointing else tokens * layers * per_layer * 2
    host = 0.0
    weights: float
    grads: float
    optim: float
    ref: float
    if ds.stage == 0:
        weights, grads, optim, ref = 4.0 * n, 4.0 * n, 8.0 * n, 4.0 * n
        zero = "none (fp32 AdamW)"
    elif ds.stage == 3:
        weights, grads, optim, ref = 2 * n / d + 2e9, 2 * n / d, 12 * n / d, 2 * n / d
        zero = "ZeRO-3"
    else:
        weights, ref = 2 * n, 2 * n
        grads = 2 * n / d if ds.stage == 2 else 2 * n
        optim = 0.0 if ds.offload_optimizer else 12 * n / d
        host = 12 * n / d / GIB if ds.offload_optimizer else 0.0
        zero = f"ZeRO-{ds.stage}" + (" + CPU Adam" if ds.offload_optimizer else "")
    if rc.beta == 0:
        ref = 0.0
    dev = device_gib or 0.0
    served = 0.0
    if role == "challenger" and lay.generation_backend == "served":
        if set(_gpu_list(lay.serve_gpus)) & set(_role_gpus(cfg, role)):
            served = lay.shared_gpu_memory_utilization * dev
    parts = {
        "weights": weights / GIB, "grads": grads / GIB, "optimizer": optim / GIB, "reference": ref / GIB,
        "activations": acts / GIB, "logits": 3 * b * t_c * shape.vocab_size * 2 / GIB,
        "vllm": lay.gpu_memory_utilization * dev if lay.trainer_use_vllm else 0.0,
        "server": served, "other": OVERHEAD_GIB,
    }
    return MemoryRow(f"{role} GRPO", _span(_role_gpus(cfg, role)) or "-", d, zero, parts, device_gib, host)


# --------------------------------------------------------------------------- lengths
@dataclass(frozen=True)
class LengthRow:
    what: str  # task name or self-play stage
    item: str  # longest item's id ("" for self-play)
    prompt_tokens: int
    max_tokens: int
    exact: bool
    items: int = 0  # items evaluated (eval tasks)
    samples_per_item: int = 0  # completions per item over all passes

    @property
    def need(self) -> int:
        return self.prompt_tokens + self.max_tokens


class _Counter:
    """Prompt tokens: exact with the model's tokenizer.json, else characters / CHARS_PER_TOKEN."""

    def __init__(self, res: Resolution | None) -> None:
        self.tok: Any = None
        path: Path | None = None
        if res is not None and res.kind == "path":
            cand = Path(res.model) / "tokenizer.json"
            path = cand if cand.is_file() else None
        elif res is not None and res.kind == "hub":
            try:
                from huggingface_hub import try_to_load_from_cache

                found = try_to_load_from_cache(res.model, "tokenizer.json")
                path = Path(found) if isinstance(found, str) else None
            except ImportError:  # pragma: no cover
                path = None
        if path is not None:
            try:
                from tokenizers import Tokenizer

                self.tok = Tokenizer.from_file(str(path))
            except Exception:  # noqa: BLE001 - an unreadable tokenizer falls back to the estimate
                self.tok = None

    @property
    def exact(self) -> bool:
        return self.tok is not None

    def count(self, messages: Sequence[dict[str, str]]) -> int:
        text = "\n".join(m["content"] for m in messages)
        if self.tok is not None:
            return len(self.tok.encode(text).ids) + CHAT_TOKENS
        return math.ceil(len(text) / CHARS_PER_TOKEN) + CHAT_TOKENS


def _eval_tasks(cfg: RunConfig) -> list[Any]:
    """The eval tasks as planned under the run's protocol (plain task specs without protocols)."""
    ev = cfg.eval
    suite = ev.suite if not ev.tasks else None
    try:
        from rzero_bench.protocols import plan_tasks
    except ImportError:
        from rzero_bench.tasks import resolve_tasks

        return list(resolve_tasks(suite=suite, tasks=ev.tasks))
    return [t.spec for t in plan_tasks(suite=suite, tasks=ev.tasks, protocol=getattr(ev, "protocol", None))]


def task_lengths(cfg: RunConfig, data_dir: Path | None, counter: _Counter) -> tuple[list[LengthRow], list[str]]:
    """Longest prompt + max_tokens of every eval task with local data; the tasks without it."""
    from rzero_bench.evaluate import build_messages
    from rzero_bench.tasks import DOC_ID_KEY, has_local_data, load_docs

    rows: list[LengthRow] = []
    missing: list[str] = []
    ev = cfg.eval
    for spec in _eval_tasks(cfg):
        generated = spec.metadata.processor == "generated"
        if not generated and (data_dir is None or not has_local_data(spec, data_dir)):
            missing.append(spec.task)
            continue
        docs = load_docs(spec, data_dir=data_dir, limit=ev.limit, seed=ev.seed)
        if not docs:
            continue
        sizes = sorted(range(len(docs)), key=lambda j: -sum(len(str(v)) for v in docs[j].values()))
        best = (-1, "")
        for j in sizes[:TOP_CANDIDATES]:
            n = counter.count(build_messages(spec, docs[j]))
            if n > best[0]:
                best = (n, str(docs[j].get(DOC_ID_KEY, j)))
        passes = spec.passes(ev.max_tokens, ev.seed, ev.max_samples)
        rows.append(LengthRow(spec.task, best[1], best[0], max(p.max_tokens for p in passes), counter.exact,
                              items=len(docs), samples_per_item=sum(p.n for p in passes)))
    return rows, missing


def selfplay_lengths(cfg: RunConfig, counter: _Counter) -> list[LengthRow]:
    """The self-play requests: questions (challenger prompt) and votes/reward (solver prompt + question)."""
    from rzero_bench.prompts import challenger_messages, load_prompt, solver_messages

    sp = cfg.selfplay
    ch = counter.count(challenger_messages(load_prompt(cfg.prompts["challenger"])))
    so = counter.count(solver_messages(load_prompt(cfg.prompts["solver"]), ""))
    return [LengthRow("questions", "", ch, sp.question_max_tokens, counter.exact),
            LengthRow("votes / reward", "", so + sp.question_max_tokens, sp.solver_max_tokens, counter.exact)]


def derived_max_model_len(rows: Sequence[LengthRow], limit: int | None) -> int | None:
    """The longest need rounded up to 256, capped at the model's limit (None without rows)."""
    if not rows:
        return limit
    need = max(r.need for r in rows)
    value = int(math.ceil(need / 256) * 256)
    return min(value, limit) if limit else value


# --------------------------------------------------------------------------- checks and plan
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


def _tok(n: int, exact: bool) -> str:
    return f"{n}" if exact else f"~{n}"


# --------------------------------------------------------------------------- rendering
def _human(n: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def _duration(s: float) -> str:
    if s <= 0:
        return "-"
    if s < 3600:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = [f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths)]
    out = [indent + "  ".join(f.format(str(x)) for f, x in zip(fmt, header, strict=True)).rstrip()]
    for r in rows:
        out.append(indent + "  ".join(f.format(str(x)) for f, x in zip(fmt, r, strict=True)).rstrip())
    return out


def render_plan(plan: Plan, *, full: bool = True) -> str:
    """The plan as text: the run's shape, memory and length tables, stages, checks."""
    cfg, lay, hw = plan.cfg, plan.cfg.layout, plan.hardware
    lines: list[str] = []
    model = plan.res.model
    if plan.res.note:
        lines.append(plan.res.note)
    size = f"{plan.shape.params / 1e9:.2f}B parameters" if plan.shape else "size unknown"
    lines.append(f"model: {model} ({size}; shape from {plan.shape_source})")
    lines.append(f"preset: {plan.preset} ({plan.preset_why})")
    if hw.gpus:
        mem = f" x {hw.memory_gib:.0f} GiB" if hw.memory_gib else ""
        what = "planned with --gpus, not this machine" if hw.planned else hw.source
        lines.append(f"machine: {hw.gpus}{mem} GPU(s) per node, {hw.nodes} node(s) ({what})")
    else:
        lines.append(f"machine: no GPU ({hw.source})")
    if not full:
        return "\n".join(lines)
    if needs_gpu(cfg) and hw.gpus:
        lines.append(f"layout: {lay.description}")
        if lay.generation_backend == "served":
            dp = len(_gpu_list(lay.sampling_gpus or lay.serve_gpus)) or 1
            conc = lay.serve_concurrency or 256 * dp
            lines.append(f"  sampling (questions, votes, eval): vllm serve on GPUs {lay.sampling_gpus or lay.serve_gpus} "
                         f"(data parallel {dp}), max_model_len {plan.max_model_len} ({plan.max_model_len_source}), "
                         f"{conc} requests in flight")
        for role in ("challenger", "solver"):
            rc = getattr(cfg, role)
            d = _role_processes(cfg, role)
            sp = split_batch(rc, d)
            ds = deepspeed_plan(lay.accelerate_config)
            extra = ""
            if role == "challenger" and lay.generation_backend == "served":
                extra = f"; its reward samples the solver served on GPUs {lay.serve_gpus}"
            lines.append(f"  {role} GRPO: GPUs {_role_gpus(cfg, role) and _span(_role_gpus(cfg, role))}, {d} process(es), "
                         f"{ds.config}{extra}")
            lines.append(f"    {rc.prompts_per_step} prompts x {rc.num_generations} per step -> {sp.updates} optimizer "
                         f"update(s) of {sp.mini_batch} completions ({sp.per_device} per GPU x {sp.accumulation} "
                         f"accumulation x {d}); {rc.max_steps} steps = {rc.max_steps * sp.updates} updates per iteration")
    if plan.memory:
        lines.append("")
        lines.append(f"memory per GPU, GiB (device {hw.memory_gib:.0f} GiB):")
        header = ["stage", *MEMORY_PARTS, "total", ""]
        rows = [[f"{m.stage} ({m.zero}, {m.processes})", *(f"{m.parts[k]:.1f}" for k in MEMORY_PARTS),
                 f"{m.total:.1f}", "ok" if m.ok else "TOO BIG"] for m in plan.memory]
        lines += _table(header, rows)
    if plan.lengths:
        lines.append("")
        lines.append(f"lengths, tokens (max_model_len {plan.max_model_len}: {plan.max_model_len_source}):")
        rows = [[r.what, r.item or "-", _tok(r.prompt_tokens, r.exact), str(r.max_tokens), str(r.need),
                 "ok" if plan.max_model_len is None or r.need <= plan.max_model_len else "TOO LONG"]
                for r in plan.lengths]
        lines += _table(["requests", "longest item", "prompt", "max_tokens", "need", ""], rows)
    if plan.stages:
        lines.append("")
        iters = cfg.iterations
        lines.append(f"stages per iteration (upper bounds: every completion at max_tokens; generation "
                     f"{plan.gen_tps:g} and training {plan.train_tps:g} tokens/s per GPU for a 4B model, "
                     f"scaled by size; --gen-tokens-per-s, --train-tokens-per-s):")
        rows = [[s.stage, s.where, _human(s.generated), _human(s.trained), _duration(s.seconds)] for s in plan.stages]
        per_iter = sum(s.seconds for s in plan.stages)
        base_eval = next((s.seconds for s in plan.stages if s.stage == "eval"), 0.0)
        rows.append(["iteration", "", _human(sum(s.generated for s in plan.stages)),
                     _human(sum(s.trained for s in plan.stages)), _duration(per_iter)])
        rows.append([f"run ({iters} iterations + base eval)", "", "", "", _duration(iters * per_iter + base_eval)])
        lines += _table(["stage", "where", "generated", "trained", "time"], rows)
    for note in plan.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def render_checks(plan: Plan) -> list[str]:
    marks = {"ok": "ok   ", "fail": "FAIL ", "there": "check there:", "warn": "warn "}
    order = {"fail": 0, "warn": 1, "there": 2, "ok": 3}
    return [f"  {marks[c.status]} {c.name}: {c.detail}" for c in sorted(plan.checks, key=lambda c: order[c.status])]


# --------------------------------------------------------------------------- preset choice
def choose_preset(res: Resolution | None, *, preset: str | None, file_preset: str | None,
                  has_file: bool, force: bool = False) -> tuple[str | None, str]:
    """The base preset of a run and why: explicit > the config file's > paper for a real model > tiny.

    The tiny and micro presets (lr 1e-4, 64-token completions, 64 questions, 5 eval items) are for
    ``tiny:`` / ``micro:`` models; pairing one with a real model is refused unless ``force``.
    """
    chosen, why = preset, "--preset"
    if chosen is None and file_preset:
        chosen, why = file_preset, "from the config file"
    if chosen is None and not has_file:
        if res is not None and not is_small_model(res):
            chosen, why = "paper", "no --preset given: a real model runs the paper's settings"
        else:
            chosen, why = "tiny", "the CPU default"
    if chosen in SMALL_PRESETS and res is not None and not is_small_model(res) and not force:
        raise UserError(f"the {chosen} preset is for tiny:/micro: models (learning rate 1e-4, 64-token completions, "
                        f"64 questions, 5 eval items); with {res.model} use --preset paper (the default for a real "
                        "model) or official-code, or add --force-preset to run it anyway")
    return chosen, why


def _file_data(config: Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}  # load_config reports the problem properly
    return data if isinstance(data, dict) else {}


def _user_keys(file_data: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    keys = [s.split("=", 1)[0].strip() for s in overrides if "=" in s]
    for section, value in file_data.items():
        if isinstance(value, dict):
            keys += [f"{section}.{k}" for k in value]
        else:
            keys.append(str(section))
    return keys


def _model_spec(model: str | None, overrides: Sequence[str], file_data: dict[str, Any]) -> str | None:
    spec = None
    for s in overrides:
        if s.split("=", 1)[0].strip() == "model" and "=" in s:
            spec = s.split("=", 1)[1].strip()
    if spec is None:
        spec = model
    if spec is None and isinstance(file_data.get("model"), str):
        spec = file_data["model"]
    return spec


# --------------------------------------------------------------------------- entry
def prepare_run(*, config: Path | None, model: str | None, iterations: int | None, preset: str | None,
                run_dir: Path | None, data_dir: Path | None, overrides: Sequence[str], dry_run: bool = False,
                gpus: int | None = None, gpu_memory_gib: float | None = None, nodes: int | None = None,
                force_preset: bool = False, gen_tps: float | None = None, train_tps: float | None = None,
                echo: Any = None) -> tuple[RunConfig, Path] | None:
    """Resolve and check a run before anything is written; None after a dry run.

    Prints the plan (in full with ``dry_run``) and the checks through ``echo`` (stderr by default);
    raises :class:`PreflightError` (exit 2) when a check failed. The run directory is not touched.
    """
    if echo is None:
        import sys

        def echo(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    if gpu_memory_gib is not None and gpus is None:
        raise UserError("--gpu-memory-gib describes the GPUs of --gpus N; give both")
    file_data = _file_data(config)
    spec = _model_spec(model, overrides, file_data)
    res = resolve_name(spec) if spec is not None else None
    base, why = choose_preset(res, preset=preset, file_preset=file_data.get("preset") if isinstance(
        file_data.get("preset"), str) else None, has_file=config is not None, force=force_preset)
    cfg = load_config(config, preset=base, model=model, iterations=iterations, overrides=list(overrides))
    if res is None:
        res = resolve_name(cfg.model)
    if res.kind == "hub" and cfg.model != res.model:  # a bare name becomes its hub id; paths stay as given
        cfg.model = res.model
    if base in SMALL_PRESETS and not is_small_model(res) and not force_preset:
        choose_preset(res, preset=base, file_preset=None, has_file=True)  # raises the refusal
    # hardware: this machine, or the one described by --gpus (a plan for elsewhere with --dry-run)
    if gpus is not None:
        if gpus < 1:
            raise UserError("--gpus must be >= 1")
        if dry_run:
            hw = Hardware(gpus, gpu_memory_gib, nodes or 1, planned=True, source="--gpus")
        else:
            here = detect_hardware(nodes=nodes)
            if here.gpus and gpus > here.gpus:
                raise UserError(f"--gpus {gpus} but this machine shows {here.gpus}; plan for another machine with "
                                "--dry-run --gpus N --gpu-memory-gib G")
            hw = Hardware(gpus, gpu_memory_gib or here.memory_gib, here.nodes, here.names, here.free_gib,
                          source=here.source) if here.gpus else here
    else:
        hw = detect_hardware(nodes=nodes)
    shape, _ = model_shape(res)
    cfg = derive_layout(cfg, hw.gpus, hw.nodes, user_keys=_user_keys(file_data, overrides),
                        memory_gib=hw.memory_gib, shape=shape)
    rd = run_dir or Path("runs") / cfg.name
    plan = build_plan(cfg, res=res, preset=base or "-", preset_why=why, hardware=hw, data_dir=data_dir, run_dir=rd,
                      gen_tps=gen_tps or DEFAULT_GEN_TOKENS_PER_S, train_tps=train_tps or DEFAULT_TRAIN_TOKENS_PER_S)
    if plan.max_model_len and cfg.layout.max_model_len is None and cfg.layout.generation_backend in ("served", "vllm"):
        cfg.layout.max_model_len = plan.max_model_len
    for line in render_plan(plan, full=dry_run).splitlines():
        echo(line)
    checks = render_checks(plan)
    if checks:
        echo("checks:")
        for line in checks:
            echo(line)
    if plan.failed:
        raise PreflightError(f"{len(plan.failed)} preflight check(s) failed (listed above); nothing was written"
                             + (f" ({rd} not created)" if not rd.exists() else ""))
    if dry_run:
        echo("dry run: nothing was written")
        return None
    return cfg, rd
