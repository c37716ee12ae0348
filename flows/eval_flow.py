"""The eval as a Prefect flow: the steps of `eval.runner`, one task per collection (all its modes).

python -m flows.eval_flow scifact        # one local run (temporary Prefect server)
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from eval.metrics import PRIMARY_METRIC
from eval.options import EvalOptions, EvalSettings
from flows.common import artifact_key, retried

if TYPE_CHECKING:
    from eval.data import EvalData
    from eval.plan import CollectionPlan, CollectionTarget
    from eval.query_encoder import QueryEmbeddings
    from eval.recommend import Decision
    from eval.results import ConfigurationResult, EvalResults, TeacherResult
    from eval.runner import ReportFiles
    from ingest.stores.base import VectorStore

# As in the ingest flow: arguments are live objects (store handles, encoders, numpy arrays), so
# no cache keys and no result persistence.


@task(
    name="load-eval-data",
    **retried(),
)
def load_data(opts: EvalOptions) -> EvalData:
    """Judged queries and qrels of the split."""
    from eval.data import load_eval_data

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
    from eval.plan import plan_collections

    result = plan_collections(store, dataset, opts)
    logger = get_run_logger()
    for s in result.skipped:
        logger.warning("skipping %s: %s", s.collection, s.reason)
    return result


@task(
    name="encode-queries",
    **retried(1, 5),
)
def encode(model: dict[str, Any], data: EvalData, opts: EvalOptions) -> tuple[Any, QueryEmbeddings]:
    """Load the collections' model and encode every judged query.

    Returns:
        (the encoder, the query embeddings).
    """
    from eval.query_encoder import encode_queries, load_query_encoder

    encoder = load_query_encoder(model, opts)
    queries = encode_queries(encoder, data)
    get_run_logger().info(
        "encoded %d queries with %s in %.2f s", len(queries.ids), model.get("model_id"), queries.seconds
    )
    return encoder, queries


@task(
    name="evaluate-collection",
    task_run_name="evaluate-{target.name}",
    **retried(),
)
def evaluate_collection(
    store: VectorStore,
    target: CollectionTarget,
    queries: QueryEmbeddings,
    data: EvalData,
    opts: EvalOptions,
    collection_plan: CollectionPlan,
) -> list[ConfigurationResult]:
    """Search one collection in every mode that applies to it and score each mode."""
    from eval.scoring import score_configuration, search_configuration, target_modes

    logger = get_run_logger()
    rows = []
    for mode in target_modes(target, collection_plan, opts):
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
def teacher(opts: EvalOptions, data: EvalData, base: ConfigurationResult, encoder: Any) -> TeacherResult:
    """Evaluate the optional transformer baseline with exact search over whole documents."""
    from eval.teacher import run_teacher_baseline

    return run_teacher_baseline(opts, data, base, static_encoder=encoder)


@task(name="write-report", cache_policy=NO_CACHE)
def write(results: EvalResults, opts: EvalOptions, dataset: str) -> ReportFiles:
    """Write the plots, results.json and report.md."""
    from eval.runner import report_dir, write_report

    return write_report(results, report_dir(opts, dataset))


def configuration_rows(results: EvalResults, decision: Decision | None = None) -> list[dict[str, Any]]:
    """One table row per collection × mode: quality vs the baseline (with its interval), RAM, latency."""
    from eval.recommend import decide, serving_ram

    decision = decision or decide(results)
    rows = []
    for c in sorted(results.configurations, key=lambda c: (-c.dim, c.quantization, c.mode_order)):
        delta = c.delta_pct.get(PRIMARY_METRIC)
        ci = decision.interval(c)
        rows.append(
            {
                "collection": c.collection,
                "dim": c.dim,
                "quantization": c.quantization,
                "mode": c.mode,
                "ndcg_at_10": round(c.primary, 4),
                "delta_pct": None if delta is None else round(float(delta), 2),
                "delta_ci_pct": None if ci is None else f"{ci[0]:+.2f} … {ci[1]:+.2f}",
                "p_value": None if c.p_value is None else round(float(c.p_value), 4),
                "serving_ram_per_vector": round(serving_ram(c), 1),
                "bytes_per_vector": c.bytes_per_vector,
                "p50_ms": round(float(c.latency["p50_ms"]), 3),
                "baseline": c.is_baseline,
                "recommended": results.recommendation is c,
            }
        )
    return rows


def recommendation_markdown(results: EvalResults, decision: Decision | None = None) -> str:
    """The recommended configuration (or why there is none) with its evidence, the model warning first."""
    from eval.recommend import decide, decision_markdown
    from eval.report import model_caveat

    caveat = model_caveat(results.model)
    parts = [f"# Recommendation for {results.dataset} ({results.split})"]
    if caveat:
        parts.append(caveat)
    parts.append("\n".join(decision_markdown(decision or decide(results))))
    return "\n\n".join(parts) + "\n"


def png_data_url(path: Path) -> str:
    """A PNG as a `data:image/png;base64,...` URL (renders in the Prefect UI without a file server)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def plots_markdown(results: EvalResults, directory: Path) -> str:
    """The plots embedded as data URLs, with their captions and the model warning."""
    from eval.plots import plot_caption
    from eval.report import model_caveat

    caveat = model_caveat(results.model)
    lines = [f"# Plots of {results.dataset} ({results.split})", ""]
    if caveat:
        lines += [caveat, ""]
    for name in results.plots:
        lines += [
            f"![{Path(name).stem}]({png_data_url(directory / name)})",
            "",
            plot_caption(name, results),
            "",
        ]
    return "\n".join(lines)


