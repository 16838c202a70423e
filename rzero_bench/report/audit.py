"""``rzero-bench audit-grader``: how much do answer checkers disagree on the same saved predictions?

Every ``(reference, extracted answer)`` pair of every ``<task>.samples.jsonl`` under RESULTS_DIR
(math-graded tasks; choice and other kinds are listed as skipped) is graded again by each grader:

- ``rzero``: the project's grader (``rzero_bench.grading.grade_many``: cheap checks, the pure-Python
  fast path, math-verify for the rest), the one the saved metrics used;
- ``fast``: the fast path alone (exact/normalized/numeric checks and LaTeX fingerprints); it
  abstains (``undecided``) where the project grader would call math-verify;
- ``math-verify``: ``verify(parse(reference), parse(answer))`` alone, without the fast path;
- ``mathruler``: ``mathruler.grader.grade_answer``, the check of the official R-Zero code (from the
  ``perf`` extra; reported as not installed when missing);
- ``llm``: optional, an LLM judge behind any OpenAI-compatible endpoint (``--judge
  openai:<model>[@<base_url>]``), asked whether the answer is equivalent to the reference (YES/NO).

Third-party graders run in worker processes, one pair at a time, killed after ``--timeout``
seconds on one pair (the pair is then ``timeout``); each distinct pair is graded once.

A verdict is *right* (correct), *wrong* (incorrect, or unparseable: a metric counts it as not
correct) or *undecided* (timeout, error, the fast path's abstention, an unreadable judge reply).
For each pair of graders A, B the two-sided table counts, over the answers both decided: both
right, both wrong, A right & B wrong, A wrong & B right, with examples of each disagreement.
Blank answers (nothing extracted) are wrong for every grader and are counted, not compared.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.store import atomic_write_json, read_json, read_jsonl

__all__ = ["ALL_GRADERS", "DEFAULT_GRADERS", "audit", "audit_command", "disagreements", "run_killable"]

DEFAULT_GRADERS = ("rzero", "fast", "math-verify", "mathruler")
ALL_GRADERS = (*DEFAULT_GRADERS, "llm")
_READY_TIMEOUT = 180.0
_CHUNK = 32
Outcome = tuple[str, "bool | None"]  # (status, correct)

JUDGE_SYSTEM = (
    "You check answers to math problems. Reply with one word: YES if the candidate answer is "
    "mathematically equivalent to the reference answer, NO if it is not."
)


# --------------------------------------------------------------------------- worker processes
class _Slot:
    def __init__(self, ctx: Any, grader: str) -> None:
        from rzero_bench.report._audit_worker import worker_main

        parent, child = ctx.Pipe(duplex=True)
        self.conn = parent
        self.proc = ctx.Process(target=worker_main, args=(child, grader), daemon=True, name=f"rzero-audit-{grader}")
        self.proc.start()
        child.close()
        self.pending: deque[int] = deque()
        self.deadline = float("inf")

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _start(ctx: Any, grader: str) -> _Slot | str:
    """A ready worker, or the import error message."""
    slot = _Slot(ctx, grader)
    if not slot.conn.poll(_READY_TIMEOUT):
        slot.kill()
        return f"{grader} worker did not start within {_READY_TIMEOUT:.0f} s"
    try:
        tag, msg = slot.conn.recv()
    except EOFError:
        slot.kill()
        return f"{grader} worker exited while starting"
    if tag != "ready":
        slot.kill()
        return msg
    return slot


def run_killable(
    grader: str, pairs: Sequence[tuple[str, str]], *, timeout: float = 10.0, workers: int | None = None
) -> list[Outcome] | str:
    """Grade ``pairs`` (reference, prediction) with a worker grader (``math-verify``/``mathruler``).

    Returns one ``(status, correct)`` per pair, or a one-line reason when the grader cannot be
    imported. A pair running longer than ``timeout`` seconds gets ``("timeout", None)``.
    """
    out: list[Outcome | None] = [None] * len(pairs)
    if not pairs:
        return []
    ctx = mp.get_context("spawn")
    todo: deque[int] = deque(range(len(pairs)))
    n = max(1, min(workers or min(2, os.cpu_count() or 1), -(-len(pairs) // _CHUNK)))
    slots: list[_Slot] = []
    try:
        for _ in range(n):
            s = _start(ctx, grader)
            if isinstance(s, str):
                return s
            slots.append(s)

        def feed(slot: _Slot) -> bool:
            if not todo:
                return False
            chunk = [todo.popleft() for _ in range(min(_CHUNK, len(todo)))]
            slot.pending.extend(chunk)
            slot.conn.send([(i, pairs[i][0], pairs[i][1]) for i in chunk])
            slot.deadline = time.monotonic() + timeout
            return True

        def replace(s: _Slot, status: str) -> None:
            """The pair ``s`` was running gets ``status``; its other pairs go back to the queue."""
            out[s.pending.popleft()] = (status, None)
            todo.extendleft(reversed(s.pending))
            s.pending.clear()
            active.remove(s)
            slots.remove(s)
            s.kill()
            fresh = _start(ctx, grader)
            if isinstance(fresh, str):
                raise UserError(f"{grader}: {fresh}")
            slots.append(fresh)
            if feed(fresh):
                active.append(fresh)

        active = [s for s in slots if feed(s)]
        while active:
            now = time.monotonic()
            ready = wait([s.conn for s in active], timeout=max(0.0, min(s.deadline for s in active) - now))
            for s in list(active):
                if s.conn in ready:
                    try:
                        msg = s.conn.recv()
                    except EOFError:  # the worker died on its current pair
                        replace(s, "error")
                        continue
                    if msg is None:
                        if not feed(s):
                            active.remove(s)
                    else:
                        i, status, correct = msg
                        s.pending.popleft()
                        out[i] = (status, correct)
                        s.deadline = time.monotonic() + timeout
                elif time.monotonic() >= s.deadline:
                    replace(s, "timeout")
    finally:
        for s in slots:
            try:
                s.conn.send(None)
            except (OSError, ValueError):
                pass
            s.kill()
    return [o if o is not None else ("error", None) for o in out]


# --------------------------------------------------------------------------- in-process graders
def _grade_rzero(pairs: Sequence[tuple[str, str]], timeout: float) -> list[Outcome]:
    from rzero_bench.grading import grade_many

    vs = grade_many([r for r, _ in pairs], [p for _, p in pairs], kind="math", timeout=timeout)
    return [(v.status, v.correct) for v in vs]


def _grade_fast(pairs: Sequence[tuple[str, str]]) -> list[Outcome]:
    """The project grader's checks before math-verify (``rzero_bench.grading._cheap``)."""
    from rzero_bench.grading import _cheap

    out: list[Outcome] = []
    for ref, pred in pairs:
        v = _cheap(ref, pred, "math")
        out.append(("undecided", None) if v is None else (v.status, v.correct))
    return out


