"""Model resolution (aliases, paths, Hub cache, offline), description, prompts, Matryoshka slicing."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from ingest.encoder.models import DEFAULT_MODEL, STANDIN_NAME, build_random_static_model
from ingest.encoder.static import Encoder, load_encoder, read_static_model, resolve_model, slice_normalise
from ingest.errors import ModelError

TEXTS = [
    "Matryoshka embeddings keep the most information in the first dimensions.",
    "BRCA1 mutations raise breast cancer risk.",
    "Zinc supplementation shortens the common cold.",
    "",
]


def _fake_hub_cache(cache: Path, repo_id: str, model_dir: Path, commit: str) -> None:
    """Lay a model out the way huggingface_hub caches a downloaded snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


@pytest.mark.parametrize("dim", [32, 16, 8])
def test_slice_normalise_equals_sentence_transformers_truncate_dim(small_encoder: Encoder, dim: int) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(small_encoder.location.path), device="cpu", truncate_dim=dim)
    ref = np.asarray(st.encode(TEXTS, normalize_embeddings=True), dtype=np.float32)
    got = slice_normalise(small_encoder.encode(TEXTS), dim)
    assert got.shape == (len(TEXTS), dim) and got.dtype == np.float32 and got.flags.c_contiguous
    assert np.abs(got - ref).max() < 1e-5
    assert not got[-1].any(), "the empty text stays a zero vector"


def test_slice_normalise_rejects_bad_dims() -> None:
    vecs = np.ones((2, 8), dtype=np.float32)
    for bad in (0, 9):
        with pytest.raises(ValueError, match="Matryoshka dim"):
            slice_normalise(vecs, bad)
    np.testing.assert_allclose(np.linalg.norm(slice_normalise(vecs, 8), axis=1), [1.0, 1.0], rtol=1e-6)


def test_uncached_hub_id_offline_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        load_encoder("someone/not-cached-static-model", data_dir=tmp_path, hf_cache_dir=tmp_path / "hf")
    message = str(err.value)
    assert "someone/not-cached-static-model is not in the Hugging Face cache" in message
    assert "huggingface-cli download someone/not-cached-static-model" in message
    assert "--model <dir>" in message and "--model standin" in message


def test_auto_offline_falls_back_to_the_standin_with_a_warning(
    standin_dir: Path, models_data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ingest.encoder.static"):
        enc = load_encoder("auto", data_dir=models_data_dir, hf_cache_dir=tmp_path / "empty-cache")
    assert enc.location.path == standin_dir
    info = enc.describe()
    assert info["kind"] == "stand-in" and info["model_id"] == f"static-ingest/{STANDIN_NAME}"
    assert info["dim"] == 256 and info["random_weights"] is False
    assert info["built"]["teacher"] == "sentence-transformers/all-MiniLM-L6-v2"
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert DEFAULT_MODEL in warning and "stand-in" in warning and str(standin_dir) in warning


def test_standin_alias_reuses_the_build(standin_dir: Path, models_data_dir: Path) -> None:
    before = (standin_dir / "model.safetensors").stat().st_mtime_ns
    enc = load_encoder("standin", data_dir=models_data_dir)
    assert enc.location.path == standin_dir and enc.kind == "stand-in"
    assert (standin_dir / "model.safetensors").stat().st_mtime_ns == before
    vecs = enc.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), [1, 1, 1, 0], atol=1e-6)


