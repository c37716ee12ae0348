"""Partitions: a batch of an ingest described by plain data, so another process or machine can encode it.

The process that owns the collections plans (`plan_partitions`): it streams the source through
`IngestJob.pending_batches`, which skips checkpointed batches and decides from each collection's
per-document record which documents need encoding (the sync plan), and turns every batch it yields into
a `Partition`: the record positions the batch spans, a seek hint and the ids to encode. A worker reads
the partition back itself and chunks and encodes it (`encode_partition`); its source is opened once
per worker process and its encoder once per worker thread. The owner then stores the `EncodedBatch`
with `IngestJob.store_batch`, which writes, records and checkpoints it exactly as the CLI does, so the
stored points are the CLI's and a partition stored once is skipped by any rerun.

Partition sizes are the run's `batch_docs` (2,048 by default): the checkpoint unit of the CLI, so a
flow and a CLI run resume each other's work.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest.sources.spec import SourceSpec

if TYPE_CHECKING:
    from ingest.batches import EncodedBatch
    from ingest.chunking import Chunker
    from ingest.encoder.static import Encoder
    from ingest.parallel import EncodeRecipe
    from ingest.pipeline import IngestJob
    from ingest.sources.base import BaseSource

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
