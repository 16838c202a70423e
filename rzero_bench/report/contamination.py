"""Benchmark contamination of generated questions: shared word n-grams after normalization.

A self-play run that "improves" a benchmark by writing that benchmark's problems is contaminated.
This module applies the n-gram rule that GPT-3 (Brown et al. 2020, appendix C) and
lm-evaluation-harness's decontamination tooling use for training data: a generated question
*hits* a benchmark item when the two share at least one run of ``n`` consecutive normalized
tokens (``n = 13`` by default, configurable). An item shorter than ``n`` tokens hits when its
whole token sequence occurs inside the question (otherwise a short item could never be found).

Normalization (:func:`normalize_tokens`): Unicode NFKC, lower case, ``× · ÷ −`` mapped to
``* * / -``; a LaTeX command keeps its name (``\\frac`` becomes ``frac``); tokens are maximal runs of
letters and digits, and each math symbol ``+ - * / = < > ^ ( ) [ ] { } | ! %`` is a token of its
own (arithmetic questions differ only in them); all other punctuation and whitespace separate
tokens and are dropped. So "What is 23+45?" and "what is 23 + 45" are the same five tokens.

For every hit the report gives the longest shared span: the longest run of consecutive tokens the
question and the item have in common (at least ``n``, or the whole short item), with its text.

Only the question texts of ``iter_<k>/questions.jsonl`` written by the challenger are checked
(probe questions are benchmark items by design and are counted apart). The benchmark side is the
text the model sees for each item (the task's ``doc_to_text`` rendered on it), read through
:mod:`rzero_bench.tasks` from ``--data-dir``/``RZERO_DATA_DIR`` (tasks without local data are listed
as skipped).

Memory: the index holds the n-grams of the questions (thousands), never of the benchmarks
(millions for BBEH and MMLU-Pro); benchmark items are streamed past it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.store import atomic_write_json, read_json, read_jsonl

__all__ = [
    "DEFAULT_N",
    "BenchmarkItem",
    "Hit",
    "benchmark_items",
    "contamination_command",
    "contaminated_ids",
    "contamination_report",
    "find_hits",
    "longest_common_span",
    "normalize_tokens",
]

DEFAULT_N = 13
SCHEMA_VERSION = 1
_MAP = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})
_TOKEN_RE = re.compile(r"[^\W_]+|[+\-*/=<>^()\[\]{}|!%]")
_LATEX_CMD_RE = re.compile(r"\\([A-Za-z]+)")


def normalize_tokens(text: str) -> list[str]:
    """The normalized token sequence of ``text`` (see the module docstring).

    >>> normalize_tokens("What is 23+45?")
    ['what', 'is', '23', '+', '45']
    >>> normalize_tokens(r"Find $\\frac{1}{2}$, please.")
    ['find', 'frac', '{', '1', '}', '{', '2', '}', 'please']
    """
    s = unicodedata.normalize("NFKC", str(text)).translate(_MAP)
    s = _LATEX_CMD_RE.sub(r" \1 ", s).lower()
    return _TOKEN_RE.findall(s)


def _ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i : i + n])


def longest_common_span(a: Sequence[str], b: Sequence[str]) -> tuple[int, int]:
    """Length of the longest run of consecutive tokens shared by ``a`` and ``b``, and its start in ``a``.

    >>> longest_common_span("x a b c y".split(), "a b c".split())
    (3, 1)
    """
    where: dict[str, list[int]] = {}
    for j, t in enumerate(b):
        where.setdefault(t, []).append(j)
    best, best_end = 0, -1
    prev: dict[int, int] = {}
    for i, t in enumerate(a):
        cur: dict[int, int] = {}
        for j in where.get(t, ()):
            length = prev.get(j - 1, 0) + 1
            cur[j] = length
            if length > best:
                best, best_end = length, i
        prev = cur
    return best, (best_end - best + 1 if best else 0)


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark item's identity and normalized text."""

    task: str
    doc_id: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    """A generated question (by index) sharing a span of at least ``n`` tokens with a benchmark item."""

    question: int
    task: str
    doc_id: str
    span: int  # tokens in the longest shared run
    span_text: str  # those tokens joined by spaces

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "doc_id": self.doc_id, "span": self.span, "span_text": self.span_text}


