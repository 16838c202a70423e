"""Self-consistency: sample the solver ``m`` times per question and take the majority vote
(R-Zero, arXiv 2508.05004, §3.3: the pseudo-label is the most frequent answer and
``p_hat = count(majority) / m`` is the solver's agreement).

For question i (0-based, in the order given) the request is the solver prompt with the question as
the user turn, ``n = m`` samples at ``temperature``, ``top_p = 1``, seed ``(seed + i) mod 2^31``.
Each sample's answer is its last ``\\boxed{}`` (:func:`rzero_bench.parsing.last_boxed`; None when
there is none); :func:`rzero_bench.selfplay.voting.vote` clusters equivalent answers with the
task's grader and returns the :class:`~rzero_bench.records.Vote`.

The ``votes`` stage (:mod:`rzero_bench.stages.votes`) builds the solver's dataset with it. The
challenger's reward inside GRPO (:class:`rzero_bench.training.rewards.ChallengerReward`) asks the
solver and votes the same way (solver prompt, last ``\\boxed{}``, ``vote``) but per training batch:
distinct questions only, one seed per batch and its own ``top_p``. This module sits below the
training layer so that reward could call it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rzero_bench.prompts import solver_messages
from rzero_bench.records import Attempt, GenerationRequest, Question, SamplingParams, Vote


def self_consistency(
    generator: Any,
    questions: Sequence[Question],
    *,
    solver_prompt: dict[str, str],
    m: int,
    temperature: float,
    max_tokens: int,
    seed: int,
    kind: str = "math",
    none_is_answer: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Attempt], list[Vote], int]:
    """Sample the solver m times per question and vote. Returns (attempts, votes, tokens generated).

    ``attempts`` holds ``m`` :class:`Attempt` per question (question order, then sample order);
    ``votes`` one :class:`Vote` per question.
    """
    from rzero_bench.parsing import last_boxed
    from rzero_bench.selfplay.voting import vote

    requests = [
        GenerationRequest(
            messages=tuple(solver_messages(solver_prompt, q.text)),
            params=SamplingParams(
                n=m, temperature=temperature, top_p=1.0, max_tokens=max_tokens, seed=(seed + i) % (2**31)
            ),
            id=q.id,
        )
        for i, q in enumerate(questions)
    ]
    gens = generator.generate(requests, progress=progress) if requests else []
    attempts: list[Attempt] = []
    votes: list[Vote] = []
    tokens = 0
    for q, g in zip(questions, gens, strict=True):
        answers = []
        for j, text in enumerate(g.texts):
            ans = last_boxed(text)
            ntok = g.completion_tokens[j] if j < len(g.completion_tokens) else 0
            tokens += ntok
            fr = g.finish_reasons[j] if j < len(g.finish_reasons) else "stop"
            attempts.append(
                Attempt(question_id=q.id, index=j, completion=text, answer=ans, finish_reason=fr, tokens=ntok)
            )
            answers.append(ans)
        votes.append(vote(q.id, answers, kind=kind, none_is_answer=none_is_answer))
    return attempts, votes, tokens
