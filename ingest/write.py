"""Writing an encoded batch into every collection: one function for the CLI's writer and a flow's tasks.

`IngestJob.store_batch` (the CLI, and the flow's single writer for the embedded store) and a
partition task that writes straight to a Qdrant server (`ingest.partitions.encode_and_write`) both
call `write_encoded`, so the points, payloads and deletions are the same whoever writes them. What
it needs is plain data: a `WriteTarget` (the collections, the payload form, the sync mode and, for a
task, the server to open) and the batch's plan (per collection the documents to write there with
their old chunk counts; each document's content hash). The caller keeps the per-document records
and checkpoints (`record_rows` says what the record must hold once the batch is written).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.records import Chunk, point_id
from ingest.supervise import set_activity

if TYPE_CHECKING:
    from ingest.batches import EncodedBatch
    from ingest.stores.base import VectorStore

RecordRow = tuple[str, str | None, int]


@dataclass(frozen=True)
class WriteTarget:
    """Where and how an encoded batch is written (plain data: a task may receive it).

    Attributes:
        dataset: The dataset name (payload `source`, and the point ids' namespace).
        collections: Each collection's name and dim, in the run's order.
        text_collection: The collection whose payloads carry the chunk text (the text is stored once
            per dataset); None with `--no-text`.
        payload_record: Whether each payload carries `doc_hash` and `chunk_count` (the server
            backend keeps its record in the points: `ingest.record`).
        sync: The run's sync mode (`full`, `incremental` or `none`).
        qdrant_url: The Qdrant server a task opens (None: the embedded store, written by one process).
        timeout_s: Server request timeout.
        retries: Server retries of a failed request (None: the store's default).
    """

    dataset: str
    collections: tuple[tuple[str, int], ...]
    text_collection: str | None
    payload_record: bool
    sync: str
    qdrant_url: str | None = None
    timeout_s: float = 60.0
    retries: int | None = None


def slice_vectors(vectors: np.ndarray, dims: set[int]) -> dict[int, np.ndarray]:
    """Matryoshka: prefix-slice full-dimension vectors to each dim and re-normalise."""
    from ingest.encoder.static import slice_normalise

    full = vectors.shape[1]
    return {d: (vectors if d == full else slice_normalise(vectors, d)) for d in dims}


def chunk_payload(chunk: Chunk, target: WriteTarget, doc_hash: str, chunk_count: int) -> dict[str, Any]:
    """A chunk's payload, with its text (stripped later for the other collections) and, on a server, its
    record fields."""
    payload: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "chunk_no": chunk.chunk_no,
        "source": target.dataset,
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
    }
    if target.text_collection is not None:
        payload["text"] = chunk.text
    if target.payload_record:
        payload["doc_hash"] = doc_hash
        payload["chunk_count"] = chunk_count
    return payload


def record_rows(
    need: dict[str, int], new: Counter[str], hashes: dict[str, str], sync: str
) -> list[RecordRow]:
    """What a collection's record holds for the documents of a batch once it is written.

    Args:
        need: The documents written there → their old chunk counts.
        new: Chunks per document in the batch.
        hashes: Content hash per document.
        sync: The run's sync mode.

    Returns:
        `(doc_id, hash, chunks)` rows; with `--sync none` (upsert only) a shortened document keeps
        its old chunks, so its content is unknown (hash None) and its count the old one.
    """
    if sync == "none":
        return [(d, hashes[d] if new[d] >= old else None, max(old, new[d])) for d, old in need.items()]
    return [(d, hashes[d], new[d]) for d in need]


def write_encoded(
    store: VectorStore,
    target: WriteTarget,
    batch: EncodedBatch,
    old: dict[str, dict[str, int]],
    hashes: dict[str, str],
) -> Counter[str]:
    """Write one encoded batch into every collection of `target` as its plan says, and flush each.

    Per collection: upsert the chunks of the documents the plan writes there, delete their chunks
    beyond the new count (not with `--sync none`), flush. Idempotent: point ids are deterministic,
    so a retried write leaves the same points.

    Args:
        store: The open store.
        target: The collections and payload form.
        batch: The chunks and their full-dimension vectors.
        old: Per collection: each document to write there → its old chunk count (0 if new there).
        hashes: Content hash per document of the batch.

    Returns:
        Chunks per document of the batch (what the records are committed with).

    Raises:
        StoreError: a write still fails after the store's retries.
    """
    new = Counter(c.doc_id for c in batch.chunks)
    ids = [point_id(target.dataset, c.doc_id, c.chunk_no) for c in batch.chunks]
    payloads = [chunk_payload(c, target, hashes.get(c.doc_id, ""), new[c.doc_id]) for c in batch.chunks]
    bare = [{k: v for k, v in p.items() if k != "text"} for p in payloads]
    sliced = slice_vectors(batch.vectors, {dim for _, dim in target.collections})
    for name, dim in target.collections:
        need = old.get(name, {})
        if not need:
            continue
        set_activity(f"collection {name!r}")
        texts = payloads if name == target.text_collection else bare
        vectors = sliced[dim]
        if all(d in need for d in new):
            if ids:
                store.upsert(name, ids, vectors, texts)
        else:
            rows = [i for i, c in enumerate(batch.chunks) if c.doc_id in need]
            if rows:
                store.upsert(name, [ids[i] for i in rows], vectors[rows], [texts[i] for i in rows])
        if target.sync != "none":
            surplus = [point_id(target.dataset, d, k) for d, n in need.items() for k in range(new[d], n)]
            if surplus:
                store.delete_points(name, surplus)
        store.flush(name)
    return new
