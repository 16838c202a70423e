"""The auto GPU layout, chosen from the GPUs per node and the node count.

Rules (:func:`derive_layout`; fields the user set as ``layout.<field>`` are kept):

- **1 GPU**: sampling, the solver server and both GRPO stages share GPU 0; GRPO runs under
  DeepSpeed ZeRO-2 with the optimizer state in host memory (CPU Adam); the colocated vLLM engine
  takes 0.25 of the GPU.
- **G >= 2 GPUs**: the challenger trains on the first G/2 GPUs while the solver it samples for its
  reward is served on the other G/2; the sampling-only stages (questions, votes, eval) serve on all
  G; solver GRPO trains on all G (the official layout is G = 8). ZeRO-2, switched to ZeRO-3 when the
  ZeRO-2 estimate of either GRPO stage (:func:`rzero_bench.preflight.memory.grpo_memory`) exceeds
  the GPU memory and the ZeRO-3 estimate of both fits (checked when the GPU memory and the model's
  shape are known).
- **several nodes**: ZeRO-3 across nodes, launched with ``srun --nodes=K --ntasks-per-node=1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rzero_bench.config import RunConfig
from rzero_bench.models import ModelShape
from rzero_bench.preflight.hardware import _csv, _span
from rzero_bench.preflight.memory import grpo_memory


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
