"""Step 5 of an eval: assemble the typed `EvalResults` from what the steps produced (data, plan,
query embeddings, scored rows, engine, teacher) and pick the recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eval.data import EvalData
from eval.environment import package_versions
from eval.options import EvalOptions
from eval.plan import CollectionPlan
from eval.query_encoder import QueryEmbeddings
from eval.recommend import recommend
from eval.results import (
    ConfigurationResult,
    EvalResults,
    IngestSummary,
    QueryStats,
    ResultOptions,
    TeacherResult,
)
from ingest.run_ids import new_run_id


def assemble_results(
    *,
    opts: EvalOptions,
    data: EvalData,
    plan: CollectionPlan,
    queries: QueryEmbeddings,
    rows: Sequence[ConfigurationResult],
    engine: dict[str, Any],
    teacher: TeacherResult | None = None,
) -> EvalResults:
    """Build the results (= results.json, MTEB-like) that the report renders.

    Args:
        opts: The options (a missing run id is fixed into `opts` here, so `report_dir` names the
            same directory).
        data: Queries, qrels and corpus description.
        plan: The collections searched and skipped, the model and the baseline.
        queries: The query embeddings (count and encoding speed).
        rows: Every scored row, compared with the baseline (`compare_to_baseline`).
        engine: `eval.environment.engine_description`.
        teacher: The transformer baseline, if run.

    Returns:
        The results, without plots (`write_report` adds them).

    Raises:
        ValueError: no baseline row (call `compare_to_baseline` first).
    """
    if not opts.run_id:
        opts.run_id = new_run_id()
    configs = list(rows)
    base = next((c for c in configs if c.is_baseline), None)
    if base is None:
        raise ValueError("no baseline row among the results: call compare_to_baseline first")
    return EvalResults(
        dataset=data.dataset,
        split=data.split,
        run_id=opts.run_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        corpus_checksum=data.corpus_checksum,
        source=data.source,
        model=plan.model,
        engine=engine,
        ingest=IngestSummary.from_manifest(plan.baseline.manifest),
        queries=QueryStats(
            count=len(queries.ids),
            qrels_rows=data.qrels_rows,
            encode_seconds=queries.seconds,
            queries_per_s=queries.queries_per_s,
        ),
        options=ResultOptions(
            within=opts.within,
            alpha=opts.alpha,
            oversampling=list(opts.oversampling),
            min_docs=opts.min_docs,
            ignore_identical_ids=opts.ignore_identical_ids,
            permutations=opts.permutations,
            seed=opts.seed,
        ),
        collections=[t.info() for t in plan.targets],
        configurations=configs,
        recommendation=recommend(configs, base.primary, within=opts.within, alpha=opts.alpha),
        skipped=list(plan.skipped),
        warnings=list(data.warnings),
        teacher=teacher,
        versions=package_versions(),
    )