def _judge_reply(text: str) -> Outcome:
    words = text.strip().lstrip("*#>` \"'").upper().split()
    first = words[0].strip(".,:;!*\"'") if words else ""
    if first in ("YES", "EQUIVALENT", "CORRECT", "TRUE"):
        return "ok", True
    if first in ("NO", "NOT", "INCORRECT", "FALSE"):
        return "ok", False
    return "unreadable", None


def _grade_llm(pairs: Sequence[tuple[str, str]], spec: str, api_key_env: str) -> list[Outcome]:
    from rzero_bench.backends import make_generator
    from rzero_bench.records import GenerationRequest, SamplingParams

    if not spec.startswith("openai:"):
        raise UserError(f"unknown judge {spec!r}; use openai:<model>[@<base_url>]")
    model, _, url = spec[len("openai:") :].partition("@")
    if not model:
        raise UserError(f"judge {spec!r} names no model; use openai:<model>[@<base_url>]")
    params = SamplingParams(n=1, temperature=0.0, max_tokens=8, seed=0)
    reqs = [
        GenerationRequest(
            messages=(
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": f"Reference answer: {ref}\nCandidate answer: {pred}\nEquivalent?"},
            ),
            params=params,
            id=f"pair{i}",
        )
        for i, (ref, pred) in enumerate(pairs)
    ]
    with make_generator("openai", model, base_url=url or "https://api.openai.com/v1", api_key_env=api_key_env) as gen:
        outs = gen.generate(reqs)
    return [_judge_reply(g.texts[0] if g.texts else "") for g in outs]


