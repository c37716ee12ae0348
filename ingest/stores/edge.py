"""Embedded collections on qdrant-edge: one in-process Edge shard per collection, on local disk.

Layout under the root (normally `<data_dir>/qdrant`):

    <name>/shard/          the engine's own directory (edge_config.json, segments/, wal/), and the
                           ingest's per-document record (`ingest-record.sqlite`, see `ingest.record`):
                           kept inside the shard so that a lost or dropped shard loses its record too
    <name>/manifest.json   the ingest manifest (`get_metadata` / `set_metadata`), replaced atomically
    <name>/ingest.lock     the flock that keeps one writer per collection

How qdrant-edge 0.9.0 indexes (measured; the tests in tests/stores/test_edge.py pin each point):

- Edge never optimizes by itself. Upserts land in an appendable segment that is searched by full scan
  (binary/scalar quantized copies exist there too, so quantization already applies before indexing).
- HNSW graphs are built only by `EdgeShard.optimize()`, for segments larger than the optimizer's
  `indexing_threshold` (KB; 0 disables indexing). A deferred collection is created with 0; `build_index`
  reopens the shard with 1 KB and runs `optimize()`, which turns every non-trivial segment into HNSW.
- An HNSW segment still answers an unfiltered search by full scan when it holds fewer than
  `full_scan_threshold * 1024 / (4 * dim)` vectors: the threshold counts KB of float32 vectors whatever the
  quantization. The default 10,000 KB means 2,500 vectors at 1024-d and 40,000 at 64-d, so small test and eval
  collections need a lower `CollectionSpec.full_scan_threshold` to measure HNSW at all.
- `exact=True` scans the original float vectors (quantization is not used).
- `optimize()` builds with the engine's own threads (two `hnsw-build-*` threads on a 2-core machine with
  `max_indexing_threads=0`) and holds the GIL until it returns. A quantized collection's graph is built
  on its quantized vectors: 3-6x less CPU than the same dim in float (issue 14, BENCHMARKS.md).
"""

from __future__ import annotations

import array
import copy
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import qdrant_edge as qe

from ingest.config import CollectionSpec
from ingest.errors import InputError, StoreError
from ingest.stores import base
from ingest.stores.base import BaseStore, Hit, SearchParams, StoredPoint
from ingest.stores.lock import LOCK_FILE_NAME, CollectionLock, read_only_reason, writable_copy

SHARD_DIR_NAME = "shard"
MANIFEST_FILE_NAME = "manifest.json"
RECORD_FILE_NAME = "ingest-record.sqlite"
ENGINE_CONFIG_FILE = "edge_config.json"
# Qdrant's default HNSW full_scan_threshold (KB), used when a spec leaves it unset.
DEFAULT_FULL_SCAN_THRESHOLD_KB = 10_000
# Indexing threshold (KB) set by build_index: every segment above 1 KB of vectors gets HNSW.
BUILD_INDEXING_THRESHOLD_KB = 1
SCROLL_PAGE = 10_000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_ENCODINGS = {
    "one_bit": qe.BinaryQuantizationEncoding.OneBit,
    "two_bits": qe.BinaryQuantizationEncoding.TwoBits,
    "one_and_half_bits": qe.BinaryQuantizationEncoding.OneAndHalfBits,
}


