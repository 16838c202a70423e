"""Stage 7, ``eval``: solver_k on the benchmark suite (R-Zero, arXiv 2508.05004, §4: the solver
is what is measured; iteration 0 is the base model).

Reads: the checkpoint solver_k (``iter_<k>/solver``; the base model for k = 0) and the local
benchmark data of the configured tasks (``eval.tasks``, else ``eval.suite``).
Writes: ``results/iter_<k>/`` under the run directory: ``<task>.json``
(:class:`~rzero_bench.records.EvalResult`), ``<task>.samples.jsonl`` and ``eval_summary.md``.

Resume per task: each task's files are written atomically when the task ends, so a stage that
failed part-way (a server error on one item, a killed run) keeps the tasks it finished; on the
rerun :func:`finished_results` keeps those whose result is readable, has its samples and matches
the model and the task definition (hash), and only the other tasks are evaluated.

Protocol and metrics (greedy ``acc``; sampled ``mean@k``, ``maj@k``, ``pass@k``) are
:func:`rzero_bench.evaluate.evaluate`'s; ``eval.limit`` evaluates a subsample seeded with
``eval.seed``. A task without local data is skipped (and listed in the summary) only when a suite
is evaluated, never when ``eval.tasks`` names it. The manifest records ``scores`` (task → metric →
value), the model evaluated and the tokens generated.

Dev split (``eval.dev_tasks``, used to pick the best iteration and raise the collapse alarm, see
:mod:`rzero_bench.report.collapse`): the same checkpoint is also scored on each dev task into
``dev_results/iter_<k>/``. A dev task that is not a test task (``micro_arith_dev``) is used whole;
a test task named there gives up a seeded slice of ``eval.dev_size`` items (``eval.dev_seed``,
stratified like ``--limit``) that is scored only on the dev side and left out of its test results.
The manifest records ``dev_scores`` and the slice sizes (``dev_slices``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rzero_bench.errors import RZeroError
from rzero_bench.records import EvalResult
from rzero_bench.stages._context import IterPaths, StageContext, StageResult


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Evaluate solver_k and write ``results/iter_<k>``."""
    from rzero_bench.evaluate import evaluate
    from rzero_bench.protocols import plan_tasks

    ev = ctx.cfg.eval
    # the tasks under the run's protocol (eval.protocol), shipped plus eval.include_paths
    specs = plan_tasks(suite=ev.suite if not ev.tasks else None, tasks=ev.tasks, protocol=ev.protocol,
                       include_paths=ev.include_paths)
    dev_specs, dev_only, slices = dev_plan(ctx, {s.task for s in specs})
    out = ctx.run_dir / "results" / f"iter_{p.k}"
    dev_out = ctx.run_dir / "dev_results" / f"iter_{p.k}"
    model = ctx.model_for("solver", p.k)
    done = finished_results(out, specs, model=model)  # an earlier attempt's finished tasks are kept
    todo = [s for s in specs if s.task not in done]
    if dev_out.exists():
        shutil.rmtree(dev_out)
    with ctx.generator(model) as gen:
        results = evaluate(
            gen,
            todo,
            out,
            data_dir=ctx.data_dir,
            limit=ev.limit,
            seed=ev.seed,
            max_tokens=ev.max_tokens,
            progress=not ctx.quiet,
            skip_missing=not ev.tasks,
            max_samples=ev.max_samples,
            exclude=slices or None,
        )
        dev = (
            evaluate(
                gen,
                dev_specs,
                dev_out,
                data_dir=ctx.data_dir,
                seed=ev.seed,
                max_tokens=ev.max_tokens,
                progress=not ctx.quiet,
                max_samples=ev.max_samples,
                exclude=dev_only or None,
            )
            if dev_specs
            else {}
        )
    if done:
        results = merge_resumed(ctx, out, specs, done, results)
    scores = {t: {m: v["value"] for m, v in r.metrics.items()} for t, r in results.items()}
    info: StageResult = {
        "outputs": [p.rel(out)],
        "scores": scores,
        "model": model,
        "tokens": sum(r.tokens for r in results.values()) + sum(r.tokens for r in dev.values()),
    }
    if dev_specs:
        info["outputs"].append(p.rel(dev_out))
        info["dev_scores"] = {t: {m: v["value"] for m, v in r.metrics.items()} for t, r in dev.items()}
        info["dev_slices"] = {t: len(ids) for t, ids in slices.items()}
    return info


