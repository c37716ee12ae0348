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


def _smallest_filling_limit(chunk_docs: list[str], docs: int) -> int:
    """The smallest chunk limit whose hits cover `docs` distinct documents."""
    seen: set[str] = set()
    for i, did in enumerate(chunk_docs):
        seen.add(did)
        if len(seen) >= docs:
            return i + 1
    return len(chunk_docs)


def test_exact_mode_equals_numpy_max_pooled_at_each_depth(
    chunked_store: tuple[EdgeStore, np.ndarray, list[str]],
) -> None:
    store, vectors, doc_ids = chunked_store
    spec = CollectionSpec(dim=DIM, quantization="binary")
    exact = modes_for(spec)[0]
    queries = _queries(vectors)
    qids = [f"q{i}" for i in range(N_QUERIES)]
    outcome = search_collection(
        store, "toy-d64-binary", qids, queries, exact, min_docs=20, warmup=2, clients=2
    )
    # 4 chunks per document: a first search of 11 (21) chunks covers fewer documents, so every query
    # is asked again, only as far as needed.
    assert outcome.shallow.docs_asked == 11 and outcome.deep.docs_asked == 21
    assert outcome.shallow.requeries >= N_QUERIES and outcome.deep.requeries >= N_QUERIES
    assert outcome.shallow.short_queries == [] and outcome.deep.short_queries == []
    assert len(outcome.latencies) == N_QUERIES and all(t > 0 for t in outcome.latencies)
    assert outcome.qps is not None and outcome.qps > 0 and outcome.clients == 2
    reference = exact_numpy_search(queries, vectors, doc_ids, N_DOCS)
    chunk_order = np.argsort(-(queries @ vectors.T), axis=1)
    smallest = {
        docs: max(_smallest_filling_limit([doc_ids[j] for j in row], docs) for row in chunk_order)
        for docs in (11, 21)
    }
    assert outcome.shallow.max_limit == smallest[11]
    assert outcome.deep.max_limit == smallest[21]
    for depth in (outcome.shallow, outcome.deep):
        for qid, ref in zip(qids, reference, strict=True):
            got = depth.run[qid]
            # Exactly the top of the max-pooled numpy ranking, in order, with the same scores.
            assert list(got) == list(ref)[: depth.docs_asked]
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
        name: search_collection(store, "toy-d64-binary", qids, queries, modes[name], min_docs=30).deep.run
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
        assert len(outcome.deep.run["q"]) == 8 and len(outcome.shallow.run["q"]) == 8
        assert outcome.deep.short_queries == ["q"]
        assert next(iter(outcome.deep.run["q"])) == "d0"
    finally:
        store.close()
