"""GPU smoke test: one challenger and one solver GRPO step of a random-init model, measured against
the preflight's memory estimate for the same shape.

Nothing is downloaded. The model is a ``Qwen3ForCausalLM`` with the shape of Qwen3-0.6B (and of
Qwen3-4B with ``--also-4b`` when the estimate fits the GPU), randomly initialised and saved to a
temporary directory in bf16; the tokenizer is the project's offline tiny tokenizer (its few hundred
tokens are a subset of the model's 151936-row vocabulary; ids it does not know decode to nothing).
Each step goes through the training code a run uses (``rzero_bench.training.grpo.train_challenger``
/ ``train_solver``, TRL's ``GRPOTrainer`` with transformers generation): bf16 on CUDA, gradient
checkpointing, the paper preset's clipping, weight decay and micro-batch per device, in process
(no DeepSpeed: fp32 master weights, the "none (fp32 AdamW)" column of the preflight's memory
model). The challenger's reward asks a scripted solver (canned answers), so the step measures the
challenger's own generation and update. A random model never stops early: every completion runs to
``--completion-tokens``, the preflight's worst case.

Printed per shape and role: step wall time, peak memory allocated and reserved by torch, and the
preflight's estimate for the same shape, settings and micro-batch (without its 4 GiB allowance for
the CUDA context, which torch does not count).

Usage (one CUDA GPU)::

    .venv/bin/python perf/gpu_smoke.py [--completion-tokens 4096] [--prompts 4] [--also-4b]

On a CPU machine, to check the script itself: ``--device cpu --tiny-shape`` (a 2-layer shape, 16
tokens; memory is not measured on CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GIB = 1024**3


@dataclass(frozen=True)
class Row:
    shape: str
    role: str
    params_b: float
    completions: int
    seconds: float
    peak_alloc_gib: float | None
    peak_reserved_gib: float | None
    estimate_gib: float
    parts: dict[str, float]


def _shape(name: str) -> Any:
    from rzero_bench.models import KNOWN_MODELS, ModelShape

    if name == "tiny":
        return ModelShape(64, 2, 192, 4, 2, 16, 151936, True, 2048)
    return KNOWN_MODELS[name.lower()].shape


def _save_model(shape: Any, tokenizer_dir: Path, out: Path, device: str) -> None:
    """A random-init Qwen3 of ``shape`` (bf16 on CUDA, fp32 on CPU) plus the tiny tokenizer, in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    cfg = Qwen3Config(
        vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads, head_dim=shape.head_dim,
        max_position_embeddings=shape.max_position_embeddings or 32768, tie_word_embeddings=shape.tie_embeddings,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
    )
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()


def _settings(role: str, args: argparse.Namespace) -> Any:
    """The paper preset's role settings, scaled to one small rollout (same micro-batch and optimizer)."""
    from rzero_bench.config import load_config
    from rzero_bench.training.grpo import GRPOSettings

    g = 4 if role == "challenger" else 5
    sets = [f"{role}.prompts_per_step={args.prompts}", f"{role}.mini_batch_prompts={args.prompts}",
            f"{role}.max_steps=1", f"{role}.max_completion_length={args.completion_tokens}",
            "layout.auto=false", "layout.generation_backend=hf", "layout.trainer_use_vllm=false",
            ]
    cfg = load_config(preset="paper", overrides=sets)
    settings = GRPOSettings.from_role(cfg, role, seed=0)
    assert settings.num_generations == g
    return cfg, settings


def _estimate(cfg: Any, role: str, shape: Any, device_gib: float, prompt_tokens: int) -> tuple[float, dict[str, float]]:
    from rzero_bench.preflight import grpo_memory

    row = grpo_memory(cfg, role, shape, device_gib, prompt_tokens)
    parts = {k: v for k, v in row.parts.items() if v and k != "other"}
    return sum(parts.values()), parts


