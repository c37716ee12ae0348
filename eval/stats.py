"""Statistics of a comparison: paired randomization test, relative change, latency summary, Pareto front."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_PERMUTATIONS = 10_000
DEFAULT_SEED = 0


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
