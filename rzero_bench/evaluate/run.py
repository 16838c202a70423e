"""The core loop: tasks x one generator -> :class:`~rzero_bench.records.EvalResult` + sample rows.

Protocol (R-Zero §4 / Table 1-2): each item becomes a system + user chat (:mod:`.messages`);
``acc`` is one greedy completion per item; sampled metrics (``mean@k``, ``maj@k``, ``pass@k``)
come from a separate pass of ``k`` truly sampled completions with the declared temperature /
top_p. Every request of every pass goes to the generator in one call (longest prompts first), each
with its own seed; answers are extracted (:mod:`.answers`), graded and scored (:mod:`.scoring`),
and the result records the pass layout, seeds rule, package versions and data source
(:mod:`.provenance`). :func:`evaluate` runs many tasks with one loaded generator and writes each
task's files as it finishes (:mod:`.output`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rzero_bench.errors import DataError, RunStateError
from rzero_bench.evaluate.answers import extract_answer, random_letter
from rzero_bench.evaluate.messages import SEED_RULE, build_messages, request_seed
from rzero_bench.evaluate.output import _summary, write_task
from rzero_bench.evaluate.provenance import data_source, package_versions
from rzero_bench.evaluate.scoring import (
    _apply_fallback,
    _boxed_rate,
    _counts,
    _grade_pairs,
    _run_judge,
    compute_metrics,
    judged_metrics,
)
from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT
from rzero_bench.protocols import EvalTask, apply_protocol, fallback_on_error, select_variant
from rzero_bench.records import EvalResult, GenerationRequest, SamplingParams
from rzero_bench.store import sha256_text
from rzero_bench.tasks import (
    CATEGORY_KEY,
    DOC_ID_KEY,
    SamplingPass,
    TaskSpec,
    _offline,
    has_local_data,
    load_docs,
    local_path,
)


def evaluate_task(
    generator: Any,
    task: TaskSpec | EvalTask,
    docs: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    max_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    max_k: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    apply_chat_template: bool = True,
    judge: Any = None,
) -> tuple[EvalResult, list[dict[str, Any]]]:
    """Generate, extract, grade and score one task over ``docs``; returns (result, sample rows).

    ``task`` is a plain task (the ``paper`` protocol) or an :class:`EvalTask` carrying its protocol
    and rules. Each item's request in each pass has its own seed (:func:`request_seed`).
    """
    et = task if isinstance(task, EvalTask) else EvalTask(spec=task)
    spec = et.spec
    start = time.perf_counter()
    passes = spec.passes(max_tokens, seed, max_k)
    kind = spec.metadata.grader
    prompts: list[list[dict[str, str]]] = []
    refs: list[str] = []
    letters: list[str | None] = []
    for doc in docs:
        prompts.append(build_messages(spec, doc, chat=apply_chat_template))
        refs.append(spec.render_target(doc))
        choices = spec.render_choices(doc)
        letters.append("".join(choices) if choices else None)

    requests: list[GenerationRequest] = []
    for p in passes:
        for doc, msgs in zip(docs, prompts, strict=True):
            doc_id = str(doc[DOC_ID_KEY])
            params = SamplingParams(
                n=p.n,
                temperature=p.temperature,
                top_p=p.top_p,
                top_k=p.top_k,
                max_tokens=p.max_tokens,
                stop=p.stop,
                seed=request_seed(seed, spec.task, doc_id, p.name),
            )
            requests.append(
                GenerationRequest(messages=tuple(msgs), params=params, id=f"{spec.task}/{doc_id}/{p.name}")
            )
    # longest prompts first: batches hold similar lengths and memory peaks early
    order = sorted(range(len(requests)), key=lambda i: -sum(len(m["content"]) for m in requests[i].messages))
    if on_total is not None:
        on_total(len(requests))
    generated = generator.generate([requests[i] for i in order], progress=progress)
    if len(generated) != len(requests):
        raise RunStateError(f"backend returned {len(generated)} generations for {len(requests)} requests")
    gens: list[Any] = [None] * len(requests)
    for pos, i in enumerate(order):
        gens[i] = generated[pos]

    n_docs = len(docs)
    completions: list[list[str]] = [[] for _ in docs]
    finish: list[str] = []
    tokens = 0
    cut_docs: set[int] = set()
    for pi, _p in enumerate(passes):
        for di in range(n_docs):
            g = gens[pi * n_docs + di]
            completions[di].extend(g.texts)
            finish.extend(g.finish_reasons)
            tokens += sum(g.completion_tokens)
            if g.prompt_cut:
                cut_docs.add(di)

    answers = [[extract_answer(c, kind, letters[di]) for c in completions[di]] for di in range(n_docs)]
    fallback: list[list[bool]] | None = None
    if et.unanswered == "random_letter":
        fallback = [[a is None for a in answers[di]] for di in range(n_docs)]
        for di, doc in enumerate(docs):
            answers[di] = [
                random_letter(seed, spec.task, str(doc[DOC_ID_KEY]), j) if a is None else a
                for j, a in enumerate(answers[di])
            ]
    flat_refs = [refs[di] for di in range(n_docs) for _ in answers[di]]
    flat_preds = [a for di in range(n_docs) for a in answers[di]]
    flat_verdicts = _grade_pairs(flat_refs, flat_preds, kind)

    rows: list[dict[str, Any]] = []
    pos = 0
    for di, doc in enumerate(docs):
        vs = flat_verdicts[pos : pos + len(answers[di])]
        pos += len(answers[di])
        if fallback is not None:
            vs = _apply_fallback(vs, fallback[di])
        row = {
            "doc_id": str(doc[DOC_ID_KEY]),
            "prompt_hash": sha256_text(json.dumps(prompts[di], sort_keys=True, ensure_ascii=False)),
            "reference": refs[di],
            "completions": completions[di],
            "answers": answers[di],
            "verdicts": [v.to_dict() for v in vs],
            "correct": [v.correct is True for v in vs],
            "subtask": doc.get(CATEGORY_KEY),
        }
        if fallback is not None:
            row["fallback"] = fallback[di]
        rows.append(row)

    layout = _layout(passes)
    metrics, subtasks = compute_metrics(rows, layout, kind)
    judge_summary: dict[str, Any] = {}
    if judge is not None and kind == "math":  # a separate +judge metric, never the headline
        _run_judge(judge, spec, docs, rows)
        extra, extra_sub, judge_summary = judged_metrics(rows, layout, kind, str(getattr(judge, "spec", judge)))
        metrics.update(extra)
        for name, ms in extra_sub.items():
            subtasks.setdefault(name, {}).update(ms)
    system = (
        build_messages(spec, {**docs[0]})[0] if docs else {"role": "system", "content": SOLVER_SYSTEM_PROMPT}
    )
    result = EvalResult(
        task=spec.task,
        task_version=spec.version,
        task_hash=et.task_hash,
        model=str(getattr(generator, "model_id", "")),
        backend=str(getattr(generator, "name", "")),
        metrics=metrics,
        sampling={
            "grader": kind,
            "system_prompt": system["content"] if system["role"] == "system" else "",
            "chat_template": str(getattr(generator, "chat_template_name", "") or "backend")
            if apply_chat_template
            else "none (plain prompt)",
            "passes": layout,
            "seeds": SEED_RULE,
            "unanswered": et.unanswered,
        },
        counts={**_counts(rows, finish), **({"prompt_cut": len(cut_docs)} if cut_docs else {})},
        boxed_rate=_boxed_rate(rows),
        tokens=tokens,
        wall_time_s=round(time.perf_counter() - start, 3),
        package_versions=package_versions(),
        seed=seed,
        subtasks=subtasks,
        protocol=et.protocol,
        warnings=list(et.warnings),
        data_source=data_source(spec, data_dir),
        judge=judge_summary,
    )
    return result, rows


def _layout(passes: Sequence[SamplingPass]) -> list[dict[str, Any]]:
    out, off = [], 0
    for p in passes:
        d = p.to_dict()
        d["offset"] = off
        off += p.n
        out.append(d)
    return out


def _load_variant(
    et: EvalTask, data_dir: str | os.PathLike[str] | None, limit: int | None, seed: int
) -> tuple[EvalTask, list[dict[str, Any]]]:
    """The variant of ``et`` whose data loads (its fallback, with the warning, when it does not)."""
    et = select_variant(et, data_dir, hub_ok=not _offline())
    try:
        return et, load_docs(et.spec, data_dir=data_dir, limit=limit, seed=seed)
    except DataError as e:
        fb = fallback_on_error(et, e)
        if fb is None:
            raise
        return fb, load_docs(fb.spec, data_dir=data_dir, limit=limit, seed=seed)


def evaluate(
    generator: Any,
    specs: Sequence[TaskSpec | EvalTask],
    out_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    max_tokens: int | None = None,
    progress: bool = True,
    skip_missing: bool = False,
    max_k: int | None = None,
    max_samples: int | None = None,
    protocol: str | None = None,
    exclude: dict[str, set[str]] | None = None,
    apply_chat_template: bool = True,
    judge: Any = None,
) -> dict[str, EvalResult]:
    """Evaluate every task with one (already loaded) generator; writes results under ``out_dir``.

    ``exclude`` maps a task to doc ids left out of it (a run's dev slice, never a test item).

    ``specs`` are plain tasks or planned :class:`EvalTask` s; ``protocol`` (``paper`` | ``official``)
    applies a protocol to the plain ones (they are ``paper`` otherwise).
    ``skip_missing``: a task whose local file is absent from ``data_dir`` (and has no fallback) is
    skipped with a warning (listed in ``eval_summary.md``) instead of failing; used for suites
    (SuperGPQA has no mirror). ``max_k`` caps k of sampled metrics for quick runs (labels then read
    e.g. ``mean@4``); ``max_samples`` is its old name. ``apply_chat_template=False`` sends plain
    prompts (:func:`build_messages`); ``judge`` (:class:`rzero_bench.judge.Judge`) adds the
    two-sided ``<metric>+judge`` re-check to math tasks.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if max_k is None:
        max_k = max_samples
    plain = [s for s in specs if not isinstance(s, EvalTask)]
    if plain or protocol is not None:
        planned_by_name = {t.task: t for t in apply_protocol(plain, protocol)} if plain else {}
        items = [s if isinstance(s, EvalTask) else planned_by_name[s.task] for s in specs]
    else:
        items = list(specs)  # type: ignore[arg-type]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # in a log (stderr not a terminal) the summary table keeps its full width instead of 80 columns
    width = None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 1000
    console = Console(stderr=True, quiet=not progress, width=width)
    results: dict[str, EvalResult] = {}
    skipped: dict[str, str] = {}
    bar: Any = (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        if progress
        else nullcontext()
    )
    with bar:
        for et in items:
            variant = select_variant(et, data_dir, hub_ok=not _offline())
            if data_dir is not None and skip_missing and not has_local_data(variant.spec, data_dir):
                reason = f"no local data ({local_path(variant.spec, data_dir)} not found)"
                skipped[et.task] = reason
                console.print(f"[yellow]warning[/yellow]: skipping {et.task}: {reason}")
                continue
            et, docs = _load_variant(et, data_dir, limit, seed)
            if exclude and et.task in exclude:
                docs = [d for d in docs if str(d[DOC_ID_KEY]) not in exclude[et.task]]
            for w in et.warnings:
                console.print(f"[yellow]warning[/yellow]: {et.task}: {w}")
            if not docs:
                skipped[et.task] = "no items"
                continue
            tid = bar.add_task(et.task, total=None) if progress else None

            def _total(n: int, tid: Any = tid) -> None:
                if progress:
                    bar.update(tid, total=n)

            def _advance(k: int, tid: Any = tid) -> None:
                if progress:
                    bar.advance(tid, k)

            result, rows = evaluate_task(
                generator,
                et,
                docs,
                seed=seed,
                max_tokens=max_tokens,
                progress=_advance,
                on_total=_total,
                max_k=max_k,
                data_dir=data_dir,
                apply_chat_template=apply_chat_template,
                judge=judge,
            )
            if limit is not None:
                result = EvalResult.from_dict({**result.to_dict(), "limit": limit})
            write_task(out, et.task, result, rows)
            results[et.task] = result
    _summary(results, skipped, out, console if progress else None)
    return results
