"""Benchmark metrics with standard errors.

- ``acc``: mean of per-item 0/1 correctness of one (greedy) completion.
- ``mean@k``: per item, the fraction of k sampled completions that are correct; averaged over items.
- ``maj@k``: per item, 1 if the largest cluster of equivalent answers among the first k samples is
  correct (unanswered samples never vote; ties go to the cluster seen first); averaged over items.
- ``pass@k``: the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models
  Trained on Code", eq. 1): ``1 - C(n-c, k) / C(n, k)`` for n samples with c correct, per item.

Every metric is a mean of per-item scores x_i over n items; its standard error is the sample
standard deviation over sqrt(n): ``sqrt(sum (x_i - mean)^2 / (n - 1)) / sqrt(n)`` (0 when n < 2),
as in lm-eval's ``mean_stderr``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rzero_bench.records import Metric

__all__ = ["mean_stderr", "metric_from_scores", "pass_at_k", "mean_at_k", "majority_correct"]


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error of the mean); (0, 0) for no values, stderr 0 for one value."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def metric_from_scores(scores: Sequence[float]) -> Metric:
    """Metric(value, stderr, n) from per-item scores."""
    value, stderr = mean_stderr(scores)
    return Metric(value=value, stderr=stderr, n=len(scores))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one item with ``n`` samples of which ``c`` are correct (k <= n)."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i), numerically stable form of 1 - C(n-c,k)/C(n,k)
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_at_k(correct: Sequence[bool]) -> float:
    """Fraction of correct samples for one item."""
    return sum(1 for c in correct if c) / len(correct) if correct else 0.0


def majority_correct(classes: Sequence[Sequence[int]], correct: Sequence[bool]) -> bool:
    """Is the majority cluster correct? ``classes`` are index lists, largest first (ties: first seen).

    Indices refer to ``correct``; an empty ``classes`` (no sample answered) counts as wrong.
    """
    if not classes:
        return False
    best = max(classes, key=lambda cls: (len(cls), -min(cls)))
    return bool(correct[best[0]])
