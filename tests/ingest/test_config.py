"""Collection specs, the default matrix, TOML configs and point ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import CollectionSpec, IngestConfig, build_config, default_matrix, resolve_collections
from ingest.errors import InputError
from ingest.records import Document, point_id


def test_default_matrix_caps_at_model_dim() -> None:
    assert [(s.dim, s.quantization) for s in default_matrix(1024)][:3] == [
        (1024, "none"),
        (1024, "binary"),
        (1024, "scalar"),
    ]
    assert len(default_matrix(1024)) == 15  # 5 dims × none, binary, scalar
    # Float collections answer by exact search (no graph) unless float_hnsw; quantized ones get HNSW.
    assert {(s.quantization, s.hnsw_m) for s in default_matrix(1024)} == {
        ("none", 0),
        ("binary", 16),
        ("scalar", 16),
    }
    assert {s.hnsw_m for s in default_matrix(1024, float_hnsw=True)} == {16}
    narrowed = resolve_collections(IngestConfig(dims=[64], quantizations=["none", "binary"]), 256)
    assert [(s.quantization, s.hnsw_m) for s in narrowed] == [("none", 0), ("binary", 16)]
    assert sorted({s.dim for s in default_matrix(256)}) == [64, 128, 256]
    assert sorted({s.dim for s in default_matrix(300)}) == [64, 128, 256, 300]


def test_bytes_per_vector() -> None:
    assert CollectionSpec(1024).bytes_per_vector == 4096
    assert CollectionSpec(1024, "binary").bytes_per_vector == 128
    assert CollectionSpec(1024, "binary", binary_encoding="two_bits").bytes_per_vector == 256
    assert CollectionSpec(1024, "scalar").bytes_per_vector == 1024


def test_spec_name_and_validation() -> None:
    assert CollectionSpec(256, "binary").name("scifact") == "scifact-d256-binary"
    with pytest.raises(InputError, match="""quantization: "pq" is not one of 'none', 'binary' or 'scalar'"""):
        CollectionSpec(256, "pq")  # type: ignore[arg-type]


def test_toml_config_and_overrides(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(
        'model = "standin"\nchunk_tokens = 256\n\n[[collections]]\ndim = 128\nquantization = "binary"\n'
        "hnsw_m = 32\n\n[[collections]]\ndim = 64\n"
    )
    cfg = build_config(cfg_file, chunk_tokens=None, limit=10)
    assert cfg.model == "standin" and cfg.chunk_tokens == 256 and cfg.limit == 10
    assert [(c.dim, c.quantization, c.hnsw_m) for c in cfg.collections] == [
        (128, "binary", 32),
        (64, "none", 16),
    ]
    assert [s.dim for s in resolve_collections(cfg, 256)] == [128, 64]
    with pytest.raises(InputError, match="exceed the model's dimension 64"):
        resolve_collections(cfg, 64)


def test_toml_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[collections]]\ndim = 64\nquantisation = 'binary'\n")
    with pytest.raises(InputError, match=r"bad.toml \[\[collections\]\] #1: quantisation is not a known key"):
        build_config(bad)
    bad.write_text("modle = 'x'\n")
    with pytest.raises(InputError, match="unknown option 'modle'"):
        build_config(bad)
    bad.write_text("model = \n")
    with pytest.raises(InputError, match="not valid TOML"):
        build_config(bad)
    with pytest.raises(InputError, match="does not exist"):
        build_config(tmp_path / "missing.toml")


def test_dims_and_quantization_flags_shape_the_matrix() -> None:
    cfg = IngestConfig(dims=[256, 64], quantizations=["binary", "scalar"])
    assert [(s.dim, s.quantization) for s in resolve_collections(cfg, 256)] == [
        (256, "binary"),
        (256, "scalar"),
        (64, "binary"),
        (64, "scalar"),
    ]


def test_point_ids_are_deterministic_and_distinct() -> None:
    a = point_id("scifact", "doc1", 0)
    assert a == point_id("scifact", "doc1", 0)
    assert (
        len(
            {
                a,
                point_id("scifact", "doc1", 1),
                point_id("nfcorpus", "doc1", 0),
                point_id("scifact", "doc2", 0),
            }
        )
        == 4
    )
    # ids that only differ by where the separator falls stay distinct
    assert point_id("a", "b1", 0) != point_id("ab", "1", 0)


def test_document_full_text_is_beir_concatenation() -> None:
    assert Document("1", "T", "body").full_text == "T body"
    assert Document("1", "", "body").full_text == "body"
