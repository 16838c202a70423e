"""The plan as text: the run's shape, the layout and batch split, memory, lengths, stages, checks.

Tables have the first column left-aligned and the others right-aligned, two spaces apart.
Token counts print as 1.2k / 3.4M / 5.6G, times as minutes below an hour and hours above; a
prompt length estimated from characters carries a ``~``. Checks are listed failures first, then
warnings, then what to check on the machine planned for, then what passed.
"""

from __future__ import annotations

from collections.abc import Sequence

from rzero_bench.config import split_batch
from rzero_bench.preflight.hardware import _gpu_list, _span, needs_gpu
from rzero_bench.preflight.lengths import _tok
from rzero_bench.preflight.memory import MEMORY_PARTS, _role_gpus, _role_processes, deepspeed_plan
from rzero_bench.preflight.plan import Plan


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
    size = f"{_params(plan.shape.params)} parameters" if plan.shape else "size unknown"
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


def _params(n: int) -> str:
    """4.02B, 3.89M, 197K: three significant digits at most, in the unit that fits."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)
