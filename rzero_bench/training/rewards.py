"""Reward adapters for TRL's ``GRPOTrainer`` (R-Zero, arXiv 2508.05004, section 3).

Both adapters follow TRL's reward-function contract: they are called as
``fn(prompts=..., completions=..., completion_ids=..., **columns)`` where every extra dataset
column arrives as a keyword argument holding one value per completion, and they return one float
per completion. Completions are plain strings or, for conversational prompts, lists of messages
whose last ``content`` is the text.

Challenger (``ChallengerReward``), for a batch of B completions x_1..x_B:

- x_i is well-formed when it has a ``<question>...</question>`` block (``extract_question``) and a
  ``\\boxed{}`` answer (``last_boxed``); otherwise its reward is the format value (0 in the paper,
  -1 in the official code) and the solver is not asked.
- For each distinct well-formed question q, the solver ``Generator`` is called ONCE for the whole
  batch with ``n = m`` samples at temperature 1.0; each sample's answer is its last ``\\boxed{}``;
  ``selfplay.voting.vote`` clusters equivalent answers and gives p_hat = majority count / m.
- ``selfplay.rewards.challenger_rewards`` turns (completions, p_hats) into the final rewards over
  the WHOLE batch: ``max(0, r_uncertainty(p_hat) - r_repetition)`` with
  ``r_uncertainty = 1 - 2|p_hat - 1/2|`` (paper) or ``min(p_hat, 1 - p_hat)`` (official code) and
  ``r_repetition = lambda * |cluster| / B`` from BLEU-distance clustering of the batch's questions.
- With several processes each rank asks the solver about its own slice, the completions and
  p_hats are gathered (``accelerate.utils.gather_object``), every rank scores the full batch (the
  clustering is deterministic) and keeps its local slice; rank 0 appends every ``ChallengerScore``
  to ``challenger_rewards.jsonl``.

Solver (``SolverReward``): ``r = (1 - w) * acc + w * fmt`` where
``acc = 1 if grade(reference=label, prediction=last_boxed(completion), kind) is correct else 0``
and ``fmt = 1`` when the completion has a ``\\boxed{}`` answer (or matches ``format_regex``).
``w = 0`` is the paper (pure accuracy); ``w = 0.1`` is the official code's 0.9/0.1 mix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rzero_bench.backends.base import Generator
from rzero_bench.prompts import solver_messages
from rzero_bench.records import ChallengerScore, GenerationRequest, GradeKind, SamplingParams

__all__ = [
    "ChallengerReward",
    "SolverReward",
    "SolverRewardOptions",
    "completion_text",
    "challenger_question",
]


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or a list of messages (last ``content`` wins)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        for msg in reversed(completion):
            if isinstance(msg, dict) and "content" in msg:
                return str(msg["content"])
        return ""
    return str(completion)


def challenger_question(text: str, *, require_boxed: bool = True) -> str | None:
    """The question of a well-formed challenger completion (a non-empty ``<question>`` block and,
    when ``require_boxed``, a ``\\boxed{}`` answer), else None."""
    from rzero_bench.parsing import extract_question, last_boxed

    question = extract_question(text)
    if question is None or not question.strip():
        return None
    if require_boxed and last_boxed(text) is None:
        return None
    return question.strip()


def _option(options: Any, name: str, default: Any) -> Any:
    """``options[name]`` for a mapping, ``options.name`` for an object, else ``default``."""
    if options is None:
        return default
    if isinstance(options, Mapping):
        return options.get(name, default)
    return getattr(options, name, default)


class Dist(Protocol):
    """The few collective operations the challenger reward needs (accelerate in production)."""

    num_processes: int
    process_index: int

    def gather(self, items: list[Any]) -> list[list[Any]]:
        """Every rank's ``items``, in rank order, on every rank."""
        ...


class _AccelerateDist:
    """``Dist`` over accelerate's ``PartialState`` (one process: no communication at all)."""

    def __init__(self) -> None:
        from accelerate import PartialState

        state = PartialState()
        self.num_processes = int(state.num_processes)
        self.process_index = int(state.process_index)

    def gather(self, items: list[Any]) -> list[list[Any]]:
        if self.num_processes <= 1:
            return [items]
        from accelerate.utils import gather_object

        return list(gather_object([items]))


