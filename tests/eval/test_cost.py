"""eval.cost: serving RAM and rescoring reads measured from real qdrant-edge shards (1-bit and 2-bit
binary, float), and the file → part mapping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from eval.cost import part_of, serving_cost, shard_footprint, store_footprint
from eval.search import effective_oversampling, modes_for, rescores
from ingest.config import CollectionSpec
from ingest.records import point_id
from ingest.stores.base import SearchParams
from ingest.stores.edge import EdgeStore

N = 500
DIM = 128
SPECS = {
    "c-d128-none": CollectionSpec(dim=DIM, full_scan_threshold=1),
    "c-d128-binary": CollectionSpec(dim=DIM, quantization="binary", full_scan_threshold=1),
    "c-d128-binary2": CollectionSpec(
        dim=DIM, quantization="binary", binary_encoding="two_bits", full_scan_threshold=1
    ),
    "c-d128-scalar": CollectionSpec(dim=DIM, quantization="scalar", full_scan_threshold=1),
}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeStore, np.ndarray]]:
    rng = np.random.default_rng(8)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = EdgeStore(tmp_path_factory.mktemp("cost") / "qdrant")
    for name, spec in SPECS.items():
        store.ensure_collection(name, spec)
        store.upsert(
            name,
            [point_id("c", f"d{i}", 0) for i in range(N)],
            vectors,
            [{"doc_id": f"d{i}"} for i in range(N)],
        )
        store.build_index(name)
    yield store, vectors
    store.close()


def test_file_parts() -> None:
    assert part_of(Path("vector_storage/matrix.dat")) == "original_vectors"
    assert part_of(Path("vector_storage/vectors/chunk_0.mmap")) == "original_vectors"
    assert part_of(Path("vector_storage/quantized.data")) == "quantized_vectors"
    assert part_of(Path("vector_storage/deleted/flags_a.dat")) == "flags"
    assert part_of(Path("vector_index/links_compressed.bin")) == "hnsw_graph"
    assert part_of(Path("vector_index/hnsw_config.json")) == "metadata"
    assert part_of(Path("id_tracker.mappings")) == "id_tracker"
    assert part_of(Path("payload_storage/page_0.dat")) == "payload_storage"
    assert part_of(Path("segment.json")) == "metadata"


def test_footprint_measures_each_part(shards: tuple[EdgeStore, np.ndarray]) -> None:
    store, _ = shards
    parts = {name: store_footprint(store, name) for name in SPECS}
    assert all(p is not None for p in parts.values())
    floats, one_bit, two_bits, scalar = (parts[n] for n in SPECS)
    assert floats is not None and one_bit is not None and two_bits is not None and scalar is not None
    # Original float32 vectors: N × 128 × 4 bytes (plus a header of a few bytes).
    assert N * DIM * 4 <= floats.get("original_vectors") < N * DIM * 4 + 4096
    assert (
        floats.get("quantized_vectors") == 0 and floats.get("hnsw_graph") > 0 and floats.get("id_tracker") > 0
    )
    # The codes themselves (quantized.data): 1 bit per dimension (16 bytes a vector at 128-d), twice that
    # with qdrant-edge's 2-bit encoding, and int8 one byte per dimension plus a 4-byte correction.
    codes = {name: _codes_bytes(store, name) for name in SPECS if SPECS[name].quantization != "none"}
    assert codes == {"c-d128-binary": N * 16, "c-d128-binary2": N * 32, "c-d128-scalar": N * (DIM + 4)}
    # The part also counts the quantizer's own files (e.g. the 2-bit encoding's per-dimension statistics).
    for name, footprint in zip(SPECS, (floats, one_bit, two_bits, scalar), strict=True):
        assert footprint.get("quantized_vectors") >= codes.get(name, 0)
    assert store.collection_spec("c-d128-binary2")["binary_encoding"] == "two_bits"
    assert one_bit.points == N and one_bit.segments >= 1


def _codes_bytes(store: EdgeStore, name: str) -> int:
    return sum(p.stat().st_size for p in (store.root / name).rglob("quantized.data"))


def test_serving_cost_by_mode(shards: tuple[EdgeStore, np.ndarray]) -> None:
    store, _ = shards
    binary_spec = SPECS["c-d128-binary"]
    footprint = store_footprint(store, "c-d128-binary")
    assert footprint is not None
    modes = {m.name: m for m in modes_for(binary_spec, (1, 4))}

    def cost(name: str, asked: list[int]) -> tuple[int, float]:
        params = modes[name].params
        c = serving_cost(
            footprint,
            binary_spec,
            params,
            rescored=rescores(binary_spec, params),
            oversampling=effective_oversampling(params),
            chunk_hits_asked=asked,
        )
        assert c.ram_per_vector == pytest.approx(c.ram_bytes / N)
        return c.ram_bytes, c.rescore_disk_bytes_per_query

    always = footprint.get("id_tracker") + footprint.get("flags") + footprint.get("payload_index")
    quantized = footprint.get("quantized_vectors") + footprint.get("hnsw_graph") + always
    assert cost("no-rescore", [11, 11]) == (quantized, 0.0)
    # Rescoring reads limit × oversampling original vectors of 128 float32 per search.
    assert cost("rescore-x1", [11, 13]) == (quantized, 12 * DIM * 4)
    assert cost("rescore-x4", [11, 11]) == (quantized, 44 * DIM * 4)
    # The exact scan keeps the original vectors in RAM and needs no graph.
    assert cost("exact", [11]) == (footprint.get("original_vectors") + always, 0.0)
    detail = serving_cost(
        footprint,
        binary_spec,
        SearchParams(rescore=False),
        rescored=False,
        oversampling=1.0,
        chunk_hits_asked=[],
    ).detail
    assert detail["memmapped"] == ["original_vectors"]
    # As ingested (on_disk = false) the originals are resident too.
    assert detail["resident_as_configured_bytes"] == quantized + footprint.get("original_vectors")


def test_two_bit_binary_is_searchable_and_rescoring_recovers(shards: tuple[EdgeStore, np.ndarray]) -> None:
    store, vectors = shards
    queries = vectors[:10]
    exact = store.search("c-d128-binary2", queries, 10, SearchParams(exact=True))
    rescored = store.search("c-d128-binary2", queries, 10, SearchParams(rescore=True, oversampling=4.0))
    # Each query is a stored vector: the exact top hit is itself, and the rescored 2-bit search finds it.
    for found, truth in zip(rescored, exact, strict=True):
        assert found[0].id == truth[0].id and found[0].score == pytest.approx(1.0, abs=1e-5)


def test_no_footprint_without_a_shard(tmp_path: Path) -> None:
    assert shard_footprint(tmp_path, 0).parts["original_vectors"] == 0
    assert store_footprint(EdgeStore(tmp_path / "none"), "missing") is None
