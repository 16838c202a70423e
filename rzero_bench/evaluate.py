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

import json
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from rzero_bench.errors import RunStateError, UserError
from rzero_bench.metrics import majority_correct, mean_at_k, metric_from_scores, pass_at_k
from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT
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
    resolve_tasks,
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
]

SUMMARY_FILE = "eval_summary.md"
NO_ANSWER = Verdict(correct=False, status="ok", method="no_answer")

# BBEH's own answer forms, used when there is no \boxed{} (its prompt asks for "The answer is: X").
_BBEH_PREFIXES = re.compile(r"(?:the\s+final\s+answer\s+is|the\s+answer\s+is|final\s+answer)\s*[:：]?\s*", re.IGNORECASE)


# ----------------------------------------------------------------------------- helpers
def build_messages(spec: TaskSpec, doc: dict[str, Any]) -> list[dict[str, str]]:
    """System + user chat messages for one item."""
    system = spec.metadata.system_prompt if spec.metadata.system_prompt is not None else SOLVER_SYSTEM_PROMPT
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": spec.render_text(doc)})
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


def _grade_pairs(
    refs: Sequence[str], preds: Sequence[str | None], kind: str
) -> list[Verdict]:
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
    counts = {"items": len(rows), "completions": 0, "no_answer": 0, "timeouts": 0, "unparseable": 0, "errors": 0}
    for row in rows:
        counts["completions"] += len(row["completions"])
        counts["no_answer"] += sum(1 for a in row["answers"] if a is None)
        for v in row["verdicts"]:
            status = v.get("status", "ok")
            if status == "timeout":
                counts["timeouts"] += 1
            elif status == "unparseable":
                counts["unparseable"] += 1
            elif status == "error":
                counts["errors"] += 1
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


