"""Syncing a collection with a changed corpus: content hashes, sync modes, per-batch plans, the seen set.

Modes (`--sync`, modelled on LangChain's indexing API cleanup modes and LlamaIndex's docstore
strategies "upserts" / "upserts and delete"):

- `full` (default for a run over the whole source): a document whose content hash equals the
  record's is skipped without being encoded; a changed one is re-encoded, upserted, and its chunks
  beyond the new count deleted; once every batch of the run is stored, documents the record holds
  but the source no longer has are deleted.
- `incremental` (default with `--limit`): the same, without deleting absent documents, so a run over
  part of the source never fails and never deletes.
- `none`: upsert only, every document encoded (the behaviour before records). The record is still
  kept truthful: a shortened document's count stays at its old (larger) count with an unknown hash,
  so the next `full` or `incremental` run re-encodes it and deletes the surplus.

The content hash (`content_hash`) covers what changes a document's points: its title and text, and
the recipe (model id and revision, full dimension, chunking scheme and window, whether text is stored,
the dataset name).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from ingest.records import Document

SyncMode = Literal["full", "incremental", "none"]
SYNC_MODES: tuple[str, ...] = ("full", "incremental", "none")
SEEN_SUFFIX = ".seen.sqlite"


def resolve_sync(sync: str | None, limit: int | None) -> SyncMode:
    """The sync mode of a run: the one asked for, else `incremental` with a limit and `full` without.

    Args:
        sync: `--sync` (None: choose).
        limit: `--limit`.

    Returns:
        The mode.
    """
    if sync is None:
        return "incremental" if limit is not None else "full"
    if sync not in SYNC_MODES:
        raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
    return sync  # type: ignore[return-value]


def recipe_key(
    *,
    dataset: str,
    model: dict[str, Any],
    chunk_tokens: int,
    chunk_overlap: int,
    chunking: str,
    text_collection: str | None,
) -> bytes:
    """What, besides a document's own text, decides its points (hashed into every content hash).

    `text_collection` is the collection that stores the chunk text (None with `--no-text`): when it
    changes, every document is rewritten so the text follows it.
    """
    recipe = {
        "dataset": dataset,
        "model_id": model.get("model_id"),
        "revision": model.get("revision"),
        "dim": model.get("dim"),
        "chunk_tokens": chunk_tokens,
        "chunk_overlap": chunk_overlap,
        "chunking": chunking,
        "text_collection": text_collection,
    }
    return json.dumps(recipe, sort_keys=True).encode("utf-8")


def content_hash(doc: Document, recipe: bytes) -> str:
    """A document's content hash: SHA-256 of the recipe, its title and its text, cut to 128 bits (hex).

    SHA-256 because CPUs hash it in hardware (SHA-NI): measured 2x faster than blake2b over the
    171,332 documents of the scale corpus (0.40 s vs 0.77 s for 191 MB).
    """
    data = f"{doc.title}\x1f{doc.text}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(recipe + b"\x00" + data).hexdigest()[:32]


@dataclass
class BatchPlan:
    """What a batch needs, decided from the records before it is encoded.

    A plan may cover several consecutive source batches (`merge`): when most documents are
    unchanged, the few to encode are gathered into batches of about `batch_docs`, so the encoder
    and the store are called once per full batch rather than once per source batch.

    Attributes:
        batch_no: The first source batch it covers (its key).
        batches: Each source batch it covers → documents that batch holds in the source.
        docs: The documents to encode (changed or added in at least one collection), in source order.
        hashes: Content hash of each document of `docs`.
        source_of: The source batch of each document of `docs`.
        old: Per collection: each document to write there → its old chunk count (0 if new there).
        added: Documents no collection held.
        changed: Documents some collection held at another content.
        unchanged: Documents every collection holds at this content (skipped, not encoded).
    """

    batch_no: int
    batches: dict[int, int]
    docs: list[Document]
    hashes: dict[str, str]
    source_of: dict[str, int]
    old: dict[str, dict[str, int]]
    added: int = 0
    changed: int = 0
    unchanged: int = 0

    def merge(self, other: BatchPlan) -> BatchPlan:
        """This plan extended by the next one (its documents come after these)."""
        self.batches.update(other.batches)
        self.docs.extend(other.docs)
        self.hashes.update(other.hashes)
        self.source_of.update(other.source_of)
        for name, need in other.old.items():
            self.old.setdefault(name, {}).update(need)
        self.added += other.added
        self.changed += other.changed
        self.unchanged += other.unchanged
        return self


@dataclass
class SeenIds:
    """The ids of every document this run read from the source, in a scratch SQLite file.

    `full` sync deletes the documents of a record missing from it (`DocRecord.absent` attaches the
    file). The file is locked while its run lives; `open` removes the files of runs that died.
    """

    path: Path
    con: sqlite3.Connection
    lock: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, directory: Path, prefix: str) -> SeenIds:
        """Create `<directory>/<prefix>-<pid>-<n>.seen.sqlite`, deleting unlocked ones left by dead runs."""
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob(f"*{SEEN_SUFFIX}"):
            _remove_if_unlocked(stale)
        n = 0
        while (path := directory / f"{prefix}-{os.getpid()}-{n}{SEEN_SUFFIX}").exists():
            n += 1
        lock = path.open("ab")
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("CREATE TABLE IF NOT EXISTS ids (doc_id TEXT PRIMARY KEY) WITHOUT ROWID")
        return cls(path, con, lock)

    def add(self, doc_ids: list[str]) -> None:
        """Record ids as read."""
        # One statement: SQLite reads the ids from a JSON array (no per-id binding in Python).
        self.con.execute(
            "INSERT OR IGNORE INTO ids (doc_id) SELECT value FROM json_each(?)", (json.dumps(doc_ids),)
        )

    def close(self) -> None:
        """Close and delete the file."""
        with contextlib.suppress(sqlite3.Error):
            self.con.close()
        self.path.unlink(missing_ok=True)
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def _remove_if_unlocked(path: Path) -> None:
    try:
        with path.open("ab") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
    except OSError:
        return  # locked: a live run's