def dev_plan(
    ctx: StageContext, test_tasks: set[str]
) -> tuple[list[Any], dict[str, set[str]], dict[str, set[str]]]:
    """(dev task specs, doc ids each dev evaluation leaves out, doc ids each test evaluation leaves out).

    A dev task that is also a test task is cut into a seeded slice: the slice is scored on the dev
    side only (the dev evaluation leaves out the rest), the test evaluation leaves out the slice.
    """
    from rzero_bench.tasks import DOC_ID_KEY, load_docs, resolve_tasks, subsample

    ev = ctx.cfg.eval
    if not ev.dev_tasks:
        return [], {}, {}
    dev_specs = resolve_tasks(tasks=ev.dev_tasks)
    dev_only: dict[str, set[str]] = {}
    slices: dict[str, set[str]] = {}
    for spec in dev_specs:
        if spec.task not in test_tasks:
            continue
        docs = load_docs(spec, data_dir=ctx.data_dir)
        chosen = subsample(docs, ev.dev_size, ev.dev_seed, spec.metadata.category_field)
        slices[spec.task] = {str(d[DOC_ID_KEY]) for d in chosen}
        dev_only[spec.task] = {str(d[DOC_ID_KEY]) for d in docs} - slices[spec.task]
    return dev_specs, dev_only, slices


def finished_results(out: Path, specs: Sequence[Any], *, model: str) -> dict[str, EvalResult]:
    """Tasks of ``specs`` already finished in ``out`` by an earlier attempt at this stage.

    A task counts as finished when ``<task>.json`` loads as an :class:`EvalResult` for ``model`` with
    the task's current hash and ``<task>.samples.jsonl`` has one row per item it counts. Every other
    file in ``out`` (unfinished or stale tasks, the summary) is removed.
    """
    from rzero_bench.store import read_jsonl

    done: dict[str, EvalResult] = {}
    if not out.is_dir():
        return done
    for spec in specs:
        rf, sf = out / f"{spec.task}.json", out / f"{spec.task}.samples.jsonl"
        try:
            result = EvalResult.from_dict(json.loads(rf.read_text(encoding="utf-8")))
            rows = read_jsonl(sf)
        except (OSError, ValueError, TypeError, KeyError, RZeroError):
            continue
        if (
            result.task_hash == spec.hash
            and result.model == str(model)
            and len(rows) == int(result.counts.get("items", -1))
        ):
            done[spec.task] = result
    keep = {f"{t}{suffix}" for t in done for suffix in (".json", ".samples.jsonl")}
    for f in out.iterdir():
        if f.name not in keep:
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    return done


def merge_resumed(
    ctx: StageContext,
    out: Path,
    specs: Sequence[Any],
    done: dict[str, EvalResult],
    new: dict[str, EvalResult],
) -> dict[str, EvalResult]:
    """The finished and the new results in task order; ``eval_summary.md`` rewritten over all of them."""
    from rzero_bench.evaluate import _summary  # the summary evaluate() writes, over every task
    from rzero_bench.tasks import has_local_data, local_path

    results = {s.task: done.get(s.task) or new[s.task] for s in specs if s.task in done or s.task in new}
    skipped = {
        s.task: (
            f"no local data ({local_path(s, ctx.data_dir)} not found)"
            if ctx.data_dir is not None and not has_local_data(s, ctx.data_dir)
            else "no items"
        )
        for s in specs
        if s.task not in results
    }
    _summary(results, skipped, out, None)
    ctx.log(f"  resumed: {len(done)} task(s) kept from the earlier attempt ({', '.join(done)})")
    return results
