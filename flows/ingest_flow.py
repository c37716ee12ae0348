"""The ingest as a Prefect flow: the CLI's `IngestJob` steps, one coarse task per document batch.

Importing any `flows` module first runs `flows/__init__.py`, which sets the Prefect environment
defaults before `prefect` is imported.

    python -m flows.ingest_flow scifact --limit 500      # one local run (temporary Prefect server)
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.common import artifact_key, beir_dirs_with_env, is_transient, markdown_table
from ingest.config import build_config, parse_csv
from ingest.errors import IngestError

if TYPE_CHECKING:
    from ingest.config import IngestConfig
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
def ingest_corpus(
    target: str = "scifact",
    config_path: str | None = None,
    model: str | None = None,
    qdrant_url: str | None = None,
    data_dir: str | None = None,
    beir_dirs: list[str] | None = None,
    dims: list[int] | None = None,
    quantizations: list[str] | None = None,
    limit: int | None = None,
    recreate: bool = False,
    batch_docs: int | None = None,
    chunk_tokens: int | None = None,
    chunk_overlap: int | None = None,
    store_text: bool | None = None,
    on_error: str | None = None,
    on_duplicate: str | None = None,
    id_col: str | None = None,
    text_col: str | None = None,
    title_col: str | None = None,
    name: str | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Ingest `target` into every configured collection, one task per batch of documents.

    The options are those of `python -m ingest` and build the same `IngestConfig` through
    `ingest.config.build_config`; None keeps the config file's value, else the CLI default
    (`model` auto, `data_dir` from STATIC_INGEST_DATA_DIR else `data`, `batch_docs` 2048, ...).
    `qdrant_url` defaults to QDRANT_URL (None: the embedded qdrant-edge engine under data_dir).

    Args:
        target: A BEIR dataset name, a path (BEIR folder/zip, Parquet) or `hf:NAME`.
        config_path: Optional TOML file with options and `[[collections]]`.
        model: `auto`, `standin`, a hub id or a local model path.
        qdrant_url: Qdrant server URL (API key from QDRANT_API_KEY).
        data_dir: Where datasets, models, shards, checkpoints and run directories live.
        beir_dirs: Directories holding BEIR zips or folders (plus STATIC_INGEST_BEIR_DIR).
        dims: Matryoshka dims to fill.
        quantizations: Quantizations to fill (`none`, `binary`, `scalar`).
        limit: Ingest only the first N documents.
        recreate: Drop and recreate the collections and their checkpoints.
        batch_docs: Documents per batch, i.e. per task.
        chunk_tokens: Chunk window in tokens.
        chunk_overlap: Tokens shared by consecutive windows.
        store_text: Store the chunk text in the payload.
        on_error: `fail` or `skip` bad records.
        on_duplicate: `fail`, `first` or `last` on duplicate document ids.
        id_col: Id column of a Parquet / HF corpus.
        text_col: Text column of a Parquet / HF corpus.
        title_col: Title column of a Parquet / HF corpus.
        name: Dataset name used in collection names and point ids.
        timeout_s: Server request timeout in seconds.

    Returns:
        The summary as a dict (`IngestSummary.to_dict()`).

    Raises:
        IngestError: on bad options or input, a collection mismatch, or point counts that do not
            match the chunks (after the manifests and artifacts are written).
    """
    logger = get_run_logger()
    cfg = build_config(
        config_path,
        model=model,
        qdrant_url=qdrant_url or os.environ.get("QDRANT_URL"),
        data_dir=data_dir,
        beir_dirs=beir_dirs_with_env(beir_dirs),
        dims=dims,
        quantizations=quantizations,
        limit=limit,
        recreate=recreate or None,
        batch_docs=batch_docs,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        store_text=store_text,
        on_error=on_error,
        on_duplicate=on_duplicate,
        id_col=id_col,
        text_col=text_col,
        title_col=title_col,
        name=name,
        timeout_s=timeout_s,
    )
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
    """Run one flow with the ingest CLI's options (a temporary Prefect server unless PREFECT_API_URL)."""
    from ingest.__main__ import build_parser

    parser = build_parser()
    parser.prog = "python -m flows.ingest_flow"
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    state = ingest_corpus(
        target=args.target,
        config_path=str(args.config) if args.config else None,
        model=args.model,
        qdrant_url=args.qdrant_url,
        data_dir=str(args.data_dir) if args.data_dir else None,
        beir_dirs=[str(p) for p in args.beir_dir or []] or None,
        dims=parse_csv(args.dims, cast=int, what="--dims"),
        quantizations=parse_csv(args.quantization, what="--quantization"),
        limit=args.limit,
        recreate=args.recreate,
        batch_docs=args.batch_docs,
        chunk_tokens=args.chunk_tokens,
        chunk_overlap=args.chunk_overlap,
        store_text=False if args.no_text else None,
        on_error=args.on_error,
        on_duplicate=args.on_duplicate,
        id_col=args.id_col,
        text_col=args.text_col,
        title_col=args.title_col,
        name=args.name,
        timeout_s=args.timeout,
        return_state=True,
    )
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
