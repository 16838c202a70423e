"""Memory per GPU of a GRPO stage, under the ZeRO stage of its accelerate config.

For a stage with N parameters on d processes (bytes; the ZeRO paper's mixed-precision Adam
accounting, K = 12 for fp32 master weights + two moments):

====================  =====================  ==============  ===================  ============
part                  no DeepSpeed (fp32)    ZeRO-2          ZeRO-2 + CPU Adam    ZeRO-3
====================  =====================  ==============  ===================  ============
weights               4N                     2N              2N                   2N/d + 2 GB
gradients             4N                     2N/d            2N/d                 2N/d
optimizer state       8N                     12N/d           0 (12N in host RAM)  12N/d
reference (beta > 0)  4N                     2N              2N                   2N/d
====================  =====================  ==============  ===================  ============

(ZeRO-1 is counted like ZeRO-2 with unsharded gradients, 2N.) Plus activations of one
micro-batch of b sequences of T = prompt + completion tokens: with gradient checkpointing
``b*T*(L*H + A)*2`` (each layer's input kept, one layer recomputed), without it ``b*T*L*A*2``,
where ``A = 4H + 5*Hq + 2*Hkv + 4*I`` values per token and layer (norm inputs/outputs, q/k before
their norms, q/k/v/output of attention with k/v repeated to the query heads, the four SwiGLU
tensors); the completion logits ``3*b*T_c*V*2`` (logits, their temperature-scaled copy, their
gradient, bf16); the colocated vLLM engine (``gpu_memory_utilization`` x device memory); the
solver server when it shares a GPU with the challenger (``shared_gpu_memory_utilization`` x device
memory); and 4 GiB (``OVERHEAD_GIB``) of CUDA context, NCCL buffers and allocator slack.

b is the per-device micro-batch of :func:`rzero_bench.config.split_batch`; d is the number of GPUs
of the stage times the nodes (1 without an accelerate config). Prompts are taken as 2048 tokens for
the solver (the official ``max_prompt_length``) and 512 for the challenger unless the measured
challenger prompt is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from rzero_bench.config import RunConfig, split_batch
from rzero_bench.models import ModelShape
from rzero_bench.preflight.hardware import _gpu_list, _span

GIB = 1024**3
OVERHEAD_GIB = 4.0
SOLVER_PROMPT_TOKENS = 2048  # official data.max_prompt_length (overlong prompts dropped)


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
