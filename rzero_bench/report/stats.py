"""Statistics for reports: means with standard errors, intervals for proportions, paired bootstrap.

Formulas (z = 1.959964 for 95 %):

- mean and standard error of the mean: ``m = sum(x)/n``, ``se = s/sqrt(n)`` with the sample
  standard deviation ``s`` (ddof = 1); ``se = 0`` when ``n < 2``.
- standard error of a proportion: ``se = sqrt(p (1 - p) / n)``.
- Wilson score interval for ``x`` successes in ``n`` trials (``p = x/n``)::

      centre = (p + z^2/(2n)) / (1 + z^2/n)
      half   = z / (1 + z^2/n) * sqrt(p (1 - p)/n + z^2/(4 n^2))
      [centre - half, centre + half]            (n = 0 gives [0, 1])

- normal (Wald) interval: ``p +/- z se`` clipped to [0, 1].
- standard error of a mean of independent estimates ``(e_1 + ... + e_t)/t``:
  ``sqrt(se_1^2 + ... + se_t^2) / t``.
- paired bootstrap over items: item i has scores ``a_i`` (before) and ``b_i`` (after) on the same
  item. Each replicate draws n item indices with replacement, the *same* indices for a and b, and
  records ``mean(b[idx]) - mean(a[idx])``. The 95 % interval is the 2.5th and 97.5th percentile of
  the replicates (percentile bootstrap); the observed delta is ``mean(b) - mean(a)``.
- stratified paired bootstrap (for suite means): each task is resampled within itself with its
  own items, the per-task deltas of one replicate are combined with the suite formula (for example
  the mean of the task deltas), and the percentile interval is taken over the combined replicates.

Everything is deterministic for a given ``seed`` (numpy ``default_rng``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054

__all__ = [
    "Z95",
    "BootstrapCI",
    "combine_stderr",
    "mean_stderr",
    "normal_interval",
    "paired_bootstrap",
    "proportion_stderr",
    "stratified_paired_bootstrap",
    "wilson_interval",
]


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample sd, ddof=1). Empty input gives (nan, nan)."""
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n == 0:
        return math.nan, math.nan
    m = float(arr.mean())
    if n < 2:
        return m, 0.0
    return m, float(arr.std(ddof=1) / math.sqrt(n))


def proportion_stderr(p: float, n: int) -> float:
    """``sqrt(p (1-p) / n)``; 0 when n is 0."""
    if n <= 0:
        return 0.0
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (``[0, 1]`` when n == 0)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must be within [0, n={n}]")
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def normal_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wald interval ``p +/- z sqrt(p(1-p)/n)`` clipped to [0, 1] (``[0, 1]`` when n == 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    half = z * proportion_stderr(p, n)
    return max(0.0, p - half), min(1.0, p + half)


def combine_stderr(stderrs: Sequence[float]) -> float:
    """Standard error of the mean of independent estimates: ``sqrt(sum se_i^2) / t``."""
    if not stderrs:
        return math.nan
    return math.sqrt(sum(float(s) ** 2 for s in stderrs)) / len(stderrs)


@dataclass(frozen=True)
class BootstrapCI:
    """Observed delta (after - before), its bootstrap standard error and percentile interval."""

    delta: float
    lo: float
    hi: float
    se: float
    n: int
    n_boot: int
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies strictly above or strictly below 0."""
        return self.lo > 0.0 or self.hi < 0.0

    def to_dict(self) -> dict[str, float | int | bool]:
        d: dict[str, float | int | bool] = dict(asdict(self))
        d["excludes_zero"] = self.excludes_zero
        return d


def _replicate_means(diff: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 256) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``diff``; memory bounded by ``chunk``."""
    n = diff.size
    out = np.empty(n_boot, dtype=float)
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(size, n))
        out[done : done + size] = diff[idx].mean(axis=1)
        done += size
    return out


def _as_pair(before: Sequence[float], after: Sequence[float]) -> np.ndarray:
    a = np.asarray(before, dtype=float)
    b = np.asarray(after, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples need equal 1-D lengths, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("paired bootstrap needs at least one item")
    return b - a


def paired_bootstrap(
    before: Sequence[float],
    after: Sequence[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Percentile CI for ``mean(after) - mean(before)`` resampling items (pairs stay together).

    Resampling the per-item difference ``d_i = after_i - before_i`` is exactly resampling the
    pairs, because the mean of differences equals the difference of means on any index set.
    """
    diff = _as_pair(before, after)
    rng = np.random.default_rng(seed)
    reps = _replicate_means(diff, n_boot, rng)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return BootstrapCI(
        float(diff.mean()), float(lo), float(hi), float(reps.std(ddof=1)), int(diff.size), n_boot, level
    )


def stratified_paired_bootstrap(
    strata: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    combine: Callable[[Mapping[str, float]], float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Percentile CI for ``combine({stratum: delta})`` resampling items within each stratum.

    ``strata`` maps a name (a task) to its paired (before, after) item scores; ``combine`` turns
    the per-stratum deltas of one replicate into the suite statistic (for example their mean).
    Strata are processed in sorted order so the result depends only on ``seed`` and the data.
    """
    if not strata:
        raise ValueError("stratified bootstrap needs at least one stratum")
    rng = np.random.default_rng(seed)
    names = sorted(strata)
    diffs = {k: _as_pair(*strata[k]) for k in names}
    reps = {k: _replicate_means(diffs[k], n_boot, rng) for k in names}
    combined = np.array([combine({k: float(reps[k][r]) for k in names}) for r in range(n_boot)], dtype=float)
    observed = float(combine({k: float(diffs[k].mean()) for k in names}))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(combined, [alpha, 1.0 - alpha])
    n = sum(int(d.size) for d in diffs.values())
    return BootstrapCI(observed, float(lo), float(hi), float(combined.std(ddof=1)), n, n_boot, level)