def publish_eval_artifacts(
    results: EvalResults, files: ReportFiles, decision: Decision | None = None
) -> None:
    """Publish the report, the configuration table, the recommendation and the plots as Prefect artifacts.

    Plots are embedded in markdown artifacts as `data:image/png` URLs: the UI renders markdown images
    with a plain `<img src>`, so they show without serving the report directory, whereas an image
    artifact (`create_image_artifact`) needs a URL the browser can fetch and prints that URL in full
    under the image. Relative paths would point nowhere from the UI.

    Args:
        results: The eval results.
        files: The files written (the plots are read from its directory).
        decision: The recommendation with its evidence (computed if None).
    """
    from eval.recommend import decide
    from eval.report import render_report

    decision = decision or decide(results)
    key = artifact_key("eval", results.dataset)
    create_table_artifact(
        configuration_rows(results, decision),
        key=f"{key}-configurations",
        description=f"NDCG@10 of every collection × mode, {results.dataset} ({results.split})",
    )
    create_markdown_artifact(
        recommendation_markdown(results, decision),
        key=f"{key}-recommendation",
        description=f"Recommended configuration for {results.dataset}",
    )
    if results.plots:
        create_markdown_artifact(
            plots_markdown(results, files.directory),
            key=f"{key}-plots",
            description=f"NDCG@10 vs RAM and vs dimension, {results.dataset}",
        )
    report = render_report(results, decision, image_link=lambda name: png_data_url(files.directory / name))
    create_markdown_artifact(
        report + f"\n\nFiles: `{files.directory.resolve()}`\n",
        key=f"{key}-report",
        description=f"Eval report of {results.dataset} (report.md, plots embedded)",
    )


@flow(name="evaluate-corpus", log_prints=True)
def evaluate_corpus(target: str = "scifact", options: EvalSettings | None = None) -> dict[str, Any]:
    """Evaluate every collection configuration of an ingested dataset; publish report and recommendation.

    Args:
        target: The dataset as given to the ingest (BEIR name or path).
        options: The options of `python -m eval` (`eval.options.EvalSettings`, one form field per
            option); None or a field left out: its default. `data_dir`, `beir_dirs` and `qdrant_url`
            also come from STATIC_INGEST_DATA_DIR, STATIC_INGEST_BEIR_DIR and QDRANT_URL of the
            process that runs the flow (the worker, for a deployment).

    Returns:
        `{"dataset", "report_dir", "report_md", "results_json", "recommendation", "configurations"}`.

    Raises:
        IngestError: (InputError, ModelError, StoreError, DatasetNotFoundError) saying what to do.
    """
    from eval.runner import with_run_id

    opts = with_run_id(EvalOptions.of(target, options if options is not None else EvalSettings()))
    from eval.assemble import assemble_results
    from eval.environment import engine_description
    from eval.plan import open_eval_store
    from eval.scoring import compare_to_baseline

    data = load_data(opts)
    store = open_eval_store(opts)
    try:
        engine = engine_description(store, opts)
        collection_plan = plan(store, data.dataset, opts)
        encoder, queries = encode(collection_plan.model, data, opts)
        rows: list[ConfigurationResult] = []
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
    from eval.recommend import decide

    decision = decide(results)
    publish_eval_artifacts(results, files, decision)
    get_run_logger().info("report: %s", files.report_md)
    rec = results.recommendation
    return {
        "dataset": results.dataset,
        "report_dir": str(files.directory),
        "report_md": str(files.report_md),
        "results_json": str(files.results_json),
        "recommendation": None if rec is None else rec.to_dict(per_query=False),
        "configurations": configuration_rows(results, decision),
    }


def main(argv: list[str] | None = None) -> int:
    """Run one flow with the eval CLI's options (a temporary Prefect server unless PREFECT_API_URL).

    The parser is the CLI's (`eval.__main__.build_parser`): every option of `python -m eval`, and
    `--config` is read here, before the flow starts.
    """
    from eval.__main__ import build_parser, options_from_cli
    from eval.errors import EvalError
    from ingest.errors import IngestError

    args = build_parser(prog="python -m flows.eval_flow").parse_args(sys.argv[1:] if argv is None else argv)
    try:
        opts = options_from_cli(args)
    except (IngestError, EvalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = evaluate_corpus(target=opts.target, options=opts.settings(), return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
