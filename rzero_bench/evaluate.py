"""Evaluation: tasks x one generator -> EvalResult JSON + per-item sample records; rescoring.

Protocol (R-Zero §4 / Table 1-2): the system prompt "Please reason step by step, and put your final
answer within \\boxed{}." (or a task's own), the item rendered by the task's ``doc_to_text`` as the
user turn, rendered through the model's chat template by the backend (``render_chat`` falls back
to a declared plain format). ``acc`` is one greedy completion per item; sampled metrics
(``mean@k``, ``maj@k``, ``pass@k``) come from a separate pass of ``k`` truly sampled completions
with the declared temperature / top_p. Answers are the last ``\\boxed{}`` (letters for multiple
choice; BBEH also accepts its "The answer is:" form), graded by :func:`rzero_bench.grading.grade_many`
with each distinct (reference, answer) pair graded once.

Files per task in ``out_dir`` (written atomically): ``<task>.json`` = :class:`EvalResult` and
``<task>.samples.jsonl`` with one line per item ``{doc_id, prompt_hash, reference, completions,
answers, verdicts, correct, subtask}``. Completions of all passes are concatenated in pass order;
the layout (``sampling["passes"]``: name, n, offset, params) is recorded in the result, so
:func:`rescore` can recompute every metric from the samples alone. A human summary goes to
``eval_summary.md`` (tasks skipped for missing local data are listed there with the reason).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rzero_bench.errors import DataError, RunStateError, UserError
from rzero_bench.metrics import majority_correct, mean_at_k, metric_from_scores, pass_at_k
from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT
from rzero_bench.protocols import EvalTask, apply_protocol, fallback_on_error, plan_tasks, select_variant
from rzero_bench.records import EvalResult, GenerationRequest, SamplingParams, Verdict
from rzero_bench.store import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    read_jsonl,
    sha256_text,
)
from rzero_bench.tasks import (
    CATEGORY_KEY,
    CHOICE_LETTERS,
    DOC_ID_KEY,
    SamplingPass,
    TaskSpec,
    _offline,
    has_local_data,
    load_docs,
    load_task,
    local_path,
)

__all__ = [
    "evaluate",
    "evaluate_task",
    "extract_answer",
    "build_messages",
    "compute_metrics",
    "rescore",
    "eval_command",
    "rescore_command",
    "package_versions",
    "request_seed",
    "model_dir_name",
    "parse_kv",
    "parse_gen_kwargs",
]

SUMMARY_FILE = "eval_summary.md"
OUTPUT_FORMATS = ("rzero", "lm-eval")
NO_ANSWER = Verdict(correct=False, status="ok", method="no_answer")
RANDOM_LETTERS = CHOICE_LETTERS[:10]  # the official scripts draw the fallback letter from A-J
SEED_RULE = "sha256('<seed>:<task>:<doc_id>:<pass>')[:4] (31 bits); sample j draws its own stream from (request seed, j)"

# BBEH's own answer forms, used when there is no \boxed{} (its prompt asks for "The answer is: X").
_BBEH_PREFIXES = re.compile(
    r"(?:the\s+final\s+answer\s+is|the\s+answer\s+is|final\s+answer)\s*[:：]?\s*", re.IGNORECASE
)


# ----------------------------------------------------------------------------- helpers
def build_messages(spec: TaskSpec, doc: dict[str, Any], *, chat: bool = True) -> list[dict[str, str]]:
    """System + user chat messages for one item.

    ``chat=False`` (``--no-apply-chat-template``): one finished plain-text prompt instead, the
    system prompt and the question separated by a blank line, which backends send without a chat
    template (role ``prompt``, :data:`rzero_bench.backends.base.RAW_PROMPT_ROLE`).
    """
    system = spec.metadata.system_prompt if spec.metadata.system_prompt is not None else SOLVER_SYSTEM_PROMPT
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": spec.render_text(doc)})
    if not chat:
        return [{"role": "prompt", "content": "\n\n".join(m["content"] for m in messages)}]
    return messages


def extract_answer(text: str, kind: str, letters: str | None = None) -> str | None:
    """The answer a completion gives: a letter for ``choice``, else the last ``\\boxed{}`` content."""
    from rzero_bench.parsing import extract_choice, last_boxed

    if kind == "choice":
        return extract_choice(text, letters or CHOICE_LETTERS[:10])
    boxed = last_boxed(text)
    if boxed is not None or kind != "bbeh":
        return boxed.strip() if boxed is not None else None
    matches = list(_BBEH_PREFIXES.finditer(text))
    if not matches:
        return None
    tail = text[matches[-1].end() :].strip()
    tail = tail.splitlines()[0].strip() if tail else ""
    return tail.rstrip(".").strip() or None


def request_seed(seed: int, task: str, doc_id: str, pass_name: str) -> int:
    """The seed of one item's request in one pass: distinct per (task, item, pass), fixed by ``seed``.

    Backends draw sample ``j`` of a request from a stream keyed by (request seed, j), so every
    sample of every item has its own stream (with one seed for all items, sample j of every item
    would share one stream). 31 bits, accepted by every backend and server.
    """
    digest = hashlib.sha256(f"{seed}:{task}:{doc_id}:{pass_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def random_letter(seed: int, task: str, doc_id: str, index: int) -> str:
    """The official fallback for an unparsed multiple-choice answer: a letter from A-J, seeded per sample."""
    return random.Random(f"rzero-fallback:{seed}:{task}:{doc_id}:{index}").choice(RANDOM_LETTERS)


def package_versions() -> dict[str, str]:
    """Versions of the packages that affect results (without importing heavy ones)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("rzero-bench", "math-verify", "datasets", "transformers", "torch", "vllm", "jinja2"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _grade_pairs(refs: Sequence[str], preds: Sequence[str | None], kind: str) -> list[Verdict]:
    """Grade each (reference, prediction) once; None predictions are 'no_answer' without grading."""
    from rzero_bench.grading import grade_many

    unique: dict[tuple[str, str], int] = {}
    for r, p in zip(refs, preds, strict=True):
        if p is not None:
            unique.setdefault((r, p), len(unique))
    keys = list(unique)
    verdicts = grade_many([k[0] for k in keys], [k[1] for k in keys], kind=kind) if keys else []  # type: ignore[arg-type]
    out: list[Verdict] = []
    for r, p in zip(refs, preds, strict=True):
        out.append(NO_ANSWER if p is None else verdicts[unique[(r, p)]])
    return out


def _classes(answers: Sequence[str | None], kind: str) -> list[list[int]]:
    """Equivalence classes (indices into ``answers``) of the non-empty answers."""
    present = [i for i, a in enumerate(answers) if a is not None]
    if not present:
        return []
    texts = [answers[i] for i in present]
    if len(set(texts)) == 1:
        return [present]
    from rzero_bench.grading import equivalence_classes

    local = equivalence_classes([str(t) for t in texts], kind=kind)  # type: ignore[arg-type]
    return [[present[j] for j in cls] for cls in local]


def compute_metrics(
    rows: Sequence[dict[str, Any]], passes: Sequence[dict[str, Any]], kind: str
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Metrics (and per-subtask metrics) from sample rows and the recorded pass layout."""

    def scores_for(subset: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for p in passes:
            off, n = int(p["offset"]), int(p["n"])
            for m in p["metrics"]:
                name, k = m["name"], int(m.get("k", 1))
                per_item: list[float] = []
                for row in subset:
                    correct = [bool(c) for c in row["correct"][off : off + n]]
                    if name == "acc":
                        per_item.append(mean_at_k(correct))
                    elif name == "mean@k":
                        per_item.append(mean_at_k(correct[:k]))
                    elif name == "pass@k":
                        per_item.append(pass_at_k(len(correct), sum(correct), k))
                    elif name == "maj@k":
                        answers = row["answers"][off : off + k]
                        per_item.append(float(majority_correct(_classes(answers, kind), correct[:k])))
                label = name if name == "acc" else name.replace("@k", f"@{k}")
                out[label] = metric_from_scores(per_item).to_dict()
        return out

    metrics = scores_for(rows)
    subtasks: dict[str, dict[str, dict[str, float]]] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("subtask") is not None:
            groups.setdefault(str(row["subtask"]), []).append(row)
    for name in sorted(groups):
        subtasks[name] = scores_for(groups[name])
    return metrics, subtasks


def _counts(rows: Sequence[dict[str, Any]], finish: Sequence[str] = ()) -> dict[str, int]:
    counts = {
        "items": len(rows),
        "completions": 0,
        "no_answer": 0,
        "timeouts": 0,
        "unparseable": 0,
        "errors": 0,
    }
    fallback = fallback_correct = 0
    for row in rows:
        counts["completions"] += len(row["completions"])
        flags = row.get("fallback") or [False] * len(row["answers"])
        counts["no_answer"] += sum(1 for a, f in zip(row["answers"], flags, strict=True) if a is None or f)
        fallback += sum(1 for f in flags if f)
        fallback_correct += sum(1 for f, c in zip(flags, row["correct"], strict=True) if f and c)
        for v in row["verdicts"]:
            status = v.get("status", "ok")
            if status == "timeout":
                counts["timeouts"] += 1
            elif status == "unparseable":
                counts["unparseable"] += 1
            elif status == "error":
                counts["errors"] += 1
    if any("fallback" in row for row in rows):
        counts["random_fallback"] = fallback
        counts["random_fallback_correct"] = fallback_correct
    if finish:
        counts["truncated"] = sum(1 for f in finish if f == "length")
    return counts


def _boxed_rate(rows: Sequence[dict[str, Any]]) -> float:
    from rzero_bench.parsing import last_boxed

    total = boxed = 0
    for row in rows:
        for c in row["completions"]:
            total += 1
            boxed += last_boxed(c) is not None
    return boxed / total if total else 0.0


def _apply_fallback(verdicts: list[Verdict], flags: list[bool]) -> list[Verdict]:
    """Mark the verdicts of random-letter answers (method ``random_fallback``), keeping their grade."""
    return [
        Verdict(correct=v.correct, status=v.status, method="random_fallback", detail=v.detail) if f else v
        for v, f in zip(verdicts, flags, strict=True)
    ]


def data_source(spec: TaskSpec, data_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Where the items came from: the mirror file and its sha256 (with the hub id and revision it was
    fetched from, when the mirror's SOURCES.json records it), the generator, or the hub id@revision."""
    from rzero_bench.datafetch import mirror_digest, mirror_source

    meta = spec.metadata
    if meta.processor == "generated":
        return {"kind": "generated", "generator": meta.generator, "kwargs": dict(meta.generator_kwargs)}
    if data_dir is not None:
        path = local_path(spec, data_dir)
        out: dict[str, Any] = {"kind": "mirror", "file": meta.local_file,
                               "sha256": mirror_digest(path) if path.exists() else None}
        if path.is_dir():  # e.g. BBEH's upstream task.json files: hash of the sorted (name, sha256) list
            out["files"] = sum(1 for p in path.rglob("*") if p.is_file())
        fetched = mirror_source(data_dir, meta.local_file)
        if fetched is not None:
            out["fetched_from"] = {k: fetched.get(k) for k in ("hub", "config", "split", "revision",
                                                              "resolved_revision", "source", "sha256")}
        return out
    revision = getattr(meta, "revision", None)
    hub = spec.dataset_path + (f"@{revision}" if revision else "")
    return {
        "kind": "hub",
        "id": hub,
        "config": spec.dataset_name,
        "split": spec.test_split,
        "revision": revision,
    }


def _run_judge(judge: Any, spec: TaskSpec, docs: Sequence[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Ask ``judge`` about every verdict that could be wrong; stores ``row["judge"]`` (None = not asked)."""
    from rzero_bench.judge import needs_judge

    asked: list[tuple[int, int]] = []
    triples: list[tuple[str, str, str]] = []
    for di, (doc, row) in enumerate(zip(docs, rows, strict=True)):
        row["judge"] = [None] * len(row["answers"])
        for j, (a, v) in enumerate(zip(row["answers"], row["verdicts"], strict=True)):
            if needs_judge(a, v):
                asked.append((di, j))
                triples.append((spec.render_text(doc), row["reference"], str(a)))
    for (di, j), jv in zip(asked, judge.judge(triples), strict=True):
        rows[di]["judge"][j] = {"correct": jv.correct, "reply": jv.reply}


def judged_metrics(
    rows: Sequence[dict[str, Any]], passes: Sequence[dict[str, Any]], kind: str, judge_spec: str
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]], dict[str, Any]]:
    """``<metric>+judge`` metrics (and per subtask) from the rows' judge decisions, and the flip counts.

    A sample's judged correctness is the judge's YES/NO where it answered, else the grader's verdict.
    """
    judged_rows = []
    n = {"checked": 0, "flipped_to_correct": 0, "flipped_to_wrong": 0, "unparsed": 0}
    for row in rows:
        decisions = row.get("judge") or [None] * len(row["correct"])
        correct = []
        for c, d in zip(row["correct"], decisions, strict=True):
            if d is None:
                correct.append(bool(c))
                continue
            n["checked"] += 1
            if d.get("correct") is None:
                n["unparsed"] += 1
                correct.append(bool(c))
                continue
            n["flipped_to_correct"] += int(d["correct"] and not c)
            n["flipped_to_wrong"] += int(bool(c) and not d["correct"])
            correct.append(bool(d["correct"]))
        judged_rows.append({**row, "correct": correct})
    metrics, subtasks = compute_metrics(judged_rows, passes, kind)
    rename = lambda ms: {f"{k}+judge": v for k, v in ms.items()}  # noqa: E731
    summary: dict[str, Any] = {"judge": judge_spec, **n}
    return rename(metrics), {name: rename(ms) for name, ms in subtasks.items()}, summary


# ----------------------------------------------------------------------------- one task
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
    for pi, _p in enumerate(passes):
        for di in range(n_docs):
            g = gens[pi * n_docs + di]
            completions[di].extend(g.texts)
            finish.extend(g.finish_reasons)
            tokens += sum(g.completion_tokens)

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
        counts=_counts(rows, finish),
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


# ----------------------------------------------------------------------------- many tasks
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
            atomic_write_jsonl(out / f"{et.task}.samples.jsonl", rows)
            atomic_write_json(out / f"{et.task}.json", result.to_dict())
            results[et.task] = result
    _summary(results, skipped, out, console if progress else None)
    return results


def _summary(results: dict[str, EvalResult], skipped: dict[str, str], out: Path, console: Any) -> None:
    lines = ["| task | metric | value | stderr | n | no answer | wall s |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for m, v in r.metrics.items():
            lines.append(
                f"| {name} | {m} | {100 * v['value']:.2f} | {100 * v['stderr']:.2f} | {int(v['n'])} |"
                f" {r.counts.get('no_answer', 0)} | {r.wall_time_s:.1f} |"
            )
    for name, reason in skipped.items():
        lines.append(f"| {name} | skipped | - | - | - | - | {reason} |")
    atomic_write_text(out / SUMMARY_FILE, "\n".join(lines) + "\n")
    if console is not None:
        from rich.table import Table

        table = Table(title=f"results in {out}")
        for col in ("task", "metric", "value %", "± stderr", "n", "no answer", "wall s"):
            table.add_column(col)
        for name, r in results.items():
            for m, v in r.metrics.items():
                table.add_row(
                    name,
                    m,
                    f"{100 * v['value']:.2f}",
                    f"{100 * v['stderr']:.2f}",
                    str(int(v["n"])),
                    str(r.counts.get("no_answer", 0)),
                    f"{r.wall_time_s:.1f}",
                )
        for name, reason in skipped.items():
            table.add_row(name, "[yellow]skipped[/yellow]", "-", "-", "-", "-", reason)
        console.print(table)


# ----------------------------------------------------------------------------- rescore
def rescore(
    results_dir: str | os.PathLike[str], tasks_dir: str | os.PathLike[str] | None = None
) -> dict[str, EvalResult]:
    """Re-grade every ``<task>.samples.jsonl`` in ``results_dir`` and rewrite metrics (no model).

    Answers are re-extracted from the completions (math/exact/bbeh) with the current parser, except
    multiple choice, whose saved letters are re-graded (the valid letters depend on the item).
    All files are read and checked before anything is written: a corrupted file leaves every
    original untouched.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise UserError(f"results directory not found: {root}")
    sample_files = sorted(root.glob("*.samples.jsonl"))
    if not sample_files:
        raise UserError(f"no *.samples.jsonl in {root}; is it a results directory written by `eval`?")
    loaded: list[tuple[Path, dict[str, Any], list[dict[str, Any]]]] = []
    for sf in sample_files:
        task = sf.name.removesuffix(".samples.jsonl")
        rf = root / f"{task}.json"
        try:
            result = json.loads(rf.read_text(encoding="utf-8"))
            EvalResult.from_dict(result)
        except FileNotFoundError:
            raise RunStateError(
                f"{rf} is missing; cannot rescore {sf.name} without its result file"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as e:
            raise RunStateError(f"{rf} is corrupted ({type(e).__name__}); re-run eval for {task}") from None
        rows = read_jsonl(sf)
        _check_rows(rows, sf, result)
        loaded.append((rf, result, rows))

    out: dict[str, EvalResult] = {}
    for rf, result, rows in loaded:
        kind = result["sampling"].get("grader")
        if kind is None:
            kind = load_task(result["task"], tasks_dir).metadata.grader
        if kind != "choice":
            for row in rows:
                row["answers"] = [extract_answer(c, kind) for c in row["completions"]]
        flat_refs = [row["reference"] for row in rows for _ in row["answers"]]
        flat_preds = [a for row in rows for a in row["answers"]]
        verdicts = _grade_pairs(flat_refs, flat_preds, kind)
        pos = 0
        for row in rows:
            vs = verdicts[pos : pos + len(row["answers"])]
            pos += len(row["answers"])
            if "fallback" in row:
                vs = _apply_fallback(vs, [bool(f) for f in row["fallback"]])
            row["verdicts"] = [v.to_dict() for v in vs]
            row["correct"] = [v.correct is True for v in vs]
        metrics, subtasks = compute_metrics(rows, result["sampling"]["passes"], kind)
        judge_summary = result.get("judge") or {}
        if any("judge" in row for row in rows):  # the saved judge decisions over the new verdicts
            extra, extra_sub, judge_summary = judged_metrics(
                rows, result["sampling"]["passes"], kind, str(judge_summary.get("judge", ""))
            )
            metrics.update(extra)
            for name, ms in extra_sub.items():
                subtasks.setdefault(name, {}).update(ms)
        counts = {**result.get("counts", {}), **_counts(rows)}
        old = EvalResult.from_dict(result).to_dict()  # schema-1 files come back with package_versions
        new = EvalResult.from_dict(
            {
                **old,
                "metrics": metrics,
                "subtasks": subtasks,
                "counts": counts,
                "boxed_rate": _boxed_rate(rows),
                "judge": judge_summary,
                "package_versions": {**package_versions(), "rescored": "true"},
            }
        )
        atomic_write_jsonl(rf.with_name(f"{result['task']}.samples.jsonl"), rows)
        atomic_write_json(rf, new.to_dict())
        out[result["task"]] = new
    return out


_ROW_KEYS = {"doc_id", "prompt_hash", "reference", "completions", "answers", "verdicts", "correct", "subtask"}


def _check_rows(rows: list[Any], path: Path, result: dict[str, Any]) -> None:
    try:
        passes = result["sampling"]["passes"]
        width = sum(int(p["n"]) for p in passes)
    except (KeyError, TypeError, ValueError):
        raise RunStateError(
            f"{path.with_name(result.get('task', '?') + '.json')} has no pass layout; re-run eval"
        ) from None
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not _ROW_KEYS <= set(row):
            raise RunStateError(
                f"{path}:{i} is not a sample record (expected keys {sorted(_ROW_KEYS)}); the file is corrupted"
            )
        if (
            not isinstance(row["completions"], list)
            or len(row["completions"]) != width
            or len(row["answers"]) != width
        ):
            raise RunStateError(
                f"{path}:{i} has {len(row['completions'])} completions, expected {width}; the file is corrupted"
            )
        if not isinstance(row["reference"], str) or not all(isinstance(c, str) for c in row["completions"]):
            raise RunStateError(f"{path}:{i} has a non-text reference or completion; the file is corrupted")
    n = result.get("counts", {}).get("items")
    if n is not None and n != len(rows):
        raise RunStateError(
            f"{path} has {len(rows)} items but its result says {n}; the file is truncated or corrupted"
        )


# ----------------------------------------------------------------------------- commands
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


def model_dir_name(model: str, label: str | None = None) -> str:
    """The default results directory name of a model (``results/<name>``), distinct per checkpoint.

    A hub id ``org/name`` gives ``org__name`` (lm-eval's convention). A local checkpoint gives its
    last two path parts and a hash of its absolute path (``iter_2__solver-<8 hex>``), so two
    checkpoints both called ``solver`` never share a directory. ``label`` (e.g. ``tiny:s``) replaces
    the path parts for built models.
    """
    p = Path(model).expanduser()
    if p.exists():
        resolved = p.resolve()
        parts = [label] if label else [x for x in resolved.parts[-2:] if x not in ("/", "")]
        stem = "__".join(re.sub(r"[^A-Za-z0-9._\-]+", "_", x) for x in parts)
        return f"{stem}-{sha256_text(str(resolved))[:8]}"
    return re.sub(r"[^A-Za-z0-9._\-]+", "_", model.strip("/").replace("/", "__"))


def check_output_dir(out: Path, model: str) -> None:
    """Refuse to write into a directory holding another model's results (never overwrite them)."""
    if not out.is_dir():
        return
    for f in sorted(out.glob("*.json")):
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "task_hash" in data and data.get("model") not in (None, model):
            raise UserError(
                f"{out} already holds results of another model ({data.get('model')}, {f.name}); refusing to"
                " overwrite them: pass -o/--output with another directory"
            )


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
