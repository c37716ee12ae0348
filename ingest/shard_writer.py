"""A second writer process for a bulk load into the embedded store: it owns the shards of some dims.

qdrant-edge's `EdgeShard.update`, and building the engine's points, hold the GIL: one process writes
one collection at a time, whatever the cores. With encoder workers (big corpora) the main process is
then the load phase's bound while the other core mostly waits (issue 14: 119 of 124.5 s of the default
matrix's load were the main process's CPU). A `ShardWriter` is one process that owns the collections
of some of the run's dims, every quantization of a dim together (the engine's points of a dim are built
once and reused for each quantization, `EdgeStore._points`). Each batch is written by the main process
into its collections and by the writer into its own at the same time, through the same
`ingest.write.write_encoded`, and the batch is recorded and checkpointed only once both have flushed:
a failure in either stops the run before the batch counts as stored, as with one writer.

The hand-over: the main process `release`s the writer's collections (flush, close, unlock) before the
writer opens and locks them, and the writer closes them (flush, unlock) before the main process opens
them again (sync deletions, indexes, verification). The per-document records stay with the main
process. `IngestJob.run_batches` starts one for an embedded store with two or more dims, two or more
usable cores and encoder workers (a corpus of 20,000+ documents), when the run is a bulk load
(`bulk_load`: not a sync of a corpus already held); `writer_dims` picks its dims.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import StoreError

if TYPE_CHECKING:
    from ingest.batches import EncodedBatch
    from ingest.stores.edge import EdgeStore
    from ingest.write import WriteTarget

log = logging.getLogger(__name__)

# The writer's part of the engine work: the main process also reads, hashes, plans and records every
# batch, so it keeps less than half of the writes (measured on the default matrix, BENCHMARKS.md).
WRITER_SHARE = 0.55


def dim_weight(dim: int) -> float:
    """Relative cost of writing a batch into the collections of one dim: a fixed part per point and
    a part per component (converting and storing the vector). A rough line through scratch timings
    (40,000 points into the three quantizations of a dim: about 5, 3, 2.5, 2 and 1.9 CPU s at 1024,
    512, 256, 128 and 64 dims); what is measured end to end is the split it gives (BENCHMARKS.md)."""
    return 1.0 + dim / 256


def writer_dims(dims: Sequence[int], share: float = WRITER_SHARE) -> set[int]:
    """The dims a writer process takes: the heaviest first, while its part stays within `share`.

    Args:
        dims: The run's dims (repeated once per quantization, or not).
        share: The writer's target part of the total weight.

    Returns:
        The writer's dims; empty with fewer than two distinct dims (nothing to split without losing
        the reuse of a dim's points).
    """
    distinct = sorted(set(dims), reverse=True)
    if len(distinct) < 2:
        return set()
    total = sum(dim_weight(d) for d in distinct)
    chosen: set[int] = set()
    taken = 0.0
    for dim in distinct:
        if (taken + dim_weight(dim)) / total <= share or not chosen:
            chosen.add(dim)
            taken += dim_weight(dim)
    return chosen if len(chosen) < len(distinct) else set()


def bulk_load(held: int, size_hint: int | None, limit: int | None) -> bool:
    """Whether a run loads enough to be worth a writer process (starting one and handing the shards
    over costs seconds; a nightly sync of a few changed documents would only pay that).

    Args:
        held: The fewest points any collection of the run holds.
        size_hint: Documents the source says it holds, if it knows.
        limit: The run's document limit, if any.

    Returns:
        True when some collection is empty, or at least `AUTO_MIN_DOCS` documents of the source can
        be missing from one (documents beyond its point count: a document has one point or more).
    """
    from ingest.parallel import AUTO_MIN_DOCS, documents_bound

    if held == 0:
        return True
    bound = documents_bound(size_hint, limit)
    return bound is not None and bound - held >= AUTO_MIN_DOCS


def split_target(target: WriteTarget, dims: set[int]) -> tuple[WriteTarget, WriteTarget]:
    """`target` as (the main process's part, the writer's part: the collections of `dims`)."""
    mine = tuple(c for c in target.collections if c[1] not in dims)
    theirs = tuple(c for c in target.collections if c[1] in dims)
    return replace(target, collections=mine), replace(target, collections=theirs)


class ShardWriter:
    """One process writing batches into some collections of an embedded store (see the module doc).

    Args:
        root: The store's root directory.
        target: What the writer writes: its collections, the payload form, the sync mode.
        wal: Open shards with a write-ahead log (as the main process's store).
        upsert_chunk: Points per engine update call (as the main process's store).
    """

    def __init__(
        self, root: Path, target: WriteTarget, *, wal: bool = False, upsert_chunk: int = 1024
    ) -> None:
        self.root = Path(root)
        self.target = target
        self.names = [name for name, _ in target.collections]
        self._args = (str(self.root), tuple(self.names), wal, upsert_chunk, os.getpid())
        self._pool: ProcessPoolExecutor | None = None

    def start(self, store: EdgeStore) -> None:
        """Release the writer's collections in `store` and open them in a new process.

        Raises:
            StoreError: the process could not open (lock) a collection; `store` reopens them on use.
        """
        for name in self.names:
            store.release(name)
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        self._wait(self._pool.submit(_open, *self._args))
        log.info("writer process for %s", ", ".join(self.names))

    def submit(
        self, batch: EncodedBatch, old: dict[str, dict[str, int]], hashes: dict[str, str]
    ) -> Future[Any]:
        """Start writing one batch into the writer's collections (`write_encoded` there); `wait` for it.

        Raises:
            StoreError: the process died before.
        """
        if self._pool is None:
            raise RuntimeError("the writer process is not started")
        try:
            return self._pool.submit(_write, self.target, batch, old, hashes)
        except BrokenProcessPool as exc:
            raise self._died(exc) from exc

    def wait(self, future: Future[Any]) -> Counter[str]:
        """The result of a `submit`: chunks per document, once written and flushed there.

        Raises:
            StoreError: the write failed there, or the process died.
        """
        return self._wait(future)

    def _wait(self, future: Future[Any]) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise self._died(exc) from exc

    def _died(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"the writer process for collections {', '.join(self.names)} ended unexpectedly ({exc}); "
            "the batches stored before are checkpointed: rerun the same command to resume"
        )

    def close(self) -> None:
        """Close the collections there (flush, unlock) and end the process; a no-op if not started.

        Raises:
            StoreError: closing a shard failed there.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            self._wait(pool.submit(_close))
        except BrokenProcessPool as exc:  # from `submit`: it died before
            raise self._died(exc) from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


_STORE: EdgeStore | None = None


def _open(root: str, names: tuple[str, ...], wal: bool, upsert_chunk: int, parent: int) -> None:
    global _STORE
    from ingest.stores.edge import EdgeStore
    from ingest.supervise import die_with_parent

    # Killed with the run (its thread stays in `run_batches` while this process lives): a rerun
    # right after a killed one must find the collection locks free.
    die_with_parent(parent)
    logging.getLogger("ingest").setLevel(logging.WARNING)
    store = EdgeStore(Path(root), wal=wal, upsert_chunk=upsert_chunk)
    try:
        for name in names:
            store.hold(name)
    except BaseException:
        store.close()
        raise
    _STORE = store


def _write(
    target: WriteTarget, batch: EncodedBatch, old: dict[str, dict[str, int]], hashes: dict[str, str]
) -> Counter[str]:
    from ingest.memory import release_freed_memory
    from ingest.write import write_encoded

    if _STORE is None:
        raise RuntimeError("the writer process has no open store")
    new = write_encoded(_STORE, target, batch, old, hashes)
    release_freed_memory()
    return new


def _close() -> None:
    global _STORE
    store, _STORE = _STORE, None
    if store is not None:
        store.close()
