"""The CLI-facing side of evaluation: ``rzero-bench eval`` and ``rzero-bench rescore``.

``eval_command`` parses the lm-eval style flags (``--model-args a=1,b=x``, ``--gen-kwargs``),
checks everything that can fail before the model loads (tasks, data directory, offline without a
mirror, backend options, the output directory), loads the model once, runs
:func:`rzero_bench.evaluate.run.evaluate` and, with ``--output-format lm-eval``, also writes an
lm-eval results file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.evaluate.output import check_output_dir, model_dir_name
from rzero_bench.evaluate.provenance import package_versions
from rzero_bench.evaluate.rescore import rescore
from rzero_bench.evaluate.run import evaluate
from rzero_bench.protocols import plan_tasks, select_variant
from rzero_bench.records import EvalResult
from rzero_bench.tasks import _offline, has_local_data, local_path

OUTPUT_FORMATS = ("rzero", "lm-eval")


MODEL_ARGS = (
    "dtype",
    "revision",
    "trust_remote_code",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "concurrency",
    "device",
    "threads",
    "timeout",
)
_GEN_ALIASES = {"max_new_tokens": "max_gen_toks", "max_tokens": "max_gen_toks"}


def _scalar(text: str) -> Any:
    low = text.strip().lower()
    if low in {"true", "false"}:
        return low == "true"
    if low in {"none", "null"}:
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text.strip()


def parse_kv(text: str | None, flag: str) -> dict[str, Any]:
    """``a=1,b=x`` -> {"a": 1, "b": "x"} (numbers and true/false typed), as lm-eval's --model-args.

    >>> parse_kv("dtype=bfloat16,tensor_parallel_size=2,trust_remote_code=true", "--model-args")
    {'dtype': 'bfloat16', 'tensor_parallel_size': 2, 'trust_remote_code': True}
    """
    out: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag}: expected key=value pairs separated by commas, got {part.strip()!r}")
        out[key.strip()] = _scalar(value)
    return out


def parse_gen_kwargs(text: str | None) -> dict[str, Any]:
    """``--gen-kwargs`` -> a ``generation_kwargs`` change (``until`` takes ``|``-separated strings)."""
    from rzero_bench.tasks import GenerationKwargs

    raw = parse_kv(text, "--gen-kwargs")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = _GEN_ALIASES.get(k, k)
        if key not in GenerationKwargs.model_fields:
            allowed = ", ".join([*GenerationKwargs.model_fields, *_GEN_ALIASES])
            raise UserError(f"--gen-kwargs: unknown key {k!r}; allowed: {allowed}")
        out[key] = [s for s in str(v).split("|") if s] if key == "until" else v
    return out


def eval_command(
    *,
    model: str,
    suite: str | None = None,
    tasks: str | None = None,
    backend: str = "hf",
    limit: int | None = None,
    seed: int = 0,
    max_tokens: int | None = None,
    output: Path | None = None,
    data_dir: Path | None = None,
    tasks_dir: Path | None = None,
    include_paths: Sequence[Path] = (),
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    batch_size: int = 16,
    max_k: int | None = None,
    max_samples: int | None = None,
    protocol: str | None = None,
    model_args: str | None = None,
    gen_kwargs: str | None = None,
    apply_chat_template: bool = True,
    system_instruction: str | None = None,
    output_format: str = "rzero",
    model_label: str | None = None,
    judge: str | None = None,
    judge_api_key_env: str = "OPENAI_API_KEY",
) -> dict[str, EvalResult]:
    """`rzero-bench eval`: resolve tasks, check the data is reachable, load the model once, evaluate."""
    from rzero_bench.backends import make_generator

    if output_format not in OUTPUT_FORMATS:
        raise UserError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    planned = plan_tasks(
        suite=suite,
        tasks=tasks,
        protocol=protocol,
        tasks_dir=tasks_dir,
        include_paths=include_paths,
        system_instruction=system_instruction,
        gen_kwargs=parse_gen_kwargs(gen_kwargs),
    )
    explicit = {t.strip() for t in (tasks or "").split(",") if t.strip()}
    # fail fast, before loading the model
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise UserError(f"data directory not found: {data_dir} (check --data-dir / RZERO_DATA_DIR)")
        for et in planned:
            variant = select_variant(et, data_dir, hub_ok=False)
            if (et.task in explicit or not suite) and not has_local_data(variant.spec, data_dir):
                raise UserError(
                    f"task {et.task}: local data file {local_path(variant.spec, data_dir)} not found; add it to the"
                    " data directory (`rzero-bench data fetch`) or drop the task"
                )
    elif _offline() and any(et.spec.metadata.processor != "generated" for et in planned):
        raise UserError(
            f"no benchmark data: offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE set) and no local mirror; build one"
            f" where the hub is reachable (`rzero-bench data fetch --data-dir DIR`) and set RZERO_DATA_DIR=DIR"
            f" (needed for {', '.join(t.task for t in planned)})"
        )
    options: dict[str, Any] = {}
    extra = parse_kv(model_args, "--model-args")
    unknown = sorted(set(extra) - set(MODEL_ARGS))
    if unknown:
        raise UserError(
            f"--model-args: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(MODEL_ARGS)}"
        )
    if backend == "hf":
        options["batch_size"] = batch_size
    elif backend == "openai":
        if not base_url:
            raise UserError("the openai backend needs --base-url, e.g. http://127.0.0.1:8000/v1")
        options.update(base_url=base_url, api_key_env=api_key_env)
    options.update(extra)
    if not apply_chat_template and backend not in ("hf", "vllm"):
        raise UserError(
            f"--no-apply-chat-template needs a local backend (hf, vllm); the {backend} backend talks to a"
            " chat server that applies its own template"
        )
    judge_obj = None
    if judge:
        from rzero_bench.judge import make_judge

        judge_obj = make_judge(judge, api_key_env=judge_api_key_env)
    out = output if output is not None else Path("results") / model_dir_name(model, model_label)
    check_output_dir(out, model)
    with make_generator(backend, model, **options) as gen:
        results = evaluate(
            gen,
            planned,
            out,
            data_dir=data_dir,
            limit=limit,
            seed=seed,
            max_tokens=max_tokens,
            progress=True,
            skip_missing=bool(suite),
            max_k=max_k if max_k is not None else max_samples,
            apply_chat_template=apply_chat_template,
            judge=judge_obj,
        )
    if output_format == "lm-eval":
        from rzero_bench.interop.lmeval import write_lmeval_results

        variants = [v for et in planned for v in (et, et.fallback) if v is not None]
        specs = {
            t: next((v.spec for v in variants if v.task_hash == r.task_hash), None)
            for t, r in results.items()
        }
        path = write_lmeval_results(
            out,
            results,
            model=model,
            model_args=model_args,
            gen_kwargs=gen_kwargs,
            backend=backend,
            limit=limit,
            seed=seed,
            specs=specs,
            apply_chat_template=apply_chat_template,
            system_instruction=system_instruction,
            package_versions=package_versions(),
        )
        print(f"wrote {path}", file=sys.stderr)
    return results


def rescore_command(*, results_dir: Path, tasks_dir: Path | None = None) -> dict[str, EvalResult]:
    """`rzero-bench rescore`: re-grade saved samples and print the new metrics."""
    from rich.console import Console

    results = rescore(results_dir, tasks_dir)
    console = Console()
    for name, r in results.items():
        parts = ", ".join(f"{m} {100 * v['value']:.2f}±{100 * v['stderr']:.2f}" for m, v in r.metrics.items())
        console.print(f"{name}: {parts}", highlight=False)
    return results
