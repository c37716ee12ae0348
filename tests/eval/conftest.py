"""Shared eval fixtures: `EvalResults` assembled by the real eval functions from hand-built runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eval.assemble import assemble_results
from eval.data import EvalData
from eval.metrics import evaluate_run
from eval.options import EvalOptions
from eval.plan import CollectionPlan, CollectionTarget
from eval.query_encoder import QueryEmbeddings
from eval.results import EvalResults, SkippedCollection
from eval.scoring import compare_to_baseline, configuration_result
from eval.search import modes_for
from eval.stats import latency_summary
from ingest.config import CollectionSpec

N_QUERIES = 40
N_DOCS = 200


def _run(
    rng: np.random.Generator, qrels: dict[str, dict[str, int]], noise: float
) -> dict[str, dict[str, float]]:
    """Relevant docs score 1 + noise, others uniform noise: more noise, worse ranking."""
    run = {}
    for qid, judged in qrels.items():
        scores = {f"d{i}": float(rng.random()) for i in range(N_DOCS)}
        for did in judged:
            scores[did] = 1.0 - noise * float(rng.random()) * 2
        run[qid] = scores
    return run


def build_results(
    dataset: str = "toyset",
    *,
    degrade: dict[tuple[int, str, str], float] | None = None,
    model: dict[str, Any] | None = None,
    seed: int = 0,
) -> EvalResults:
    """Assemble results for dims 256/64 × none/binary with the real scoring and assembly functions.

    Args:
        dataset: Dataset name.
        degrade: (dim, quantization, mode) → ranking noise (default 0.1 everywhere; higher = worse).
        model: The model description.
        seed: Random seed of the synthetic runs.
    """
    rng = np.random.default_rng(seed)
    qrels = {f"q{i}": {f"d{(7 * i + j) % N_DOCS}": 1 + (j == 0) for j in range(3)} for i in range(N_QUERIES)}
    opts = EvalOptions(target=dataset, oversampling=(1, 4), permutations=2000)
    model = model or {"model_id": "test/static-model", "dim": 256}
    specs = [CollectionSpec(dim=d, quantization=q) for d in (256, 64) for q in ("none", "binary")]
    targets = [
        CollectionTarget(
            s, s.name(dataset), {"docs": N_DOCS, "chunks": N_DOCS, "points": N_DOCS, "model": model}
        )
        for s in specs
    ]
    plan = CollectionPlan(dataset, targets, [SkippedCollection("x", "does not exist")], model, targets[0])
    rows = []
    for target in targets:
        for order, mode in enumerate(modes_for(target.spec, opts.oversampling)):
            noise = (degrade or {}).get((target.spec.dim, target.spec.quantization, mode.name), 0.1)
            rows.append(
                configuration_result(
                    target.name,
                    target.spec,
                    mode,
                    order,
                    evaluate_run(qrels, _run(rng, qrels, noise)),
                    latency_summary(list(rng.uniform(0.001, 0.003, N_QUERIES))),
                    {"initial_limit": 125, "max_limit": 125, "requeries": 0, "short_queries": 0},
                    is_baseline=target is targets[0] and mode.name == "exact",
                )
            )
    compare_to_baseline(rows, opts)
    data = EvalData(
        dataset, "test", {q: f"query {q}" for q in qrels}, qrels, 120, "sha256:abc", {"kind": "beir"}
    )
    queries = QueryEmbeddings(list(qrels), np.zeros((N_QUERIES, 256), dtype=np.float32), 0.01)
    opts.run_id = f"run-{seed}"
    return assemble_results(
        opts=opts,
        data=data,
        plan=plan,
        queries=queries,
        rows=rows,
        engine={"backend": "edge", "version": "0.9.0"},
    )


@pytest.fixture
def make_results() -> Callable[..., EvalResults]:
    """Factory of synthetic results (see `build_results`)."""
    return build_results


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """A reports root in a temporary directory."""
    return tmp_path / "reports"
