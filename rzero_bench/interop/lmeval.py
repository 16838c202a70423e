"""lm-eval results files: read theirs, write ours in their schema (``eval --output-format lm-eval``).

lm-eval (0.4.x, ``EvaluationTracker.save_results_aggregated``) writes
``<output_path>/<model_name_sanitized>/results_<ISO time, ':' as '-'>.json``:

- ``results``: task -> {``alias``, ``<metric>,<filter>``: value, ``<metric>_stderr,<filter>``: se};
- ``configs``: task -> its task config (dataset, templates, generation_kwargs, metric_list, metadata);
- ``versions``: task -> the task's version (not package versions); ``n-shot``: task -> shots;
  ``higher_is_better``: task -> metric -> bool; ``n-samples``: task -> {original, effective};
- ``config``: model, model_args, batch_size, limit, gen_kwargs, seeds; plus ``model_name``,
  ``date``, ``total_evaluation_time_seconds``, ``system_instruction``, ``chat_template``, ...

and ``samples_<task>_<same time>.jsonl`` with one record per item (``--log_samples``).

Our file uses the same keys with the same meanings. Our tasks are named ``rzero_<task>`` in it
(``gsm8k``, ``aime24``, ``mmlu_pro`` are lm-eval built-ins with other prompts or data), with the
alias ``<task> (rzero-bench)``; metrics keep our names with lm-eval's ``none`` filter
(``acc,none`` = greedy accuracy, ``mean@32,none``, ...). ``rzero_bench_version`` marks the file
as ours, so readers never count it twice next to the ``<task>.json`` files it was made from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rzero_bench.interop import ForeignResult, map_task
from rzero_bench.store import atomic_write_json, atomic_write_jsonl, read_jsonl

__all__ = ["parse_lmeval", "write_lmeval_results", "lmeval_task_name"]

_NOT_METRICS = {"alias", "name", "sample_len", "sample_count", " "}


def lmeval_task_name(task: str) -> str:
    """Our task's name inside an lm-eval-format file (never an lm-eval built-in's name)."""
    return f"rzero_{task}"


def _version(v: Any) -> Any:
    """A task version as lm-eval writes it (a number when it is one: "2" -> 2.0)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def parse_lmeval(
    data: Mapping[str, Any], path: Path, our_tasks: frozenset[str] | None = None, *, harness: str = "lm-eval"
) -> ForeignResult:
    """The tasks of an lm-eval results file that map to ours (see :data:`rzero_bench.interop.MAPPING`)."""
    cfg: dict[str, Any] = data["config"] if isinstance(data.get("config"), dict) else {}
    model_args = cfg.get("model_args")
    model = str(
        data.get("model_name")
        or (model_args.get("pretrained") if isinstance(model_args, dict) else "")
        or model_args
        or cfg.get("model")
        or ""
    )
    version = str(data.get("rzero_bench_version" if harness == "rzero-bench" else "lm_eval_version") or "")
    out = ForeignResult(harness=harness, version=version, model=model, path=path)
    n_samples: dict[str, Any] = data["n-samples"] if isinstance(data.get("n-samples"), dict) else {}
    for name, vals in (data.get("results") or {}).items():
        ft = map_task("lm-eval", str(name), our_tasks)
        if ft is None or not isinstance(vals, dict):
            out.skipped.append(str(name))
            continue
        keys = [
            k for k in vals if k not in _NOT_METRICS and "_stderr," not in k and _num(vals[k]) is not None
        ]
        metric = next((k for k in ft.metrics if k in vals and _num(vals[k]) is not None), None)
        if metric is None and not ft.metrics and keys:
            metric = keys[0]
        if metric is None or ft.task in out.tasks:
            out.skipped.append(str(name))
            continue
        m, _, filt = metric.partition(",")
        se = _num(vals.get(f"{m}_stderr,{filt}" if filt else f"{m}_stderr")) or 0.0
        ns: dict[str, Any] = n_samples[name] if isinstance(n_samples.get(name), dict) else {}
        n = ns.get("effective") or vals.get("sample_len") or 0
        out.tasks[ft.task] = {
            "task": str(name),
            "metric": metric,
            "value": float(vals[metric]),
            "stderr": float(se),
            "n": int(n),
            "note": ft.note,
        }
    return out


_METRIC_MEANING = {
    "acc": "accuracy of one greedy generation (its answer graded against the reference; not lm-eval's "
    "log-likelihood acc)",
    "mean@": "mean correctness of k sampled generations per item",
    "maj@": "correctness of the majority answer of k sampled generations",
    "pass@": "unbiased pass@k over the sampled generations",
}


def _describe(metric: str) -> str:
    """What one of our metric names means (lm-eval readers know other meanings for ``acc``)."""
    base, _, judged = metric.partition("+")
    text = next((v for k, v in _METRIC_MEANING.items() if base == k or (k.endswith("@") and base.startswith(k))), base)
    return text + ("; re-checked by an LLM judge (both ways)" if judged else "")


