"""Stage 2, ``questions``: N candidate questions sampled from challenger_k (R-Zero, arXiv
2508.05004, §3.3, first step of the solver's dataset construction).

Reads: the checkpoint ``iter_<k>/challenger/`` (challenger_{k-1}'s when the challenger stage
skipped training); with ``oracle: reference`` and ``probes.n > 0``,
the probe task's local data.
Writes: ``iter_<k>/questions.jsonl``, one :class:`~rzero_bench.records.Question` per line: the
well-formed challenger questions (ids ``it<k>-q<nnnnn>``, numbered over all N completions so a
gap marks a malformed one), then the probe questions (``source = "probe:<task>"``).

Sampling: ``ceil(N / 8)`` requests of up to 8 completions each from the challenger prompt, at
``selfplay.question_temperature``, ``top_p = selfplay.question_top_p`` (official: 0.95), request i seeded ``(stage_seed + i) mod 2^31``.
A completion is well-formed when it has a non-blank ``<question>...</question>`` block
(:func:`rzero_bench.parsing.extract_question`); the challenger's own answer is the last
``\\boxed{}`` after the block.
"""

from __future__ import annotations

from rzero_bench.errors import UserError
from rzero_bench.prompts import challenger_messages
from rzero_bench.records import GenerationRequest, Question, SamplingParams
from rzero_bench.stages._context import IterPaths, StageContext, StageResult, stage_seed
from rzero_bench.store import atomic_write_jsonl


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Sample ``selfplay.num_questions`` completions from challenger_k and keep the well-formed ones."""
    from rzero_bench.parsing import extract_question, last_boxed

    cfg = ctx.cfg
    sp = cfg.selfplay
    seed = stage_seed(cfg.seed, p.k, "questions")
    per_req = min(8, sp.num_questions)
    nreq = -(-sp.num_questions // per_req)
    msgs = tuple(challenger_messages(ctx.prompts["challenger"]))
    requests = [
        GenerationRequest(messages=msgs, id=f"c{i}",
                          params=SamplingParams(n=min(per_req, sp.num_questions - i * per_req),
                                                temperature=sp.question_temperature, top_p=sp.question_top_p,
                                                max_tokens=sp.question_max_tokens, seed=(seed + i) % (2**31)))
        for i in range(nreq)
    ]
    tokens = 0
    with ctx.generator(ctx.model_for("challenger", p.k), role="challenger") as gen, ctx.progress("questions", nreq) as prog:
        task = prog.add_task(f"questions from challenger_{p.k}", total=nreq)
        gens = gen.generate(requests, progress=lambda n: prog.advance(task, n))
    questions: list[Question] = []
    malformed = 0
    for g in gens:
        for j, text in enumerate(g.texts):
            tokens += g.completion_tokens[j] if j < len(g.completion_tokens) else 0
            q = extract_question(text)
            if q is None or not q.strip():
                malformed += 1
                continue
            questions.append(Question(id=f"it{p.k}-q{len(questions) + malformed:05d}", text=q.strip(),
                                      challenger_answer=last_boxed(text.split("</question>")[-1]),
                                      iteration=p.k, raw=text[:4000]))
    probes = probe_questions(ctx, p.k)
    out = p.it / "questions.jsonl"
    atomic_write_jsonl(out, [q.to_dict() for q in questions + probes])
    return {"outputs": [p.rel(out)], "generated": sp.num_questions, "well_formed": len(questions),
            "malformed": malformed, "probes": len(probes), "tokens": tokens}


def probe_questions(ctx: StageContext, k: int) -> list[Question]:
    """Probe questions with known answers for the ``reference`` oracle (never trained on).

    Drawn, with a seed per iteration, from the probe task's items that the run's evaluation
    does not use, so probing never leaks evaluation items into self-play.
    """
    cfg = ctx.cfg
    pc = cfg.probes
    if pc.n <= 0 or cfg.oracle != "reference":
        return []
    import random

    from rzero_bench.tasks import DOC_ID_KEY, load_docs, resolve_tasks

    spec = resolve_tasks(tasks=[pc.task])[0]
    if spec.grader != "math":
        raise UserError(f"probes.task {pc.task!r} must be a math task (its grader is {spec.grader})")
    docs = load_docs(spec, data_dir=ctx.data_dir)
    ev = cfg.eval
    eval_names = {t.name for t in resolve_tasks(suite=ev.suite if not ev.tasks else None, tasks=ev.tasks)}
    excluded: set[str] = set()
    if spec.name in eval_names:
        excluded = {d[DOC_ID_KEY] for d in load_docs(spec, data_dir=ctx.data_dir, limit=ev.limit, seed=ev.seed)}
    pool = [d for d in docs if d[DOC_ID_KEY] not in excluded]
    rng = random.Random(stage_seed(pc.seed, k, "probes"))
    chosen = rng.sample(pool, min(pc.n, len(pool)))
    return [Question(id=f"it{k}-probe-{d[DOC_ID_KEY]}", text=spec.render_text(d), iteration=k,
                     source=f"probe:{spec.name}", reference=spec.render_target(d)) for d in chosen]