def find_hits(questions: Sequence[str], items: Iterable[BenchmarkItem], *, n: int = DEFAULT_N) -> list[list[Hit]]:
    """Per question (same order), every benchmark item it hits under the n-gram rule.

    Items of ``n`` tokens or more hit on any shared n-gram; shorter items when their whole token
    sequence occurs in the question. Each hit carries the longest shared span.
    """
    if n < 1:
        raise UserError(f"the n-gram length must be at least 1, got {n}")
    q_tokens = [normalize_tokens(t) for t in questions]
    index: dict[tuple[str, ...], list[int]] = {}
    for qi, toks in enumerate(q_tokens):
        for g in set(_ngrams(toks, n)):
            index.setdefault(g, []).append(qi)
    short: dict[int, dict[tuple[str, ...], list[BenchmarkItem]]] = {}
    pairs: list[tuple[int, BenchmarkItem]] = []
    for item in items:
        if not item.tokens:
            continue
        if len(item.tokens) >= n:
            matched: set[int] = set()
            for g in _ngrams(item.tokens, n):
                found = index.get(g)
                if found:
                    matched.update(found)
            pairs.extend((qi, item) for qi in sorted(matched))
        else:
            short.setdefault(len(item.tokens), {}).setdefault(item.tokens, []).append(item)
    for length, table in short.items():
        for qi, toks in enumerate(q_tokens):
            seen: set[tuple[str, ...]] = set()
            for g in _ngrams(toks, length):
                if g in table and g not in seen:
                    seen.add(g)
                    pairs.extend((qi, it) for it in table[g])
    out: list[list[Hit]] = [[] for _ in questions]
    for qi, item in pairs:
        span, start = longest_common_span(q_tokens[qi], item.tokens)
        text = " ".join(q_tokens[qi][start : start + span])
        out[qi].append(Hit(question=qi, task=item.task, doc_id=item.doc_id, span=span, span_text=text))
    for hits in out:
        hits.sort(key=lambda h: (-h.span, h.task, h.doc_id))
    return out


def contaminated_ids(
    questions: Sequence[Any], specs: Sequence[Any], *, data_dir: Path | None, n: int = DEFAULT_N
) -> dict[str, Hit]:
    """``question id -> its longest hit`` for the questions (``Question``) that hit any item of ``specs``.

    Used by the filter stage under ``selfplay.decontaminate``: those questions are dropped before
    the solver trains on them. Tasks without local data are skipped (they cannot be checked).
    """
    hits = find_hits([q.text for q in questions], benchmark_items(specs, data_dir=data_dir, skipped={}), n=n)
    return {q.id: qh[0] for q, qh in zip(questions, hits, strict=True) if qh}


# --------------------------------------------------------------------------- benchmark side
def benchmark_items(
    specs: Sequence[Any], *, data_dir: Path | None, skipped: dict[str, str] | None = None
) -> Iterator[BenchmarkItem]:
    """Stream every item of ``specs`` (TaskSpec) as normalized text; a task without local data
    under ``data_dir`` is recorded in ``skipped`` (when given) instead of failing."""
    from rzero_bench.tasks import DOC_ID_KEY, has_local_data, load_docs, local_path

    for spec in specs:
        if data_dir is not None and not has_local_data(spec, data_dir):
            if skipped is None:
                raise UserError(f"task {spec.task}: no local data at {local_path(spec, data_dir)}")
            skipped[spec.task] = f"no local data ({local_path(spec, data_dir)} not found)"
            continue
        for doc in load_docs(spec, data_dir=data_dir):
            yield BenchmarkItem(spec.task, str(doc[DOC_ID_KEY]), tuple(normalize_tokens(spec.render_text(doc))))


def _run_tasks(run_dir: Path) -> tuple[str | None, list[str] | None]:
    """The run's evaluation suite/tasks (and dev tasks) from its manifest's config."""
    mpath = run_dir / "manifest.json"
    if not mpath.exists():
        return None, None
    ev = (read_json(mpath).get("config") or {}).get("eval") or {}
    tasks = list(ev.get("tasks") or [])
    tasks += [t for t in ev.get("dev_tasks") or [] if t not in tasks]
    return (ev.get("suite") if not ev.get("tasks") else None), (tasks or None)