def _task_config(task: str, result: Mapping[str, Any], spec: Any | None) -> dict[str, Any]:
    """lm-eval-shaped config of one of our tasks (from its definition when known, else the result)."""
    sampling = result.get("sampling", {})
    passes = sampling.get("passes", [])
    main = passes[0] if passes else {}
    cfg: dict[str, Any] = {"task": lmeval_task_name(task), "task_alias": f"{task} (rzero-bench)"}
    if spec is not None:
        cfg.update(
            dataset_path=spec.dataset_path,
            dataset_name=spec.dataset_name,
            test_split=spec.test_split,
            doc_to_text=spec.doc_to_text,
            doc_to_target=spec.doc_to_target,
            doc_to_choice=spec.doc_to_choice,
        )
    cfg.update(
        output_type="generate_until",
        num_fewshot=0,
        repeats=int(main.get("n", 1)),
        generation_kwargs={
            "until": list(main.get("stop", [])),
            "do_sample": float(main.get("temperature", 0)) > 0,
            "temperature": main.get("temperature", 0.0),
            "top_p": main.get("top_p", 1.0),
            "max_gen_toks": main.get("max_tokens"),
        },
        metric_list=[
            {"metric": name, "aggregation": "mean", "higher_is_better": True, "description": _describe(name)}
            for name in result["metrics"]
        ],
        metadata={
            "version": result["task_version"],
            "rzero_task_hash": result["task_hash"],
            "protocol": result.get("protocol", "paper"),
            "grader": sampling.get("grader"),
            "system_prompt": sampling.get("system_prompt"),
            "passes": passes,
            "data_source": result.get("data_source", {}),
        },
    )
    return cfg


def write_lmeval_results(
    out_dir: str | Path,
    results: Mapping[str, Any],
    *,
    model: str,
    backend: str,
    model_args: str | None = None,
    gen_kwargs: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    apply_chat_template: bool = True,
    system_instruction: str | None = None,
    specs: Mapping[str, Any] | None = None,
    package_versions: Mapping[str, str] | None = None,
    when: datetime | None = None,
) -> Path:
    """Write ``results_<timestamp>.json`` (and ``samples_rzero_<task>_<timestamp>.jsonl``) into ``out_dir``.

    ``results``: task -> :class:`~rzero_bench.records.EvalResult` (or its dict), as ``evaluate``
    returns them; ``specs``: task -> the task definition evaluated (for the configs);
    ``package_versions``: the installed versions recorded with the results.
    """
    out = Path(out_dir)
    stamp = (when or datetime.now()).isoformat().replace(":", "-")
    res: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    n_shot: dict[str, int] = {}
    hib: dict[str, dict[str, bool]] = {}
    n_samples: dict[str, dict[str, int]] = {}
    wall = 0.0
    for task, r in results.items():
        d = r.to_dict() if hasattr(r, "to_dict") else dict(r)
        name = lmeval_task_name(task)
        n = int(d.get("counts", {}).get("items", 0))
        entry: dict[str, Any] = {"alias": f"{task} (rzero-bench)"}
        for metric, v in d["metrics"].items():
            entry[f"{metric},none"] = v["value"]
            entry[f"{metric}_stderr,none"] = v["stderr"]
        res[name] = entry
        configs[name] = _task_config(task, d, (specs or {}).get(task))
        versions[name] = _version(d["task_version"])
        n_shot[name] = 0
        hib[name] = {metric: True for metric in d["metrics"]}
        n_samples[name] = {"original": n, "effective": n}
        wall += float(d.get("wall_time_s", 0.0))
        samples = out / f"{task}.samples.jsonl"
        if samples.exists():
            atomic_write_jsonl(
                out / f"samples_{name}_{stamp}.jsonl",
                [_sample(row, list(d["metrics"])) for row in read_jsonl(samples)],
            )
    pkg = dict(package_versions or {})
    doc = {
        "results": res,
        "group_subtasks": {name: [] for name in res},
        "configs": configs,
        "versions": versions,
        "n-shot": n_shot,
        "higher_is_better": hib,
        "n-samples": n_samples,
        "config": {
            "model": backend,
            "model_args": model_args or "",
            "batch_size": None,
            "device": None,
            "use_cache": None,
            "limit": limit,
            "bootstrap_iters": 0,
            "gen_kwargs": gen_kwargs,
            "random_seed": seed,
            "numpy_seed": seed,
            "torch_seed": seed,
            "fewshot_seed": seed,
        },
        "date": time.time(),
        "model_name": model,
        "model_name_sanitized": model.replace("/", "__"),
        "system_instruction": system_instruction,
        "chat_template": "model" if apply_chat_template else None,
        "total_evaluation_time_seconds": str(round(wall, 3)),
        "rzero_bench_version": pkg.get("rzero-bench", ""),
        "package_versions": pkg,
    }
    path = out / f"results_{stamp}.json"
    atomic_write_json(path, doc)
    return path


def _sample(row: Mapping[str, Any], metrics: Sequence[str]) -> dict[str, Any]:
    """One lm-eval-style sample record from one of our sample rows."""
    correct = [bool(c) for c in row.get("correct", [])]
    rec: dict[str, Any] = {
        "doc_id": row["doc_id"],
        "target": row["reference"],
        "resps": [[c] for c in row["completions"]],
        "filtered_resps": list(row["answers"]),
        "filter": "none",
        "metrics": list(metrics),
        "prompt_hash": row.get("prompt_hash"),
        "correct": correct,
    }
    if correct and "acc" in metrics:
        rec["acc"] = float(correct[0])
    return json.loads(json.dumps(rec))
