"""Chunking and encoding in worker processes, so the main process is free to read and upsert.

qdrant-edge's `EdgeShard.update` holds the GIL while it converts and stores points; the encoder's
heavy parts (polars, torch) release it, but the upserts still leave an encoding thread little time,
even with one collection. A worker process does not share the GIL:
it rebuilds the same chunker and encoder from an `EncodeRecipe` (model directory + chunk
parameters), receives numbered document batches (pickled) and sends back `EncodedBatch`es: the
chunks and their full-dimension vectors, computed by the same `ingest.encode_batch.encode_docs`
that `IngestJob.encode_batch` runs in-process.

Workers are started with "spawn" (no fork of a process holding engine threads and file locks);
each one loads the model once (its own copy of the table, in column slices) and encodes on one
thread. Spawned workers import the main module, so a script that ingests a
big corpus must guard its entry point (`if __name__ == "__main__":`).

Measured on 2 cores (BENCHMARKS.md, side by side in one run, 171,332 TREC-COVID-sized documents,
1024-d): with one collection (binary) one worker beats three threads in one process, 43.6 vs 53.9 s
(load 24.5 vs 32.3 s: the upserting thread holds the GIL for most of the load, so an encoding
thread beside it gets little done); with the ten collections of the default matrix the worker
shortened the load phase from 152 s to 123 s. Below ~20,000 documents starting a worker costs
more than it saves. A sync of collections that already hold a big corpus uses one worker too: the
main process then spends the run reading and hashing every document (GIL-bound Python), and the
worker's start (model load, `import torch`: ~2 s) and the few documents to encode go to the other
core (issue 11: 1 % changed of 171,332 documents, 6.4-7.2 s in-process vs 4.5-5.5 s with the worker).
`choose_workers` encodes that.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.batches import EncodedBatch
from ingest.encode_batch import encode_docs
from ingest.memory import peak_rss_mb, release_freed_memory

if TYPE_CHECKING:
    from ingest.chunking import Chunker
    from ingest.encoder.static import Encoder
    from ingest.records import Document

log = logging.getLogger(__name__)

# With `workers=0` (auto), a worker process is used only for corpora that may hold this many
# documents or more: starting one (imports + model load) costs 2-4 s.
AUTO_MIN_DOCS = 20_000


@dataclass(frozen=True)
class EncodeRecipe:
    """What a worker process needs to build the same chunker and encoder as the main process.

    Attributes:
        model_path: The model's local directory (`Encoder.location.path`).
        data_dir: The data directory (`load_encoder` needs one; nothing is built there for a path).
        chunk_tokens: Chunk window in tokens, title included.
        chunk_overlap: Tokens shared by consecutive windows.
        fast: Whether the encoder uses its fast exact path.
        dim: The model's full dimension (the width of an empty batch's vectors).
    """

    model_path: str
    data_dir: str
    chunk_tokens: int
    chunk_overlap: int
    fast: bool = True
    dim: int = 0

    @classmethod
    def of(
        cls, encoder: Encoder, *, data_dir: os.PathLike[str] | str, chunk_tokens: int, chunk_overlap: int
    ) -> EncodeRecipe:
        """The recipe of an already loaded encoder and the run's chunk parameters."""
        return cls(
            model_path=str(encoder.location.path),
            data_dir=str(data_dir),
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_overlap,
            fast=bool(encoder.fast),
            dim=int(encoder.dim),
        )

    def build(self) -> tuple[Chunker, Encoder]:
        """Load the encoder and make the chunker exactly as `IngestJob` does."""
        from pathlib import Path

        from ingest.chunking import Chunker
        from ingest.encoder.static import load_encoder

        encoder = load_encoder(self.model_path, data_dir=Path(self.data_dir), fast=self.fast)
        chunker = Chunker.for_encoder(encoder, self.chunk_tokens, self.chunk_overlap)
        return chunker, encoder


_WORKER: tuple[Chunker, Encoder] | None = None
# How often a worker checks that the process that started it is still alive (seconds).
PARENT_CHECK_S = 1.0


