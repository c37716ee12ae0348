"""The ingest as a Prefect flow: the CLI's `IngestJob` steps, one coarse task per document batch.

Importing any `flows` module first runs `flows/__init__.py`, which sets the Prefect environment
defaults before `prefect` is imported.

    python -m flows.ingest_flow scifact --limit 500      # one local run (temporary Prefect server)

The flow takes `target` and `options` (an `IngestConfig`: the Prefect UI renders one form field per
option); the entry point accepts every option of `python -m ingest`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.common import artifact_key, is_transient, markdown_table
from ingest.errors import IngestError
from ingest.options import IngestConfig

if TYPE_CHECKING:
    from ingest.pipeline import IngestJob, IngestSummary
    from ingest.records import Document

# Task arguments hold live objects (the job with its encoder and store handles) and lists of
# thousands of documents: no cache key can be computed from them and nothing should be persisted.
# Retried work is safe: point ids are deterministic and checkpoints skip what was stored.


@task(
    name="open-ingest",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def open_ingest(target: str, cfg: IngestConfig) -> IngestJob:
    """Resolve the source, load the encoder, open the store and create or check every collection."""
    from ingest.pipeline import IngestJob

    job = IngestJob.open(target, cfg)
    get_run_logger().info(
        "opened %s: %d collection(s) %s, model %s, backend %s",
        job.dataset,
        len(job.names),
        ", ".join(job.names),
        job.model_info.get("model_id"),
        job.store.backend,
    )
    return job


@task(
    name="process-batch",
    task_run_name="batch-{batch_no}",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def process_batch(job: IngestJob, batch_no: int, docs: list[Document]) -> dict[str, Any]:
    """Chunk, encode and upsert one batch into every collection, flush and checkpoint it.

    Returns:
        `{"batch_no", "docs", "chunks", "seconds"}`.
    """
    result = job.process_batch(batch_no, docs)
    return {
        "batch_no": result.batch_no,
        "docs": result.docs,
        "chunks": result.chunks,
        "seconds": result.seconds,
    }


@task(
    name="build-index",
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def build_index(job: IngestJob) -> None:
    """Enable and build HNSW (and quantized storage) in every collection after the bulk load."""
    job.build_indexes()


@task(name="verify-counts", cache_policy=NO_CACHE)
def verify_counts(job: IngestJob) -> dict[str, int]:
    """Check each collection holds exactly one point per ingested chunk.

    Returns:
        Points per collection.

    Raises:
        IngestError: naming every collection whose count differs from its checkpointed chunks.
    """
    counts = job.verify_counts()
    get_run_logger().info("verified point counts: %s", counts)
    return counts


@task(name="finalize", cache_policy=NO_CACHE)
def finalize(job: IngestJob) -> IngestSummary:
    """Write the manifests and the run directory; return the summary (indexes are already built)."""
    return job.finalize(build_index=False)


def publish_ingest_artifacts(job: IngestJob, summary: IngestSummary, batches: list[dict[str, Any]]) -> None:
    """Publish the run summary as a markdown artifact and the per-collection counts as a table artifact."""
    rows = [
        {
            "collection": name,
            "dim": spec.dim,
            "quantization": spec.quantization,
            "points": summary.points.get(name, 0),
            "expected_chunks": job.expected_chunks(name),
            "bytes_per_vector": spec.bytes_per_vector,
        }
        for spec, name in zip(job.specs, job.names, strict=True)
    ]
    key = artifact_key("ingest", summary.dataset)
    create_table_artifact(
        rows, key=f"{key}-collections", description=f"Collections filled from {summary.dataset}"
    )
    batch_line = (
        f"{len(batches)} batch task(s) this run, {summary.resumed_batches} batch(es) resumed from checkpoints"
    )
    markdown = "\n\n".join(
        [
            f"# Ingest {summary.dataset}: {'verified' if summary.verified else 'COUNTS DO NOT MATCH'}",
            f"{summary.docs} docs → {summary.chunks} chunks in {summary.seconds:.1f} s "
            f"({summary.docs_per_s:.0f} docs/s); {batch_line}.",
            markdown_table(rows),
            "```\n" + summary.format() + "\n```",
            f"Run directory: `{summary.run_dir}`",
        ]
    )
    create_markdown_artifact(markdown, key=key, description=f"Ingest summary of {summary.dataset}")


@flow(name="ingest-corpus", log_prints=True)
def ingest_corpus(target: str = "scifact", options: IngestConfig | None = None) -> dict[str, Any]:
    """Ingest `target` into every configured collection, one task per batch of documents.

    Args:
        target: A BEIR dataset name, a path (BEIR folder/zip, Parquet) or `hf:NAME`.
        options: The options of `python -m ingest` (`ingest.options.IngestConfig`, one form field
            per option); None or a field left out: its default. `data_dir`, `beir_dirs` and
            `qdrant_url` also come from STATIC_INGEST_DATA_DIR, STATIC_INGEST_BEIR_DIR and
            QDRANT_URL of the process that runs the flow (the worker, for a deployment).

    Returns:
        The summary as a dict (`IngestSummary.to_dict()`).

    Raises:
        IngestError: on bad input, a collection mismatch, or point counts that do not match the
            chunks (after the manifests and artifacts are written).
    """
    logger = get_run_logger()
    cfg = options if options is not None else IngestConfig()
    job = open_ingest(target, cfg)
    try:
        # quote(): Prefect would otherwise walk every Document looking for futures (the job is a
        # plain object and is not walked).
        batches = [
            process_batch(job, batch_no, quote(docs))  # type: ignore[call-overload]
            for batch_no, docs in job.pending_batches()
        ]
        build_index(job)
        verified = verify_counts(job, return_state=True)
        summary = finalize(job)
        publish_ingest_artifacts(job, summary, batches)
    finally:
        job.close()
    logger.info("ingest summary\n%s", summary.format())
    if verified.is_failed():
        raise IngestError(f"ingest of {summary.dataset} finished but {verified.message}")
    return summary.to_dict()


def main(argv: list[str] | None = None) -> int:
    """Run one flow with the ingest CLI's options (a temporary Prefect server unless PREFECT_API_URL).

    The parser is the CLI's (`ingest.__main__.build_parser`): every option of `python -m ingest`,
    and `--config` is read here, before the flow starts.
    """
    from ingest.__main__ import build_parser, config_from_args

    args = build_parser(prog="python -m flows.ingest_flow").parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = config_from_args(args)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = ingest_corpus(target=args.target, options=cfg, return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
