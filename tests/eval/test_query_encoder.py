"""eval.query_encoder: which model to load for the queries, and refusing a different one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval.data import EvalData
from eval.errors import EvalModelError
from eval.options import EvalOptions
from eval.query_encoder import (
    QueryEmbeddings,
    check_same_model,
    encode_queries,
    load_query_encoder,
    model_candidates,
    model_identity,
)
from ingest.encoder.static import Encoder


def test_model_identity_check() -> None:
    stored = {"model_id": "static-ingest/standin", "dim": 256, "revision": None, "vocab_size": 100}
    check_same_model(stored, dict(stored, path="/elsewhere"))  # only identity keys matter
    assert model_identity(stored) == model_identity(dict(stored, path="/elsewhere", vocab_size=5))
    with pytest.raises(EvalModelError, match=r"query encoder mismatch.*dim=256.*dim=64"):
        check_same_model(stored, dict(stored, dim=64))
    with pytest.raises(EvalModelError, match="'other/model'"):
        check_same_model(stored, dict(stored, model_id="other/model"))


def test_model_candidates() -> None:
    assert model_candidates({"model_id": "org/m", "origin": "hub", "path": "/cache/snap"}) == [
        "org/m",
        "/cache/snap",
    ]
    assert model_candidates({"model_id": "static-ingest/s", "origin": "stand-in", "path": "/d/s"}) == [
        "/d/s",
        "standin",
    ]
    assert model_candidates({"model_id": "x", "origin": "random", "dim": 64, "path": "/d/r"}) == [
        "/d/r",
        "random-64",
    ]
    assert model_candidates({}) == []


def test_manifest_without_a_model_says_to_reingest(tmp_path: Path) -> None:
    with pytest.raises(EvalModelError, match="records no model: re-ingest"):
        load_query_encoder({}, EvalOptions(target="x", data_dir=tmp_path))
    with pytest.raises(EvalModelError, match="cannot load the model the collections were built with"):
        load_query_encoder({"model_id": "m", "path": str(tmp_path / "gone")}, EvalOptions(target="x"))


def test_encode_queries_in_query_order_and_matryoshka_cut(small_encoder: Encoder) -> None:
    data = EvalData("ds", "test", {"b": "second query", "a": "first query"}, {"b": {}, "a": {}}, 2, None, {})
    queries = encode_queries(small_encoder, data)
    assert queries.ids == ["b", "a"] and queries.seconds > 0 and queries.queries_per_s > 0
    full = queries.vectors
    assert full.dtype == np.float32 and full.shape[0] == 2
    assert np.allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    half = queries.at_dim(full.shape[1] // 2)
    assert half.shape == (2, full.shape[1] // 2)
    assert np.allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    assert queries.at_dim(full.shape[1]) is full
    assert QueryEmbeddings(["q"], full[:1], 0.0).queries_per_s == float("inf")
