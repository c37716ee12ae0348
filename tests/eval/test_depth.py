"""Each metric comes from the search a user would run: on a hand-built HNSW + binary shard, oversampling
at limit 10 (11) and at limit 125 rank differently, and the @10 figure is the limit-10 one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from eval.data import EvalData
from eval.metrics import evaluate_run, ordered_run
from eval.options import EvalOptions
from eval.plan import CollectionPlan, CollectionTarget
from eval.query_encoder import QueryEmbeddings
from eval.scoring import score_configuration, search_configuration
from eval.search import modes_for
from ingest.config import CollectionSpec
from ingest.records import point_id
from ingest.stores.base import SearchParams
from ingest.stores.edge import EdgeStore

N_POINTS = 400
DIM = 32
N_QUERIES = 20
NAME = "tiny-d32-binary"


@pytest.fixture(scope="module")
def tiny_shard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeStore, np.ndarray]]:
    """400 random unit vectors, one chunk per document, 1-bit binary, HNSW built and used (1 KB
    full-scan threshold: a segment of more than 8 vectors is searched through the graph)."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(N_POINTS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = EdgeStore(tmp_path_factory.mktemp("depth") / "qdrant")
    spec = CollectionSpec(dim=DIM, quantization="binary", full_scan_threshold=1)
    store.ensure_collection(NAME, spec)
    store.upsert(
        NAME,
        [point_id("tiny", f"d{i}", 0) for i in range(N_POINTS)],
        vectors,
        [{"doc_id": f"d{i}"} for i in range(N_POINTS)],
    )
    store.build_index(NAME)
    assert store.collection_spec(NAME)["indexed_vectors_count"] == N_POINTS
    queries = rng.normal(size=(N_QUERIES, DIM)).astype(np.float32)
    yield store, queries / np.linalg.norm(queries, axis=1, keepdims=True)
    store.close()


def _fresh_run(store: EdgeStore, queries: np.ndarray, limit: int, params: SearchParams) -> dict:
    """A plain search of `limit` hits per query, as a user would run it (one chunk per document)."""
    hits = store.search(NAME, queries, limit, params)
    return {
        f"q{i}": ordered_run({str(h.payload["doc_id"]): h.score for h in found})
        for i, found in enumerate(hits)
    }


def test_at_10_metrics_come_from_the_limit_10_search(tiny_shard: tuple[EdgeStore, np.ndarray]) -> None:
    store, queries = tiny_shard
    qids = [f"q{i}" for i in range(N_QUERIES)]
    # Relevant: each query's 10 true nearest neighbours (exact float search).
    truth = _fresh_run(store, queries, 10, SearchParams(exact=True))
    qrels = {q: dict.fromkeys(docs, 1) for q, docs in truth.items()}
    spec = CollectionSpec(dim=DIM, quantization="binary", full_scan_threshold=1)
    mode = {m.name: m for m in modes_for(spec, oversampling=(1,))}["rescore-x1"]
    limit_10 = _fresh_run(store, queries, 11, mode.params)  # 10, +1: BEIR drops identical ids
    limit_125 = _fresh_run(store, queries, 125, mode.params)
    # Rescoring 11 binary candidates and rescoring 125 rank differently.
    assert any(list(limit_10[q])[:10] != list(limit_125[q])[:10] for q in qids)
    ndcg_10 = evaluate_run(qrels, limit_10).mean["NDCG@10"]
    ndcg_125 = evaluate_run(qrels, limit_125).mean["NDCG@10"]
    assert ndcg_125 - ndcg_10 > 0.05

    target = CollectionTarget(spec, NAME, {"docs": N_POINTS, "chunks": N_POINTS, "points": N_POINTS})
    plan = CollectionPlan("tiny", [target], [], {}, target)
    data = EvalData("tiny", "test", {q: q for q in qids}, qrels, N_QUERIES * 10, None, {"kind": "test"})
    opts = EvalOptions(target="tiny", warmup=0, clients=2)
    embeddings = QueryEmbeddings(qids, queries, 0.0)
    row = score_configuration(
        search_configuration(store, target, mode, embeddings, opts), target, data, opts, plan
    )

    assert row.metrics.mean["NDCG@10"] == pytest.approx(ndcg_10, abs=1e-9)
    assert row.metrics.mean["MRR@10"] == pytest.approx(evaluate_run(qrels, limit_10).mean["MRR@10"], abs=1e-9)
    limit_101 = _fresh_run(store, queries, 101, mode.params)
    assert row.metrics.mean["Recall@100"] == pytest.approx(evaluate_run(qrels, limit_101).mean["Recall@100"])
    assert row.depth == {"NDCG@10": 10, "Recall@100": 100, "MRR@10": 10, "MAP@100": 100}
    assert row.search["at_10"]["max_limit"] == 11 and row.search["at_10"]["requeries"] == 0
    # Rescoring at oversampling 1 reads 11 original vectors of 32 float32 per query.
    assert row.rescore_disk_bytes_per_query == 11 * DIM * 4
    assert row.serving_ram_bytes is not None and row.qps is not None and row.clients == 2
