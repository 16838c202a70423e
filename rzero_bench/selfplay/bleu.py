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


def _features(token_lists: Sequence[Sequence[str]], n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(doc ids, feature ids, number of features): one row per (string, n-gram, copy k)."""
    vocab: dict[tuple[tuple[str, ...], int], int] = {}
    docs: list[int] = []
    feats: list[int] = []
    for d, toks in enumerate(token_lists):
        for g, c in _ngram_counts(toks, n).items():
            for k in range(c):
                key = (g, k)
                f = vocab.get(key)
                if f is None:
                    f = vocab[key] = len(vocab)
                docs.append(d)
                feats.append(f)
    return np.asarray(docs, dtype=np.int64), np.asarray(feats, dtype=np.int64), len(vocab)


def _clipped_matches(token_lists: Sequence[Sequence[str]], n: int, dense_df: int | None = None) -> np.ndarray:
    """Symmetric integer matrix ``M[a, b] = sum_g min(c_a(g), c_b(g))`` over the n-grams g."""
    size = len(token_lists)
    docs, feats, nfeat = _features(token_lists, n)
    out = np.zeros((size, size), dtype=np.int64)
    if nfeat == 0:
        return out
    df = np.bincount(feats, minlength=nfeat)
    if dense_df is None:
        dense_df = max(8, size // 24)
    keep = df[feats] >= 2  # a feature seen in one string only matches nothing else
    docs, feats = docs[keep], feats[keep]
    dense_mask = df[feats] >= dense_df
    # frequent features: one dense 0/1 matrix product (exact in float32 below 2**24)
    if dense_mask.any():
        dfeats = feats[dense_mask]
        uniq, col = np.unique(dfeats, return_inverse=True)
        x = np.zeros((size, len(uniq)), dtype=np.float32)
        x[docs[dense_mask], col] = 1.0
        out += np.rint(x @ x.T).astype(np.int64)
    # rare features: every pair of strings sharing one
    sdocs, sfeats = docs[~dense_mask], feats[~dense_mask]
    if len(sfeats):
        order = np.lexsort((sdocs, sfeats))
        sdocs, sfeats = sdocs[order], sfeats[order]
        starts = np.flatnonzero(np.r_[True, sfeats[1:] != sfeats[:-1]])
        lengths = np.diff(np.r_[starts, len(sfeats)])
        pair_a: list[np.ndarray] = []
        pair_b: list[np.ndarray] = []
        for length in np.unique(lengths):
            group = starts[lengths == length]
            members = sdocs[group[:, None] + np.arange(length)[None, :]]  # (groups, length)
            ia, ib = np.triu_indices(int(length), k=1)
            pair_a.append(members[:, ia].ravel())
            pair_b.append(members[:, ib].ravel())
        a = np.concatenate(pair_a)
        b = np.concatenate(pair_b)
        flat = np.bincount(a * size + b, minlength=size * size).reshape(size, size)
        out += flat + flat.T
    np.fill_diagonal(out, 0)
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


def _log_table(nums: np.ndarray, dens: np.ndarray, smoothing: Smoothing, epsilon: float) -> np.ndarray:
    """``math.log`` of the (smoothed) precision for each (numerator, denominator) pair."""
    return _lookup(nums, dens, lambda num, den: math.log(_smoothed(num, den, smoothing, epsilon)))


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
    lengths = np.array([len(t) for t in toks], dtype=np.int64)
    hyp_len, ref_len = lengths[iu], lengths[ju]
    scores = np.zeros(len(iu), dtype=np.float64)
    logs: list[np.ndarray] = []
    live: np.ndarray | None = None
    for n, w in enumerate(weights, start=1):
        matches = _clipped_matches(toks, n)[iu, ju]
        if live is None:
            live = np.flatnonzero(matches > 0)  # nltk returns 0 when no unigram matches
        num = matches[live]
        den = np.maximum(1, hyp_len[live] - n + 1)
        logs.append(float(w) * _log_table(num, den, smoothing, epsilon))
    if live is None or len(live) == 0:
        return iu, ju, scores
    # math.fsum is correctly rounded: reproduce it exactly rather than with a plain float sum
    sums = list(map(math.fsum, zip(*(lg.tolist() for lg in logs), strict=True)))
    geo = np.fromiter(map(math.exp, sums), dtype=np.float64, count=len(sums))
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
