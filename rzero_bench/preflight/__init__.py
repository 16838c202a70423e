"""Preflight and plan: what a run needs, checked before anything is written.

``rzero-bench run`` resolves the model name and the preset, chooses the GPU layout from the
hardware, and checks, before the run directory exists: the GPUs visible against the layout (a GPU
preset on a machine without one fails with how to run on CPU), the packages the layout needs
(vllm, deepspeed, the accelerate launcher), the model (local cache when offline, else one bounded
hub request), the memory per GPU of each GRPO stage, every request's prompt + ``max_tokens``
against ``layout.max_model_len`` (derived from the tasks when not set), and disk for the
checkpoints.

``--gpus N --gpu-memory-gib G [--nodes K]`` plans for a machine you do not have: what only that
machine can tell (packages installed, the weights reachable, free disk and host memory) is listed
"to check there" instead of failing. ``--dry-run`` prints the plan and writes nothing. Every failed
check is one line; the run exits 2 without creating the run directory.

Each module states its own formula and assumptions; imports go one way, top to bottom:

=============  ==========================================================================
module         concern
=============  ==========================================================================
``hardware``   the GPUs visible (nvidia-smi, CUDA_VISIBLE_DEVICES); whether a layout needs any
``memory``     per-GPU memory of a GRPO stage under its ZeRO stage (the memory model)
``lengths``    prompt tokens, request lengths, the derived ``max_model_len``
``layout``     the auto layout for 1, 2, 4, 8 GPUs per node and several nodes
``plan``       every check, and tokens and time per stage (:func:`build_plan`)
``render``     the plan and the checks as text
``prepare``    the entry of ``rzero-bench run``: preset choice, hardware, plan (:func:`prepare_run`)
=============  ==========================================================================
"""

from __future__ import annotations

from rzero_bench.preflight.hardware import Hardware, accelerate_on_cpu, detect_hardware, needs_gpu
from rzero_bench.preflight.layout import derive_layout
from rzero_bench.preflight.lengths import (
    CHARS_PER_TOKEN,
    CHAT_TOKENS,
    TOP_CANDIDATES,
    LengthRow,
    derived_max_model_len,
    selfplay_lengths,
    task_lengths,
)
from rzero_bench.preflight.memory import (
    GIB,
    MEMORY_PARTS,
    OVERHEAD_GIB,
    SOLVER_PROMPT_TOKENS,
    DeepSpeedPlan,
    MemoryRow,
    deepspeed_plan,
    grpo_memory,
)
from rzero_bench.preflight.plan import (
    DEFAULT_GEN_TOKENS_PER_S,
    DEFAULT_TRAIN_TOKENS_PER_S,
    REFERENCE_PARAMS,
    Check,
    Plan,
    StageRow,
    build_plan,
)
from rzero_bench.preflight.prepare import SMALL_PRESETS, PreflightError, choose_preset, prepare_run
from rzero_bench.preflight.render import render_checks, render_plan

__all__ = [
    "CHARS_PER_TOKEN",
    "CHAT_TOKENS",
    "DEFAULT_GEN_TOKENS_PER_S",
    "DEFAULT_TRAIN_TOKENS_PER_S",
    "GIB",
    "MEMORY_PARTS",
    "OVERHEAD_GIB",
    "REFERENCE_PARAMS",
    "SMALL_PRESETS",
    "SOLVER_PROMPT_TOKENS",
    "TOP_CANDIDATES",
    "Check",
    "DeepSpeedPlan",
    "Hardware",
    "LengthRow",
    "MemoryRow",
    "Plan",
    "PreflightError",
    "StageRow",
    "accelerate_on_cpu",
    "build_plan",
    "choose_preset",
    "deepspeed_plan",
    "derive_layout",
    "derived_max_model_len",
    "detect_hardware",
    "grpo_memory",
    "needs_gpu",
    "prepare_run",
    "render_checks",
    "render_plan",
    "selfplay_lengths",
    "task_lengths",
]
