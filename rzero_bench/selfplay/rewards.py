"""Challenger reward: uncertainty of the solver minus a BLEU-cluster repetition penalty, format-gated.

Formulas (R-Zero, arXiv 2508.05004, §3.2) and where the official code differs:

* uncertainty, paper: ``r_unc = 1 - 2 |p_hat - 1/2|`` (1 at p_hat = 1/2, 0 at 0 or 1);
  official code: ``min(p_hat, 1 - p_hat)`` (half the paper's value: max 0.5).
* repetition: cluster the batch's questions with average-linkage agglomerative clustering on
  ``d_ij = 1 - BLEU(x_i, x_j)`` cut at distance 0.5 (see :mod:`rzero_bench.selfplay.bleu` and
  :mod:`rzero_bench.selfplay.cluster`); ``r_rep(i) = lam * |C(i)| / B`` with B the batch size.
  Paper and official code agree (the official code has lam = 1 hard-coded).
* format gate: a completion without a non-empty ``<question>...</question>`` block (or, with
  ``require_answer``, without a ``\\boxed{}`` answer) gets ``format_penalty``: 0 in the paper, -1 in
  the official code. (The official code's answer check is a no-op: mathruler returns the string
  "None" when there is no box, which is truthy, so only an empty ``\\boxed{}`` fails it.)
* final reward, paper: ``max(0, r_unc - r_rep)``; the official code does not clip
  (``min(p, 1-p) - r_rep`` can be negative) and also subtracts the penalty from malformed
  completions (their empty question is a singleton cluster: ``-1 - 1/B``).

Our clustering runs over the well-formed questions only; malformed completions are singletons,
and B is always the whole batch (well-formed and malformed), which equals the official code's
result exactly because its empty strings have BLEU 0 with everything. With several training
processes, gather the whole batch, call :func:`challenger_rewards` (or
:func:`repetition_penalties`) once on it and keep the local slice (:func:`local_slice`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from rzero_bench.records import ChallengerScore
from rzero_bench.selfplay.bleu import DEFAULT_WEIGHTS, Smoothing, bleu_distance_matrix
from rzero_bench.selfplay.cluster import average_linkage_labels

Variant = Literal["paper", "official"]
T = TypeVar("T")


def uncertainty_reward(p_hat: float, variant: Variant = "paper") -> float:
    """Paper: ``1 - 2|p - 1/2|``; official code: ``min(p, 1 - p)``. ``p_hat`` must lie in [0, 1]."""
    p = float(p_hat)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p_hat must be in [0, 1], got {p_hat!r}")
    if variant == "paper":
        return 1.0 - 2.0 * abs(p - 0.5)
    if variant == "official":
        return min(p, 1.0 - p)
    raise ValueError(f"unknown reward variant {variant!r}; use 'paper' or 'official'")


def cluster_questions(
    texts: Sequence[str],
    threshold: float = 0.5,
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    smoothing: Smoothing = "method1",
    epsilon: float = 0.1,
) -> list[int]:
    """Cluster label per text (numbered by first appearance): average linkage on 1 - BLEU, cut at
    ``threshold`` — the same labels (up to renaming) as nltk + scikit-learn in the official code."""
    if len(texts) == 0:
        return []
    if len(texts) == 1:
        return [0]
    dist = bleu_distance_matrix(texts, weights=weights, smoothing=smoothing, epsilon=epsilon)
    return average_linkage_labels(dist, threshold)


def repetition_penalties(
    texts: Sequence[str],
    *,
    lam: float = 1.0,
    threshold: float = 0.5,
    batch_size: int | None = None,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    smoothing: Smoothing = "method1",
    epsilon: float = 0.1,
) -> list[float]:
    """``lam * |C(i)| / B`` per text; B defaults to ``len(texts)``. Pass the whole (gathered) batch."""
    labels = cluster_questions(texts, threshold, weights=weights, smoothing=smoothing, epsilon=epsilon)
    return _penalties_from_labels(labels, lam=lam, batch_size=batch_size)


def _penalties_from_labels(labels: Sequence[int], *, lam: float, batch_size: int | None) -> list[float]:
    total = len(labels) if batch_size is None else int(batch_size)
    if total < len(labels) or (labels and total <= 0):
        raise ValueError(f"batch_size {batch_size} is smaller than the number of texts {len(labels)}")
    sizes = Counter(labels)
    return [lam * sizes[c] / total for c in labels]


def local_slice(values: Sequence[T], rank: int, world_size: int) -> list[T]:
    """This rank's contiguous share of a gathered batch (equal shares, in rank order)."""
    if world_size < 1 or not 0 <= rank < world_size or len(values) % world_size:
        raise ValueError(f"cannot split {len(values)} items into {world_size} equal shares for rank {rank}")
    share = len(values) // world_size
    return list(values[rank * share : (rank + 1) * share])


