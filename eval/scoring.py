"""Step 4 of an eval: search one collection × mode, score it into a `ConfigurationResult`, and compare
every row with the baseline (Δ% per metric, paired randomization p on NDCG@10)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval.data import EvalData
from eval.metrics import PRIMARY_METRIC, MetricResult, evaluate_run
from eval.options import EvalOptions
from eval.plan import CollectionPlan, CollectionTarget
from eval.query_encoder import QueryEmbeddings
from eval.results import ConfigurationResult
from eval.search import SearchMode, SearchOutcome, modes_for, search_collection
from eval.stats import latency_summary, paired_randomization_test
from ingest.config import CollectionSpec
from ingest.stores.base import VectorStore


def search_configuration(
    store: VectorStore,
    target: CollectionTarget,
    mode: SearchMode,
    queries: QueryEmbeddings,
    opts: EvalOptions,
) -> SearchOutcome:
    """Search every query in one collection × mode (one query at a time, timed; see `search_collection`).

    Args:
        store: The open store.
        target: The collection.
        mode: The search mode.
        queries: The query embeddings (cut to the collection's dim here).
        opts: `min_docs` and `warmup`.

    Returns:
        The run, latencies and limits used.
    """
    return search_collection(
        store,
        target.name,
        queries.ids,
        queries.at_dim(target.spec.dim),
        mode,
        min_docs=opts.min_docs,
        chunks_per_doc=target.chunks_per_doc,
        warmup=opts.warmup,
    )


def searched_bytes_per_vector(spec: CollectionSpec, mode: SearchMode) -> float:
    """Bytes per vector of what a mode searches: a mode that ignores quantization scans float32."""
    if mode.params.exact or mode.params.ignore_quantization:
        return spec.dim * 4.0
    return spec.bytes_per_vector


def configuration_result(
    collection: str,
    spec: CollectionSpec,
    mode: SearchMode,
    mode_order: int,
    metrics: MetricResult,
    latency: dict[str, float],
    search: dict[str, Any],
    *,
    engine_config: dict[str, Any] | None = None,
    is_baseline: bool = False,
) -> ConfigurationResult:
    """A results row from the live search objects (Δ% and p are filled by `compare_to_baseline`).

    Args:
        collection: Collection name.
        spec: Its configuration.
        mode: The search mode.
        mode_order: Position of the mode in `modes_for`.
        metrics: Mean and per-query metrics.
        latency: `latency_summary` of the timed pass.
        search: Limits used, re-queries, queries short of `min_docs`.
        engine_config: The configuration as the engine reports it.
        is_baseline: Whether this is the baseline row.

    Returns:
        The row.
    """
    return ConfigurationResult(
        collection=collection,
        dim=spec.dim,
        quantization=spec.quantization,
        mode=mode.name,
        mode_order=mode_order,
        mode_description=mode.description,
        params=mode.params.describe(),
        spec=spec.to_dict(),
        engine_config=dict(engine_config or {}),
        bytes_per_vector=searched_bytes_per_vector(spec, mode),
        is_baseline=is_baseline,
        metrics=metrics,
        latency=latency,
        search=search,
    )


def score_configuration(
    outcome: SearchOutcome, target: CollectionTarget, data: EvalData, opts: EvalOptions, plan: CollectionPlan
) -> ConfigurationResult:
    """Compute the metrics and latency summary of one searched configuration.

    Args:
        outcome: The search of one collection × mode.
        target: The collection.
        data: The qrels.
        opts: `ignore_identical_ids`, `oversampling`, `min_docs`.
        plan: The plan (which collection is the baseline).

    Returns:
        The row, without Δ% and p (see `compare_to_baseline`).
    """
    metrics = evaluate_run(data.qrels, outcome.run, ignore_identical_ids=opts.ignore_identical_ids)
    mode_names = [m.name for m in modes_for(target.spec, opts.oversampling)]
    name = outcome.mode.name
    return configuration_result(
        target.name,
        target.spec,
        outcome.mode,
        mode_names.index(name) if name in mode_names else len(mode_names),
        metrics,
        latency_summary(outcome.latencies),
        {
            "initial_limit": outcome.initial_limit,
            "max_limit": outcome.max_limit,
            "requeries": outcome.requeries,
            "short_queries": len(outcome.short_queries),
            "min_docs": opts.min_docs,
        },
        engine_config=target.engine_config,
        is_baseline=target.name == plan.baseline.name and name == "exact",
    )


def delta_pct(value: float, baseline: float) -> float | None:
    """Relative change of `value` against `baseline` in %, None when the baseline is 0."""
    return None if baseline == 0 else (value - baseline) / baseline * 100.0


def compare_to_baseline(rows: Sequence[ConfigurationResult], opts: EvalOptions) -> ConfigurationResult:
    """Fill Δ% (every metric) and the paired randomization p-value (NDCG@10) of every row.

    Args:
        rows: Every scored row, the baseline among them.
        opts: `permutations` and `seed` of the randomization test.

    Returns:
        The baseline row.

    Raises:
        ValueError: no row is the baseline.
    """
    base = next((r for r in rows if r.is_baseline), None)
    if base is None:
        raise ValueError("no baseline row: the float collection searched in `exact` mode must be evaluated")
    qids = list(base.metrics.per_query[PRIMARY_METRIC])
    base_vec = base.metrics.vector(PRIMARY_METRIC, qids)
    for row in rows:
        row.delta_pct = {m: delta_pct(row.metrics.mean[m], base.metrics.mean[m]) for m in row.metrics.mean}
        if row is base:
            row.p_value = 1.0
        else:
            vec = row.metrics.vector(PRIMARY_METRIC, qids)
            row.p_value = paired_randomization_test(
                vec, base_vec, n_permutations=opts.permutations, seed=opts.seed
            )
    return base