def _iterations(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for d in run_dir.glob("iter_*"):
        suffix = d.name[len("iter_") :]
        if d.is_dir() and suffix.isdigit() and (d / "questions.jsonl").exists():
            out.append((int(suffix), d))
    return sorted(out)


def contamination_report(
    run_dir: Path,
    *,
    n: int = DEFAULT_N,
    suite: str | None = None,
    tasks: str | Sequence[str] | None = None,
    data_dir: Path | None = None,
    tasks_dir: Path | None = None,
    examples: int = 5,
) -> dict[str, Any]:
    """Check every generated question of every iteration of ``run_dir`` against the benchmarks.

    The benchmarks are ``suite``/``tasks`` when given, else the run's own evaluation (and dev)
    tasks from its manifest. Returns the report written by :func:`contamination_command`.
    """
    from rzero_bench.records import Question
    from rzero_bench.tasks import resolve_tasks

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    iters = _iterations(run_dir)
    if not iters:
        raise UserError(f"no iter_<k>/questions.jsonl in {run_dir}; run the questions stage first")
    if suite is None and tasks is None:
        suite, tasks = _run_tasks(run_dir)
        if suite is None and tasks is None:
            raise UserError(f"{run_dir} has no manifest naming its tasks; pass --suite or --tasks")
    specs = resolve_tasks(suite=suite, tasks=tasks, tasks_dir=tasks_dir)

    texts: list[str] = []
    owners: list[tuple[int, Question]] = []
    per_iter: dict[int, dict[str, Any]] = {}
    for k, d in iters:
        qs = [Question.from_dict(r) for r in read_jsonl(d / "questions.jsonl")]
        mine = [q for q in qs if q.source == "challenger"]
        per_iter[k] = {"questions": len(mine), "probes": len(qs) - len(mine)}
        for q in mine:
            texts.append(q.text)
            owners.append((k, q))

    skipped: dict[str, str] = {}
    counts: dict[str, int] = {}

    def counted(items: Iterable[BenchmarkItem]) -> Iterator[BenchmarkItem]:
        for it in items:
            counts[it.task] = counts.get(it.task, 0) + 1
            yield it

    hits = find_hits(texts, counted(benchmark_items(specs, data_dir=data_dir, skipped=skipped)), n=n)
    scanned = [s for s in specs if s.task not in skipped]
    if not scanned:
        raise UserError(f"none of the tasks {[s.task for s in specs]} has local data; set --data-dir/RZERO_DATA_DIR")

    for block in per_iter.values():
        block.update(contaminated=0, longest=None,
                     by_task={s.task: {"questions": 0, "items": set(), "longest_span": 0} for s in scanned})
    rows: list[dict[str, Any]] = []
    for (k, q), qh in zip(owners, hits, strict=True):
        if not qh:
            continue
        block = per_iter[k]
        block["contaminated"] += 1
        for task in sorted({h.task for h in qh}):
            block["by_task"][task]["questions"] += 1
        for h in qh:
            t = block["by_task"][h.task]
            t["items"].add(h.doc_id)
            t["longest_span"] = max(t["longest_span"], h.span)
        top = qh[0]
        if block["longest"] is None or top.span > block["longest"]["span"]:
            block["longest"] = {"question_id": q.id, **top.to_dict()}
        rows.append({"iteration": k, "question_id": q.id, "question": q.text, "hits": [h.to_dict() for h in qh]})
    for k, block in per_iter.items():
        for t in block["by_task"].values():
            t["items"] = len(t["items"])
        block["rate"] = block["contaminated"] / block["questions"] if block["questions"] else None
        block["examples"] = [r for r in rows if r["iteration"] == k][:examples]
    return {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run_dir),
        "n": n,
        "rule": f"shared {n}-gram of normalized tokens; items shorter than {n} tokens must occur whole",
        "tasks": {s.task: {"items": counts.get(s.task, 0), "hash": s.hash} for s in scanned},
        "skipped": skipped,
        "iterations": {str(k): v for k, v in sorted(per_iter.items())},
        "total": {
            "questions": sum(v["questions"] for v in per_iter.values()),
            "contaminated": sum(v["contaminated"] for v in per_iter.values()),
        },
        "hits": rows,
    }


def _print(rep: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    tasks = list(rep["tasks"])
    t = Table(title=f"contamination: shared {rep['n']}-grams with {', '.join(tasks)}")
    for col in ("iteration", "questions", "contaminated", *tasks, "longest span"):
        t.add_column(col, justify="right")
    for k, b in rep["iterations"].items():
        cells = [f"{b['by_task'][x]['questions']} q / {b['by_task'][x]['items']} items" for x in tasks]
        longest = b["longest"]
        span = f"{longest['span']} ({longest['task']} {longest['doc_id']})" if longest else "–"
        rate = f" ({100 * b['rate']:.1f}%)" if b["rate"] is not None else ""
        t.add_row(k, str(b["questions"]), f"{b['contaminated']}{rate}", *cells, span)
    console.print(t)
    for k, b in rep["iterations"].items():
        if b["longest"]:
            console.print(f"iter_{k} longest shared span: \"{b['longest']['span_text'][:200]}\"")
    for task, why in rep["skipped"].items():
        console.print(f"skipped {task}: {why}")
    console.print(f"wrote {out}")


def contamination_command(
    run_dir: Path,
    *,
    n: int = DEFAULT_N,
    suite: str | None = None,
    tasks: str | None = None,
    data_dir: Path | None = None,
    tasks_dir: Path | None = None,
    output: Path | None = None,
) -> dict[str, Any]:
    """CLI: write ``RUN_DIR/contamination.json`` (or ``output``) and print the per-iteration table."""
    rep = contamination_report(run_dir, n=n, suite=suite, tasks=tasks, data_dir=data_dir, tasks_dir=tasks_dir)
    out = Path(output) if output else Path(run_dir) / "contamination.json"
    atomic_write_json(out, rep)
    _print(rep, out)
    return rep