@dataclass(frozen=True)
class ChallengerRewardOptions:
    """Every constant of the challenger reward. ``None`` means "the variant's default"."""

    variant: Variant = "paper"
    lam: float = 1.0
    threshold: float = 0.5
    format_penalty: float | None = None  # paper 0.0, official -1.0
    require_answer: bool = True  # the gate also needs a \boxed{} answer (paper); see module doc
    clip: bool | None = None  # paper True: max(0, r_unc - r_rep); official False
    penalize_malformed: bool | None = None  # official True: malformed get format_penalty - lam/B
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    smoothing: Smoothing = "method1"
    epsilon: float = 0.1

    def resolved(self) -> ChallengerRewardOptions:
        official = self.variant == "official"
        if self.variant not in ("paper", "official"):
            raise ValueError(f"unknown reward variant {self.variant!r}; use 'paper' or 'official'")
        return ChallengerRewardOptions(
            variant=self.variant,
            lam=self.lam,
            threshold=self.threshold,
            format_penalty=(-1.0 if official else 0.0)
            if self.format_penalty is None
            else self.format_penalty,
            require_answer=self.require_answer,
            clip=(not official) if self.clip is None else self.clip,
            penalize_malformed=official if self.penalize_malformed is None else self.penalize_malformed,
            weights=tuple(self.weights),
            smoothing=self.smoothing,
            epsilon=self.epsilon,
        )


_ALIASES = {
    "variant": ("variant", "reward_variant"),
    "lam": ("lam",),
    "threshold": ("threshold", "bleu_threshold"),
    "format_penalty": ("format_penalty",),
    "require_answer": ("require_answer", "require_boxed"),
    "clip": ("clip",),
    "penalize_malformed": ("penalize_malformed",),
}


def _options_from(obj: Any) -> dict[str, Any]:
    """Read the options from a config-like object (e.g. ``SelfPlayConfig``) or a mapping."""
    found: dict[str, Any] = {}
    for name, aliases in _ALIASES.items():
        for alias in aliases:
            value = obj.get(alias) if isinstance(obj, dict) else getattr(obj, alias, None)
            if value is not None:
                found[name] = value
                break
    return found


def _parse_completion(text: str, require_answer: bool) -> str | None:
    from rzero_bench.parsing import extract_question, last_boxed

    question = extract_question(text)
    if question is None or not question.strip():
        return None
    if require_answer:
        answer = last_boxed(text)
        if answer is None or not answer.strip():
            return None
    return question.strip()


def challenger_rewards(
    completions: Sequence[str],
    p_hats: Sequence[float | None],
    options: ChallengerRewardOptions | Any = None,
    *,
    parse: Callable[[str, bool], str | None] | None = None,
    **overrides: Any,
) -> list[ChallengerScore]:
    """Reward breakdown for a whole batch of challenger completions.

    ``p_hats[i]`` is the solver's agreement on completion i's question (ignored, may be None, for a
    malformed completion; None for a well-formed one means "not scored" and gives uncertainty 0).
    ``options`` is a :class:`ChallengerRewardOptions`, a config object with the same fields (e.g.
    ``SelfPlayConfig``: ``reward_variant``, ``lam``, ``bleu_threshold``, ``format_penalty``,
    ``require_boxed``) or None; keyword overrides (``variant=``, ``lam=``, ``threshold=``,
    ``format_penalty=``, ``clip=`` ...) win. ``parse(text, require_answer)`` returns the question or
    None (default: :mod:`rzero_bench.parsing`). Each score's ``text`` is the extracted question
    (well-formed) or the raw completion (malformed, ``cluster=-1``).
    """
    if len(completions) != len(p_hats):
        raise ValueError(f"{len(completions)} completions but {len(p_hats)} p_hats")
    if isinstance(options, ChallengerRewardOptions):
        base = options
    else:
        base = ChallengerRewardOptions(**(_options_from(options) if options is not None else {}))
    fields = {**base.__dict__, **overrides}
    opts = ChallengerRewardOptions(**fields).resolved()
    parse_fn = parse or _parse_completion
    questions = [parse_fn(text, opts.require_answer) for text in completions]
    good = [i for i, q in enumerate(questions) if q is not None]
    total = len(completions)
    labels = [-1] * total
    if good:
        good_labels = cluster_questions(
            [questions[i] or "" for i in good],
            opts.threshold,
            weights=opts.weights,
            smoothing=opts.smoothing,
            epsilon=opts.epsilon,
        )
        for i, lab in zip(good, good_labels, strict=True):
            labels[i] = lab
    sizes = Counter(lab for lab in labels if lab >= 0)
    assert opts.format_penalty is not None
    scores: list[ChallengerScore] = []
    for i, text in enumerate(completions):
        question = questions[i]
        if question is None:
            rep = opts.lam / total if opts.penalize_malformed else 0.0
            scores.append(
                ChallengerScore(
                    text=text,
                    well_formed=False,
                    p_hat=None,
                    uncertainty=0.0,
                    repetition=rep,
                    reward=opts.format_penalty - rep,
                    cluster=-1,
                )
            )
            continue
        p = p_hats[i]
        unc = 0.0 if p is None else uncertainty_reward(p, opts.variant)
        rep = opts.lam * sizes[labels[i]] / total
        reward = unc - rep
        if opts.clip:
            reward = max(0.0, reward)
        scores.append(
            ChallengerScore(
                text=question,
                well_formed=True,
                p_hat=None if p is None else float(p),
                uncertainty=unc,
                repetition=rep,
                reward=reward,
                cluster=labels[i],
            )
        )
    return scores