def _exit_when_orphaned(parent: int) -> None:
    """End this worker once the process that started it is gone (a killed ingest): a daemon thread
    polls the parent pid. (`prctl(PR_SET_PDEATHSIG)` would follow the *thread* that spawned the worker,
    which need not live as long as the pool.)"""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _exit_without_teardown() -> None:
    """End a worker at its normal exit without tearing the interpreter down.

    Registered last, so it runs first among the exit handlers: by then the worker has sent its last
    result and holds nothing to save; the teardown (with torch loaded, ~0.5 s) would only make the
    run that waits for it slower.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _worker_init(recipe: EncodeRecipe, parent: int | None = None) -> None:
    global _WORKER
    import torch

    if parent is not None:
        _exit_when_orphaned(parent)
    atexit.register(_exit_without_teardown)
    # One thread per worker: the main process needs the other core for reading and upserting.
    torch.set_num_threads(1)
    logging.getLogger("ingest").setLevel(logging.WARNING)
    _WORKER = recipe.build()


def _worker_ready() -> None:
    """Nothing: submitted to make the pool start a worker (its initializer loads the model)."""


def _worker_encode(batch_no: int, docs: list[Document]) -> tuple[EncodedBatch, float]:
    if _WORKER is None:
        raise RuntimeError("encoder worker process was not initialised")
    batch = encode_docs(*_WORKER, batch_no, docs)
    release_freed_memory()
    return batch, peak_rss_mb()


class ProcessEncoder:
    """A bounded pool of encoder processes: batches go in, `EncodedBatch`es come out in order.

    Args:
        recipe: How workers build their chunker and encoder.
        workers: Worker processes (at least 1).
        in_flight: Batches submitted and not yet taken back (default `workers + 1`): bounds memory
            (each holds its documents, chunks and vectors) while keeping every worker busy.

    Use as a context manager, or call `close`.
    """

    def __init__(self, recipe: EncodeRecipe, workers: int = 1, in_flight: int | None = None) -> None:
        self.recipe = recipe
        self._closing: threading.Thread | None = None
        self.workers = max(1, workers)
        self.in_flight = max(1, in_flight if in_flight is not None else self.workers + 1)
        self.worker_peak_rss_mb = 0.0
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(recipe, os.getpid()),
        )

    def start(self) -> None:
        """Start every worker now (they start at their first batch otherwise), without waiting."""
        for _ in range(self.workers):
            self._pool.submit(_worker_ready)

    def map(self, batches: Iterable[tuple[int, list[Document]]]) -> Iterator[EncodedBatch]:
        """Encode numbered batches, yielding results in input order; at most `in_flight` are pending.

        The next batches are submitted before a result is yielded, so workers encode while the
        caller stores.

        Raises:
            Whatever a worker raised while encoding (re-raised here), or BrokenProcessPool if a
            worker died.
        """
        pending: deque[Future[tuple[EncodedBatch, float]]] = deque()
        source = iter(batches)
        exhausted = False

        def fill() -> None:
            nonlocal exhausted
            while not exhausted and len(pending) < self.in_flight:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    return
                if item[1]:
                    pending.append(self._pool.submit(_worker_encode, *item))
                else:  # nothing to encode (a sync's last batch): no worker is started for it
                    done: Future[tuple[EncodedBatch, float]] = Future()
                    empty = np.zeros((0, self.recipe.dim), dtype=np.float32)
                    done.set_result((EncodedBatch(item[0], 0, [], empty, 0.0), 0.0))
                    pending.append(done)

        fill()
        while pending:
            batch, rss = pending.popleft().result()
            self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, rss)
            fill()
            yield batch

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers (pending batches are cancelled).

        Args:
            wait: Wait until they have exited. Without waiting, their exit (interpreter teardown with
                torch loaded: ~0.5 s) runs in a thread and overlaps with what the caller does next; a
                later `close()` waits for it.
        """
        if self._closing is None:
            self._closing = threading.Thread(
                target=self._pool.shutdown,
                kwargs={"wait": True, "cancel_futures": True},
                name="encoder-pool-shutdown",
                daemon=True,
            )
            self._closing.start()
        if wait:
            self._closing.join()

    def __enter__(self) -> ProcessEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def choose_workers(requested: int, size_hint: int | None, limit: int | None) -> int:
    """How many encoder processes a run uses: 0 means in-process.

    Args:
        requested: `IngestConfig.workers`: N ≥ 1 forces N processes; 0 is automatic (one process
            when the corpus may hold `AUTO_MIN_DOCS` documents or more and two cores are usable).
        size_hint: Documents the source says it holds, if it knows.
        limit: The run's document limit, if any.

    Returns:
        The number of worker processes.
    """
    if requested > 0:
        return requested
    bound = documents_bound(size_hint, limit)
    if bound is not None and bound < AUTO_MIN_DOCS:
        return 0
    return 1 if usable_cores() >= 2 else 0


def documents_bound(size_hint: int | None, limit: int | None) -> int | None:
    """The most documents a run can read: the smaller of the source's size and the run's limit, when
    either is known."""
    known = [n for n in (size_hint, limit) if n is not None]
    return min(known) if known else None


def usable_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def size_hint(described: dict[str, Any]) -> int | None:
    """Documents a source's `describe()` says it holds (Parquet rows, BEIR corpus lines), if any."""
    for key in ("rows", "corpus_lines", "num_rows"):
        value = described.get(key)
        if isinstance(value, int) and value >= 0:
            return value
    return None
