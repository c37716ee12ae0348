"""How `IngestJob.run_batches` overlaps reading, encoding and upserting: threads, or worker processes.

Both modes run the same three stages over a job's pending batches through bounded queues (the
reader runs ahead by at most `QUEUE_DEPTH` batches' worth of documents, so a sync's small batches of
changed documents do not stall it; encoded batches wait `QUEUE_DEPTH` at a time), and stop at the
first error after storing every batch read before it. They need only the `BatchJob` side of a
job, so this module does not import the pipeline (which imports it).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from ingest.batches import BatchResult, EncodedBatch
from ingest.parallel import ProcessEncoder
from ingest.queues import put_unless_stopped
from ingest.records import Document

log = logging.getLogger(__name__)

QUEUE_DEPTH = 2

_DONE = object()


class BatchJob(Protocol):
    """What the run modes use of an `IngestJob`."""

    dataset: str
    stage_seconds: dict[str, float]
    batch_docs: int

    def pending_batches(self) -> Iterator[tuple[int, list[Document]]]:
        """Numbered document batches still to store."""
        ...

    def encode_batch(self, batch_no: int, docs: list[Document]) -> EncodedBatch:
        """Chunk and encode one batch in this process."""
        ...

    def store_batch(self, batch: EncodedBatch) -> BatchResult:
        """Upsert, flush and checkpoint one encoded batch."""
        ...


class DocQueue:
    """A FIFO of `(batch_no, docs)` items bounded by the documents it holds, not by the item count.

    `put` waits while the queue is not empty and the item would take it over `max_docs` documents (one
    item always fits); other items (the end marker) count as no document. Thread-safe.

    Args:
        max_docs: Documents the queue may hold.
    """

    def __init__(self, max_docs: int) -> None:
        self.max_docs = max(1, max_docs)
        self._items: deque[Any] = deque()
        self._docs = 0
        self._cond = threading.Condition()

    @staticmethod
    def _size(item: Any) -> int:
        return len(item[1]) if isinstance(item, tuple) else 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Append `item`, waiting for room (as `queue.Queue.put`).

        Raises:
            queue.Full: no room came within `timeout` seconds (at once when not `block`).
        """
        size = self._size(item)
        with self._cond:
            if not self._cond.wait_for(
                lambda: not self._items or self._docs + size <= self.max_docs,
                timeout=timeout if block else 0,
            ):
                raise queue.Full
            self._items.append(item)
            self._docs += size
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Any:
        """Take the oldest item, waiting for one.

        Raises:
            queue.Empty: none came within `timeout` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout=timeout):
                raise queue.Empty
            item = self._items.popleft()
            self._docs -= self._size(item)
            self._cond.notify_all()
            return item


def run_in_processes(job: BatchJob, pool: ProcessEncoder, *, progress: bool) -> None:
    """Read (a thread) and upsert here; chunk and encode in the worker processes of `pool`.

    The engine's update holds the GIL, so encoding only overlaps with it in another process. Once every
    batch is stored (or the run failed) the pool is told to stop: its workers exit in the background
    while the caller finishes the run (indexes, verification); the caller `close()`s it to wait.

    Args:
        job: The job whose pending batches to run.
        pool: The encoder worker processes (see `ingest.parallel.ProcessEncoder`).
        progress: Show a tqdm progress bar.

    Raises:
        The first error the reader, a worker or the store raised, after every batch read before it
        was stored.
    """
    from tqdm import tqdm

    to_encode = DocQueue(QUEUE_DEPTH * job.batch_docs)
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for item in job.pending_batches():
                if not put_unless_stopped(to_encode, item, stop):
                    return
        except BaseException as exc:
            # A bad record: the batches read before it are still encoded and stored, then it is raised.
            errors.append(exc)
        finally:
            to_encode.put(_DONE)  # never blocks for long: the consumer drains until _DONE or stop

    def read_batches() -> Iterator[tuple[int, list[Document]]]:
        while True:
            item = to_encode.get()
            if item is _DONE:
                return
            yield item

    log.info("chunking and encoding in %d worker process(es)", pool.workers)
    reader = threading.Thread(target=read, name="ingest-read", daemon=True)
    with tqdm(desc=f"ingest {job.dataset}", unit="doc", disable=not progress, smoothing=0.1) as bar:
        reader.start()
        try:
            for batch in pool.map(read_batches()):
                job.stage_seconds["encode"] += batch.seconds
                bar.update(job.store_batch(batch).docs)
        except BaseException as exc:
            errors.append(exc)
        finally:
            # Every batch is stored (or the run failed): the workers exit while the caller finishes.
            pool.close(wait=False)
            stop.set()
            while reader.is_alive():  # let a reader blocked on a full queue see `stop`
                with contextlib.suppress(queue.Empty):
                    to_encode.get(timeout=0.1)
            reader.join()
    log.debug("encoder workers' peak RSS %.0f MB", pool.worker_peak_rss_mb)
    if errors:
        pool.close()
        raise errors[0]


def run_threaded(job: BatchJob, *, progress: bool) -> None:
    """Read, encode and upsert in three threads of this process (small corpora, few collections).

    Args:
        job: The job whose pending batches to run.
        progress: Show a tqdm progress bar.

    Raises:
        The first error the reader, the encoder or the store raised, after every batch read before it
        was stored.
    """
    from tqdm import tqdm

    to_encode = DocQueue(QUEUE_DEPTH * job.batch_docs)
    to_store: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for item in job.pending_batches():
                if not put_unless_stopped(to_encode, item, stop):
                    return
        except BaseException as exc:
            # A bad record: the batches read before it are still encoded and stored, then it is raised.
            errors.append(exc)
        finally:
            put_unless_stopped(to_encode, _DONE, stop)

    def write(bar: Any) -> None:
        try:
            while True:
                try:
                    item = to_store.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                if item is _DONE:
                    return
                result = job.store_batch(item)
                bar.update(result.docs)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    with tqdm(desc=f"ingest {job.dataset}", unit="doc", disable=not progress, smoothing=0.1) as bar:
        reader = threading.Thread(target=read, name="ingest-read", daemon=True)
        writer = threading.Thread(target=write, args=(bar,), name="ingest-upsert", daemon=True)
        reader.start()
        writer.start()
        try:
            while not stop.is_set():
                try:
                    item = to_encode.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                if not put_unless_stopped(to_store, job.encode_batch(*item), stop):
                    break
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            if not stop.is_set():
                to_store.put(_DONE)
            writer.join()
            stop.set()
            reader.join(timeout=5)
    if errors:
        raise errors[0]
