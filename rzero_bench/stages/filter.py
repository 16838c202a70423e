"""Stage 4, ``filter``: keep the informative questions as the solver's dataset (R-Zero, arXiv
2508.05004, §3.3).

Reads: ``iter_<k>/questions.jsonl``, ``iter_<k>/votes.jsonl`` and the ``questions`` stage's
counts in the manifest.
Writes: ``iter_<k>/solver_dataset.jsonl`` (``{"question_id", "question", "label", "p_hat"}`` per
kept question; with ``controls.shuffle_labels`` also ``label_unshuffled``) and
``iter_<k>/filter.json`` (``generated``, ``malformed``, ``candidates``, ``kept``, ``drops`` by
reason, and the filter settings).

Only challenger questions are candidates (probes are never trained on). Paper: keep
``|p_hat - 1/2| <= delta``; official code: keep ``low <= p_hat <= high`` (see
:mod:`rzero_bench.selfplay.filtering` for every drop reason). With ``selfplay.answer_match_gate``
(the first official release) a question is kept only when the challenger's own answer grades
equal to the majority label; those drops count as ``answer_mismatch``. With
``selfplay.decontaminate`` a question sharing a ``contamination_n``-gram of normalized text with an
item of the evaluated or dev tasks (:mod:`rzero_bench.report.contamination`) is dropped first
(``contaminated``; ``filter.json`` lists the hits). The
``controls.shuffle_labels`` control permutes the kept labels with a seeded shuffle.
"""

from __future__ import annotations

from typing import Any

from rzero_bench.records import Question, Vote
from rzero_bench.stages._context import IterPaths, StageContext, StageResult, stage_seed
from rzero_bench.store import atomic_write_json, atomic_write_jsonl, read_jsonl


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Filter the voted challenger questions and write the solver's dataset."""
    from rzero_bench.selfplay.filtering import filter_questions

    sp = ctx.cfg.selfplay
    questions = [Question.from_dict(d) for d in read_jsonl(p.it / "questions.jsonl")]
    votes = {v["question_id"]: Vote.from_dict(v) for v in read_jsonl(p.it / "votes.jsonl")}
    trainable = [q for q in questions if q.source == "challenger"]
    hits = contamination_hits(ctx, trainable) if sp.decontaminate else {}
    trainable = [q for q in trainable if q.id not in hits]
    if sp.answer_match_gate:
        trainable, gated = answer_match_gate(trainable, votes, sp.grader)
    else:
        gated = 0
    kept, drops = filter_questions(
        trainable, [votes[q.id] for q in trainable], mode=sp.filter_mode, delta=sp.delta, band=sp.band, dedup=sp.dedup)
    if gated:
        drops["answer_mismatch"] = gated
    if hits:
        drops["contaminated"] = len(hits)
    q_info = ctx.store.manifest["stages"].get(f"iter_{p.k}/questions", {})
    rows = [{"question_id": q.id, "question": q.text, "label": v.label, "p_hat": v.p_hat} for q, v in kept]
    if ctx.cfg.controls.shuffle_labels and len(rows) > 1:
        import random

        labels = [r["label"] for r in rows]
        random.Random(stage_seed(ctx.cfg.seed, p.k, "shuffle")).shuffle(labels)
        for r, lab in zip(rows, labels, strict=True):
            r["label_unshuffled"], r["label"] = r["label"], lab
    ds_path, f_path = p.it / "solver_dataset.jsonl", p.it / "filter.json"
    atomic_write_jsonl(ds_path, rows)
    summary = {"generated": q_info.get("generated", len(trainable)), "malformed": q_info.get("malformed", 0),
               "candidates": len(trainable), "kept": len(kept), "drops": drops,
               "mode": sp.filter_mode, "delta": sp.delta, "band": list(sp.band)}
    if sp.decontaminate:
        summary["contamination"] = {
            "n": sp.contamination_n,
            "hits": {qid: h.to_dict() for qid, h in sorted(hits.items())},
        }
    atomic_write_json(f_path, summary)
    return {"outputs": [p.rel(ds_path), p.rel(f_path)], "kept": len(kept), "candidates": len(trainable),
            "drops": drops}


def contamination_hits(ctx: StageContext, questions: list[Question]) -> dict[str, Any]:
    """Question id -> its longest hit, for the questions that share an n-gram with an evaluated
    (test or dev) benchmark item."""
    from rzero_bench.report.contamination import contaminated_ids
    from rzero_bench.tasks import resolve_tasks

    ev = ctx.cfg.eval
    specs = resolve_tasks(
        suite=ev.suite if not ev.tasks else None, tasks=[*(ev.tasks or []), *(ev.dev_tasks or [])]
    )
    return contaminated_ids(questions, specs, data_dir=ctx.data_dir, n=ctx.cfg.selfplay.contamination_n)


def answer_match_gate(questions: list[Question], votes: dict[str, Vote], kind: str) -> tuple[list[Question], int]:
    """First official release: keep a question only when the challenger's own answer matches the
    majority. Returns (kept questions, number dropped)."""
    from rzero_bench.grading import grade

    kept, dropped = [], 0
    for q in questions:
        v = votes[q.id]
        if q.challenger_answer is not None and v.label is not None:
            verdict = grade(reference=v.label, prediction=q.challenger_answer, kind=kind)  # type: ignore[arg-type]
            if verdict.correct:
                kept.append(q)
                continue
        dropped += 1
    return kept, dropped
