"""Partitions: a batch of an ingest described by plain data, so another process or machine can encode it.

The process that owns the collections plans (`plan_partitions`): it streams the source through
`IngestJob.pending_batches`, which skips checkpointed batches and decides from each collection's
per-document record which documents need encoding (the sync plan), and turns every batch it yields into
a `Partition`: the record positions the batch spans, a seek hint and the ids to encode. A worker reads
the partition back itself and chunks and encodes it (`encode_partition`); its source is opened once
per worker process and its encoder once per worker thread.

Who writes depends on the store:

- embedded (qdrant-edge: one writer per shard): the owner stores the returned `EncodedBatch` with
  `IngestJob.store_batch`, which writes, records and checkpoints it exactly as the CLI does;
- Qdrant server (many writers are fine): the task also writes its points itself
  (`encode_and_write`: `ingest.write.write_encoded`, the CLI's write, through a store connection
  opened once per worker thread, each upsert batch retried on its own) and returns only chunk
  counts; the owner then records and checkpoints it (`IngestJob.commit_written`). The server's
  record is its points' payloads, so a task that dies after writing leaves nothing to undo: the
  retried task rewrites the same point ids.

Either way the stored points are the CLI's and a partition checkpointed once is skipped by any rerun.

Partition sizes are the run's `batch_docs` (2,048 by default): the checkpoint unit of the CLI, so a
flow and a CLI run resume each other's work.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.sources.spec import SourceSpec

if TYPE_CHECKING:
    from ingest.batches import EncodedBatch
    from ingest.chunking import Chunker
    from ingest.encoder.static import Encoder
    from ingest.parallel import EncodeRecipe
    from ingest.pipeline import IngestJob
    from ingest.sources.base import BaseSource
    from ingest.stores.base import VectorStore
    from ingest.write import WriteTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partition:
    """One batch to encode, as plain data (a few kilobytes: the ids dominate).

    Attributes:
        batch_no: The first source batch it covers (the key `IngestJob.store_batch` stores it under).
        start: First record position it spans (a line of corpus.jsonl, a row of the Parquet files or
            of the HF dataset).
        stop: Last record position it spans (inclusive).
        ids: The documents to encode, in corpus order (those the sync plan needs; may be empty).
        hint: Where to start reading (`BaseSource.seek_hint`: a byte offset in corpus.jsonl).
        drop: Positions inside the span that the duplicate policy dropped.
    """

    batch_no: int
    start: int
    stop: int
    ids: tuple[str, ...]
    hint: dict[str, Any] = field(default_factory=dict)
    drop: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """A short name for task runs and logs."""
        return f"partition-{self.batch_no}"


def plan_partitions(job: IngestJob) -> Iterator[Partition]:
    """The partitions still to store, planned against the job's checkpoints and records (streamed).

    Each comes from one batch `job.pending_batches()` yields (the job keeps its plan for `store_batch`);
    it spans the source batches from the first one the plan covers to the last one read.

    Args:
        job: The opened ingest (in the process that stores).

    Yields:
        The partitions, in source order.
    """
    source = job.source
    drop: set[int] = set()
    if getattr(source, "on_duplicate", "fail") != "fail":
        drop = set(source.duplicate_plan().drop)
    for batch_no, docs in job.pending_batches():
        spans: list[tuple[int, int]] = source.batch_spans
        start, stop = spans[batch_no][0], spans[-1][1]
        yield Partition(
            batch_no=batch_no,
            start=start,
            stop=stop,
            ids=tuple(d.id for d in docs),
            hint=source.seek_hint(start) if docs else {},
            drop=tuple(sorted(p for p in drop if start <= p <= stop)),
        )


@dataclass(frozen=True)
class PartitionWrite:
    """What a partition task writes itself (server backend): `IngestJob.write_plan` of its batch.

    Attributes:
        old: Per collection: each document to write there → its old chunk count (0 if new there).
        hashes: Content hash per document (payload `doc_hash`).
    """

    old: dict[str, dict[str, int]]
    hashes: dict[str, str]


@dataclass(frozen=True)
class WrittenPartition:
    """What a task that wrote its partition returns (small: one count per document).

    Attributes:
        batch_no: The partition's batch.
        chunks: Chunks written per document.
        encode_seconds: Time reading, chunking and encoding took.
        write_seconds: Time upserting, deleting surplus chunks and flushing took.
    """

    batch_no: int
    chunks: dict[str, int]
    encode_seconds: float
    write_seconds: float


@functools.cache
def worker_source(spec: SourceSpec) -> BaseSource:
    """The source of `spec`, opened once per process."""
    return spec.open()


def worker_encoder(recipe: EncodeRecipe) -> tuple[Chunker, Encoder]:
    """The chunker and encoder of `recipe`, loaded once per worker thread (the model path is the key).

    Per thread, not per process: the encoder and the tokenizer keep caches that two threads calling
    them at once corrupt (measured: IndexErrors under a thread runner); a Dask worker or a process
    pool worker runs one task at a time, so it loads one.
    """
    loaded: dict[EncodeRecipe, tuple[Chunker, Encoder]] = _THREAD.__dict__.setdefault("encoders", {})
    if recipe not in loaded:
        loaded[recipe] = recipe.build()
    return loaded[recipe]


_THREAD = threading.local()


def worker_store(target: WriteTarget) -> VectorStore:
    """A connection to `target`'s Qdrant server, opened once per worker thread (API key from
    QDRANT_API_KEY in the worker's environment: never part of a task's arguments).

    Raises:
        ValueError: `target` names no server (the embedded store has one writer: the flow process).
    """
    if target.qdrant_url is None:
        raise ValueError("partition tasks write only to a Qdrant server; the embedded store has one writer")
    from ingest.stores import open_store

    key = (target.qdrant_url, target.timeout_s, target.retries)
    stores: dict[tuple[str, float, int | None], VectorStore] = _THREAD.__dict__.setdefault("stores", {})
    if key not in stores:
        url, timeout_s, retries = key
        stores[key] = open_store(data_dir=Path("."), qdrant_url=url, timeout_s=timeout_s, retries=retries)
    return stores[key]


def read_partition(spec: SourceSpec, part: Partition) -> list[Any]:
    """The documents of a partition, read back from the source.

    Raises:
        InputError: the source no longer holds a planned document, or cannot be read.
    """
    if not part.ids:
        return []
    return worker_source(spec).read_span(
        part.start, part.stop, list(part.ids), hint=part.hint, drop=frozenset(part.drop)
    )


def encode_partition(spec: SourceSpec, recipe: EncodeRecipe, part: Partition) -> EncodedBatch:
    """Read, chunk and encode one partition at the model's full dimension (in any process).

    Args:
        spec: How to open the source.
        recipe: How to build the chunker and encoder (`EncodeRecipe.of` the job's encoder).
        part: The partition.

    Returns:
        The encoded batch, keyed by `part.batch_no`, for `IngestJob.store_batch`.

    Raises:
        InputError: the source changed since the partition was planned.
    """
    from ingest.encode_batch import encode_docs
    from ingest.memory import release_freed_memory

    docs = read_partition(spec, part)
    chunker, encoder = worker_encoder(recipe)
    batch = encode_docs(chunker, encoder, part.batch_no, docs)
    release_freed_memory()
    return batch


def encode_and_write(
    spec: SourceSpec, recipe: EncodeRecipe, part: Partition, target: WriteTarget, write: PartitionWrite
) -> WrittenPartition:
    """Read, chunk and encode one partition, and write it to the Qdrant server (in any process).

    Args:
        spec: How to open the source.
        recipe: How to build the chunker and encoder.
        part: The partition.
        target: The collections and the server (`IngestJob.target`).
        write: Where each document goes (`IngestJob.write_plan`).

    Returns:
        Chunks written per document, for `IngestJob.commit_written`.

    Raises:
        InputError: the source changed since the partition was planned.
        StoreError: a write still fails after the store's retries (the task may be retried whole).
    """
    from ingest.write import write_encoded

    batch = encode_partition(spec, recipe, part)
    t0 = time.perf_counter()
    new = write_encoded(worker_store(target), target, batch, write.old, write.hashes)
    return WrittenPartition(part.batch_no, dict(new), batch.seconds, time.perf_counter() - t0)
