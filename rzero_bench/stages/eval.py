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
    from rzero_bench.tasks import resolve_tasks

    ev = ctx.cfg.eval
    specs = resolve_tasks(suite=ev.suite if not ev.tasks else None, tasks=ev.tasks)
    out = ctx.run_dir / "results" / f"iter_{p.k}"
    model = ctx.model_for("solver", p.k)
    done = finished_results(out, specs, model=model)  # an earlier attempt's finished tasks are kept
    todo = [s for s in specs if s.task not in done]
    with ctx.generator(model) as gen:
        results = evaluate(gen, todo, out, data_dir=ctx.data_dir, limit=ev.limit, seed=ev.seed,
                           max_tokens=ev.max_tokens, progress=not ctx.quiet,
                           skip_missing=not ev.tasks, max_samples=ev.max_samples)
    if done:
        results = merge_resumed(ctx, out, specs, done, results)
    scores = {t: {m: v["value"] for m, v in r.metrics.items()} for t, r in results.items()}
    return {"outputs": [p.rel(out)], "scores": scores, "model": model,
            "tokens": sum(r.tokens for r in results.values())}


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
        if (result.task_hash == spec.hash and result.model == str(model)
                and len(rows) == int(result.counts.get("items", -1))):
            done[spec.task] = result
    keep = {f"{t}{suffix}" for t in done for suffix in (".json", ".samples.jsonl")}
    for f in out.iterdir():
        if f.name not in keep:
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    return done


def merge_resumed(ctx: StageContext, out: Path, specs: Sequence[Any], done: dict[str, EvalResult],
                  new: dict[str, EvalResult]) -> dict[str, EvalResult]:
    """The finished and the new results in task order; ``eval_summary.md`` rewritten over all of them."""
    from rzero_bench.evaluate import _summary  # the summary evaluate() writes, over every task
    from rzero_bench.tasks import has_local_data, local_path

    results = {s.task: done.get(s.task) or new[s.task] for s in specs if s.task in done or s.task in new}
    skipped = {s.task: (f"no local data ({local_path(s, ctx.data_dir)} not found)"
                        if ctx.data_dir is not None and not has_local_data(s, ctx.data_dir) else "no items")
               for s in specs if s.task not in results}
    _summary(results, skipped, out, None)
    ctx.log(f"  resumed: {len(done)} task(s) kept from the earlier attempt ({', '.join(done)})")
    return results
