"""Statistics of a comparison: paired randomization test, paired bootstrap confidence interval, relative
change, latency summary, Pareto front."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_PERMUTATIONS = 10_000
DEFAULT_SEED = 0
DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95
# Resamples drawn per block: bounds memory (block × n_queries counts) while staying vectorised.
_BOOTSTRAP_BLOCK_CELLS = 4_000_000


def paired_randomization_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
) -> float:
    """Two-sided paired randomization (sign-flip) test on the mean difference of per-query scores.

    Under the null hypothesis the two systems are exchangeable per query, so each per-query
    difference keeps or flips its sign with probability ½. The p-value is the share of random
    sign assignments whose |mean difference| reaches the observed one, counting the observed
    assignment itself: p = (hits + 1) / (n_permutations + 1), so it is never 0.

    Args:
        a: Per-query scores of system A (1-d).
        b: Per-query scores of system B, same queries in the same order.
        n_permutations: Number of random sign assignments.
        seed: Seed of the random generator (the result is deterministic for a seed).

    Returns:
        The p-value in (0, 1]; 1.0 when the two score vectors are identical.

    Raises:
        ValueError: if the shapes differ, are not 1-d, or are empty, or n_permutations < 1.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty 1-d score vectors of equal length, got {a.shape} and {b.shape}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    diff = a - b
    observed = abs(diff.mean())
    if not np.any(diff):
        return 1.0
    rng = np.random.default_rng(seed)
    hits = 0
    # Blocks keep memory bounded (block × n_queries float64) while staying vectorised.
    block = max(1, min(n_permutations, 4_000_000 // diff.size))
    done = 0
    while done < n_permutations:
        n = min(block, n_permutations - done)
        signs = rng.integers(0, 2, size=(n, diff.size), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ diff) / diff.size
        # A small tolerance so that floating-point noise does not decide ties with the observed value.
        hits += int(np.count_nonzero(means >= observed - 1e-12))
        done += n
    return (hits + 1) / (n_permutations + 1)


def paired_bootstrap_cis(
    scores: np.ndarray,
    baseline: np.ndarray,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
    relative: bool = True,
) -> np.ndarray:
    """Paired bootstrap percentile intervals of the change of several systems against one baseline.

    Each resample draws the queries with replacement (the same draw for every system and the
    baseline: paired) and computes the change of each system's mean against the baseline's mean on
    that draw, in percent of the baseline mean (`relative`) or in metric units. The interval is the
    (1 − confidence)/2 and (1 + confidence)/2 percentiles of those changes (numpy's linear
    interpolation). The same seed gives the same draws, so results are reproducible.

    Args:
        scores: Per-query scores, shape (n_queries, n_systems) (or 1-d for one system).
        baseline: Per-query baseline scores, shape (n_queries,), same query order.
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the random generator.
        confidence: Coverage of the interval, in (0, 1).
        relative: Change in % of the baseline mean (NaN where a resample's baseline mean is 0),
            else the difference of means.

    Returns:
        Array (n_systems, 2): lower and upper bound per system.

    Raises:
        ValueError: shapes differ or are empty, n_resamples < 1, or confidence outside (0, 1).
    """
    base = np.asarray(baseline, dtype=np.float64)
    mat = np.asarray(scores, dtype=np.float64)
    if mat.ndim == 1:
        mat = mat[:, None]
    if base.ndim != 1 or base.size == 0 or mat.ndim != 2 or mat.shape[0] != base.size:
        raise ValueError(
            f"need (n_queries, n_systems) scores and n_queries baseline scores, got {mat.shape} and "
            f"{base.shape}"
        )
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = base.size
    both = np.column_stack([mat, base])
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _BOOTSTRAP_BLOCK_CELLS // n))
    changes = []
    done = 0
    while done < n_resamples:
        size = min(block, n_resamples - done)
        # Multinomial counts = how often each query is drawn in a resample of n with replacement.
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        means = counts @ both / n
        diff = means[:, :-1] - means[:, -1:]
        if relative:
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = np.where(means[:, -1:] != 0, diff / means[:, -1:] * 100.0, np.nan)
        changes.append(diff)
        done += size
    all_changes = np.concatenate(changes)
    tail = (1.0 - confidence) / 2.0 * 100.0
    return np.nanpercentile(all_changes, [tail, 100.0 - tail], axis=0).T


def paired_bootstrap_ci(a: np.ndarray, b: np.ndarray, **options: Any) -> tuple[float, float]:
    """Paired bootstrap interval of the change of system A against baseline B (see `paired_bootstrap_cis`).

    Args:
        a: Per-query scores of the system (1-d).
        b: Per-query scores of the baseline, same queries in the same order.
        options: `n_resamples`, `seed`, `confidence`, `relative`, as for `paired_bootstrap_cis`.

    Returns:
        (lower, upper).

    Raises:
        ValueError: as `paired_bootstrap_cis`.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"need a 1-d score vector, got shape {a.shape}")
    lo, hi = paired_bootstrap_cis(a, b, **options)[0]
    return float(lo), float(hi)


def relative_change(value: float, baseline: float) -> float:
    """Return the change of `value` against `baseline` in percent (NaN if the baseline is 0)."""
    if baseline == 0:
        return math.nan
    return (value - baseline) / baseline * 100.0


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Summarise per-query latencies measured one query at a time by a single client.

    Args:
        seconds: Wall-clock seconds of each query.

    Returns:
        `p50_ms`, `p95_ms`, `mean_ms` and `qps` (queries per second = n / total time), `n`.

    Raises:
        ValueError: if `seconds` is empty.
    """
    if len(seconds) == 0:
        raise ValueError("no latencies to summarise")
    arr = np.asarray(seconds, dtype=np.float64)
    total = float(arr.sum())
    return {
        "p50_ms": float(np.percentile(arr, 50) * 1000.0),
        "p95_ms": float(np.percentile(arr, 95) * 1000.0),
        "mean_ms": float(arr.mean() * 1000.0),
        "qps": float(arr.size / total) if total > 0 else math.inf,
        "n": float(arr.size),
    }


def pareto_front(costs: Sequence[float], qualities: Sequence[float]) -> list[int]:
    """Return the indices of the Pareto-optimal points (lower cost, higher quality), cheapest first.

    A point is on the front when no other point is at most as costly and at least as good while
    strictly better in one of the two. Equal points are all kept.

    Args:
        costs: Cost of each point (e.g. bytes per vector).
        qualities: Quality of each point (e.g. NDCG@10).

    Returns:
        Indices into the inputs, sorted by cost ascending.

    Raises:
        ValueError: if the lengths differ.
    """
    if len(costs) != len(qualities):
        raise ValueError(f"costs and qualities differ in length: {len(costs)} vs {len(qualities)}")
    front = []
    for i, (ci, qi) in enumerate(zip(costs, qualities, strict=True)):
        dominated = any(
            cj <= ci and qj >= qi and (cj < ci or qj > qi)
            for j, (cj, qj) in enumerate(zip(costs, qualities, strict=True))
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (costs[i], -qualities[i]))
