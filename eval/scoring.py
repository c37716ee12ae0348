"""Step 4 of an eval: search one collection × mode, score it into a `ConfigurationResult`, and compare
every row with the baseline (Δ% per metric, paired randomization p on NDCG@10, the loss split into its
dimension, HNSW and quantization parts).

Each metric comes from the search a user would run for it (`eval.search`): NDCG@10 and MRR@10 from the
limit-10 search, Recall@100 and MAP@100 from the limit-100 one; `ConfigurationResult.depth` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval.cost import serving_cost, store_footprint
from eval.data import EvalData
from eval.metrics import PRIMARY_METRIC, MetricResult, evaluate_run
from eval.options import EvalOptions
from eval.plan import CollectionPlan, CollectionTarget
from eval.query_encoder import QueryEmbeddings
from eval.results import ConfigurationResult
from eval.search import (
    SHALLOW_DOCS,
    SearchMode,
    SearchOutcome,
    effective_oversampling,
    modes_for,
    rescores,
    search_collection,
)
from eval.stats import latency_summary, paired_randomization_test
from ingest.config import CollectionSpec
from ingest.stores.base import VectorStore

# The metrics taken from the @10 search; every other one comes from the @100 (`min_docs`) search.
SHALLOW_METRICS: frozenset[str] = frozenset({"NDCG@10", "MRR@10"})


def target_modes(target: CollectionTarget, plan: CollectionPlan, opts: EvalOptions) -> list[SearchMode]:
    """The search modes of one collection in this eval: `modes_for` with the options' oversampling and
    hnsw_ef, without `exact` on a quantized collection whose float collection of the same dim is
    evaluated (the same search: its row is that one's).

    Args:
        target: The collection.
        plan: Every collection evaluated.
        opts: `oversampling`, `hnsw_ef`.
    """
    float_dims = {t.spec.dim for t in plan.targets if t.spec.quantization == "none"}
    exact = target.spec.quantization == "none" or target.spec.dim not in float_dims
    return modes_for(target.spec, opts.oversampling, opts.hnsw_ef, exact=exact)


def planned_searches(plan: CollectionPlan, opts: EvalOptions) -> list[tuple[CollectionTarget, SearchMode]]:
    """Every collection × mode an eval searches, in order (`target_modes` of each target)."""
    return [(target, mode) for target in plan.targets for mode in target_modes(target, plan, opts)]


def search_configuration(
    store: VectorStore,
    target: CollectionTarget,
    mode: SearchMode,
    queries: QueryEmbeddings,
    opts: EvalOptions,
) -> SearchOutcome:
    """Search every query in one collection × mode at each metric's depth (`search_collection`: @10
    timed single-client, @100, @10 again with `opts.clients` concurrent clients) and measure the shard.

    Args:
        store: The open store.
        target: The collection.
        mode: The search mode.
        queries: The query embeddings (cut to the collection's dim here).
        opts: `min_docs`, `ignore_identical_ids`, `warmup`, `clients`.

    Returns:
        The runs, latencies, limits, QPS and the shard's footprint.
    """
    outcome = search_collection(
        store,
        target.name,
        queries.ids,
        queries.at_dim(target.spec.dim),
        mode,
        min_docs=opts.min_docs,
        ignore_identical_ids=opts.ignore_identical_ids,
        warmup=opts.warmup,
        clients=opts.clients,
    )
    outcome.footprint = store_footprint(store, target.name)
    return outcome


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
        hnsw_ef=mode.params.hnsw_ef,
        engine_default=mode.engine_default,
    )


def metric_depths(min_docs: int, metrics: Sequence[str]) -> dict[str, int]:
    """Metric → documents of the search it comes from (10 for the @10 metrics, else `min_docs`)."""
    return {m: SHALLOW_DOCS if m in SHALLOW_METRICS else min_docs for m in metrics}


def depth_metrics(shallow: MetricResult, deep: MetricResult) -> MetricResult:
    """One `MetricResult` taking the @10 metrics from the @10 search's and the others from the deep one."""
    mean = {m: (shallow if m in SHALLOW_METRICS else deep).mean[m] for m in deep.mean}
    per_query = {m: dict((shallow if m in SHALLOW_METRICS else deep).per_query[m]) for m in deep.per_query}
    return MetricResult(mean=mean, per_query=per_query, n_queries=deep.n_queries)


def score_configuration(
    outcome: SearchOutcome, target: CollectionTarget, data: EvalData, opts: EvalOptions, plan: CollectionPlan
) -> ConfigurationResult:
    """Compute the metrics (each from its depth's run), latency, QPS and serving cost of one searched
    configuration.

    Args:
        outcome: The search of one collection × mode.
        target: The collection.
        data: The qrels.
        opts: `ignore_identical_ids`, `oversampling`, `hnsw_ef`, `min_docs`.
        plan: The plan (which collection is the baseline).

    Returns:
        The row, without Δ%, p and the loss split (see `compare_to_baseline`).
    """
    ignore = opts.ignore_identical_ids
    metrics = depth_metrics(
        evaluate_run(data.qrels, outcome.shallow.run, ignore_identical_ids=ignore),
        evaluate_run(data.qrels, outcome.deep.run, ignore_identical_ids=ignore),
    )
    mode_names = [m.name for m in modes_for(target.spec, opts.oversampling, opts.hnsw_ef)]
    mode = outcome.mode
    row = configuration_result(
        target.name,
        target.spec,
        mode,
        mode_names.index(mode.name) if mode.name in mode_names else len(mode_names),
        metrics,
        latency_summary(outcome.latencies),
        {
            "at_10": outcome.shallow.summary(),
            "at_100": outcome.deep.summary(),
            "deep_latency": latency_summary(outcome.deep.latencies),
            "min_docs": opts.min_docs,
            "requeries": outcome.shallow.requeries + outcome.deep.requeries,
            "short_queries": len(outcome.deep.short_queries),
        },
        engine_config=target.engine_config,
        is_baseline=target.name == plan.baseline.name and mode.name == "exact",
    )
    row.depth = metric_depths(opts.min_docs, list(metrics.mean))
    row.qps, row.clients = outcome.qps, outcome.clients
    if outcome.footprint is not None:
        cost = serving_cost(
            outcome.footprint,
            target.spec,
            mode.params,
            rescored=rescores(target.spec, mode.params),
            oversampling=effective_oversampling(mode.params),
            chunk_hits_asked=outcome.shallow.chunk_hits_asked,
        )
        row.serving_ram_bytes = cost.ram_bytes
        row.serving_ram_per_vector = cost.ram_per_vector
        row.rescore_disk_bytes_per_query = cost.rescore_disk_bytes_per_query
        row.cost = cost.detail
    return row


def delta_pct(value: float, baseline: float) -> float | None:
    """Relative change of `value` against `baseline` in %, None when the baseline is 0."""
    return None if baseline == 0 else (value - baseline) / baseline * 100.0


def compare_to_baseline(rows: Sequence[ConfigurationResult], opts: EvalOptions) -> ConfigurationResult:
    """Fill Δ% (every metric), the paired randomization p-value (NDCG@10) and the loss split
    (`split_loss`) of every row.

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
    split_loss(rows, base)
    return base


def _is_exact(row: ConfigurationResult) -> bool:
    return bool(row.params.get("exact"))


def split_loss(rows: Sequence[ConfigurationResult], base: ConfigurationResult) -> None:
    """Split each row's NDCG@10 loss against the baseline into its dimension, HNSW and quantization parts.

    In % of the baseline's NDCG@10, so the parts add up to the row's Δ%:
        dim           exact search at the row's dim − baseline        (Matryoshka truncation)
        hnsw          float HNSW at the row's dim and ef − that exact (0 for an exact row)
        quantization  the row − that float HNSW                       (0 for float and exact rows)
    A part stays None when the row it needs was not evaluated (e.g. no float collection at that dim).

    Args:
        rows: Every row.
        base: The baseline row.
    """
    b = base.primary
    if b == 0:
        return

    def pct(value: float, reference: float) -> float:
        return (value - reference) / b * 100.0

    exact_at: dict[int, float] = {}
    for r in rows:
        if _is_exact(r) and (r.quantization == "none" or r.dim not in exact_at):
            exact_at[r.dim] = r.primary
    float_hnsw = {
        (r.dim, r.hnsw_ef): r.primary for r in rows if r.quantization == "none" and not _is_exact(r)
    }
    for r in rows:
        exact = exact_at.get(r.dim)
        r.delta_dim_pct = None if exact is None else pct(exact, b)
        if _is_exact(r):
            r.delta_hnsw_pct, r.delta_quantization_pct = 0.0, 0.0
            continue
        if r.quantization == "none":
            r.delta_hnsw_pct = None if exact is None else pct(r.primary, exact)
            r.delta_quantization_pct = 0.0
            continue
        hnsw = float_hnsw.get((r.dim, r.hnsw_ef))
        r.delta_hnsw_pct = None if hnsw is None or exact is None else pct(hnsw, exact)
        r.delta_quantization_pct = None if hnsw is None else pct(r.primary, hnsw)
