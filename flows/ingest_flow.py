"""The ingest as a Prefect flow: partitions planned here, encoded by a task runner's workers, stored here.

Importing any `flows` module first runs `flows/__init__.py`, which sets the Prefect environment
defaults before `prefect` is imported.

    python -m flows.ingest_flow scifact --limit 500                 # local threads (both cores)
    python -m flows.ingest_flow nfcorpus --task-runner dask         # a temporary Dask LocalCluster
    python -m flows.ingest_flow nfcorpus --task-runner dask --dask-address tcp://host:8786

The flow process opens the job (source, encoder, store, collections, records, checkpoints) and plans
the source into partitions (`ingest.partitions`): plain data (record span, seek hint, the ids the
sync plan needs encoded), one per batch of `batch_docs` documents. One task per partition runs on the
task runner: it opens the source and the encoder itself (once per worker process), reads its
partition, chunks and encodes it. Then, by store:

- embedded (qdrant-edge, one writer per shard): the `encode-<n>` task returns the vectors and chunks
  and the flow process is the one writer (`store-<n>`): `IngestJob.store_batch` writes every
  collection, records and checkpoints exactly as the CLI does;
- Qdrant server (`--qdrant-url`): the `write-<n>` task upserts its points straight to the server
  (the CLI's write, `ingest.write.write_encoded`, each upsert batch retried on its own; API key from
  the worker's QDRANT_API_KEY) and returns chunk counts; the flow process records and checkpoints it
  (`commit-<n>`).

Either way the points are the CLI's, a checkpointed partition is skipped by any rerun, and a task
lost with its worker is run again by the runner (its writes are idempotent: deterministic point ids).

The flow takes `target`, `options` (an `IngestConfig`: the Prefect UI renders one form field per
option), `task_runner` (`local` | `dask`, default STATIC_INGEST_TASK_RUNNER or `local`) and
`dask_address` (default STATIC_INGEST_DASK_ADDRESS; none: a temporary LocalCluster on loopback);
`options.workers` sets the runner's workers (0: one per usable core).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.common import artifact_key, markdown_table, retried
from ingest.errors import IngestError, InputError
from ingest.options import IngestConfig

if TYPE_CHECKING:
    from prefect.futures import PrefectFuture
    from prefect.task_runners import TaskRunner

    from ingest.batches import EncodedBatch
    from ingest.parallel import EncodeRecipe
    from ingest.partitions import Partition, PartitionWrite, SourceSpec, WrittenPartition
    from ingest.pipeline import IngestJob, IngestSummary
    from ingest.write import WriteTarget

ENV_TASK_RUNNER = "STATIC_INGEST_TASK_RUNNER"
ENV_DASK_ADDRESS = "STATIC_INGEST_DASK_ADDRESS"
TASK_RUNNERS: tuple[str, ...] = ("local", "dask")

# Task arguments of the flow-process tasks hold the live job: no cache key can be computed from them
# and nothing should be persisted. Retried work is safe: point ids are deterministic and checkpoints
# skip what was stored.


@task(
    name="open-ingest",
    **retried(),
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
    name="encode-partition",
    task_run_name="encode-{part.batch_no}",
    **retried(),
)
def encode_partition(spec: SourceSpec, recipe: EncodeRecipe, part: Partition) -> EncodedBatch:
    """Read one partition from the source, chunk and encode it (on any worker; only reads).

    Returns:
        The chunks and their full-dimension vectors, for the flow process to store.
    """
    from ingest.partitions import encode_partition as encode

    return encode(spec, recipe, part)


@task(
    name="store-partition",
    task_run_name="store-{batch_no}",
    **retried(),
)
def store_partition(job: IngestJob, batch_no: int, batch: EncodedBatch) -> dict[str, Any]:
    """Write one encoded partition into every collection, flush, record and checkpoint it (flow process).

    Returns:
        `{"batch_no", "docs", "chunks", "seconds"}`.
    """
    job.stage_seconds["encode"] += batch.seconds  # spent on a worker: the summary's encode stage
    result = job.store_batch(batch)
    return dataclasses.asdict(result)


@task(
    name="write-partition",
    task_run_name="write-{part.batch_no}",
    **retried(),
)
def write_partition(
    spec: SourceSpec, recipe: EncodeRecipe, part: Partition, target: WriteTarget, write: PartitionWrite
) -> WrittenPartition:
    """Read, chunk and encode one partition and upsert it to the Qdrant server (on any worker).

    Returns:
        Chunks written per document, for the flow process to record and checkpoint.
    """
    from ingest.partitions import encode_and_write

    return encode_and_write(spec, recipe, part, target, write)


@task(
    name="commit-partition",
    task_run_name="commit-{written.batch_no}",
    **retried(),
)
def commit_partition(job: IngestJob, written: WrittenPartition) -> dict[str, Any]:
    """Record and checkpoint a partition a task wrote to the server (flow process).

    Returns:
        `{"batch_no", "docs", "chunks", "seconds"}`.
    """
    job.stage_seconds["encode"] += written.encode_seconds
    result = job.commit_written(written.batch_no, written.chunks, write_seconds=written.write_seconds)
    return dataclasses.asdict(result)


@task(
    name="build-index",
    **retried(1, 10),
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


def resolve_runner(task_runner: str | None, dask_address: str | None) -> tuple[str, str | None]:
    """The task runner and Dask address of a run: the parameters, else the environment, else `local`.

    Raises:
        InputError: an unknown runner name, or an address with the local runner.
    """
    name = (task_runner or os.environ.get(ENV_TASK_RUNNER) or "local").strip().lower()
    if name not in TASK_RUNNERS:
        raise InputError(f"--task-runner: {name!r} is not accepted (use one of {', '.join(TASK_RUNNERS)})")
    address = dask_address or os.environ.get(ENV_DASK_ADDRESS) or None
    if address and name != "dask":
        raise InputError(f"--dask-address {address} needs --task-runner dask")
    return name, address


def make_task_runner(name: str, address: str | None, workers: int) -> TaskRunner[Any]:
    """The runner the encode tasks go to.

    Args:
        name: `local`: `workers` threads in this process, each with its own encoder (measured on 2
            cores against Prefect's ProcessPoolTaskRunner with 2 processes: 17.6 s vs 41.9 s on 20,000
            synthetic documents, 4.7 s vs 30.5 s on NFCorpus: a task process imports Prefect and loads
            the model, while the encoder's table sums release the GIL); `dask`:
            `prefect_dask.DaskTaskRunner`.
        address: An existing Dask scheduler (`tcp://host:8786`); None with `dask`: a temporary
            `LocalCluster` of `workers` single-threaded worker processes on loopback.
        workers: Worker processes for `local` and for a temporary LocalCluster.
    """
    if name == "local":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - the dask extra is part of dev
        raise InputError("--task-runner dask needs the dask extra: pip install '.[dask]'") from exc
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": ":0",
            # The workers report task runs to this flow's API (a temporary server included), instead
            # of each starting a temporary server of its own.
            "env": {"PREFECT_API_URL": current_api_url()},
        }
    )


def current_api_url() -> str:
    """The Prefect API this process talks to (the temporary server's when none is configured)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url)


def runner_workers(cfg: IngestConfig) -> int:
    """Workers of the task runner: `cfg.workers`, or one per usable core when it is 0 (automatic)."""
    from ingest.parallel import usable_cores

    return cfg.workers if cfg.workers > 0 else usable_cores()


def run_partitions(
    job: IngestJob, target: str, runner: TaskRunner[Any], in_flight: int
) -> list[dict[str, Any]]:
    """Plan the partitions and run them on `runner`: encoded there and stored here (embedded store), or
    encoded and written there and committed here (server), in source order.

    At most `in_flight` partitions are submitted and not yet stored or committed (bounds the vectors
    held, and the documents written but not yet checkpointed).

    Returns:
        One `store_partition` / `commit_partition` result per partition.
    """
    from ingest.parallel import EncodeRecipe
    from ingest.partitions import PartitionWrite, SourceSpec, plan_partitions

    spec = SourceSpec.of(target, job.cfg)
    recipe = EncodeRecipe.of(
        job.encoder,
        data_dir=job.cfg.data_dir,
        chunk_tokens=job.cfg.chunk_tokens,
        chunk_overlap=job.cfg.chunk_overlap,
    )
    direct = job.target.qdrant_url is not None
    pending: deque[tuple[Partition, PrefectFuture[Any]]] = deque()
    stored: list[dict[str, Any]] = []

    def store_next() -> None:
        part, future = pending.popleft()
        if direct:
            stored.append(commit_partition(job, future.result()))
        else:
            stored.append(store_partition(job, part.batch_no, future.result()))

    for part in plan_partitions(job):
        args: dict[str, Any] = {"spec": spec, "recipe": recipe, "part": part}
        if direct:
            old, hashes = job.write_plan(part.batch_no)
            args.update(target=job.target, write=PartitionWrite(old, hashes))
            pending.append((part, runner.submit(write_partition, args)))
        else:
            pending.append((part, runner.submit(encode_partition, args)))
        while len(pending) > in_flight:
            store_next()
    while pending:
        store_next()
    return stored


def model_markdown(model: dict[str, Any]) -> str:
    """Which model ran, for an artifact: its id, kind, dimension, revision and origin, preceded by a loud
    warning when it is the offline stand-in or has random weights.

    Args:
        model: The encoder's description (`IngestSummary.model`, a collection manifest's `model`).

    Returns:
        Markdown: one line, or a warning paragraph and the line.
    """
    from ingest.encoder.models import DEFAULT_MODEL

    kind = str(model.get("kind") or "unknown kind")
    revision = model.get("revision")
    parts = [
        kind,
        f"{model['dim']}-d" if model.get("dim") else "",
        f"revision {str(revision)[:12]}" if revision else "",
        f"from {model['origin']}" if model.get("origin") else "",
    ]
    line = f"Model: `{model.get('model_id') or 'unknown'}` ({', '.join(p for p in parts if p)})."
    if model.get("random_weights") or kind == "random":
        warning = (
            "**WARNING: this model has RANDOM weights: the stored vectors carry no meaning (pipeline and "
            "speed work only). Do not evaluate or serve these collections as a real model's.**"
        )
    elif kind == "stand-in":
        warning = (
            f"**WARNING: the OFFLINE STAND-IN model ran, not `{DEFAULT_MODEL}` (the Hugging Face Hub was "
            "unreachable, or `model = standin`). These collections hold the stand-in's vectors; its "
            "quality is not the published model's. Re-ingest with the real model (`--model auto` with Hub "
            "access, and `--recreate`) before any quality claim.**"
        )
    else:
        return line
    return f"{warning}\n\n{line}"


def publish_ingest_artifacts(job: IngestJob, summary: IngestSummary, batches: list[dict[str, Any]]) -> None:
    """Publish the run summary as a markdown artifact and the per-collection counts as a table artifact.

    Both state which model ran (the table in a column and its description); the markdown starts with
    the stand-in / random-weights warning when that model ran.
    """
    model_id = str(summary.model.get("model_id") or "unknown")
    kind = str(summary.model.get("kind") or "")
    flagged = " (RANDOM WEIGHTS)" if summary.model.get("random_weights") or kind == "random" else ""
    flagged = flagged or (" (OFFLINE STAND-IN)" if kind == "stand-in" else "")
    rows = [
        {
            "collection": name,
            "dim": spec.dim,
            "quantization": spec.quantization,
            "points": summary.points.get(name, 0),
            "expected_chunks": job.expected_chunks(name),
            "bytes_per_vector": spec.bytes_per_vector,
            "model": model_id + flagged,
        }
        for spec, name in zip(job.specs, job.names, strict=True)
    ]
    key = artifact_key("ingest", summary.dataset)
    create_table_artifact(
        rows,
        key=f"{key}-collections",
        description=f"Collections filled from {summary.dataset} by model {model_id}{flagged}",
    )
    batch_line = (
        f"{len(batches)} batch task(s) this run, {summary.resumed_batches} batch(es) resumed from checkpoints"
    )
    sync_line = (
        f"Sync `{summary.sync}`: {summary.added} added, {summary.changed} changed, "
        f"{summary.unchanged} unchanged, {summary.deleted} deleted; {summary.encoded_docs} documents encoded."
    )
    markdown = "\n\n".join(
        [
            f"# Ingest {summary.dataset}: {'verified' if summary.verified else 'COUNTS DO NOT MATCH'}",
            model_markdown(summary.model),
            f"{summary.docs} docs → {summary.chunks} chunks in {summary.seconds:.1f} s "
            f"({summary.docs_per_s:.0f} encoded docs/s); {batch_line}.",
            sync_line,
            markdown_table(rows),
            "```\n" + summary.format() + "\n```",
            f"Run directory: `{summary.run_dir}`",
        ]
    )
    create_markdown_artifact(
        markdown, key=key, description=f"Ingest summary of {summary.dataset} (model {model_id}{flagged})"
    )


@flow(name="ingest-corpus", log_prints=True)
def ingest_corpus(
    target: str = "scifact",
    options: IngestConfig | None = None,
    task_runner: str | None = None,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """Ingest `target` into every configured collection, one encode task per partition of the source.

    Args:
        target: A BEIR dataset name, a path (BEIR folder/zip, Parquet) or `hf:NAME`.
        options: The options of `python -m ingest` (`ingest.options.IngestConfig`, one form field
            per option); None or a field left out: its default. `data_dir`, `beir_dirs` and
            `qdrant_url` also come from STATIC_INGEST_DATA_DIR, STATIC_INGEST_BEIR_DIR and
            QDRANT_URL of the process that runs the flow (the worker, for a deployment).
            `options.workers`: the task runner's worker processes (0: one per usable core).
        task_runner: `local` (threads in this process) or `dask`; None: STATIC_INGEST_TASK_RUNNER,
            else `local`.
        dask_address: With `dask`, an existing scheduler (`tcp://host:8786`); None:
            STATIC_INGEST_DASK_ADDRESS, else a temporary LocalCluster on loopback.

    Returns:
        The summary as a dict (`IngestSummary.to_dict()`).

    Raises:
        IngestError: on bad input, a collection mismatch, or point counts that do not match the
            chunks (after the manifests and artifacts are written).
    """
    from ingest.sources.base import EmptySourceError

    logger = get_run_logger()
    cfg = options if options is not None else IngestConfig()
    runner_name, address = resolve_runner(task_runner, dask_address)
    workers = runner_workers(cfg)
    job = open_ingest(target, cfg)
    try:
        logger.info("task runner %s (%s)", runner_name, address or f"{workers} worker(s) on this machine")
        try:
            with make_task_runner(runner_name, address, workers) as runner:
                batches = run_partitions(job, target, runner, in_flight=2 * workers + 1)
        except EmptySourceError:
            job.settle_empty_source()
            raise
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
    and `--config` is read here, before the flow starts; plus `--task-runner` and `--dask-address`.
    """
    from ingest.__main__ import build_parser, config_from_args

    parser = build_parser(prog="python -m flows.ingest_flow")
    parser.add_argument(
        "--task-runner",
        choices=TASK_RUNNERS,
        default=None,
        help=f"where partitions are encoded: local threads or dask (default ${ENV_TASK_RUNNER}, else local)",
    )
    parser.add_argument(
        "--dask-address",
        default=None,
        help=f"an existing Dask scheduler, tcp://host:8786 (default ${ENV_DASK_ADDRESS}; none: a temporary "
        "LocalCluster on loopback)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = config_from_args(args)
        resolve_runner(args.task_runner, args.dask_address)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = ingest_corpus(
        target=args.target,
        options=cfg,
        task_runner=args.task_runner,
        dask_address=args.dask_address,
        return_state=True,
    )
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