def test_cached_hub_model_loads_offline_with_its_revision(
    small_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    _fake_hub_cache(tmp_path / "hf", "someone/static-test", small_model_dir, commit)
    enc = load_encoder("someone/static-test", data_dir=tmp_path, hf_cache_dir=tmp_path / "hf")
    info = enc.describe()
    assert info["model_id"] == "someone/static-test" and info["revision"] == commit
    assert info["origin"] == "hub" and info["kind"] == "random"  # the copied marker still labels it


def test_auto_prefers_the_cached_default_model(small_model_dir: Path, tmp_path: Path) -> None:
    commit = "fedcba9876543210fedcba9876543210fedcba98"
    _fake_hub_cache(tmp_path / "hf", DEFAULT_MODEL, small_model_dir, commit)
    location = resolve_model("auto", data_dir=tmp_path, hf_cache_dir=tmp_path / "hf")
    assert location.model_id == DEFAULT_MODEL and location.revision == commit
    assert not (tmp_path / "models").exists(), "no stand-in is built when the real model is cached"


def test_random_alias_builds_once_and_is_labelled(tmp_path: Path) -> None:
    enc = load_encoder("random-32", data_dir=tmp_path)
    info = enc.describe()
    assert info["kind"] == "random" and info["random_weights"] is True and info["dim"] == 32
    assert info["model_id"] == "static-ingest/random-static-32-seed0"
    assert info["tokenizer"] == {
        "model": "WordPiece",
        "normalizer": "BertNormalizer",
        "pre_tokenizer": "BertPreTokenizer",
        "vocab_size": 30522,
    }
    assert info["fast_path"] == "wordpiece-cache" and info["truncation"] is None
    again = load_encoder("random-32", data_dir=tmp_path)
    np.testing.assert_array_equal(again.encode(TEXTS), enc.encode(TEXTS))


def test_random_model_has_the_default_model_architecture(small_model_dir: Path) -> None:
    modules = json.loads((small_model_dir / "modules.json").read_text())
    assert [m["type"] for m in modules] == ["sentence_transformers.models.StaticEmbedding"]
    files = read_static_model(small_model_dir)
    assert files.format == "sentence-transformers" and files.table.shape == (30522, 64)
    assert files.table.dtype == np.float32
    tok = json.loads(files.tokenizer.to_str())
    assert tok["truncation"] is None and tok["padding"] is None
    stored = json.loads((small_model_dir / "0_StaticEmbedding" / "tokenizer.json").read_text())
    assert stored["truncation"] is None and stored["padding"] is None


def test_build_random_refuses_to_overwrite(small_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="already holds another model"):
        build_random_static_model(small_model_dir, dim=128)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="not empty"):
        build_random_static_model(tmp_path / "busy", dim=8)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("./no/such/dir", "no such directory"),
        ("not a model", "not a Hub id"),
    ],
)
def test_bad_model_names(tmp_path: Path, model: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_encoder(model, data_dir=tmp_path)


def test_non_static_directories_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        load_encoder(str(tmp_path / "file.txt"), data_dir=tmp_path)
    transformer = tmp_path / "transformer"
    transformer.mkdir()
    (transformer / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}])
    )
    with pytest.raises(ModelError, match="not a static model"):
        load_encoder(str(transformer), data_dir=tmp_path)
    with pytest.raises(ModelError, match=r"neither modules\.json"):
        load_encoder(str(tmp_path), data_dir=tmp_path)


def test_query_prompt_is_prepended_like_sentence_transformers(small_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    prompted = tmp_path / "prompted"
    shutil.copytree(small_model_dir, prompted)
    config = {"prompts": {"query": "query: ", "document": ""}, "default_prompt_name": None}
    (prompted / "config_sentence_transformers.json").write_text(json.dumps(config))
    enc = load_encoder(str(prompted), data_dir=tmp_path)
    queries = ["zinc and colds", "p53"]
    np.testing.assert_allclose(
        enc.encode_queries(queries), enc.encode(["query: " + q for q in queries]), atol=1e-6
    )
    st = SentenceTransformer(str(prompted), device="cpu")
    ref = np.asarray(st.encode_query(queries, normalize_embeddings=True), dtype=np.float32)
    assert np.abs(enc.encode_queries(queries) - ref).max() < 1e-5
    assert enc.describe()["prompts"] == {"query": "query: "}


def test_encode_rejects_non_strings(small_encoder: Encoder) -> None:
    with pytest.raises(TypeError, match="text #1 is NoneType"):
        small_encoder.encode(["fine", None])  # type: ignore[list-item]