# --------------------------------------------------------------------------- data
def load_pairs(results_dir: Path) -> tuple[list[dict[str, Any]], dict[str, str], int]:
    """Every math-graded (reference, answer) pair under ``results_dir`` (recursively).

    Returns (pairs, skipped task -> reason, blank answers). A pair is ``{"task", "doc_id",
    "sample", "reference", "answer"}``; ``task`` carries its subdirectory (``iter_1/micro_arith``).
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise UserError(f"results directory not found: {root}")
    files = sorted(root.rglob("*.samples.jsonl"))
    if not files:
        raise UserError(f"no *.samples.jsonl under {root}; is it a results directory written by `eval` or `run`?")
    pairs: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    blank = 0
    for sf in files:
        name = sf.name.removesuffix(".samples.jsonl")
        rel = sf.parent.relative_to(root)
        label = name if str(rel) == "." else f"{rel.as_posix()}/{name}"
        rf = sf.with_name(f"{name}.json")
        kind = None
        if rf.exists():
            try:
                kind = (read_json(rf).get("sampling") or {}).get("grader")
            except Exception:  # noqa: BLE001 - an unreadable result file: fall back to the task definition
                kind = None
        if kind is None:
            try:
                from rzero_bench.tasks import load_task

                kind = load_task(name).metadata.grader
            except Exception:  # noqa: BLE001
                skipped[label] = "grader kind unknown (no result file, no task definition)"
                continue
        if kind != "math":
            skipped[label] = f"grader {kind} (only math answers are audited)"
            continue
        for row in read_jsonl(sf):
            if not isinstance(row, dict) or "reference" not in row or "answers" not in row:
                raise UserError(f"{sf} is not a samples file written by `eval` (rows need reference and answers)")
            for j, ans in enumerate(row["answers"]):
                if ans is None or not str(ans).strip():
                    blank += 1
                    continue
                pairs.append({"task": label, "doc_id": str(row.get("doc_id", "")), "sample": j,
                              "reference": str(row["reference"]), "answer": str(ans)})
    return pairs, skipped, blank


# --------------------------------------------------------------------------- comparison
def _side(o: Outcome) -> str:
    status, correct = o
    if status == "ok":
        return "right" if correct else "wrong"
    if status == "unparseable":
        return "wrong"
    return "undecided"


def disagreements(
    verdicts: Mapping[str, Sequence[Outcome]], pairs: Sequence[dict[str, Any]], *, examples: int = 3
) -> list[dict[str, Any]]:
    """The two-sided table for every pair of graders (in the order of ``verdicts``)."""
    rows = []
    for a, b in itertools.combinations(list(verdicts), 2):
        c = {"both_right": 0, "both_wrong": 0, "a_right_b_wrong": 0, "a_wrong_b_right": 0, "not_compared": 0}
        ex: dict[str, list[dict[str, Any]]] = {"a_right_b_wrong": [], "a_wrong_b_right": []}
        for p, va, vb in zip(pairs, verdicts[a], verdicts[b], strict=True):
            sa, sb = _side(va), _side(vb)
            if "undecided" in (sa, sb):
                c["not_compared"] += 1
                continue
            key = {("right", "right"): "both_right", ("wrong", "wrong"): "both_wrong",
                   ("right", "wrong"): "a_right_b_wrong", ("wrong", "right"): "a_wrong_b_right"}[(sa, sb)]
            c[key] += 1
            if key in ex and len(ex[key]) < examples:
                ex[key].append({k: p[k] for k in ("task", "doc_id", "reference", "answer")})
        compared = c["both_right"] + c["both_wrong"] + c["a_right_b_wrong"] + c["a_wrong_b_right"]
        agree = (c["both_right"] + c["both_wrong"]) / compared if compared else None
        rows.append({"a": a, "b": b, **c, "compared": compared, "agreement": agree, "examples": ex})
    return rows


def _summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    sides = [_side(o) for o in outcomes]
    statuses: dict[str, int] = {}
    for s, _ in outcomes:
        statuses[s] = statuses.get(s, 0) + 1
    decided = sum(1 for s in sides if s != "undecided")
    right = sides.count("right")
    return {"right": right, "wrong": sides.count("wrong"), "undecided": sides.count("undecided"),
            "accuracy": right / decided if decided else None, "statuses": statuses}


def audit(
    results_dir: Path,
    *,
    graders: Sequence[str] = DEFAULT_GRADERS,
    judge: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 10.0,
    examples: int = 3,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Grade every saved math answer under ``results_dir`` with each grader and compare them."""
    unknown = [g for g in graders if g not in ALL_GRADERS]
    if unknown:
        raise UserError(f"unknown grader(s) {unknown}; choose from {', '.join(ALL_GRADERS)}")
    graders = list(dict.fromkeys(graders))
    if judge and "llm" not in graders:
        graders.append("llm")
    if "llm" in graders and not judge:
        raise UserError("the llm grader needs --judge openai:<model>[@<base_url>]")
    if len(graders) < 2:
        raise UserError("name at least two graders to compare")
    pairs, skipped, blank = load_pairs(results_dir)
    if not pairs:
        raise UserError(f"no math answers to audit under {results_dir} (skipped: {skipped or 'none'}, blank: {blank})")
    distinct = list(dict.fromkeys((p["reference"], p["answer"]) for p in pairs))
    where = {pair: i for i, pair in enumerate(distinct)}
    say = progress or (lambda _msg: None)
    verdicts: dict[str, list[Outcome]] = {}
    unavailable: dict[str, str] = {}
    times: dict[str, float] = {}
    for g in graders:
        say(f"grading {len(distinct)} distinct pairs with {g}")
        t0 = time.perf_counter()
        res: list[Outcome] | str
        if g == "rzero":
            res = _grade_rzero(distinct, timeout)
        elif g == "fast":
            res = _grade_fast(distinct)
        elif g == "llm":
            res = _grade_llm(distinct, judge or "", api_key_env)
        else:
            res = run_killable(g, distinct, timeout=timeout, workers=workers)
        times[g] = round(time.perf_counter() - t0, 3)
        if isinstance(res, str):
            if g == "mathruler":
                unavailable[g] = f"mathruler is not installed ({res}); install the perf extra: pip install 'rzero-bench[perf]'"
                continue
            raise UserError(f"{g} cannot run: {res}")
        verdicts[g] = [res[where[(p["reference"], p["answer"])]] for p in pairs]
    if len(verdicts) < 2:
        raise UserError(f"fewer than two graders could run ({', '.join(unavailable.values())})")
    return {
        "schema_version": 1,
        "results_dir": str(results_dir),
        "answers": len(pairs),
        "distinct_pairs": len(distinct),
        "blank_answers": blank,
        "tasks": sorted({p["task"] for p in pairs}),
        "skipped": skipped,
        "graders": {g: {**_summary(v), "wall_s": times[g]} for g, v in verdicts.items()},
        "unavailable": unavailable,
        "pairs": disagreements(verdicts, pairs, examples=examples),
        "judge": judge,
        "timeout_s": timeout,
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def audit_command(
    results_dir: Path,
    *,
    graders: str | None = None,
    judge: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 10.0,
    examples: int = 3,
    output: Path | None = None,
) -> dict[str, Any]:
    """CLI: print the per-grader summary and the two-sided disagreement table; write the JSON."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    names = [g.strip() for g in graders.split(",") if g.strip()] if graders else list(DEFAULT_GRADERS)
    rep = audit(results_dir, graders=names, judge=judge, api_key_env=api_key_env, timeout=timeout,
                examples=examples, progress=lambda m: console.print(f"[dim]{m}[/]"))
    for g, why in rep["unavailable"].items():
        console.print(f"[yellow]{g} skipped[/]: {why}")
    t = Table(title=f"graders on {rep['answers']} answers ({rep['distinct_pairs']} distinct; {rep['blank_answers']} blank not counted)")
    for col in ("grader", "right", "wrong", "undecided", "accuracy % (decided)", "wall s"):
        t.add_column(col, justify="right")
    for g, s in rep["graders"].items():
        t.add_row(g, str(s["right"]), str(s["wrong"]), str(s["undecided"]), _pct(s["accuracy"]), f"{s['wall_s']:.1f}")
    console.print(t)
    d = Table(title="two-sided disagreement (answers both graders decided)")
    for col in ("A", "B", "both right", "both wrong", "A right, B wrong", "A wrong, B right", "agreement %", "not compared"):
        d.add_column(col, justify="right")
    for r in rep["pairs"]:
        d.add_row(r["a"], r["b"], str(r["both_right"]), str(r["both_wrong"]), str(r["a_right_b_wrong"]),
                  str(r["a_wrong_b_right"]), _pct(r["agreement"]), str(r["not_compared"]))
    console.print(d)
    for r in rep["pairs"]:
        for key, label in (("a_right_b_wrong", f"{r['a']} right, {r['b']} wrong"), ("a_wrong_b_right", f"{r['a']} wrong, {r['b']} right")):
            for e in r["examples"][key]:
                console.print(f"  {label}: {e['task']} {e['doc_id']}: reference {e['reference']!r}, answer {e['answer']!r}",
                              markup=False, highlight=False)
    for task, why in rep["skipped"].items():
        console.print(f"skipped {task}: {why}", markup=False)
    out = Path(output) if output else Path(results_dir) / "grader_audit.json"
    atomic_write_json(out, rep)
    console.print(f"wrote {out}", markup=False)
    return rep
