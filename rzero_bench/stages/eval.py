"""Stage 7, ``eval``: solver_k on the benchmark suite (R-Zero, arXiv 2508.05004, §4: the solver
is what is measured; iteration 0 is the base model).

Reads: the checkpoint solver_k (``iter_<k>/solver``; the base model for k = 0) and the local
benchmark data of the configured tasks (``eval.tasks``, else ``eval.suite``).
Writes: ``results/iter_<k>/`` under the run directory: ``<task>.json``
(:class:`~rzero_bench.records.EvalResult`), ``<task>.samples.jsonl`` and ``eval_summary.md``.

Protocol and metrics (greedy ``acc``; sampled ``mean@k``, ``maj@k``, ``pass@k``) are
:func:`rzero_bench.evaluate.evaluate`'s; ``eval.limit`` evaluates a subsample seeded with
``eval.seed``. A task without local data is skipped (and listed in the summary) only when a suite
is evaluated, never when ``eval.tasks`` names it. The manifest records ``scores`` (task → metric →
value), the model evaluated and the tokens generated.
"""

from __future__ import annotations

import shutil

from rzero_bench.stages._context import IterPaths, StageContext, StageResult


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Evaluate solver_k and write ``results/iter_<k>``."""
    from rzero_bench.evaluate import evaluate
    from rzero_bench.tasks import resolve_tasks

    ev = ctx.cfg.eval
    specs = resolve_tasks(suite=ev.suite if not ev.tasks else None, tasks=ev.tasks)
    out = ctx.run_dir / "results" / f"iter_{p.k}"
    if out.exists():
        shutil.rmtree(out)
    model = ctx.model_for("solver", p.k)
    with ctx.generator(model) as gen:
        results = evaluate(gen, specs, out, data_dir=ctx.data_dir, limit=ev.limit, seed=ev.seed,
                           max_tokens=ev.max_tokens, progress=not ctx.quiet,
                           skip_missing=not ev.tasks, max_samples=ev.max_samples)
    scores = {t: {m: v["value"] for m, v in r.metrics.items()} for t, r in results.items()}
    return {"outputs": [p.rel(out)], "scores": scores, "model": model,
            "tokens": sum(r.tokens for r in results.values())}
