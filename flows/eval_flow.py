"""The eval as a Prefect flow: the steps of `eval.runner`, one task per collection (all its modes).

python -m flows.eval_flow scifact        # one local run (temporary Prefect server)
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from eval.metrics import PRIMARY_METRIC
from flows.common import artifact_key, beir_dirs_with_env, is_transient

if TYPE_CHECKING:
    from eval.options import EvalOptions
    from eval.runner import (
        CollectionPlan,
        CollectionTarget,
        ConfigResult,
        EvalData,
        QueryEmbeddings,
        ReportFiles,
    )
    from ingest.stores.base import VectorStore

# As in the ingest flow: arguments are live objects (store handles, encoders, numpy arrays), so
# no cache keys and no result persistence.


@task(
    name="load-eval-data",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def load_data(opts: EvalOptions) -> EvalData:
    """Judged queries and qrels of the split."""
    from eval.runner import load_eval_data

    data = load_eval_data(opts)
    get_run_logger().info(
        "%s (%s): %d judged queries, %d qrels rows",
        data.dataset,
        data.split,
        len(data.queries),
        data.qrels_rows,
    )
    return data


@task(name="plan-collections", cache_policy=NO_CACHE)
def plan(store: VectorStore, dataset: str, opts: EvalOptions) -> CollectionPlan:
    """Which collections exist and are complete, their model and the baseline."""
    from eval.runner import plan_collections

    result = plan_collections(store, dataset, opts)
    logger = get_run_logger()
    for s in result.skipped:
        logger.warning("skipping %s: %s", s["collection"], s["reason"])
    return result


@task(
    name="encode-queries",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def encode(model: dict[str, Any], data: EvalData, opts: EvalOptions) -> tuple[Any, QueryEmbeddings]:
    """Load the collections' model and encode every judged query.

    Returns:
        (the encoder, the query embeddings).
    """
    from eval.runner import encode_queries, load_query_encoder

    encoder = load_query_encoder(model, opts)
    queries = encode_queries(encoder, data)
    get_run_logger().info(
        "encoded %d queries with %s in %.2f s", len(queries.ids), model.get("model_id"), queries.seconds
    )
    return encoder, queries


@task(
    name="evaluate-collection",
    task_run_name="evaluate-{target.name}",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def evaluate_collection(
    store: VectorStore,
    target: CollectionTarget,
    queries: QueryEmbeddings,
    data: EvalData,
    opts: EvalOptions,
    collection_plan: CollectionPlan,
) -> list[ConfigResult]:
    """Search one collection in every mode that applies to it and score each mode."""
    from eval.runner import score_configuration, search_configuration
    from eval.search import modes_for

    logger = get_run_logger()
    rows = []
    for mode in modes_for(target.spec, opts.oversampling):
        outcome = search_configuration(store, target, mode, queries, opts)
        row = score_configuration(outcome, target, data, opts, collection_plan)
        logger.info(
            "%s %s: NDCG@10 %.4f, p50 %.2f ms",
            target.name,
            mode.name,
            row.metrics.mean[PRIMARY_METRIC],
            row.latency["p50_ms"],
        )
        rows.append(row)
    return rows


@task(name="teacher-baseline", cache_policy=NO_CACHE)
def teacher(opts: EvalOptions, data: EvalData, base: ConfigResult, encoder: Any) -> dict[str, Any]:
    """Evaluate the optional transformer baseline with exact search over whole documents."""
    from eval.runner import run_teacher_baseline

    return run_teacher_baseline(opts, data, base, static_encoder=encoder)


@task(name="write-report", cache_policy=NO_CACHE)
def write(results: dict[str, Any], opts: EvalOptions, dataset: str) -> ReportFiles:
    """Write the plots, results.json and report.md."""
    from eval.runner import report_dir, write_report

    return write_report(results, report_dir(opts, dataset))


def configuration_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per collection × mode: quality against the baseline, size and latency."""
    rows = []
    for c in sorted(results["configurations"], key=lambda c: (-c["dim"], c["quantization"], c["mode_order"])):
        rows.append(
            {
                "collection": c["collection"],
                "dim": c["dim"],
                "quantization": c["quantization"],
                "mode": c["mode"],
                "ndcg_at_10": round(float(c["metrics"][PRIMARY_METRIC]), 4),
                "delta_pct": None
                if c["delta_pct"].get(PRIMARY_METRIC) is None
                else round(float(c["delta_pct"][PRIMARY_METRIC]), 2),
                "p_value": None if c["p_value"] is None else round(float(c["p_value"]), 4),
                "bytes_per_vector": c["bytes_per_vector"],
                "p50_ms": round(float(c["latency"]["p50_ms"]), 3),
                "baseline": c["is_baseline"],
            }
        )
    return rows


