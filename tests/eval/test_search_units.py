"""Search modes, chunk → document aggregation and the numpy exact search (no store needed)."""

from __future__ import annotations

import numpy as np
import pytest

from eval.aggregate import distinct_docs, max_by_doc
from eval.errors import EvalInputError
from eval.search import depth_docs, effective_oversampling, exact_numpy_search, modes_for, rescores
from ingest.config import CollectionSpec
from ingest.stores.base import Hit, SearchParams


def test_modes_for_float_collection() -> None:
    modes = modes_for(CollectionSpec(dim=256, quantization="none"))
    assert [m.name for m in modes] == ["exact", "hnsw", "hnsw-ef64", "hnsw-ef128", "hnsw-ef256"]
    assert modes[0].params.exact and modes[0].params.ignore_quantization
    assert not modes[1].params.exact and modes[1].params.rescore is None and modes[1].params.hnsw_ef is None
    assert modes[1].engine_default and "ef_construct 100" in modes[1].description
    assert [m.params.hnsw_ef for m in modes[2:]] == [64, 128, 256]


def test_float_collection_without_a_graph_has_only_the_exact_search() -> None:
    # hnsw_m 0 (the default matrix's float collections): every search is a full scan, one row.
    modes = modes_for(CollectionSpec(dim=256, quantization="none", hnsw_m=0))
    assert [m.name for m in modes] == ["exact"]
    assert [
        m.name for m in modes_for(CollectionSpec(dim=256, quantization="binary", hnsw_m=16), exact=False)
    ][:2] == ["no-rescore", "rescore-x1"]


def test_hnsw_ef_equal_to_the_engine_default_is_not_a_second_row() -> None:
    # The engine's default ef is the collection's ef_construct: ef 100 is the `hnsw` row already.
    modes = modes_for(CollectionSpec(dim=64, hnsw_ef_construct=100), hnsw_ef=(64, 100, 64, 256))
    assert [m.name for m in modes] == ["exact", "hnsw", "hnsw-ef64", "hnsw-ef256"]


def test_modes_for_binary_collection() -> None:
    modes = modes_for(CollectionSpec(dim=64, quantization="binary"), oversampling=(1, 2, 4), hnsw_ef=(64,))
    # No `hnsw` row: the engine's default binary search rescores with oversampling 1, i.e. `rescore-x1`.
    assert [m.name for m in modes] == [
        "exact",
        "no-rescore",
        "rescore-x1",
        "rescore-x2",
        "rescore-x4",
        "hnsw-ef64",
    ]
    by_name = {m.name: m for m in modes}
    assert by_name["no-rescore"].params.rescore is False
    assert by_name["rescore-x4"].params.rescore is True
    assert by_name["rescore-x4"].params.oversampling == 4.0
    assert "no rescoring" in by_name["no-rescore"].description
    assert [m.name for m in modes if m.engine_default] == ["rescore-x1"]
    assert "engine default" in by_name["rescore-x1"].description
    assert by_name["hnsw-ef64"].params == SearchParams(hnsw_ef=64)
    assert "rescored, oversampling 1" in by_name["hnsw-ef64"].description
    assert next(m.name for m in modes_for(CollectionSpec(dim=64, quantization="binary"), exact=False)) == (
        "no-rescore"
    )


def test_modes_for_scalar_collection_marks_no_rescore_as_the_default() -> None:
    modes = modes_for(CollectionSpec(dim=64, quantization="scalar"), oversampling=(1,), hnsw_ef=())
    assert [m.name for m in modes] == ["exact", "no-rescore", "rescore-x1"]
    assert [m.name for m in modes if m.engine_default] == ["no-rescore"]


def test_which_searches_rescore() -> None:
    binary, scalar, floats = (CollectionSpec(dim=64, quantization=q) for q in ("binary", "scalar", "none"))
    assert rescores(binary, SearchParams()) and not rescores(scalar, SearchParams())
    assert rescores(scalar, SearchParams(rescore=True)) and not rescores(binary, SearchParams(rescore=False))
    assert not rescores(binary, SearchParams(exact=True)) and not rescores(floats, SearchParams(rescore=True))
    assert effective_oversampling(SearchParams()) == 1.0
    assert effective_oversampling(SearchParams(oversampling=2.0)) == 2.0


def test_depth_docs_asks_one_more_when_identical_ids_are_dropped() -> None:
    assert depth_docs(10, True) == 11 and depth_docs(10, False) == 10


def test_max_by_doc_keeps_best_chunk() -> None:
    hits = [
        Hit("p1", 0.4, {"doc_id": "a"}),
        Hit("p2", 0.9, {"doc_id": "b"}),
        Hit("p3", 0.7, {"doc_id": "a"}),
        Hit("p4", 0.1, {"doc_id": "c"}),
    ]
    assert max_by_doc(hits) == {"b": 0.9, "a": 0.7, "c": 0.1}
    assert list(max_by_doc(hits)) == ["b", "a", "c"]
    assert distinct_docs(hits) == 3


def test_hit_without_doc_id_is_an_actionable_error() -> None:
    with pytest.raises(EvalInputError, match="re-ingest"):
        max_by_doc([Hit("p1", 0.4, {"text": "x"})])


def test_exact_numpy_search_matches_full_sort() -> None:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(1000, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[:5] + rng.normal(scale=0.1, size=(5, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids = [f"d{i}" for i in range(1000)]
    got = exact_numpy_search(queries, docs, ids, 20, block=97)
    full = queries @ docs.T
    for i in range(5):
        expected = [ids[j] for j in np.argsort(-full[i])[:20]]
        assert list(got[i]) == expected
        assert got[i][expected[0]] == pytest.approx(float(full[i].max()), abs=1e-6)


def test_exact_numpy_search_max_pools_chunks() -> None:
    docs = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32)
    got = exact_numpy_search(np.array([[1.0, 0.0]], dtype=np.float32), docs, ["a", "b", "a"], 3)
    assert got[0] == pytest.approx({"a": 1.0, "b": 0.6})
    with pytest.raises(ValueError):
        exact_numpy_search(np.ones((1, 3), dtype=np.float32), docs, ["a", "b", "a"], 3)
