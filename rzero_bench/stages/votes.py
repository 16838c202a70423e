"""Stage 3, ``votes``: solver_{k-1} answers every candidate m times; the majority answer is the
pseudo-label (R-Zero, arXiv 2508.05004, §3.3).

Reads: ``iter_<k>/questions.jsonl`` and the checkpoint solver_{k-1} (the base model at k = 1).
Writes: ``iter_<k>/attempts.jsonl`` (m :class:`~rzero_bench.records.Attempt` per question) and
``iter_<k>/votes.jsonl`` (one :class:`~rzero_bench.records.Vote` per question: the label, the
agreement ``p_hat = count(majority) / m`` and the answer clusters).

Sampling and voting are :func:`rzero_bench.selfconsistency.self_consistency` with
``m = selfplay.m`` at ``selfplay.solver_temperature`` (top-k ``selfplay.solver_top_k``, official 40); answers are grouped by
``selfplay.grader``-equivalence; with ``selfplay.none_is_answer`` a sample without an answer votes
for the string "None" (the official code's behaviour). The manifest records ``no_answer_rate``, the share of
samples without a ``\\boxed{}`` answer.
"""

from __future__ import annotations

from rzero_bench.records import Question
from rzero_bench.sampling import with_top_k
from rzero_bench.selfconsistency import self_consistency
from rzero_bench.stages._context import IterPaths, StageContext, StageResult, stage_seed
from rzero_bench.store import atomic_write_jsonl, read_jsonl


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Vote on every question of ``questions.jsonl`` (probes included) with solver_{k-1}."""
    cfg = ctx.cfg
    sp = cfg.selfplay
    questions = [Question.from_dict(d) for d in read_jsonl(p.it / "questions.jsonl")]
    solver_path = ctx.model_for("solver", p.k - 1)
    with ctx.generator(solver_path) as gen, ctx.progress("votes", len(questions)) as prog:
        task = prog.add_task(f"solver_{p.k - 1} × {sp.m} samples", total=len(questions))
        attempts, votes, tokens = self_consistency(
            with_top_k(gen, sp.solver_top_k), questions, solver_prompt=ctx.prompts["solver"], m=sp.m, temperature=sp.solver_temperature,
            max_tokens=sp.solver_max_tokens, seed=stage_seed(cfg.seed, p.k, "votes"), kind=sp.grader,
            none_is_answer=sp.none_is_answer, progress=lambda n: prog.advance(task, n))
    a_path, v_path = p.it / "attempts.jsonl", p.it / "votes.jsonl"
    atomic_write_jsonl(a_path, [a.to_dict() for a in attempts])
    atomic_write_jsonl(v_path, [v.to_dict() for v in votes])
    answered = sum(1 for a in attempts if a.answer is not None)
    return {"outputs": [p.rel(a_path), p.rel(v_path)], "questions": len(questions), "tokens": tokens,
            "no_answer_rate": round(1 - answered / len(attempts), 4) if attempts else None}