def check_collection_name(name: str) -> str:
    """Return `name` if it is usable as a directory name.

    Raises:
        InputError: the name is empty, too long, or has characters other than letters, digits, `.`, `_`, `-`.
    """
    if not _NAME_RE.match(name):
        raise InputError(
            f"collection name {name!r} is not usable: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _row(vec: np.ndarray) -> list[float]:
    # The engine reads any float sequence; array('f') converts ~3x faster than a list or a numpy row.
    return cast("list[float]", array.array("f", vec.tobytes()))


def _copy_payload(payload: dict[str, Any]) -> dict[str, Any]:
    # Nested values are copied too, so that a caller changing them in place is seen as a new batch.
    return {k: copy.deepcopy(v) if isinstance(v, (dict, list)) else v for k, v in payload.items()}


@dataclass
class _Open:
    shard: Any
    lock: CollectionLock
    dim: int


class EdgeStore(BaseStore):
    """Collections as qdrant-edge shards under one root directory (see the module docstring for the layout).

    Distance is cosine on the default (unnamed) vector; point ids are UUID strings. Each collection is
    opened on first use and kept open until `close`. Reading takes a shared lock on the collection,
    writing an exclusive one, so a second writer (or a reader beside a writer) fails at once with StoreError;
    `ensure_collection` also fails that way on a read-only store or a collection locked elsewhere.
    """

    backend = "edge"
    # One local shard per collection: Qdrant's cluster settings cannot apply (a warning says so).
    ignored_keys = base.CLUSTER_KEYS

    def __init__(
        self, root: Path, *, read_only: bool = False, wal: bool = False, upsert_chunk: int = 1024
    ) -> None:
        """Open a store rooted at `root` (created on first write).

        Args:
            root: Directory holding one sub-directory per collection.
            read_only: Refuse every write; only take shared locks.
            wal: Create new shards with a write-ahead log. Off by default: the ingest flushes after every
                batch before it checkpoints, so a WAL only doubles the write cost (without one, writes are
                durable once `flush` returns; a crash loses at most the unflushed batch, which is re-run).
            upsert_chunk: Points handed to the engine per update call.
        """
        self.root = Path(root)
        self.read_only = read_only
        self.wal = wal
        self.upsert_chunk = max(1, upsert_chunk)
        self._open: dict[str, _Open] = {}
        # Exclusive locks held by an `ensure_collection` in progress (its collection may have no handle yet).
        self._ensuring: dict[str, CollectionLock] = {}
        self._guard = threading.RLock()
        # The engine points of the last upserted batch, reused while the same batch comes back (`_points`).
        self._last_batch: tuple[list[str], np.ndarray, list[dict[str, Any]], list[Any]] | None = None
        # Private copies of shards on a read-only file system, loaded instead of them (see `_load`).
        self._copies: dict[str, Path] = {}

    # -- paths ---------------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / check_collection_name(name)

    def _shard_dir(self, name: str) -> Path:
        return self._dir(name) / SHARD_DIR_NAME

    def _manifest_path(self, name: str) -> Path:
        return self._dir(name) / MANIFEST_FILE_NAME

    def record_path(self, name: str) -> Path:
        """The ingest's per-document record of the collection: a file inside its shard directory."""
        return self._shard_dir(name) / RECORD_FILE_NAME

    def _engine_config(self, name: str) -> dict[str, Any]:
        path = self._shard_dir(name) / ENGINE_CONFIG_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(self._missing(name)) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"collection {name!r}: cannot read the engine config {path}: {exc}. "
                "The shard may be damaged: pass --recreate to rebuild it"
            ) from exc
        return data

    def _missing(self, name: str) -> str:
        return (
            f"collection {name!r} does not exist under {self.root}: ingest it first, "
            "or check --data-dir and the collection name"
        )

    # -- opening -------------------------------------------------------------------------------------

    def _lock_for(self, name: str) -> CollectionLock:
        return CollectionLock(self._dir(name) / LOCK_FILE_NAME, name)

    def _writable(self, name: str) -> None:
        if self.read_only:
            raise StoreError(
                f"collection {name!r}: this store was opened read-only; open it for writing to change it"
            )

    def _handle(self, name: str, *, write: bool) -> _Open:
        """The open shard of an existing collection, locked for reading or writing."""
        with self._guard:
            if write:
                self._writable(name)
            handle = self._open.get(name)
            if handle is not None:
                handle.lock.acquire(exclusive=write)
                return handle
            if not self.collection_exists(name):
                raise StoreError(self._missing(name))
            lock = self._lock_for(name)
            lock.acquire(exclusive=write)
            try:
                handle = self._attach(name, lock)
            except BaseException:
                lock.release()
                raise
            return handle

    def _attach(self, name: str, lock: CollectionLock, config: Any = None) -> _Open:
        """Load the shard (the caller holds `lock`) and register it as open."""
        dim = int(self._engine_config(name)["vectors"][""]["size"])
        handle = _Open(self._load(name, config), lock, dim)
        self._open[name] = handle
        return handle

    def _load(self, name: str, config: Any = None) -> Any:
        """Load the shard of `name`. A read-only store whose shard cannot be written (a read-only mount,
        no write permission) loads a private copy in the temp dir instead: qdrant-edge 0.9 maps its
        payload storage read-write and cannot load a shard on a read-only file system (its API has no
        read-only load). The copy is removed when the collection is closed.

        Raises:
            StoreError: the engine cannot load it (the advice depends on the cause), or the copy failed.
        """
        path = self._shard_dir(name)
        reason = read_only_reason(path) if self.read_only else None
        if reason is not None:
            import logging

            path = writable_copy(path)
            self._copies[name] = path
            # A warning, not a note: the copy takes disk space in the temp dir (TMPDIR) while it is read.
            logging.getLogger("ingest.stores").warning(
                "collection %r: %s is read-only (%s) and qdrant-edge cannot load a shard read-only: "
                "reading a private copy in %s (removed when done)",
                name,
                self._shard_dir(name),
                reason,
                path.parent,
            )
        try:
            return qe.EdgeShard.load(str(path), config)
        except Exception as exc:
            self._drop_copy(name)
            cause = " ".join(str(exc).split())
            raise StoreError(
                f"collection {name!r}: qdrant-edge cannot open the shard at {path}: {cause}. "
                f"{self._load_advice(exc)}"
            ) from exc

    def _load_advice(self, exc: BaseException) -> str:
        """What to do when the engine cannot load a shard, by cause."""
        from ingest.supervise import is_disk_full

        text = str(exc)
        if is_disk_full(exc):
            return f"The disk under {self.root} is full: free space and rerun the same command"
        if "os error 30" in text or "Read-only file system" in text:
            return (
                f"{self.root} is on a read-only file system: an ingest needs a writable --data-dir "
                "(an eval reads a read-only one)"
            )
        if "os error 13" in text or "Permission denied" in text:
            return f"No permission to write under {self.root}: fix them, or choose another --data-dir"
        return "If another process has it open, wait for it; if the shard is damaged, pass --recreate"

    def _drop_copy(self, name: str) -> None:
        copy = self._copies.pop(name, None)
        if copy is not None:
            shutil.rmtree(copy.parent, ignore_errors=True)

    def _close_handle(self, name: str, *, release: bool) -> None:
        handle = self._open.pop(name, None)
        if handle is None:
            return
        try:
            handle.shard.flush()
            handle.shard.close()
        finally:
            self._drop_copy(name)
            if release:
                handle.lock.release()

    # -- collections ---------------------------------------------------------------------------------

    def collection_exists(self, name: str) -> bool:
        """Whether the collection exists (its shard has an engine config)."""
        return (self._shard_dir(name) / ENGINE_CONFIG_FILE).is_file()

    def list_collections(self) -> list[str]:
        """Names of every collection under the root, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if _NAME_RE.match(p.name) and (p / SHARD_DIR_NAME / ENGINE_CONFIG_FILE).is_file()
        )

    def _location(self, name: str) -> str:
        return str(self._dir(name))

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        """Lock the collection for writing while `ensure_collection` runs; a lock taken here is kept on
        success (the collection stays open for writing) and released, with the shard, on failure."""
        with self._guard:
            self._writable(name)
            handle = self._open.get(name)
            lock = handle.lock if handle is not None else self._lock_for(name)
            newly_locked = not lock.held
            lock.acquire(exclusive=True)
            self._ensuring[name] = lock
            try:
                yield
            except BaseException:
                if newly_locked:
                    self._close_handle(name, release=False)
                    lock.release()
                raise
            finally:
                del self._ensuring[name]

    def _stored_config(self, name: str) -> dict[str, Any]:
        # Open the shard under the lock already held: a second lock in this process would conflict with it.
        if name not in self._open:
            self._attach(name, self._ensuring[name])
        return self.collection_spec(name)

    def _drop(self, name: str) -> None:
        self._close_handle(name, release=False)
        self._remove_data(name)

    def _create_collection(self, name: str, spec: CollectionSpec, *, defer_index: bool) -> None:
        """Create the shard and keep it open under the lock `ensure_collection` holds.

        `defer_index` only decides the indexing threshold recorded in the engine config: Edge never
        indexes on its own, so the HNSW index is built by `build_index` either way.

        Raises:
            StoreError: the engine cannot create the shard.
        """
        shard_dir = self._shard_dir(name)
        if shard_dir.exists():  # leftovers of a failed create (no engine config): not a collection
            shutil.rmtree(shard_dir)
        # A manifest left behind by a lost shard (or a drop killed half-way) describes another shard
        # (its generation): a new shard starts without one.
        self._manifest_path(name).unlink(missing_ok=True)
        try:
            shard = qe.EdgeShard.create(str(shard_dir), self._config(spec, defer_index=defer_index))
        except Exception as exc:
            raise StoreError(f"collection {name!r}: qdrant-edge cannot create {shard_dir}: {exc}") from exc
        self._open[name] = _Open(shard, self._ensuring[name], spec.dim)

    def _config(self, spec: CollectionSpec, *, defer_index: bool) -> Any:
        quantization: Any = None
        if spec.quantization == "binary":
            quantization = qe.BinaryQuantizationConfig(
                always_ram=spec.always_ram, encoding=_ENCODINGS[spec.binary_encoding]
            )
        elif spec.quantization == "scalar":
            quantization = qe.ScalarQuantizationConfig(
                type=qe.ScalarType.Int8, quantile=spec.scalar_quantile, always_ram=spec.always_ram
            )
        full_scan = spec.full_scan_threshold
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=spec.dim, distance=qe.Distance.Cosine, on_disk=spec.on_disk),
            hnsw_config=qe.HnswIndexConfig(
                m=spec.hnsw_m,
                ef_construct=spec.hnsw_ef_construct,
                full_scan_threshold=DEFAULT_FULL_SCAN_THRESHOLD_KB if full_scan is None else full_scan,
            ),
            quantization_config=quantization,
            optimizers=qe.EdgeOptimizersConfig(
                indexing_threshold=0 if defer_index else BUILD_INDEXING_THRESHOLD_KB
            ),
            wal_enabled=self.wal,
        )

    def _remove_data(self, name: str) -> None:
        shard_dir = self._shard_dir(name)
        if shard_dir.exists():
            shutil.rmtree(shard_dir)
        self._manifest_path(name).unlink(missing_ok=True)

    def delete_collection(self, name: str) -> None:
        """Drop the collection's shard and manifest (the empty lock file stays, so locking stays sound).

        Raises:
            StoreError: read-only store, or the collection is in use by another process.
        """
        with self._guard:
            self._writable(name)
            if not self._dir(name).exists():
                return
            lock = self._open[name].lock if name in self._open else self._lock_for(name)
            lock.acquire(exclusive=True)
            try:
                self._close_handle(name, release=False)
                self._remove_data(name)
            finally:
                lock.release()

    def collection_spec(self, name: str) -> dict[str, Any]:
        """The stored configuration as the engine persisted it, plus live counts.

        Returns:
            A flat dict: `dim`, `distance`, `quantization` (`none`/`binary`/`scalar`), `binary_encoding`,
            `scalar_quantile`, `always_ram`, `hnsw_m`, `hnsw_ef_construct`, `full_scan_threshold`, `on_disk`
            (the keys of `base.SPEC_KEYS`), `indexing_threshold_kb` (0 = HNSW building disabled), `wal`,
            `backend`, and, read from the open shard, `points_count`, `indexed_vectors_count`,
            `segments_count`.
        """
        raw = self._engine_config(name)
        vec = (raw.get("vectors") or {}).get("") or {}
        hnsw = raw.get("hnsw_config") or {}
        quant = raw.get("quantization_config") or {}
        out: dict[str, Any] = {
            "backend": self.backend,
            "dim": vec.get("size"),
            "distance": str(vec.get("distance", "")).lower(),
            "quantization": "none",
            "binary_encoding": None,
            "scalar_quantile": None,
            "always_ram": None,
            "hnsw_m": hnsw.get("m"),
            "hnsw_ef_construct": hnsw.get("ef_construct"),
            "full_scan_threshold": hnsw.get("full_scan_threshold"),
            "on_disk": bool(vec.get("on_disk", False)),
            "indexing_threshold_kb": (raw.get("optimizers") or {}).get("indexing_threshold"),
            "wal": raw.get("wal_enabled", True) is not False,
        }
        if "binary" in quant:
            out.update(
                quantization="binary",
                binary_encoding=quant["binary"].get("encoding", "one_bit"),
                always_ram=quant["binary"].get("always_ram"),
            )
        elif "scalar" in quant:
            out.update(
                quantization="scalar",
                scalar_quantile=quant["scalar"].get("quantile"),
                always_ram=quant["scalar"].get("always_ram"),
            )
        elif quant:
            out["quantization"] = next(iter(quant))
        info = self._handle(name, write=False).shard.info()
        out.update(
            points_count=info.points_count,
            indexed_vectors_count=info.indexed_vectors_count,
            segments_count=info.segments_count,
        )
        return out

    # -- points --------------------------------------------------------------------------------------

    def upsert(self, name: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        """Upsert points; the same ids overwrite (idempotent).

        Args:
            name: Collection name.
            ids: UUID strings, one per vector.
            vectors: `n × dim` vectors (normalised by the engine for cosine).
            payloads: One JSON-serialisable dict per vector.

        Raises:
            InputError: lengths differ, wrong dim, or non-finite values.
            StoreError: missing collection, lock held elsewhere, read-only store, or engine failure.
        """
        base.check_batch(name, ids, vectors, payloads)
        handle = self._handle(name, write=True)
        if not ids:
            return
        rows = base.as_float_rows(vectors, handle.dim, f"upsert into {name!r}")
        batch = self._points(ids, rows, payloads)
        step = self.upsert_chunk
        for start in range(0, len(ids), step):
            points = batch[start : start + step]
            try:
                handle.shard.update(qe.UpdateOperation.upsert_points(points))
            except Exception as exc:
                raise StoreError(
                    f"collection {name!r}: upsert of points {start}..{start + len(points) - 1} failed: {exc}"
                ) from exc

    def _points(self, ids: list[str], rows: np.ndarray, payloads: list[dict[str, Any]]) -> list[Any]:
        """The engine's points for a batch: built once, then reused while an equal batch comes back.

        The pipeline upserts each batch into every quantization of a dim (none, binary, scalar) with the
        same ids, vectors and payloads; building the engine's points (vector and payload copied into
        the engine's types, under the GIL) is then done once per dim instead of once per collection.
        The reuse compares contents (ids, vectors, payloads), not object identity, so a caller that
        refills the same buffers gets fresh points.
        """
        last = self._last_batch
        if (
            last is not None
            and last[0] == ids
            and last[1].shape == rows.shape
            and np.array_equal(last[1], rows)
            and last[2] == payloads
        ):
            return last[3]
        points = [qe.Point(ids[i], _row(rows[i]), payloads[i]) for i in range(len(ids))]
        self._last_batch = (list(ids), rows.copy(), [_copy_payload(p) for p in payloads], points)
        return points

    def delete_points(self, name: str, ids: list[str]) -> None:
        """Delete points by id (absent ids are ignored), `upsert_chunk` ids per engine call.

        Raises:
            StoreError: missing collection, lock held elsewhere, read-only store, or engine failure.
        """
        handle = self._handle(name, write=True)
        for start in range(0, len(ids), self.upsert_chunk):
            part: list[int | uuid.UUID | str] = list(ids[start : start + self.upsert_chunk])
            try:
                handle.shard.update(qe.UpdateOperation.delete_points(part))
            except Exception as exc:
                raise StoreError(f"collection {name!r}: deleting {len(part)} points failed: {exc}") from exc

    def flush(self, name: str) -> None:
        """Write every acknowledged change of the collection to disk."""
        handle = self._handle(name, write=False)
        try:
            handle.shard.flush()
        except Exception as exc:
            raise StoreError(f"collection {name!r}: flush failed: {exc}") from exc

    def build_index(self, name: str) -> None:
        """Enable HNSW indexing and build it (with quantized storage) now; blocks until done.

        Reopens the shard with `indexing_threshold=1` KB (persisted), then runs the engine's optimizers.
        A shard that already has that threshold (built before: a sync) is optimized as it is open;
        reopening a large shard costs about as much as indexing the few points a sync wrote.
        Afterwards `collection_spec(name)["indexed_vectors_count"]` equals the point count.

        Raises:
            StoreError: read-only store, lock held elsewhere, or engine failure.
        """
        with self._guard:
            handle = self._handle(name, write=True)
            raw = self._engine_config(name)
            if (raw.get("optimizers") or {}).get("indexing_threshold") == BUILD_INDEXING_THRESHOLD_KB:
                self._optimize(name, handle.shard)
                return
            vec = raw["vectors"][""]
            config = qe.EdgeConfig(
                # Pass every vector parameter back: ones left out would be reset in the persisted config.
                vectors=qe.EdgeVectorParams(
                    size=int(vec["size"]), distance=qe.Distance.Cosine, on_disk=vec.get("on_disk")
                ),
                optimizers=qe.EdgeOptimizersConfig(indexing_threshold=BUILD_INDEXING_THRESHOLD_KB),
            )
            self._close_handle(name, release=False)
            try:
                shard = self._attach(name, handle.lock, config).shard
            except BaseException:
                handle.lock.release()
                raise
            self._optimize(name, shard)

    @staticmethod
    def _optimize(name: str, shard: Any) -> None:
        try:
            shard.optimize()
            shard.flush()
        except Exception as exc:
            raise StoreError(f"collection {name!r}: building the HNSW index failed: {exc}") from exc

    def count(self, name: str) -> int:
        """Exact number of points."""
        return int(self._handle(name, write=False).shard.count(qe.CountRequest(exact=True)))

    def search(self, name: str, queries: np.ndarray, limit: int, params: SearchParams) -> list[list[Hit]]:
        """Search a batch of query vectors in one engine call; one hit list per query, best first.

        `params.exact` scans the original vectors (quantization ignored); otherwise HNSW is used where
        built (and the segment is above `full_scan_threshold`), with `hnsw_ef`, and quantized collections
        honour `ignore_quantization`, `rescore` and `oversampling`.
        """
        handle = self._handle(name, write=False)
        rows = base.as_float_rows(queries, handle.dim, f"search in {name!r}")
        engine_params = base.engine_search_params(params, qe.SearchParams, qe.QuantizationSearchParams)
        requests = [
            qe.QueryRequest(
                limit=limit, query=qe.Query.Nearest(_row(row)), params=engine_params, with_payload=True
            )
            for row in rows
        ]
        if not requests:
            return []
        try:
            results = handle.shard.query_batch(qe.QueryBatchRequest(requests))
        except Exception as exc:
            raise StoreError(f"collection {name!r}: search failed: {exc}") from exc
        return [[Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in hits] for hits in results]

    def retrieve(self, name: str, ids: list[str], *, with_vectors: bool = True) -> list[StoredPoint]:
        """Read points back by id, in the order asked; missing ids are left out.

        Vectors come back as float32 arrays, normalised as stored.
        """
        handle = self._handle(name, write=False)
        if not ids:
            return []
        try:
            records = handle.shard.retrieve(list(ids), with_payload=True, with_vector=with_vectors)
        except Exception as exc:
            raise StoreError(f"collection {name!r}: retrieve failed: {exc}") from exc
        return base.ordered_points(records, ids, with_vectors=with_vectors)

    def scroll_ids(self, name: str) -> list[str]:
        """Every point id, in the engine's order."""
        handle = self._handle(name, write=False)
        out: list[str] = []
        offset: Any = None
        while True:
            records, offset = handle.shard.scroll(
                qe.ScrollRequest(offset=offset, limit=SCROLL_PAGE, with_payload=False, with_vector=False)
            )
            out.extend(str(r.id) for r in records)
            if offset is None:
                return out

    # -- metadata ------------------------------------------------------------------------------------

    def get_metadata(self, name: str) -> dict[str, Any]:
        """The ingest manifest of the collection; {} if none was written.

        Raises:
            StoreError: the manifest file exists but is not valid JSON (names the file).
        """
        path = self._manifest_path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"collection {name!r}: manifest {path} is unreadable: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        """Replace the manifest (temp file + fsync + rename, so readers see the old or the new one).

        Raises:
            StoreError: missing collection, read-only store, or lock held elsewhere.
        """
        self._handle(name, write=True)
        path = self._manifest_path(name)
        text = json.dumps(metadata, indent=2, sort_keys=True, default=str)
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- lifecycle -----------------------------------------------------------------------------------

    def hold(self, name: str) -> None:
        """Open a collection for writing now (its exclusive lock taken), not at its first write.

        Raises:
            StoreError: missing collection, read-only store, or the lock is held elsewhere.
        """
        self._handle(name, write=True)

    def release(self, name: str) -> None:
        """Flush and close one collection and release its lock, so another process may write it; the
        next use here opens it again.

        Raises:
            StoreError: the engine failed to flush or close the shard.
        """
        with self._guard:
            self._last_batch = None
            try:
                self._close_handle(name, release=True)
            except Exception as exc:
                raise StoreError(f"collection {name!r}: closing the shard failed: {exc}") from exc

    def close(self) -> None:
        """Flush and close every shard and release every lock."""
        with self._guard:
            self._last_batch = None
            errors = []
            for name in list(self._open):
                try:
                    self._close_handle(name, release=True)
                except Exception as exc:
                    errors.append(f"{name}: {exc}")
            if errors:
                raise StoreError(f"closing the edge store under {self.root} failed: {'; '.join(errors)}")
