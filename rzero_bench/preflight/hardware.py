"""The machine a run plans for: the GPUs this process may use, and whether a layout needs any.

GPUs come from ``nvidia-smi --query-gpu=index,name,memory.total,memory.free`` (MiB, divided by
1024 into GiB), restricted to the indices listed in ``CUDA_VISIBLE_DEVICES`` when it is set. For
planning, the GPUs of a node are taken as alike: the smallest total and free memory among those
visible stand for all of them. The node count is ``--nodes``, else ``SLURM_JOB_NUM_NODES`` /
``SLURM_NNODES``, else 1. A missing or failing ``nvidia-smi`` means no GPU (the reason is kept in
:attr:`Hardware.source`), never an error.

A layout needs CUDA GPUs when it is the auto GPU layout, samples with vLLM (in process, served, or
colocated in the trainer), or launches GRPO through an accelerate config that does not set
``use_cpu: true`` (:func:`needs_gpu`). GPU lists in the layout are comma-separated indices
(``"0,1,2,3"``); :func:`_span` prints three or more consecutive indices as a range (``0-3``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from rzero_bench.config import RunConfig


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


def needs_gpu(cfg: RunConfig) -> bool:
    """Whether the layout needs CUDA GPUs. The CPU form of the GPU layout (paper-cpu: ``transformers
    serve`` for sampling, an accelerate config with ``use_cpu: true`` for GRPO) does not."""
    lay = cfg.layout
    if lay.auto or lay.trainer_use_vllm or lay.generation_backend == "vllm":
        return True
    if lay.generation_backend == "served" and lay.serve_engine == "vllm":
        return True
    if not lay.accelerate_config:
        return False
    return not accelerate_on_cpu(lay.accelerate_config)


def accelerate_on_cpu(accelerate_config: str) -> bool:
    """True when the accelerate config sets ``use_cpu: true`` (ranks on CPU, gloo)."""
    import yaml

    from rzero_bench.training.launch import _config_path

    data = yaml.safe_load(_config_path(accelerate_config).read_text(encoding="utf-8")) or {}
    return bool(data.get("use_cpu"))