def _step(role: str, model_dir: Path, work: Path, args: argparse.Namespace, device: str) -> tuple[float, float | None,
                                                                                                  float | None]:
    import torch

    from rzero_bench.backends.scripted import ScriptedGenerator
    from rzero_bench.prompts import load_prompt
    from rzero_bench.training.grpo import train_challenger, train_solver

    _, settings = _settings(role, args)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if role == "challenger":
        train_challenger(model_path=model_dir, out_dir=work / "challenger", settings=settings,
                         solver=ScriptedGenerator("\\boxed{1}"), solver_prompt=load_prompt("solver"), m=4,
                         reward_options={"variant": "paper", "max_tokens": 8}, log_path=work / "rewards.jsonl")
    else:
        rows = [{"question": f"What is {i} + {i}?", "label": str(2 * i)} for i in range(args.prompts)]
        train_solver(model_path=model_dir, out_dir=work / "solver", settings=settings, dataset=rows,
                     solver_prompt=load_prompt("solver"), reward_options={"format_weight": 0.0, "kind": "math"})
    seconds = time.perf_counter() - start
    if device != "cuda":
        return seconds, None, None
    return seconds, torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB


def run(args: argparse.Namespace) -> list[Row]:
    device = args.device
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    from rzero_bench.prompts import challenger_messages, load_prompt
    from rzero_bench.training.tiny import build_tiny

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible; on CPU use --device cpu --tiny-shape")
    device_gib = torch.cuda.get_device_properties(0).total_memory / GIB if device == "cuda" else 0.0
    tokenizer_dir = build_tiny("xs")
    shapes = ["tiny"] if args.tiny_shape else ["Qwen3-0.6B-Base"] + (["Qwen3-4B-Base"] if args.also_4b else [])
    # the challenger's prompt in tokens of the model's real tokenizer is unknown here: characters / 3
    prompt_tokens = len("\n".join(m["content"] for m in challenger_messages(load_prompt("challenger")))) // 3
    rows: list[Row] = []
    for name in shapes:
        shape = _shape(name)
        for role in ("challenger", "solver"):
            cfg, _ = _settings(role, args)
            est, parts = _estimate(cfg, role, shape, device_gib, prompt_tokens if role == "challenger" else 64)
            if device == "cuda" and est > 0.9 * device_gib:
                print(f"skip {name} {role}: estimate {est:.1f} GiB > 90% of {device_gib:.0f} GiB", flush=True)
                continue
            with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
                model_dir = Path(tmp) / "model"
                _save_model(shape, tokenizer_dir, model_dir, device)
                seconds, alloc, reserved = _step(role, model_dir, Path(tmp), args, device)
            g = 4 if role == "challenger" else 5
            rows.append(Row(name, role, shape.params / 1e9, args.prompts * g, seconds, alloc, reserved, est, parts))
            print(_format([rows[-1]], header=not rows[:-1]), flush=True)
    return rows


def _format(rows: list[Row], header: bool = True) -> str:
    def gib(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    lines = []
    if header:
        lines.append(f"{'shape':<16} {'role':<10} {'params':>7} {'compl.':>6} {'step s':>7} {'peak alloc':>10} "
                     f"{'peak resv':>9} {'estimate':>8}  estimate parts (GiB)")
    for r in rows:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r.parts.items())
        lines.append(f"{r.shape:<16} {r.role:<10} {r.params_b:>6.2f}B {r.completions:>6} {r.seconds:>7.1f} "
                     f"{gib(r.peak_alloc_gib):>10} {gib(r.peak_reserved_gib):>9} {r.estimate_gib:>8.1f}  {parts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny-shape", action="store_true", help="a 2-layer shape (for checking the script on CPU)")
    ap.add_argument("--also-4b", action="store_true", help="also Qwen3-4B's shape when the estimate fits the GPU")
    ap.add_argument("--prompts", type=int, default=4, help="prompts per rollout (x 4 or x 5 completions)")
    ap.add_argument("--completion-tokens", type=int, default=None,
                    help="completion length (default 4096 on CUDA, 16 with --tiny-shape)")
    args = ap.parse_args(argv)
    if args.completion_tokens is None:
        args.completion_tokens = 16 if args.tiny_shape else 4096
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = run(args)
    print()
    print(_format(rows))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
