"""The per-document record of one collection: which documents it holds, at what content, in how many chunks.

One SQLite file per collection (stdlib `sqlite3`, WAL), one row per document:
`doc_id → (content hash, chunk count)`. It is what lets a sync skip unchanged documents without
encoding them, delete the surplus chunks of a shortened document (point ids are uuid5 of dataset,
doc id and chunk number, so the ids of chunks `new..old-1` are known from the old count), and find the
documents absent from the source. The collection is complete when its point count equals the sum of
the chunk counts.

Where it lives:

- embedded store (qdrant-edge): inside the shard directory (`EdgeStore.record_path`), so a shard that
  is lost or dropped takes its record with it; it also carries the shard's generation id.
- Qdrant server: no file can sit beside a server's collection, and a record kept elsewhere could
  describe a collection that was since dropped, restored or written by another machine. So the
  truth is kept in the points themselves (payload fields `doc_hash` and `chunk_count` on every
  point) and this record is rebuilt from them at the start of each run (`rebuild_from_payloads`:
  one scroll of them with `doc_id` and `chunk_no`) into a scratch file deleted at the end. Nothing
  to relocate, and it cannot go stale; the cost is that scroll of four small payload fields per run.

Crash safety: before a batch's points are written, `begin` commits an intent (its documents and the
larger of their old and new chunk counts) in one small row; `commit` writes the new rows and drops
the intent in one transaction, after the store has flushed. An intent found at open (a run killed in
between) marks its documents unknown (hash NULL, the larger count), so the next run re-encodes them
and deletes every chunk beyond their new count. Writes are batched: one transaction per stored batch.
Memory stays bounded: lookups go by batch, deletions by pages.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = 1
# Bound parameters per statement (SQLite allows 32,766 since 3.32).
_PARAMS = 10_000

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY,
    hash TEXT,
    chunks INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS intents (id INTEGER PRIMARY KEY, docs TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """What the record says about one document.

    Attributes:
        hash: Its content hash (`ingest.sync.content_hash`); None when unknown (a write was cut
            short, or the collection holds a mix of versions): the document must be re-encoded.
        chunks: The chunks it has in the collection (an upper bound when `hash` is None).
    """

    hash: str | None
    chunks: int


class DocRecord:
    """The record of one collection (see the module docstring). Thread-safe: one connection, one lock."""

    def __init__(self, path: Path, *, generation: str) -> None:
        """Open (or create) the record at `path` for the shard of generation `generation`.

        A record written for another generation (another shard) keeps its documents but forgets
        their hashes: the documents are re-encoded and every old chunk beyond their new count deleted.
        An intent left by a killed run is applied the same way to its documents.

        Args:
            path: The SQLite file.
            generation: The generation id of the collection's shard (its manifest's `generation`).
        """
        self.path = Path(path)
        self.generation = generation
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.executescript(_TABLES)
            self._recover()
        except BaseException:
            self._con.close()
            raise

    def _recover(self) -> None:
        con = self._con
        with self._transaction():
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("generation") not in (None, self.generation):
                con.execute("UPDATE docs SET hash = NULL")
            for intent_id, body in con.execute("SELECT id, docs FROM intents").fetchall():
                _mark_unknown(con, json.loads(body))
                con.execute("DELETE FROM intents WHERE id = ?", (intent_id,))
            con.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("generation", self.generation), ("schema", str(SCHEMA))],
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._con)

    @classmethod
    def rebuild_from_payloads(
        cls, path: Path, pages: Iterable[list[dict[str, object]]], *, generation: str
    ) -> DocRecord:
        """A fresh record at `path` built from the payloads of every point of a collection.

        A document is known (its hash kept) only when all its points carry the same `doc_hash` and
        `chunk_count`, and they are exactly chunks `0..chunk_count-1`; otherwise (a write cut short,
        points from before records existed) its hash is unknown and its count the highest chunk
        number + 1, so the run re-encodes it and deletes what lies beyond its new count.

        Args:
            path: Where to write it (an existing file there is replaced).
            pages: Pages of payloads holding `doc_id`, `chunk_no`, `doc_hash`, `chunk_count`.
            generation: The collection's generation id.

        Returns:
            The open record.
        """
        path = Path(path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        record = cls(path, generation=generation)
        con = record._con
        con.execute("CREATE TEMP TABLE raw (doc_id TEXT, chunk_no INTEGER, hash TEXT, count INTEGER)")
        with record._lock, record._transaction():
            for page in pages:
                con.executemany(
                    "INSERT INTO raw VALUES (?, ?, ?, ?)",
                    [
                        (str(p.get("doc_id")), p.get("chunk_no"), p.get("doc_hash"), p.get("chunk_count"))
                        for p in page
                    ],
                )
            con.execute(
                """
                INSERT INTO docs (doc_id, hash, chunks)
                SELECT doc_id,
                       CASE WHEN COUNT(hash) = COUNT(*) AND COUNT(DISTINCT hash) = 1
                                 AND COUNT(count) = COUNT(*) AND MIN(count) = MAX(count)
                                 AND MAX(count) = COUNT(*) AND MAX(chunk_no) + 1 = COUNT(*)
                                 AND COUNT(DISTINCT chunk_no) = COUNT(*)
                            THEN MIN(hash) END,
                       MAX(MAX(chunk_no) + 1, COALESCE(MAX(count), 0))
                FROM raw GROUP BY doc_id
                """
            )
            con.execute("DROP TABLE raw")
        return record

    # -- reading -------------------------------------------------------------------------------------

    def lookup(self, doc_ids: list[str]) -> dict[str, Entry]:
        """The entries of those documents the record holds (absent ones are left out)."""
        out: dict[str, Entry] = {}
        with self._lock:
            for part in _parts(doc_ids):
                marks = ",".join("?" * len(part))
                rows = self._con.execute(
                    f"SELECT doc_id, hash, chunks FROM docs WHERE doc_id IN ({marks})", part
                ).fetchall()
                out.update((doc_id, Entry(h, chunks)) for doc_id, h, chunks in rows)
        return out

    def changed(self, hashes: dict[str, str]) -> dict[str, Entry | None]:
        """The documents of `hashes` the record does not hold at that content hash.

        One query per batch: SQLite joins the batch (passed as one JSON object) with the record and
        returns only the documents that differ, so a sync where nearly everything is unchanged builds
        nothing per unchanged document.

        Args:
            hashes: Doc id → its content hash now.

        Returns:
            Doc id → its entry (held at another or an unknown hash) or None (not held); documents held
            at the same hash are left out.
        """
        with self._lock:
            rows = self._con.execute(
                "SELECT j.key, d.doc_id IS NOT NULL, d.hash, d.chunks FROM json_each(?) AS j "
                "LEFT JOIN docs AS d ON d.doc_id = j.key WHERE d.hash IS NOT j.value",
                (json.dumps(hashes),),
            ).fetchall()
        return {str(doc_id): Entry(h, int(chunks)) if held else None for doc_id, held, h, chunks in rows}

    def total_chunks(self) -> int:
        """The sum of every document's chunk count: the points the collection should hold."""
        with self._lock:
            return int(self._con.execute("SELECT COALESCE(SUM(chunks), 0) FROM docs").fetchone()[0])

    def doc_count(self) -> int:
        """Documents in the record."""
        with self._lock:
            return int(self._con.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def unknown_count(self) -> int:
        """Documents whose content is unknown (hash NULL): an interrupted write, or an old collection."""
        with self._lock:
            return int(self._con.execute("SELECT COUNT(*) FROM docs WHERE hash IS NULL").fetchone()[0])

    def absent(self, seen: Path, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` documents of the record missing from the set of ids in `seen`.

        Args:
            seen: A SQLite file with table `ids(doc_id)` (`ingest.sync.SeenIds`).
            limit: Page size.

        Returns:
            `(doc id, chunk count)` pairs; [] once none is left (call again after `forget`).
        """
        with self._lock:
            self._con.execute("ATTACH DATABASE ? AS seen", (str(seen),))
            try:
                rows = self._con.execute(
                    "SELECT doc_id, chunks FROM docs WHERE doc_id NOT IN (SELECT doc_id FROM seen.ids) "
                    "LIMIT ?",
                    (limit,),
                ).fetchall()
            finally:
                self._con.execute("DETACH DATABASE seen")
        return [(str(d), int(c)) for d, c in rows]

    # -- writing -------------------------------------------------------------------------------------

    def begin(self, docs: list[tuple[str, int]]) -> int:
        """Commit an intent: these documents are about to be written with up to these chunk counts.

        Args:
            docs: `(doc id, max(old count, new count))` for every document the batch writes.

        Returns:
            The intent's id, for `commit`.
        """
        with self._lock, self._transaction():
            cur = self._con.execute("INSERT INTO intents (docs) VALUES (?)", (json.dumps(docs),))
            return int(cur.lastrowid or 0)

    def commit(self, intent: int | None, rows: list[tuple[str, str | None, int]]) -> None:
        """Write `(doc id, hash, chunk count)` rows and drop the intent, in one transaction.

        Call only once the store has flushed the batch's points (and deletions).
        """
        with self._lock, self._transaction():
            self._con.executemany("INSERT OR REPLACE INTO docs (doc_id, hash, chunks) VALUES (?, ?, ?)", rows)
            if intent is not None:
                self._con.execute("DELETE FROM intents WHERE id = ?", (intent,))

    def forget(self, doc_ids: list[str]) -> None:
        """Drop documents from the record (after their points were deleted and flushed)."""
        with self._lock, self._transaction():
            for part in _parts(doc_ids):
                marks = ",".join("?" * len(part))
                self._con.execute(f"DELETE FROM docs WHERE doc_id IN ({marks})", part)

    def close(self) -> None:
        """Checkpoint the WAL into the file and close."""
        with self._lock:
            try:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._con.close()


class _Transaction:
    """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` on an exception."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __enter__(self) -> None:
        self.con.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.con.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _mark_unknown(con: sqlite3.Connection, docs: list[list[object]]) -> None:
    con.executemany(
        "INSERT INTO docs (doc_id, hash, chunks) VALUES (?, NULL, ?) "
        "ON CONFLICT (doc_id) DO UPDATE SET hash = NULL, chunks = MAX(chunks, excluded.chunks)",
        [(str(d), int(str(c))) for d, c in docs],
    )


def _parts(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _PARAMS):
        yield items[start : start + _PARAMS]
