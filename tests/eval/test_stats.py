"""Statistics: randomization test against exact enumeration, relative change, latency, Pareto front."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from eval.stats import latency_summary, paired_randomization_test, pareto_front, relative_change


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
