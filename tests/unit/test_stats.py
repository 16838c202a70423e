"""Statistics: Wilson/normal intervals, standard errors, paired bootstrap with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rzero_bench.report.stats import (
    combine_stderr,
    mean_stderr,
    normal_interval,
    paired_bootstrap,
    proportion_stderr,
    stratified_paired_bootstrap,
    wilson_interval,
)


def test_wilson_known_values() -> None:
    lo, hi = wilson_interval(4, 7)
    assert lo == pytest.approx(0.2504, abs=1e-4) and hi == pytest.approx(0.8418, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_normal_interval_and_stderr() -> None:
    lo, hi = normal_interval(50, 100)
    assert lo == pytest.approx(0.5 - 1.959964 * 0.05, abs=1e-6) and hi == pytest.approx(
        0.5 + 1.959964 * 0.05, abs=1e-6
    )
    assert normal_interval(0, 5) == (0.0, 0.0)
    assert proportion_stderr(0.5, 100) == pytest.approx(0.05)
    assert proportion_stderr(0.5, 0) == 0.0


def test_mean_stderr_and_combine() -> None:
    m, se = mean_stderr([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert mean_stderr([7.0]) == (7.0, 0.0)
    assert all(math.isnan(x) for x in mean_stderr([]))
    assert combine_stderr([0.3, 0.4]) == pytest.approx(0.25)


def test_paired_bootstrap_two_items_known_distribution() -> None:
    # d = (0, 1): a resampled mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4, so the 2.5 %
    # and 97.5 % percentiles are exactly 0 and 1, and the bootstrap sd is sqrt(1/8).
    ci = paired_bootstrap([0, 0], [0, 1], n_boot=4000, seed=0)
    assert ci.delta == 0.5 and ci.lo == 0.0 and ci.hi == 1.0
    assert ci.se == pytest.approx(math.sqrt(1 / 8), rel=0.05)
    assert not ci.excludes_zero


def test_paired_bootstrap_constant_difference_is_degenerate() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(50)
    ci = paired_bootstrap(a, a + 0.1, n_boot=500, seed=3)
    assert ci.delta == pytest.approx(0.1) and ci.lo == pytest.approx(0.1) and ci.hi == pytest.approx(0.1)
    assert ci.excludes_zero


def test_paired_bootstrap_matches_normal_theory_and_is_seeded() -> None:
    rng = np.random.default_rng(7)
    a = (rng.random(400) < 0.4).astype(float)
    b = np.where(rng.random(400) < 0.2, 1 - a, a)  # flip 20 % of items
    d = b - a
    se = d.std(ddof=1) / math.sqrt(d.size)
    ci = paired_bootstrap(a, b, n_boot=3000, seed=11)
    assert ci.se == pytest.approx(se, rel=0.08)
    assert ci.lo == pytest.approx(d.mean() - 1.96 * se, abs=0.25 * se)
    assert ci.hi == pytest.approx(d.mean() + 1.96 * se, abs=0.25 * se)
    assert paired_bootstrap(a, b, n_boot=3000, seed=11) == ci
    assert paired_bootstrap(a, b, n_boot=3000, seed=12) != ci


def test_paired_bootstrap_rejects_unpaired() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap([0, 1], [1])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])


def test_stratified_bootstrap_combines_per_stratum() -> None:
    strata = {"t1": ([0.0] * 10, [0.1] * 10), "t2": ([0.5] * 4, [0.8] * 4)}
    ci = stratified_paired_bootstrap(strata, lambda d: (d["t1"] + d["t2"]) / 2, n_boot=200, seed=0)
    assert ci.delta == pytest.approx(0.2) and ci.lo == pytest.approx(0.2) and ci.hi == pytest.approx(0.2)
    assert ci.n == 14
