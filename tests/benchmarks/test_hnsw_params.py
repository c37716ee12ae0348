"""The HNSW parameter harness: its windows and queries, and one measured collection on a real edge store."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from benchmarks.hnsw_params import measure, windows_and_queries
from ingest.stores.edge import EdgeStore


def test_documents_are_cut_into_overlapping_windows_and_queries_sampled(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(30)]
    with zipfile.ZipFile(tmp_path / "scifact.zip", "w") as zf:
        doc = {"_id": "1", "title": "T", "text": " ".join(words)}
        zf.writestr("scifact/corpus.jsonl", json.dumps(doc) + "\n")
        queries = [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"}]
        zf.writestr("scifact/queries.jsonl", "".join(json.dumps(q) + "\n" for q in queries))
    texts, queries = windows_and_queries(tmp_path, queries=1)
    # "T." + 30 words = 31 words; windows of 24 with a stride of 12 start at words 0 and 12.
    assert texts == [" ".join(["T.", *words[:23]]), " ".join(words[11:30])]
    assert len(queries) == 1 and queries[0] in ("first", "second")


def test_a_collection_without_a_graph_over_float_vectors_has_recall_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:20] + 0.01 * rng.standard_normal((20, 16)).astype(np.float32)
    with EdgeStore(tmp_path) as store:
        scan = measure(store, vectors, queries, "none", None, [64, 128])
        graph = measure(store, vectors, queries, "scalar", 100, [64])
        assert store.list_collections() == []  # each measured collection is dropped
    # A full scan of the float vectors is the exact search itself.
    assert scan["recall@10 ef64"] == scan["recall@10 ef128"] == 1.0
    assert scan["graph"] == "no graph (m 0): full scan" and scan["build_cpu_s"] >= 0
    assert graph["graph"] == "m 16, ef_construct 100" and 0.5 <= graph["recall@10 ef64"] <= 1.0
    assert graph["ms/query ef64"] > 0
