"""Statistics: randomization test against exact enumeration, bootstrap intervals on hand-computed cases,
relative change, latency, Pareto front."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from eval.stats import (
    latency_summary,
    paired_bootstrap_ci,
    paired_bootstrap_cis,
    paired_randomization_test,
    pareto_front,
    relative_change,
)


def _exact_p(a: np.ndarray, b: np.ndarray) -> float:
    """Enumerate all 2^n sign assignments (the exact randomization distribution)."""
    diff = a - b
    observed = abs(diff.mean())
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=len(diff))))
    return float(np.mean(np.abs(signs @ diff) / len(diff) >= observed - 1e-12))


def test_identical_scores_give_p_one() -> None:
    a = np.array([0.1, 0.5, 0.3])
    assert paired_randomization_test(a, a.copy()) == 1.0


def test_matches_exact_enumeration() -> None:
    rng = np.random.default_rng(3)
    a = rng.random(10)
    b = a - rng.normal(0.05, 0.1, 10)
    exact = _exact_p(a, b)
    approx = paired_randomization_test(a, b, n_permutations=20_000, seed=1)
    # Monte Carlo standard error at 20k draws is at most 0.0036.
    assert approx == pytest.approx(exact, abs=0.015)


def test_three_equal_differences() -> None:
    # diffs (1, 1, 1): |mean| = 1 only for all-plus or all-minus signs: 2 of 8 assignments.
    p = paired_randomization_test(np.ones(3), np.zeros(3), n_permutations=40_000, seed=0)
    assert p == pytest.approx(0.25, abs=0.01)


def test_consistent_difference_is_significant_and_seeded() -> None:
    a = np.linspace(0.2, 0.8, 60)
    b = a - 0.05
    p = paired_randomization_test(a, b)
    # Only the two uniform sign assignments (probability 2 / 2^60) reach the observed mean.
    assert p == pytest.approx(1 / 10_001)
    noisy = a + np.random.default_rng(0).normal(0, 0.2, 60)
    assert paired_randomization_test(a, noisy, seed=5) == paired_randomization_test(a, noisy, seed=5)


def test_bad_shapes_rejected() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired_randomization_test(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="equal length"):
        paired_randomization_test(np.ones(0), np.ones(0))


def test_relative_change() -> None:
    assert relative_change(0.3, 0.4) == pytest.approx(-25.0)  # (0.3 - 0.4) / 0.4 × 100
    assert relative_change(0.5, 0.4) == pytest.approx(25.0)
    assert math.isnan(relative_change(0.1, 0.0))


def test_latency_summary() -> None:
    s = latency_summary([0.001, 0.002, 0.003, 0.004])
    assert s["p50_ms"] == pytest.approx(2.5)  # median of 1, 2, 3, 4 ms
    assert s["p95_ms"] == pytest.approx(3.85)  # numpy linear interpolation: 3 + 0.85 × (4 - 3)
    assert s["qps"] == pytest.approx(400.0)  # 4 queries / 0.010 s
    with pytest.raises(ValueError):
        latency_summary([])


def test_pareto_front() -> None:
    costs = [4096, 512, 128, 32, 128, 8]
    quality = [0.60, 0.58, 0.50, 0.52, 0.40, 0.30]
    # 128 @ 0.50 is dominated by 32 @ 0.52; 128 @ 0.40 also by 32 @ 0.52.
    assert pareto_front(costs, quality) == [5, 3, 1, 0]
    with pytest.raises(ValueError):
        pareto_front([1.0], [])


def test_bootstrap_of_two_queries_matches_the_enumeration() -> None:
    # Differences (1, 3): a resample of 2 queries has mean 1 (¼), 2 (½) or 3 (¼), so the 2.5% and
    # 97.5% percentiles of 10,000 resamples are the extremes 1 and 3.
    lo, hi = paired_bootstrap_ci(np.array([1.0, 3.0]), np.zeros(2), relative=False)
    assert (lo, hi) == (1.0, 3.0)
    # A 40% interval cuts 30% off each tail: both ends fall in the ½ mass at 2.
    assert paired_bootstrap_ci(np.array([1.0, 3.0]), np.zeros(2), relative=False, confidence=0.4) == (
        2.0,
        2.0,
    )


def test_bootstrap_of_a_constant_change_is_that_change() -> None:
    base = np.array([0.2, 0.4, 0.6, 0.8])
    # Every query gains 0.1: every resample's difference of means is 0.1.
    lo, hi = paired_bootstrap_ci(base + 0.1, base, relative=False)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    # Every query doubles: every resample's relative change is +100%.
    assert paired_bootstrap_ci(base * 2, base) == pytest.approx((100.0, 100.0))
    assert paired_bootstrap_ci(base, base) == (0.0, 0.0)


def test_bootstrap_is_paired_seeded_and_covers_the_observed_change() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200)
    system = base + rng.normal(-0.02, 0.05, 200)
    observed = relative_change(float(system.mean()), float(base.mean()))
    lo, hi = paired_bootstrap_ci(system, base, seed=3)
    assert lo < observed < hi
    assert paired_bootstrap_ci(system, base, seed=3) == (lo, hi)
    # Paired: a large shared per-query spread does not widen the interval of a constant shift.
    assert paired_bootstrap_ci(base + 0.01, base, relative=False) == pytest.approx((0.01, 0.01))
    # Several systems at once share the resamples: the same column gives the same interval.
    both = paired_bootstrap_cis(np.column_stack([system, system]), base, seed=3)
    assert tuple(both[0]) == tuple(both[1]) == pytest.approx((lo, hi))


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n_queries"):
        paired_bootstrap_ci(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_ci(np.ones(3), np.ones(3), confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap_ci(np.ones(3), np.ones(3), n_resamples=0)