def recommendation_markdown(results: dict[str, Any]) -> str:
    """A short markdown statement of the recommended configuration (or why there is none)."""
    rec = results.get("recommendation")
    within = results.get("options", {}).get("within")
    alpha = results.get("options", {}).get("alpha")
    base = results["baseline"]
    head = f"# Recommendation for {results['dataset']} ({results['split']})"
    rule = (
        f"Cheapest configuration (bytes/vector) whose NDCG@10 is within {within:.0%} of the baseline "
        f"(`{base['collection']}`, `{base['mode']}`) and not significantly worse (p ≥ {alpha})."
    )
    if not rec:
        return f"{head}\n\nNo configuration qualifies. {rule}"
    delta = rec.get("delta_pct", {}).get(PRIMARY_METRIC)
    return "\n\n".join(
        [
            head,
            f"**`{rec['collection']}`** searched as **`{rec['mode']}`**: NDCG@10 "
            f"{rec['metrics'][PRIMARY_METRIC]:.4f}"
            + ("" if delta is None else f" ({delta:+.2f}% vs baseline)")
            + f", {rec['bytes_per_vector']:g} bytes/vector, p50 {rec['latency']['p50_ms']:.2f} ms.",
            rule,
        ]
    )


def publish_eval_artifacts(results: dict[str, Any], files: ReportFiles) -> None:
    """Publish report.md, the configuration table and the recommendation as Prefect artifacts."""
    key = artifact_key("eval", results["dataset"])
    create_table_artifact(
        configuration_rows(results),
        key=f"{key}-configurations",
        description=f"NDCG@10 of every collection × mode, {results['dataset']} ({results['split']})",
    )
    create_markdown_artifact(
        recommendation_markdown(results),
        key=f"{key}-recommendation",
        description=f"Recommended configuration for {results['dataset']}",
    )
    report = files.report_md.read_text(encoding="utf-8")
    create_markdown_artifact(
        report + f"\n\nFiles: `{files.directory}`\n",
        key=f"{key}-report",
        description=f"Eval report of {results['dataset']} (report.md)",
    )


