"""Build the solver's training set: keep informative questions, count every drop by reason.

Paper (R-Zero §3.3): keep a question when ``|p_hat - 1/2| <= delta`` with delta = 0.25, i.e.
``0.25 <= p_hat <= 0.75`` (``mode="paper"``). Official code: keep ``low <= p_hat <= high`` with
(0.3, 0.8) in its scripts (``mode="band"``) and drop pseudo-labels ``''`` and ``'None'``; it does
not deduplicate.

Band edges are inclusive and compared exactly: p_hat is the fraction ``counts[0] / m`` from the
vote and the constants are read as the decimals they are written as (``0.3`` is 3/10), so
p_hat = 3/10 with band (0.3, 0.8) and p_hat = 1/4, 3/4 with delta 0.25 are kept.

Checks run in this order, and the first that fails names the drop reason:

* ``malformed``: blank question text;
* ``no_label``: no sample answered (label None or blank), or the label is the string "None"
  (``drop_none_label``, the official variant's non-answer);
* ``too_hard`` / ``too_easy``: p_hat below / above the kept range;
* ``exact_duplicate``: same text (stripped) as an earlier kept question;
* ``near_duplicate``: same normalised text (case-folded, punctuation and whitespace removed) as an
  earlier kept question, or, with ``near_dup_threshold`` set, BLEU (either direction) at least that
  high against an earlier kept question. Duplicates are checked last so the first copy that
  passes every other check is the one kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

import numpy as np

from rzero_bench.records import Question, Vote

DROP_REASONS = ("malformed", "no_label", "too_hard", "too_easy", "exact_duplicate", "near_duplicate")

_PUNCT = re.compile(r"[\s.,;:!?'\"`()\[\]{}]+")


def _exact(x: float) -> Fraction:
    """A float constant as the decimal it was written as (0.3 -> 3/10)."""
    return Fraction(repr(float(x)))


def agreement(v: Vote) -> Fraction:
    """p_hat as an exact fraction (majority count / m), falling back to the stored float."""
    if v.counts and v.m > 0:
        return Fraction(v.counts[0], v.m)
    return _exact(v.p_hat)


def normalize_text(text: str) -> str:
    """Text key for near-duplicate detection: NFKC, case-folded, punctuation and spaces removed."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).casefold())


def in_band(
    p: Fraction | float,
    *,
    mode: Literal["paper", "band"] = "paper",
    delta: float = 0.25,
    band: tuple[float, float] = (0.3, 0.8),
) -> int:
    """0 when p is kept, -1 when too hard (below), +1 when too easy (above). Edges are kept."""
    q = p if isinstance(p, Fraction) else _exact(p)
    if mode == "paper":
        lo, hi = Fraction(1, 2) - _exact(delta), Fraction(1, 2) + _exact(delta)
    elif mode == "band":
        lo, hi = _exact(band[0]), _exact(band[1])
    else:
        raise ValueError(f"unknown filter mode {mode!r}; use 'paper' or 'band'")
    if q < lo:
        return -1
    if q > hi:
        return 1
    return 0


def filter_questions(
    questions: Sequence[Question],
    votes: Sequence[Vote],
    *,
    mode: Literal["paper", "band"] = "paper",
    delta: float = 0.25,
    band: tuple[float, float] = (0.3, 0.8),
    dedup: bool = True,
    near_dup_threshold: float | None = None,
    drop_none_label: bool = True,
) -> tuple[list[tuple[Question, Vote]], dict[str, int]]:
    """Kept (question, vote) pairs in input order, and drop counts for every reason (zeros included).

    ``near_dup_threshold`` (e.g. 0.9) adds a BLEU near-duplicate check among kept questions; it
    costs a pairwise BLEU matrix over them, so it is off by default.
    """
    if len(questions) != len(votes):
        raise ValueError(f"{len(questions)} questions but {len(votes)} votes")
    drops = dict.fromkeys(DROP_REASONS, 0)
    passed: list[tuple[Question, Vote]] = []
    for q, v in zip(questions, votes, strict=True):
        if v.question_id != q.id:
            raise ValueError(f"vote for {v.question_id!r} paired with question {q.id!r}")
        if not q.text or not q.text.strip():
            drops["malformed"] += 1
            continue
        label = v.label
        if label is None or not label.strip() or (drop_none_label and label.strip() == "None"):
            drops["no_label"] += 1
            continue
        side = in_band(agreement(v), mode=mode, delta=delta, band=band)
        if side:
            drops["too_hard" if side < 0 else "too_easy"] += 1
            continue
        passed.append((q, v))
    if not dedup:
        return passed, drops
    kept: list[tuple[Question, Vote]] = []
    exact_seen: set[str] = set()
    norm_seen: set[str] = set()
    for q, v in passed:
        text = q.text.strip()
        if text in exact_seen:
            drops["exact_duplicate"] += 1
            continue
        key = normalize_text(text)
        if key in norm_seen:
            drops["near_duplicate"] += 1
            continue
        exact_seen.add(text)
        norm_seen.add(key)
        kept.append((q, v))
    if near_dup_threshold is not None and len(kept) > 1:
        kept, n_near = _bleu_dedup(kept, near_dup_threshold)
        drops["near_duplicate"] += n_near
    return kept, drops


def _bleu_dedup(
    kept: list[tuple[Question, Vote]], threshold: float
) -> tuple[list[tuple[Question, Vote]], int]:
    from rzero_bench.selfplay.bleu import bleu_upper

    n = len(kept)
    iu, ju, s_ij = bleu_upper([q.text for q, _ in kept])
    _, _, s_ji = bleu_upper([q.text for q, _ in reversed(kept)])
    # reversed order gives BLEU(hyp=later, ref=earlier); map it back onto (i, j)
    sim = np.zeros((n, n))
    sim[iu, ju] = s_ij
    rev = np.zeros((n, n))
    rev[iu, ju] = s_ji
    sim = np.maximum(sim, rev[::-1, ::-1].T)
    out: list[tuple[Question, Vote]] = []
    out_idx: list[int] = []
    dropped = 0
    for j in range(n):
        if out_idx and float(sim[out_idx, j].max()) >= threshold:
            dropped += 1
            continue
        out.append(kept[j])
        out_idx.append(j)
    return out, dropped
