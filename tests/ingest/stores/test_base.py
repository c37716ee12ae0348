"""BaseStore's shared logic: the collection check on both backends, the mismatch text, the search params.

The server backend runs on qdrant-client's local mode (`:memory:`), which records the requested
quantization in the collection's metadata, so the check sees the same configuration as on a server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from ingest.config import CollectionSpec
from ingest.errors import CollectionMismatchError
from ingest.stores.base import BaseStore, SearchParams, config_differences, engine_search_params
from ingest.stores.edge import EdgeStore
from ingest.stores.server import ServerStore

pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")


def unit_rows(n: int, dim: int) -> np.ndarray:
    x = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def uuids(n: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"b{i}")) for i in range(n)]


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    backend: BaseStore
    if request.param == "edge":
        backend = EdgeStore(tmp_path / "qdrant")
    else:
        backend = ServerStore(":memory:", client=QdrantClient(":memory:"))
    with backend as entered:
        assert entered is backend
        yield entered


def test_check_creates_matches_refuses_and_recreates(store: BaseStore) -> None:
    binary = CollectionSpec(dim=16, quantization="binary")
    assert store.ensure_collection("c", binary) is True
    store.upsert("c", uuids(20), unit_rows(20, 16), [{"i": i} for i in range(20)])
    store.set_metadata("c", {"status": "done"})
    assert store.ensure_collection("c", binary) is False

    refused = {
        "dim: stored 16, requested 32": CollectionSpec(dim=32, quantization="binary"),
        "binary_encoding: stored 'one_bit', requested 'two_bits'": CollectionSpec(
            dim=16, quantization="binary", binary_encoding="two_bits"
        ),
        "always_ram: stored True, requested False": CollectionSpec(
            dim=16, quantization="binary", always_ram=False
        ),
    }
    for expected, spec in refused.items():
        with pytest.raises(CollectionMismatchError) as err:
            store.ensure_collection("c", spec)
        assert f"({expected})" in str(err.value) and "'c'" in str(err.value)
        assert "--recreate" in str(err.value)
    # Nothing was touched by the refusals.
    assert store.count("c") == 20 and store.get_metadata("c") == {"status": "done"}

    assert store.ensure_collection("c", CollectionSpec(dim=32), recreate=True) is True
    described = store.collection_spec("c")
    assert (described["dim"], described["quantization"], store.count("c")) == (32, "none", 0)
    assert store.get_metadata("c") == {}
    assert store.list_collections() == ["c"]


def test_another_quantization_is_named_without_its_detail_keys(store: BaseStore) -> None:
    store.ensure_collection("f", CollectionSpec(dim=8))
    store.ensure_collection("b", CollectionSpec(dim=8, quantization="binary"))
    cases = (
        (
            "f",
            CollectionSpec(dim=8, quantization="binary"),
            "quantization: stored 'none', requested 'binary'",
        ),
        (
            "b",
            CollectionSpec(dim=8, quantization="scalar"),
            "quantization: stored 'binary', requested 'scalar'",
        ),
        (
            "b",
            CollectionSpec(dim=4),
            "dim: stored 8, requested 4; quantization: stored 'binary', requested 'none'",
        ),
    )
    for name, spec, detail in cases:
        with pytest.raises(CollectionMismatchError) as err:
            store.ensure_collection(name, spec)
        assert f"different configuration ({detail})." in str(err.value)


def test_config_differences_compares_detail_keys_of_the_same_quantization_only() -> None:
    stored = {"dim": 8, "distance": "cosine", "quantization": "scalar", "scalar_quantile": 0.99}
    stored |= {"always_ram": True, "hnsw_m": 16, "hnsw_ef_construct": 100, "full_scan_threshold": 10}
    stored |= {"on_disk": False, "binary_encoding": None}
    assert config_differences(stored, CollectionSpec(dim=8, quantization="scalar")) == []
    assert config_differences(stored, CollectionSpec(dim=8, quantization="scalar", scalar_quantile=0.9)) == [
        ("scalar_quantile", 0.99, 0.9)
    ]
    assert config_differences(stored, CollectionSpec(dim=8, quantization="binary", always_ram=False)) == [
        ("quantization", "scalar", "binary")
    ]
    assert config_differences(stored, CollectionSpec(dim=8, hnsw_m=32), skip=("hnsw_m",)) == [
        ("quantization", "scalar", "none")
    ]


@pytest.mark.parametrize(
    ("search_type", "quantization_type"),
    [
        (qe.SearchParams, qe.QuantizationSearchParams),
        (models.SearchParams, models.QuantizationSearchParams),
    ],
    ids=["qdrant-edge", "qdrant-client"],
)
def test_search_params_translate_alike_for_both_libraries(search_type: Any, quantization_type: Any) -> None:
    def translated(params: SearchParams) -> tuple[object, ...]:
        got = engine_search_params(params, search_type, quantization_type)
        assert isinstance(got, search_type)
        q = got.quantization
        quant = None if q is None else (q.ignore, q.rescore, q.oversampling)
        return got.hnsw_ef, got.exact, quant

    assert translated(SearchParams()) == (None, False, None)
    assert translated(SearchParams(hnsw_ef=64)) == (64, False, None)
    assert translated(SearchParams(exact=True, rescore=True)) == (None, True, (True, None, None))
    assert translated(SearchParams(ignore_quantization=True, oversampling=2.0)) == (
        None,
        False,
        (True, None, None),
    )
    assert translated(SearchParams(hnsw_ef=32, rescore=False)) == (32, False, (False, False, None))
    assert translated(SearchParams(oversampling=3.0)) == (None, False, (False, None, 3.0))
