"""EdgeStore builds the engine's points of a batch once and reuses them for the next collection (issue 14)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from ingest.config import CollectionSpec
from ingest.stores.edge import EdgeStore


def _batch(n: int, dim: int, seed: int) -> tuple[list[str], np.ndarray, list[dict[str, object]]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [str(uuid.UUID(int=seed * 1_000_000 + i)) for i in range(n)]
    payloads: list[dict[str, object]] = [{"doc_id": f"d{seed}-{i}", "tags": [i]} for i in range(n)]
    return ids, vectors, payloads


def _stored(store: EdgeStore, name: str, ids: list[str]) -> tuple[np.ndarray, list[dict[str, object]]]:
    points = store.retrieve(name, ids)
    return np.stack([np.asarray(p.vector) for p in points]), [p.payload for p in points]


def test_one_batch_into_every_quantization_stores_the_same_points(tmp_path: Path) -> None:
    ids, vectors, payloads = _batch(300, 16, seed=1)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    with EdgeStore(tmp_path, upsert_chunk=128) as store:
        for q in ("none", "binary", "scalar"):
            store.ensure_collection(q, CollectionSpec(16, q))
            store.upsert(q, ids, vectors, payloads)
        built = store._last_batch
        assert built is not None and len(built[3]) == 300  # built once, for the first collection
        for q in ("none", "binary", "scalar"):
            got, got_payloads = _stored(store, q, ids)
            assert np.allclose(got, unit, atol=1e-6)
            assert got_payloads == payloads
            assert store.count(q) == 300


def test_buffers_refilled_in_place_are_a_new_batch(tmp_path: Path) -> None:
    ids, vectors, payloads = _batch(50, 8, seed=2)
    with EdgeStore(tmp_path) as store:
        for name in ("a", "b"):
            store.ensure_collection(name, CollectionSpec(8))
        store.upsert("a", ids, vectors, payloads)
        # The same objects, other contents: vectors, one id, a nested payload value changed in place.
        vectors *= -1.0
        ids[0] = str(uuid.UUID(int=999))
        payloads[1]["tags"].append(7)  # type: ignore[attr-defined]
        store.upsert("b", ids, vectors, payloads)
        got, got_payloads = _stored(store, "b", ids)
        assert np.allclose(got, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), atol=1e-6)
        assert got_payloads[1]["tags"] == [1, 7]
        assert store.retrieve("a", [ids[0]]) == [] and store.count("a") == 50
