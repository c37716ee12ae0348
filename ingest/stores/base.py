"""The vector store interface every backend implements (embedded qdrant-edge, Qdrant server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ingest.config import CollectionSpec


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
        return {
            "exact": self.exact,
            "hnsw_ef": self.hnsw_ef,
            "ignore_quantization": self.ignore_quantization,
            "rescore": self.rescore,
            "oversampling": self.oversampling,
        }


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


def requested_config(spec: CollectionSpec) -> dict[str, Any]:
    """The engine-level configuration a spec asks for, in the flat shape of `collection_spec()`.

    Keys that do not apply (e.g. `binary_encoding` of a scalar collection) or that the spec leaves to
    the engine (`full_scan_threshold=None`) are None.
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
    """
    diffs = []
    for key, wanted in requested_config(spec).items():
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
