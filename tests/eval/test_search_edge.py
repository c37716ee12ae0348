"""eval.search against the real engine (qdrant-edge in-process): runs, re-queries, modes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from eval.search import exact_numpy_search, modes_for, search_collection
from ingest.config import CollectionSpec
from ingest.records import point_id
from ingest.stores.edge import EdgeStore

N_DOCS = 300
CHUNKS_PER_DOC = 4
DIM = 64
N_QUERIES = 12


@pytest.fixture(scope="module")
def chunked_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EdgeStore, np.ndarray, list[str]]]:
    """Two collections (float and binary) of 300 docs × 4 chunks (unit vectors), HNSW built."""
    root = tmp_path_factory.mktemp("edge") / "qdrant"
    rng = np.random.default_rng(11)
    # Chunks of a document lie near its centroid, so a query hits several chunks of one document.
    centroids = rng.normal(size=(N_DOCS, DIM))
    vectors = np.repeat(centroids, CHUNKS_PER_DOC, axis=0) + rng.normal(
        scale=0.5, size=(N_DOCS * CHUNKS_PER_DOC, DIM)
    )
    vectors = vectors.astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    doc_ids = [f"doc{i // CHUNKS_PER_DOC}" for i in range(len(vectors))]
    ids = [point_id("toy", d, i % CHUNKS_PER_DOC) for i, d in enumerate(doc_ids)]
    payloads = [{"doc_id": d, "chunk_no": i % CHUNKS_PER_DOC} for i, d in enumerate(doc_ids)]
    store = EdgeStore(root)
    for quant in ("none", "binary"):
        # A low full_scan_threshold so that the HNSW graph really answers.
        spec = CollectionSpec(dim=DIM, quantization=quant, full_scan_threshold=10)
        name = spec.name("toy")
        store.ensure_collection(name, spec)
        store.upsert(name, ids, vectors, payloads)
        store.build_index(name)
    yield store, vectors, doc_ids
    store.close()


def _queries(vectors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(5)
    q = vectors[:N_QUERIES] + rng.normal(scale=0.3, size=(N_QUERIES, DIM)).astype(np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def test_exact_mode_equals_numpy_max_pooled(chunked_store: tuple[EdgeStore, np.ndarray, list[str]]) -> None:
    store, vectors, doc_ids = chunked_store
    spec = CollectionSpec(dim=DIM, quantization="binary")
    exact = modes_for(spec)[0]
    queries = _queries(vectors)
    qids = [f"q{i}" for i in range(N_QUERIES)]
    # chunks_per_doc=1 undersizes the first limit (25 chunks ≈ fewer than 20 docs): forces re-queries.
    outcome = search_collection(
        store, "toy-d64-binary", qids, queries, exact, min_docs=20, chunks_per_doc=1.0, warmup=2
    )
    assert outcome.initial_limit == 25  # ceil(20 × 1 × 1.25)
    assert outcome.requeries > 0
    assert outcome.max_limit > 25
    assert outcome.short_queries == []
    assert len(outcome.latencies) == N_QUERIES and all(t > 0 for t in outcome.latencies)
    reference = exact_numpy_search(queries, vectors, doc_ids, N_DOCS)
    for qid, ref in zip(qids, reference, strict=True):
        got = outcome.run[qid]
        assert len(got) >= 20
        # A doc is in the run iff its best chunk is among the chunk hits, so the run is exactly the
        # top of the max-pooled numpy ranking, in order, with the same scores.
        assert list(got) == list(ref)[: len(got)]
        for did, score in got.items():
            assert score == pytest.approx(ref[did], abs=1e-5)


def test_binary_without_rescoring_differs_from_exact(
    chunked_store: tuple[EdgeStore, np.ndarray, list[str]],
) -> None:
    store, vectors, _ = chunked_store
    modes = {m.name: m for m in modes_for(CollectionSpec(dim=DIM, quantization="binary"), oversampling=(4,))}
    queries = _queries(vectors)
    qids = [f"q{i}" for i in range(N_QUERIES)]
    runs = {
        name: search_collection(
            store, "toy-d64-binary", qids, queries, modes[name], min_docs=30, chunks_per_doc=4
        ).run
        for name in ("exact", "no-rescore", "rescore-x4")
    }
    # Without rescoring the scores are binary-code similarities, not cosines of the floats.
    diffs = [
        abs(runs["no-rescore"][q][d] - runs["exact"][q][d])
        for q in qids
        for d in runs["no-rescore"][q]
        if d in runs["exact"][q]
    ]
    assert max(diffs) > 1e-3
    # With rescoring, every document score is the float cosine of one of its chunks again.
    for i, q in enumerate(qids):
        for d, s in runs["rescore-x4"][q].items():
            first = int(d.removeprefix("doc")) * CHUNKS_PER_DOC
            cosines = vectors[first : first + CHUNKS_PER_DOC] @ queries[i]
            assert np.min(np.abs(cosines - s)) < 1e-5


def test_small_collection_stops_when_exhausted(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "qdrant")
    try:
        spec = CollectionSpec(dim=8, quantization="none")
        store.ensure_collection("tiny-d8-none", spec)
        vecs = np.eye(8, dtype=np.float32)
        store.upsert(
            "tiny-d8-none",
            [point_id("tiny", f"d{i}", 0) for i in range(8)],
            vecs,
            [{"doc_id": f"d{i}"} for i in range(8)],
        )
        outcome = search_collection(store, "tiny-d8-none", ["q"], vecs[:1], modes_for(spec)[0], min_docs=100)
        assert len(outcome.run["q"]) == 8
        assert outcome.short_queries == ["q"]
        assert next(iter(outcome.run["q"])) == "d0"
    finally:
        store.close()