def _append_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class ChallengerReward:
    """TRL reward function: the R-Zero challenger reward over the whole (gathered) batch."""

    __name__ = "challenger_reward"

    def __init__(
        self,
        *,
        solver: Generator,
        solver_prompt: dict[str, str],
        m: int,
        reward_options: Any,
        log_path: str | os.PathLike[str] | None = None,
        solver_max_tokens: int | None = None,
        solver_temperature: float | None = None,
        solver_top_p: float = 1.0,
        none_is_answer: bool | None = None,
        kind: str | None = None,
        seed: int = 0,
        dist: Dist | None = None,
        vote_fn: Callable[..., Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        if m < 1:
            raise ValueError("m (solver samples per question) must be >= 1")
        self.solver = solver
        self.solver_prompt = solver_prompt
        self.m = int(m)
        self.reward_options = reward_options
        self.log_path = Path(log_path) if log_path is not None else None
        opt = reward_options
        self.solver_max_tokens = int(solver_max_tokens or _option(opt, "max_tokens", 512))
        self.solver_temperature = float(
            solver_temperature if solver_temperature is not None else _option(opt, "temperature", 1.0)
        )
        self.solver_top_p = float(solver_top_p)
        self.none_is_answer = bool(
            none_is_answer if none_is_answer is not None else _option(opt, "none_is_answer", False)
        )
        self.require_boxed = bool(_option(opt, "require_boxed", _option(opt, "require_answer", True)))
        self.kind = str(kind or _option(opt, "kind", "math"))
        # control experiment only: -1 trains the challenger towards the *opposite* of the R-Zero reward
        self.sign = float(_option(opt, "reward_sign", 1.0))
        self.seed = int(seed)
        self._dist = dist
        self._vote = vote_fn  # selfplay.voting.vote unless a test injects one
        self.progress = progress  # (questions answered, questions) while the solver samples
        self.calls = 0
        self.solver_tokens = 0
        self.history: list[dict[str, float]] = []  # per call: mean reward, share well-formed

    @property
    def dist(self) -> Dist:
        if self._dist is None:
            self._dist = _AccelerateDist()
        return self._dist

    def p_hats(self, texts: Sequence[str]) -> list[float | None]:
        """p_hat per completion (None when ill-formed), asking the solver once for the batch."""
        from rzero_bench.parsing import last_boxed

        if self._vote is None:
            from rzero_bench.selfplay.voting import vote

            self._vote = vote
        questions = [challenger_question(t, require_boxed=self.require_boxed) for t in texts]
        distinct: dict[str, int] = {}
        for q in questions:
            if q is not None and q not in distinct:
                distinct[q] = len(distinct)
        p_by_q: dict[str, float] = {}
        if distinct:
            params = SamplingParams(
                n=self.m,
                temperature=self.solver_temperature,
                top_p=self.solver_top_p,
                max_tokens=self.solver_max_tokens,
                seed=self.seed + 1_000_003 * self.calls + self.dist.process_index,
            )
            requests = [
                GenerationRequest(
                    messages=tuple(solver_messages(self.solver_prompt, q)), params=params, id=f"q{i}"
                )
                for q, i in distinct.items()
            ]
            tick = None
            if self.progress is not None:
                report, done, total = self.progress, [0], len(requests)
                report(0, total)

                def tick(n: int) -> None:
                    done[0] += n
                    report(done[0], total)

            generations = self.solver.generate(requests, progress=tick)
            if len(generations) != len(requests):
                raise RuntimeError(
                    f"solver returned {len(generations)} generations for {len(requests)} requests"
                )
            for (q, i), gen in zip(distinct.items(), generations, strict=True):
                answers = [last_boxed(t) for t in gen.texts]
                self.solver_tokens += int(sum(gen.completion_tokens))
                p_by_q[q] = float(
                    self._vote(f"q{i}", answers, kind=self.kind, none_is_answer=self.none_is_answer).p_hat
                )
        return [None if q is None else p_by_q[q] for q in questions]

    def score_batch(self, texts: Sequence[str], p_hats: Sequence[float | None]) -> list[ChallengerScore]:
        """The reward breakdown for a whole batch (uncertainty, repetition, format gate)."""
        from rzero_bench.selfplay.rewards import challenger_rewards

        return list(challenger_rewards(list(texts), list(p_hats), self.reward_options))

    def __call__(self, prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float]:
        texts = [completion_text(c) for c in (completions or [])]
        local_p = self.p_hats(texts)
        dist = self.dist
        if dist.num_processes > 1:
            per_rank = dist.gather([(t, p) for t, p in zip(texts, local_p, strict=True)])
            start = sum(len(chunk) for chunk in per_rank[: dist.process_index])
            all_texts = [t for chunk in per_rank for t, _ in chunk]
            all_p = [p for chunk in per_rank for _, p in chunk]
        else:
            start, all_texts, all_p = 0, texts, local_p
        scores = self.score_batch(all_texts, all_p)
        if len(scores) != len(all_texts):
            raise RuntimeError(
                f"challenger_rewards returned {len(scores)} scores for {len(all_texts)} completions"
            )
        step = getattr(kwargs.get("trainer_state"), "global_step", self.calls)
        if dist.process_index == 0:
            if self.log_path is not None:
                _append_jsonl(self.log_path, [{"step": int(step), **s.to_dict()} for s in scores])
            n = max(len(scores), 1)
            self.history.append(
                {
                    "step": float(step),
                    "reward": self.sign * sum(s.reward for s in scores) / n,
                    "well_formed": sum(1 for s in scores if s.well_formed) / n,
                }
            )
        self.calls += 1
        return [self.sign * float(s.reward) for s in scores[start : start + len(texts)]]


@dataclass(frozen=True)
class SolverRewardOptions:
    """Solver reward: ``(1 - format_weight) * accuracy + format_weight * format``."""

    format_weight: float = 0.0  # paper 0.0; official code 0.1
    format_regex: str | None = None  # fullmatch (DOTALL) defining "well formatted"; None = has \boxed{}
    kind: GradeKind = "math"
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.format_weight <= 1.0:
            raise ValueError("format_weight must be in [0, 1]")


class SolverReward:
    """TRL reward function: grade the last ``\\boxed{}`` against the pseudo-label column ``label``."""

    __name__ = "solver_reward"

    def __init__(
        self,
        options: SolverRewardOptions | Mapping[str, Any] | None = None,
        *,
        grade_many: Callable[..., Sequence[Any]] | None = None,
    ) -> None:
        if isinstance(options, Mapping):
            options = SolverRewardOptions(**dict(options))
        self.options = options or SolverRewardOptions()
        self._regex = re.compile(self.options.format_regex, re.DOTALL) if self.options.format_regex else None
        self._grade_many = grade_many
        self.history: list[dict[str, float]] = []

    def _grade(self, references: list[str], predictions: list[str | None]) -> list[bool]:
        if self._grade_many is None:
            from rzero_bench.grading import grade_many

            self._grade_many = grade_many
        verdicts = self._grade_many(
            references, predictions, kind=self.options.kind, timeout=self.options.timeout
        )
        return [bool(v.correct) for v in verdicts]

    def __call__(
        self, prompts: Any = None, completions: Any = None, label: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float]:
        from rzero_bench.parsing import last_boxed

        texts = [completion_text(c) for c in (completions or [])]
        if label is None or len(label) != len(texts):
            raise ValueError("solver reward needs a 'label' column with one pseudo-label per completion")
        predictions = [last_boxed(t) for t in texts]
        correct = self._grade([str(x) for x in label], predictions)
        w = self.options.format_weight
        rewards = []
        for text, pred, ok in zip(texts, predictions, correct, strict=True):
            if self._regex is not None:
                fmt = 1.0 if self._regex.fullmatch(text) else 0.0
            else:
                fmt = 1.0 if pred is not None else 0.0
            rewards.append((1.0 - w) * (1.0 if ok else 0.0) + w * fmt)
        n = max(len(rewards), 1)
        self.history.append({"reward": sum(rewards) / n, "accuracy": sum(correct) / n})
        return rewards
