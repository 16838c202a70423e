"""Pairwise sentence BLEU between a batch of questions, bit-for-bit equal to nltk, much faster.

The repetition penalty of R-Zero (paper §3.2) clusters the challenger's batch by the BLEU distance
``d_ij = 1 - BLEU(x_i, x_j)``. The official code builds the matrix with nltk::

    d[i, j] = d[j, i] = 1 - sentence_bleu([x_j.split()], x_i.split(), smoothing_function=method1)
                                                           for i < j, and d[i, i] = 0

i.e. whitespace tokenisation, the default 4-gram weights (1/4 each), smoothing method 1 (a zero
n-gram match count becomes ``epsilon / denominator`` with epsilon 0.1) and, because BLEU is not
symmetric, the *earlier* string of each pair is the hypothesis and the later one the reference.
This module computes the same matrix with the same floating-point operations:

* ``p_n = clip_n / max(1, len_hyp - n + 1)`` where ``clip_n = sum_g min(c_hyp(g), c_ref(g))`` over
  the n-grams g (clipped counts are symmetric in hypothesis and reference, so one integer matrix per
  order serves both orientations);
* BLEU is 0 when there is no unigram match (nltk returns before smoothing);
* otherwise ``BLEU = BP * exp(fsum_n w_n * log p_n)``, ``BP = 1`` if ``len_hyp > len_ref`` else
  ``exp(1 - len_ref / len_hyp)``; logs, the correctly rounded ``math.fsum`` and ``exp`` are the
  ``math`` module's, applied to the same float values nltk feeds them.

Speed comes from counting n-grams once per string and computing all clipped counts at once: a
count ``c`` of n-gram g in a string becomes ``c`` binary features (g, 1..c), so
``min(c_a, c_b)`` is the dot product of two binary vectors. Frequent features go through one dense
BLAS product, rare ones through an inverted index; only numpy is used.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

Smoothing = Literal["method1", "method0"]

DEFAULT_WEIGHTS: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)


def tokenize(text: str) -> list[str]:
    """Whitespace tokenisation, as the official code (``str.split()``)."""
    return text.split()


def _ngram_counts(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    if len(tokens) < n:
        return Counter()
    return Counter(tuple(tokens[k : k + n]) for k in range(len(tokens) - n + 1))


def sentence_bleu(
    hypothesis: Sequence[str],
    reference: Sequence[str],
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    smoothing: Smoothing = "method1",
    epsilon: float = 0.1,
) -> float:
    """BLEU of one tokenised hypothesis against one reference (nltk ``sentence_bleu`` semantics).

    ``smoothing="method1"`` is nltk ``SmoothingFunction(epsilon).method1`` (the official code);
    ``"method0"`` is nltk's default (no smoothing: a zero precision becomes the smallest float).
    """
    nums: list[int] = []
    dens: list[int] = []
    for n in range(1, len(weights) + 1):
        hyp = _ngram_counts(hypothesis, n)
        ref = _ngram_counts(reference, n)
        nums.append(sum(min(c, ref[g]) for g, c in hyp.items()))
        dens.append(max(1, sum(hyp.values())))
    if nums[0] == 0:
        return 0.0
    hyp_len, ref_len = len(hypothesis), len(reference)
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    logs = [
        w * math.log(_smoothed(num, den, smoothing, epsilon))
        for w, num, den in zip(weights, nums, dens, strict=True)
    ]
    return bp * math.exp(math.fsum(logs))


def _smoothed(num: int, den: int, smoothing: Smoothing, epsilon: float) -> float:
    if num != 0:
        return num / den
    if smoothing == "method1":
        return (num + epsilon) / den
    if smoothing == "method0":
        return sys.float_info.min
    raise ValueError(f"unknown smoothing {smoothing!r}; use 'method1' or 'method0'")


class _Tokens:
    """All strings' tokens as one int array, with the string (doc) of every position."""

    def __init__(self, token_lists: Sequence[Sequence[str]]) -> None:
        vocab: dict[str, int] = {}
        ids = [vocab.setdefault(tok, len(vocab)) for toks in token_lists for tok in toks]
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vocab_size = max(1, len(vocab))
        lengths = np.array([len(t) for t in token_lists], dtype=np.int64)
        self.size = len(token_lists)
        self.doc = np.repeat(np.arange(self.size, dtype=np.int64), lengths)
        ends = np.cumsum(lengths)
        self.left = ends[self.doc] - np.arange(len(self.ids))  # tokens left in its string, incl. itself

    def postings(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(docs, group starts): docs grouped by feature (n-gram g, copy k); each group ascending.

        A string with c copies of g contributes to features (g, 0..c-1), so the number of shared
        features of two strings is ``sum_g min(c_a(g), c_b(g))``.
        """
        starts_pos = np.flatnonzero(self.left >= n)
        if len(starts_pos) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if self.vocab_size**n < 1 << 62:
            key = self.ids[starts_pos].copy()
            for k in range(1, n):
                key = key * self.vocab_size + self.ids[starts_pos + k]
        else:  # huge vocabularies: number the n-grams through a lexicographic sort
            cols = np.stack([self.ids[starts_pos + k] for k in range(n)], axis=1)
            _, key = np.unique(cols, axis=0, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
        docs = self.doc[starts_pos]
        order = np.lexsort((docs, key))
        key, docs = key[order], docs[order]
        new_run = np.r_[True, (key[1:] != key[:-1]) | (docs[1:] != docs[:-1])]
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(key)), 0))
        copy = np.arange(len(key)) - run_start  # k-th occurrence of g in this string
        order = np.lexsort((docs, copy, key))
        key, copy, docs = key[order], copy[order], docs[order]
        group_start = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]) | (copy[1:] != copy[:-1])])
        return docs, group_start


def _condensed_index(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """Position of pair (a, b), a < b, in ``np.triu_indices(size, 1)`` order."""
    return a * (2 * size - a - 1) // 2 + (b - a - 1)


def _clipped_matches(
    tokens: _Tokens, n: int, iu: np.ndarray, ju: np.ndarray, dense_df: int | None = None
) -> np.ndarray:
    """``sum_g min(c_i(g), c_j(g))`` over the n-grams g, for every pair (iu[k], ju[k]) with i < j."""
    size = tokens.size
    out = np.zeros(len(iu), dtype=np.int64)
    docs, starts = tokens.postings(n)
    if len(docs) == 0:
        return out
    lengths = np.diff(np.r_[starts, len(docs)])
    if dense_df is None:
        dense_df = max(8, size // 24)
    # frequent features: one dense 0/1 matrix product (exact in float32 below 2**24)
    dense = np.flatnonzero(lengths >= dense_df)
    if len(dense):
        col = np.repeat(np.arange(len(dense)), lengths[dense])
        rows = docs[
            np.concatenate([np.arange(s, s + c) for s, c in zip(starts[dense], lengths[dense], strict=True)])
        ]
        x = np.zeros((size, len(dense)), dtype=np.float32)
        x[rows, col] = 1.0
        out += np.rint((x @ x.T)[iu, ju]).astype(np.int64)
    # rare features (seen in 2 .. dense_df - 1 strings): every pair of strings sharing one
    pair_idx: list[np.ndarray] = []
    for length in np.unique(lengths[(lengths >= 2) & (lengths < dense_df)]).tolist():
        group = starts[lengths == length]
        members = docs[group[:, None] + np.arange(length)[None, :]]  # (groups, length), ascending
        ia, ib = np.triu_indices(length, k=1)
        pair_idx.append(_condensed_index(members[:, ia].ravel(), members[:, ib].ravel(), size))
    if pair_idx:
        out += np.bincount(np.concatenate(pair_idx), minlength=len(iu))
    return out


def _lookup(a: np.ndarray, b: np.ndarray, fn: Callable[[int, int], float]) -> np.ndarray:
    """``fn(a[k], b[k])`` for every k, calling ``fn`` once per distinct (a, b) pair."""
    base = int(b.max()) + 1
    key = a.astype(np.int64) * base + b
    span = int(key.max()) + 1
    if span <= 1 << 24:  # dense table: no sort needed
        mask = np.zeros(span, dtype=bool)
        mask[key] = True
        needed = np.flatnonzero(mask)
        table = np.zeros(span, dtype=np.float64)
        table[needed] = [fn(int(k // base), int(k % base)) for k in needed.tolist()]
        return table[key]
    uniq, inverse = np.unique(key, return_inverse=True)
    values = np.array([fn(int(k // base), int(k % base)) for k in uniq.tolist()], dtype=np.float64)
    return values[inverse]


def _geo_mean(row: list[int], weights: Sequence[float], smoothing: Smoothing, epsilon: float) -> float:
    hyp_len, clips = row[0], row[1:]
    logs = [
        w * math.log(_smoothed(num, max(1, hyp_len - n + 1), smoothing, epsilon))
        for n, (w, num) in enumerate(zip(weights, clips, strict=True), start=1)
    ]
    return math.exp(math.fsum(logs))


def bleu_upper(
    texts: Sequence[str],
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    smoothing: Smoothing = "method1",
    epsilon: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BLEU(hyp=texts[i], ref=texts[j]) for every pair i < j: ``(i, j, scores)`` in ``triu`` order."""
    size = len(texts)
    iu, ju = np.triu_indices(size, k=1)
    if size < 2:
        return iu, ju, np.zeros(0, dtype=np.float64)
    toks = [tokenize(t) for t in texts]
    tokens = _Tokens(toks)
    lengths = np.array([len(t) for t in toks], dtype=np.int64)
    hyp_len, ref_len = lengths[iu], lengths[ju]
    scores = np.zeros(len(iu), dtype=np.float64)
    nums: list[np.ndarray] = []
    live: np.ndarray | None = None
    for n in range(1, len(weights) + 1):
        matches = _clipped_matches(tokens, n, iu, ju)
        if live is None:
            live = np.flatnonzero(matches > 0)  # nltk returns 0 when no unigram matches
        nums.append(matches[live])
    if live is None or len(live) == 0:
        return iu, ju, scores
    # exp(fsum_n w_n log p_n) depends only on (len_hyp, clip_1..clip_N): evaluate it with math
    # (correctly rounded fsum, libm log/exp, exactly as nltk) once per distinct tuple
    cols = [hyp_len[live], *nums]
    base = int(lengths.max()) + 1
    if base ** len(cols) < 1 << 62:  # pack each tuple into one int64: a 1-d unique is fast
        key = cols[0].copy()
        for c in cols[1:]:
            key = key * base + c
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        uniq = np.stack([c[first] for c in cols], axis=1)
    else:
        uniq, inverse = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)
    geo_table = np.array(
        [_geo_mean(row, weights, smoothing, epsilon) for row in uniq.tolist()], dtype=np.float64
    )
    geo = geo_table[inverse.reshape(-1)]
    h, r = hyp_len[live], ref_len[live]
    bp = np.ones(len(live), dtype=np.float64)
    short = h <= r
    if short.any():
        bp[short] = _lookup(h[short], r[short], lambda hl, rl: math.exp(1 - rl / hl))
    scores[live] = bp * geo
    return iu, ju, scores


def bleu_distance_matrix(
    texts: Sequence[str],
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    smoothing: Smoothing = "method1",
    epsilon: float = 0.1,
) -> np.ndarray:
    """The official code's symmetric distance matrix ``1 - BLEU(hyp=x_i, ref=x_j)`` (i < j), 0 diagonal."""
    size = len(texts)
    dist = np.zeros((size, size), dtype=np.float64)
    iu, ju, scores = bleu_upper(texts, weights=weights, smoothing=smoothing, epsilon=epsilon)
    d = 1 - scores
    dist[iu, ju] = d
    dist[ju, iu] = d
    return dist