# ----------------------------------------------------------------------------- one task
def evaluate_task(
    generator: Any,
    spec: TaskSpec,
    docs: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    max_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    max_samples: int | None = None,
) -> tuple[EvalResult, list[dict[str, Any]]]:
    """Generate, extract, grade and score one task over ``docs``; returns (result, sample rows)."""
    start = time.perf_counter()
    passes = spec.passes(max_tokens, seed, max_samples)
    kind = spec.metadata.grader
    prompts: list[list[dict[str, str]]] = []
    refs: list[str] = []
    letters: list[str | None] = []
    for doc in docs:
        prompts.append(build_messages(spec, doc))
        refs.append(spec.render_target(doc))
        choices = spec.render_choices(doc)
        letters.append("".join(choices) if choices else None)

    requests: list[GenerationRequest] = []
    for p in passes:
        params = SamplingParams(
            n=p.n, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
            max_tokens=p.max_tokens, stop=p.stop, seed=p.seed,
        )
        for doc, msgs in zip(docs, prompts, strict=True):
            requests.append(GenerationRequest(messages=tuple(msgs), params=params, id=f"{spec.task}/{doc[DOC_ID_KEY]}/{p.name}"))
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
    flat_refs = [refs[di] for di in range(n_docs) for _ in answers[di]]
    flat_preds = [a for di in range(n_docs) for a in answers[di]]
    flat_verdicts = _grade_pairs(flat_refs, flat_preds, kind)

    rows: list[dict[str, Any]] = []
    pos = 0
    for di, doc in enumerate(docs):
        vs = flat_verdicts[pos : pos + len(answers[di])]
        pos += len(answers[di])
        rows.append(
            {
                "doc_id": str(doc[DOC_ID_KEY]),
                "prompt_hash": sha256_text(json.dumps(prompts[di], sort_keys=True, ensure_ascii=False)),
                "reference": refs[di],
                "completions": completions[di],
                "answers": answers[di],
                "verdicts": [v.to_dict() for v in vs],
                "correct": [v.correct is True for v in vs],
                "subtask": doc.get(CATEGORY_KEY),
            }
        )

    layout = _layout(passes)
    metrics, subtasks = compute_metrics(rows, layout, kind)
    result = EvalResult(
        task=spec.task,
        task_version=spec.version,
        task_hash=spec.hash,
        model=str(getattr(generator, "model_id", "")),
        backend=str(getattr(generator, "name", "")),
        metrics=metrics,
        sampling={
            "grader": kind,
            "system_prompt": build_messages(spec, {**docs[0]})[0]["content"] if docs else SOLVER_SYSTEM_PROMPT,
            "chat_template": str(getattr(generator, "chat_template_name", "") or "backend"),
            "passes": layout,
        },
        counts=_counts(rows, finish),
        boxed_rate=_boxed_rate(rows),
        tokens=tokens,
        wall_time_s=round(time.perf_counter() - start, 3),
        versions=package_versions(),
        seed=seed,
        subtasks=subtasks,
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
def evaluate(
    generator: Any,
    specs: Sequence[TaskSpec],
    out_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    max_tokens: int | None = None,
    progress: bool = True,
    skip_missing: bool = False,
    max_samples: int | None = None,
) -> dict[str, EvalResult]:
    """Evaluate every task with one (already loaded) generator; writes results under ``out_dir``.

    ``skip_missing``: a task whose local file is absent from ``data_dir`` is skipped with a warning
    (listed in ``eval_summary.md``) instead of failing; used for suites (SuperGPQA has no mirror).
    ``max_samples`` caps k of sampled metrics for quick runs (labels then read e.g. ``mean@4``).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=not progress)
    results: dict[str, EvalResult] = {}
    skipped: dict[str, str] = {}
    bar: Any = (
        Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        if progress
        else nullcontext()
    )
    with bar:
        for spec in specs:
            if data_dir is not None and skip_missing and not has_local_data(spec, data_dir):
                reason = f"no local data ({local_path(spec, data_dir)} not found)"
                skipped[spec.task] = reason
                console.print(f"[yellow]warning[/yellow]: skipping {spec.task}: {reason}")
                continue
            docs = load_docs(spec, data_dir=data_dir, limit=limit, seed=seed)
            if not docs:
                skipped[spec.task] = "no items"
                continue
            tid = bar.add_task(spec.task, total=None) if progress else None

            def _total(n: int, tid: Any = tid) -> None:
                if progress:
                    bar.update(tid, total=n)

            def _advance(k: int, tid: Any = tid) -> None:
                if progress:
                    bar.advance(tid, k)

            result, rows = evaluate_task(generator, spec, docs, seed=seed, max_tokens=max_tokens, progress=_advance, on_total=_total, max_samples=max_samples)
            if limit is not None:
                result = EvalResult.from_dict({**result.to_dict(), "limit": limit})
            atomic_write_jsonl(out / f"{spec.task}.samples.jsonl", rows)
            atomic_write_json(out / f"{spec.task}.json", result.to_dict())
            results[spec.task] = result
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
                table.add_row(name, m, f"{100 * v['value']:.2f}", f"{100 * v['stderr']:.2f}", str(int(v["n"])),
                              str(r.counts.get("no_answer", 0)), f"{r.wall_time_s:.1f}")
        for name, reason in skipped.items():
            table.add_row(name, "[yellow]skipped[/yellow]", "-", "-", "-", "-", reason)
        console.print(table)


# ----------------------------------------------------------------------------- rescore
def rescore(results_dir: str | os.PathLike[str], tasks_dir: str | os.PathLike[str] | None = None) -> dict[str, EvalResult]:
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
            raise RunStateError(f"{rf} is missing; cannot rescore {sf.name} without its result file") from None
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
            row["verdicts"] = [v.to_dict() for v in vs]
            row["correct"] = [v.correct is True for v in vs]
        metrics, subtasks = compute_metrics(rows, result["sampling"]["passes"], kind)
        counts = {**result.get("counts", {}), **_counts(rows)}
        new = EvalResult.from_dict(
            {**result, "metrics": metrics, "subtasks": subtasks, "counts": counts, "boxed_rate": _boxed_rate(rows),
             "versions": {**package_versions(), "rescored": "true"}}
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
        raise RunStateError(f"{path.with_name(result.get('task', '?') + '.json')} has no pass layout; re-run eval") from None
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not _ROW_KEYS <= set(row):
            raise RunStateError(f"{path}:{i} is not a sample record (expected keys {sorted(_ROW_KEYS)}); the file is corrupted")
        if not isinstance(row["completions"], list) or len(row["completions"]) != width or len(row["answers"]) != width:
            raise RunStateError(f"{path}:{i} has {len(row['completions'])} completions, expected {width}; the file is corrupted")
        if not isinstance(row["reference"], str) or not all(isinstance(c, str) for c in row["completions"]):
            raise RunStateError(f"{path}:{i} has a non-text reference or completion; the file is corrupted")
    n = result.get("counts", {}).get("items")
    if n is not None and n != len(rows):
        raise RunStateError(f"{path} has {len(rows)} items but its result says {n}; the file is truncated or corrupted")


# ----------------------------------------------------------------------------- commands
def _model_name(model: str) -> str:
    name = Path(model.rstrip("/")).name or model
    return re.sub(r"[^A-Za-z0-9._\-]+", "_", name)


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
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    batch_size: int = 16,
    max_samples: int | None = None,
) -> dict[str, EvalResult]:
    """`rzero-bench eval`: resolve tasks, check the data is reachable, load the model once, evaluate."""
    from rzero_bench.backends import make_generator

    specs = resolve_tasks(suite=suite, tasks=tasks, tasks_dir=tasks_dir)
    explicit = {t.strip() for t in (tasks or "").split(",") if t.strip()}
    # fail fast, before loading the model
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise UserError(f"data directory not found: {data_dir} (check --data-dir / RZERO_DATA_DIR)")
        for spec in specs:
            if (spec.task in explicit or not suite) and not has_local_data(spec, data_dir):
                raise UserError(
                    f"task {spec.task}: local data file {local_path(spec, data_dir)} not found; add it to the data"
                    " directory or drop the task"
                )
    elif _offline():
        raise UserError(
            f"the hub is unreachable offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE set) and no local data: set"
            f" RZERO_DATA_DIR or pass --data-dir (needed for {', '.join(s.task for s in specs)})"
        )
    options: dict[str, Any] = {}
    if backend == "hf":
        options["batch_size"] = batch_size
    elif backend == "openai":
        if not base_url:
            raise UserError("the openai backend needs --base-url, e.g. http://127.0.0.1:8000/v1")
        options.update(base_url=base_url, api_key_env=api_key_env)
    out = output if output is not None else Path("results") / _model_name(model)
    with make_generator(backend, model, **options) as gen:
        return evaluate(gen, specs, out, data_dir=data_dir, limit=limit, seed=seed, max_tokens=max_tokens,
                        progress=True, skip_missing=bool(suite), max_samples=max_samples)


def rescore_command(*, results_dir: Path, tasks_dir: Path | None = None) -> dict[str, EvalResult]:
    """`rzero-bench rescore`: re-grade saved samples and print the new metrics."""
    from rich.console import Console

    results = rescore(results_dir, tasks_dir)
    console = Console()
    for name, r in results.items():
        parts = ", ".join(f"{m} {100 * v['value']:.2f}±{100 * v['stderr']:.2f}" for m, v in r.metrics.items())
        console.print(f"{name}: {parts}", highlight=False)
    return results