@flow(name="evaluate-corpus", log_prints=True)
def evaluate_corpus(
    target: str = "scifact",
    config_path: str | None = None,
    split: str | None = None,
    data_dir: str | None = None,
    beir_dirs: list[str] | None = None,
    qdrant_url: str | None = None,
    run_id: str | None = None,
    out: str | None = None,
    within: float | None = None,
    oversampling: list[float] | None = None,
    min_docs: int | None = None,
    baseline_model: str | None = None,
    model: str | None = None,
    permutations: int | None = None,
    seed: int | None = None,
    queries_path: str | None = None,
    qrels_path: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Evaluate every collection configuration of an ingested dataset; publish report and recommendation.

    The options are those of `python -m eval` and build the same `EvalOptions` through
    `EvalOptions.build`; None keeps the config file's value, else the CLI default.
    `qdrant_url` defaults to QDRANT_URL (None: the embedded engine under data_dir).

    Args:
        target: The dataset as given to the ingest (BEIR name or path).
        config_path: The ingest TOML file (`[[collections]]`, data_dir, qdrant_url).
        split: qrels split (default test).
        data_dir: The ingest's data directory.
        beir_dirs: Directories holding BEIR zips or folders (plus STATIC_INGEST_BEIR_DIR).
        qdrant_url: Qdrant server URL.
        run_id: Report sub-directory name (default: UTC timestamp).
        out: Reports root (default reports/).
        within: Allowed relative NDCG@10 loss for the recommendation (0.02 = 2%).
        oversampling: Rescoring oversampling factors.
        min_docs: Distinct documents each query must return.
        baseline_model: Also evaluate this sentence-transformers model (exact numpy search).
        model: Query encoder override (must match the collections' model).
        permutations: Sign flips of the randomization test.
        seed: Seed of the randomization test.
        queries_path: queries.jsonl for a corpus without its own (Parquet / HF; with `qrels_path`).
        qrels_path: qrels .tsv for a corpus without its own.
        name: Dataset name, if the ingest was given one.

    Returns:
        `{"dataset", "report_dir", "report_md", "results_json", "recommendation", "configurations"}`.

    Raises:
        IngestError: (InputError, ModelError, StoreError, DatasetNotFoundError) saying what to do.
    """
    from eval.options import EvalOptions
    from eval.runner import (
        assemble_results,
        compare_to_baseline,
        engine_description,
        open_eval_store,
        with_run_id,
    )

    opts = with_run_id(
        EvalOptions.build(
            target,
            config_path,
            split=split,
            data_dir=data_dir,
            beir_dirs=beir_dirs_with_env(beir_dirs),
            qdrant_url=qdrant_url or os.environ.get("QDRANT_URL"),
            run_id=run_id,
            out=out,
            within=within,
            oversampling=tuple(oversampling) if oversampling else None,
            min_docs=min_docs,
            baseline_model=baseline_model,
            model=model,
            permutations=permutations,
            seed=seed,
            queries_path=queries_path,
            qrels_path=qrels_path,
            name=name,
        )
    )
    data = load_data(opts)
    store = open_eval_store(opts)
    try:
        engine = engine_description(store, opts)
        collection_plan = plan(store, data.dataset, opts)
        encoder, queries = encode(collection_plan.model, data, opts)
        rows: list[ConfigResult] = []
        for target_collection in collection_plan.targets:
            rows += evaluate_collection(store, target_collection, queries, data, opts, collection_plan)
        base = compare_to_baseline(rows, opts)
        teacher_section = teacher(opts, data, base, encoder) if opts.baseline_model else None
        results = assemble_results(
            opts=opts,
            data=data,
            plan=collection_plan,
            queries=queries,
            rows=rows,
            engine=engine,
            teacher=teacher_section,
        )
    finally:
        store.close()
    files = write(results, opts, data.dataset)
    publish_eval_artifacts(results, files)
    get_run_logger().info("report: %s", files.report_md)
    return {
        "dataset": results["dataset"],
        "report_dir": str(files.directory),
        "report_md": str(files.report_md),
        "results_json": str(files.results_json),
        "recommendation": results["recommendation"],
        "configurations": configuration_rows(results),
    }


def main(argv: list[str] | None = None) -> int:
    """Run one flow with the eval CLI's main options (a temporary Prefect server unless PREFECT_API_URL)."""
    from eval.__main__ import build_parser
    from ingest.config import parse_csv

    parser = build_parser()
    parser.prog = "python -m flows.eval_flow"
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    state = evaluate_corpus(
        target=args.target,
        config_path=str(args.config) if args.config else None,
        split=args.split,
        data_dir=str(args.data_dir) if args.data_dir else None,
        beir_dirs=[str(p) for p in args.beir_dir or []] or None,
        qdrant_url=args.qdrant_url,
        run_id=args.run_id,
        out=str(args.out) if args.out else None,
        within=args.within,
        oversampling=parse_csv(args.oversampling, cast=float, what="--oversampling"),
        min_docs=args.min_docs,
        baseline_model=args.baseline_model,
        model=args.model,
        permutations=args.permutations,
        seed=args.seed,
        queries_path=str(args.queries) if args.queries else None,
        qrels_path=str(args.qrels) if args.qrels else None,
        name=args.name,
        return_state=True,
    )
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
