"""The vector store interface every backend implements (embedded qdrant-edge, Qdrant server).

`VectorStore` is the public contract. `BaseStore` holds what the backends share: the collection check
(exists -> compare with the request -> mismatch error, recreate or create), the context manager, the
translation of `SearchParams` into either library's classes, and the checks of vectors and point batches.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

import numpy as np

from ingest.config import CollectionSpec
from ingest.errors import CollectionMismatchError, InputError

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchParams:
    """How one search is run.

    Attributes:
        exact: Full scan over the original float vectors (no index, no quantization): the reference.
        hnsw_ef: HNSW search-time candidate list size; None keeps the engine default.
        ignore_quantization: Search the original vectors even if the collection is quantized.
        rescore: For quantized collections: re-rank candidates with the original vectors.
            None keeps the engine default.
        oversampling: For quantized collections: fetch `limit × oversampling` candidates before
            rescoring. None keeps the engine default.
    """

    exact: bool = False
    hnsw_ef: int | None = None
    ignore_quantization: bool = False
    rescore: bool | None = None
    oversampling: float | None = None

    def describe(self) -> dict[str, Any]:
        """Return the params as a plain dict for reports."""
        return asdict(self)


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredPoint:
    """A point as read back from a store."""

    id: str
    vector: np.ndarray | None
    payload: dict[str, Any]


@runtime_checkable
class VectorStore(Protocol):
    """A place collections live. Distance is always cosine; vectors arrive L2-normalised, float32."""

    backend: str

    def ensure_collection(
        self, name: str, spec: CollectionSpec, *, recreate: bool = False, defer_index: bool = True
    ) -> bool:
        """Create the collection if missing; check it matches `spec` if present.

        Args:
            name: Collection name.
            spec: The requested configuration.
            recreate: Drop and create an existing collection instead of checking it.
            defer_index: Create it with HNSW building disabled (bulk load); `build_index` enables it.

        Returns:
            True if the collection was created, False if it already existed and matches.

        Raises:
            CollectionMismatchError: an existing collection differs in dim, distance or quantization
                (and `recreate` is False). Nothing is touched.
        """
        ...

    def upsert(self, name: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        """Upsert points (idempotent for the same ids)."""
        ...

    def flush(self, name: str) -> None:
        """Make every acknowledged write durable."""
        ...

    def build_index(self, name: str) -> None:
        """Enable and build the HNSW index (and quantized storage) after the bulk load; waits until done."""
        ...

    def count(self, name: str) -> int:
        """Exact number of points."""
        ...

    def search(self, name: str, queries: np.ndarray, limit: int, params: SearchParams) -> list[list[Hit]]:
        """Search a batch of query vectors (n × dim, normalised); one hit list per query, best first."""
        ...

    def retrieve(self, name: str, ids: list[str], *, with_vectors: bool = True) -> list[StoredPoint]:
        """Read points back by id (missing ids are left out)."""
        ...

    def scroll_ids(self, name: str) -> list[str]:
        """Every point id in the collection."""
        ...

    def delete_points(self, name: str, ids: list[str]) -> None:
        """Delete points by id (ids not present are ignored); durable once `flush` returns."""
        ...

    def record_path(self, name: str) -> Path | None:
        """Where the ingest keeps the collection's per-document record (`ingest.record`).

        Returns:
            A file path inside the collection's own storage (so it is lost with it), or None when the
            backend keeps no file: the record is then rebuilt from the points' payloads.
        """
        ...

    def collection_exists(self, name: str) -> bool:
        """Whether the collection exists."""
        ...

    def collection_spec(self, name: str) -> dict[str, Any]:
        """The stored configuration: dim, distance, quantization, index params, as the engine reports them."""
        ...

    def get_metadata(self, name: str) -> dict[str, Any]:
        """The ingest manifest stored with the collection (model id, dataset, counts, ...); {} if none."""
        ...

    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        """Replace the ingest manifest stored with the collection (written atomically)."""
        ...

    def delete_collection(self, name: str) -> None:
        """Drop the collection and its data."""
        ...

    def list_collections(self) -> list[str]:
        """Names of every collection."""
        ...

    def close(self) -> None:
        """Release every handle (flushes first)."""
        ...


# Keys of `collection_spec()` that describe the stored configuration and are compared with a request.
SPEC_KEYS: tuple[str, ...] = (
    "dim",
    "distance",
    "quantization",
    "binary_encoding",
    "scalar_quantile",
    "always_ram",
    "hnsw_m",
    "hnsw_ef_construct",
    "full_scan_threshold",
    "on_disk",
)
# Keys of SPEC_KEYS that only describe a quantized collection (None where they do not apply).
QUANTIZATION_DETAIL_KEYS: tuple[str, ...] = ("binary_encoding", "scalar_quantile", "always_ram")
# Qdrant cluster settings of a request: a server applies and reports them; the embedded engine cannot.
CLUSTER_KEYS: tuple[str, ...] = ("shard_number", "replication_factor", "write_consistency_factor")


def requested_config(spec: CollectionSpec) -> dict[str, Any]:
    """The engine-level configuration a spec asks for, in the flat shape of `collection_spec()`.

    Keys that do not apply (e.g. `binary_encoding` of a scalar collection) or that the spec leaves to
    the engine (`full_scan_threshold=None`, a cluster setting left unset) are None. The cluster settings
    (`CLUSTER_KEYS`) follow the keys of `SPEC_KEYS`.
    """
    binary = spec.quantization == "binary"
    scalar = spec.quantization == "scalar"
    return {
        "dim": spec.dim,
        "distance": "cosine",
        "quantization": spec.quantization,
        "binary_encoding": spec.binary_encoding if binary else None,
        "scalar_quantile": spec.scalar_quantile if scalar else None,
        "always_ram": spec.always_ram if (binary or scalar) else None,
        "hnsw_m": spec.hnsw_m,
        "hnsw_ef_construct": spec.hnsw_ef_construct,
        "full_scan_threshold": spec.full_scan_threshold,
        "on_disk": spec.on_disk,
        "shard_number": spec.shard_number,
        "replication_factor": spec.replication_factor,
        "write_consistency_factor": spec.write_consistency_factor,
    }


def config_differences(
    stored: dict[str, Any], spec: CollectionSpec, *, skip: tuple[str, ...] = ()
) -> list[tuple[str, Any, Any]]:
    """Compare a stored configuration (`collection_spec()` shape) with a request.

    Args:
        stored: What the engine reports.
        spec: What is requested.
        skip: Keys not to compare (e.g. ones a backend cannot report).

    Returns:
        `(key, stored value, requested value)` for every requested key that differs; [] if they match.
        When the quantization itself differs, its detail keys (`binary_encoding`, `scalar_quantile`,
        `always_ram`) are left out: they describe another kind of quantization, so they tell nothing.
    """
    requested = requested_config(spec)
    if stored.get("quantization") != requested["quantization"]:
        skip = (*skip, *QUANTIZATION_DETAIL_KEYS)
    diffs = []
    for key, wanted in requested.items():
        if wanted is None or key in skip:
            continue
        have = stored.get(key)
        if isinstance(wanted, float) and isinstance(have, int | float):
            if abs(float(have) - wanted) <= 1e-9:
                continue
        elif have == wanted:
            continue
        diffs.append((key, have, wanted))
    return diffs


def mismatch_message(name: str, where: str, diffs: list[tuple[str, Any, Any]]) -> str:
    """The CollectionMismatchError text: which collection, what differs, what to do."""
    detail = "; ".join(f"{key}: stored {have!r}, requested {wanted!r}" for key, have, wanted in diffs)
    return (
        f"collection {name!r} ({where}) already exists with a different configuration ({detail}). "
        "Nothing was changed. Pass --recreate to drop and rebuild it, or choose another collection name "
        "(name_template)."
    )


def as_float_rows(vectors: np.ndarray, dim: int | None, what: str) -> np.ndarray:
    """Check a `n × dim` batch of finite vectors and return it as contiguous float32.

    Args:
        vectors: The batch.
        dim: The collection's dimension; None accepts any width (a server checks it itself).
        what: The operation, for the error message (e.g. `upsert into 'name'`).

    Returns:
        The rows as a C-contiguous float32 array.

    Raises:
        InputError: wrong shape or non-finite values, naming `what`.
    """
    arr = np.asarray(vectors)
    if dim is None:
        dim = arr.shape[1] if arr.ndim == 2 else -1
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InputError(f"{what}: expected vectors of shape (n, {dim}), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InputError(f"{what}: vector #{bad} has NaN or infinite values")
    return arr


def check_batch(name: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
    """Check that an upsert batch has one id and one payload per vector.

    Raises:
        InputError: the lengths differ (names the collection and the three lengths).
    """
    if not (len(ids) == len(payloads) == len(vectors)):
        raise InputError(
            f"upsert into {name!r}: {len(ids)} ids, {len(vectors)} vectors and "
            f"{len(payloads)} payloads differ"
        )


def ordered_points(records: Iterable[Any], ids: list[str], *, with_vectors: bool) -> list[StoredPoint]:
    """Records as returned by either library, as StoredPoints in the order of `ids` (missing ids left out).

    Args:
        records: Objects with `id`, `vector` (a list, a `{"": list}` dict or None) and `payload`.
        ids: The ids asked for, in the order wanted.
        with_vectors: Whether vectors were asked for (otherwise `vector` is None).

    Returns:
        One StoredPoint per id found, vectors as float32 arrays.
    """
    by_id = {str(r.id): r for r in records}
    out = []
    for pid in ids:
        rec = by_id.get(str(pid))
        if rec is None:
            continue
        vec = None
        if with_vectors and rec.vector is not None:
            raw = rec.vector.get("") if isinstance(rec.vector, dict) else rec.vector
            vec = np.asarray(raw, dtype=np.float32)
        out.append(StoredPoint(str(rec.id), vec, dict(rec.payload or {})))
    return out


def engine_search_params(
    params: SearchParams, search_type: Callable[..., T], quantization_type: Callable[..., Any]
) -> T:
    """Translate SearchParams into a library's own classes (qdrant-edge's or qdrant-client's).

    Both libraries name the keywords alike (`SearchParams(hnsw_ef, exact, quantization)`,
    `QuantizationSearchParams(ignore, rescore, oversampling)`), so one translation serves both.

    Args:
        params: What to run.
        search_type: The library's `SearchParams` class.
        quantization_type: The library's `QuantizationSearchParams` class.

    Returns:
        The library's search parameters. `exact` and `ignore_quantization` ignore quantized vectors;
        otherwise `rescore`/`oversampling` are passed only when set (None keeps the engine default).
    """
    quantization = None
    if params.exact or params.ignore_quantization:
        quantization = quantization_type(ignore=True)
    elif params.rescore is not None or params.oversampling is not None:
        quantization = quantization_type(rescore=params.rescore, oversampling=params.oversampling)
    return search_type(hnsw_ef=params.hnsw_ef, exact=params.exact, quantization=quantization)


class BaseStore(VectorStore):
    """What every backend shares; a backend supplies the engine-specific hooks.

    Subclassing the `VectorStore` protocol makes mypy report any method of the contract a backend leaves out.

    Attributes:
        ignored_keys: Keys of `requested_config` the backend cannot apply: neither applied on create nor
            compared on reuse; a request that sets one gets a warning naming it.
    """

    ignored_keys: tuple[str, ...] = ()

    def ensure_collection(
        self, name: str, spec: CollectionSpec, *, recreate: bool = False, defer_index: bool = True
    ) -> bool:
        """The collection check of every backend; see `VectorStore.ensure_collection` for the contract.

        Under `_exclusive(name)`: if the collection exists, compare its stored configuration with `spec`
        and raise CollectionMismatchError (nothing touched), or return False when they match, or drop it
        (`recreate`); then create it. Each backend's `_create_collection` says what `defer_index` does there.

        Raises:
            CollectionMismatchError: it exists with another configuration and `recreate` is False.
            StoreError: the backend failed (read-only store, lock held elsewhere, server unreachable...).
        """
        self._warn_ignored(name, spec)
        with self._exclusive(name):
            # Checked inside `_exclusive`: where it locks, another process may have created it meanwhile.
            if self.collection_exists(name):
                if not recreate:
                    diffs = config_differences(self._stored_config(name), spec, skip=self.ignored_keys)
                    if diffs:
                        raise CollectionMismatchError(mismatch_message(name, self._location(name), diffs))
                    return False
                self._drop(name)
            self._create_collection(name, spec, defer_index=defer_index)
            return True

    def _warn_ignored(self, name: str, spec: CollectionSpec) -> None:
        """Warn that the settings of `spec` in `ignored_keys` do not apply to this backend."""
        wanted = requested_config(spec)
        ignored = [f"{key}={wanted[key]}" for key in self.ignored_keys if wanted.get(key) is not None]
        if ignored:
            log.warning(
                "collection %r: %s ignored: the %s backend keeps one local shard; these settings apply "
                "on a Qdrant server (--qdrant-url)",
                name,
                ", ".join(ignored),
                self.backend,
            )

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        """Hold off other writers of `name` while it is checked and created (default: nothing to hold)."""
        yield

    def _stored_config(self, name: str) -> dict[str, Any]:
        """The configuration of an existing collection, compared with a request (`collection_spec`)."""
        return self.collection_spec(name)

    def _drop(self, name: str) -> None:
        """Remove an existing collection before it is created anew (`recreate`)."""
        self.delete_collection(name)

    def record_path(self, name: str) -> Path | None:
        """No record file by default: the ingest rebuilds the record from the points' payloads."""
        return None

    @abstractmethod
    def _create_collection(self, name: str, spec: CollectionSpec, *, defer_index: bool) -> None:
        """Create the (absent) collection as `spec` asks; `defer_index` holds HNSW building back."""

    @abstractmethod
    def _location(self, name: str) -> str:
        """Where the collection lives, for messages (a directory, or `on <url>`)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
