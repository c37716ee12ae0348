"""The option models: constraints, one-line errors, the environment, the generated parser and schema."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from ingest.__main__ import build_parser
from ingest.config import build_config, load_config_file
from ingest.errors import InputError
from ingest.optionmodel import OptionsError, flag_of, model_fields, options_from_args
from ingest.options import CollectionSpec, IngestConfig


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("STATIC_INGEST_DATA_DIR", "STATIC_INGEST_BEIR_DIR", "QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("dim = true", "[[collections]] #1: dim: true is not an integer ≥ 1"),
        ("dim = 64.5", "[[collections]] #1: dim: 64.5 is not an integer ≥ 1"),
        ('dim = "64"', '[[collections]] #1: dim: "64" is not an integer ≥ 1'),
        ("dim = 0", "[[collections]] #1: dim: 0 is not accepted (must be ≥ 1)"),
        ("dim = 64\nhnsw_m = -5", "[[collections]] #1: hnsw_m: -5 is not accepted (must be ≥ 0)"),
        ('dim = 64\nquantization = "pq"', "quantization: \"pq\" is not one of 'none', 'binary' or 'scalar'"),
        ('dim = 64\nbinary_encoding = "3bit"', 'binary_encoding: "3bit" is not one of'),
        ("dim = 64\nscalar_quantile = 0.2", "scalar_quantile: 0.2 is not accepted (must be in [0.5, 1]"),
        ("hnsw_m = 8", "[[collections]] #1: dim is required"),
    ],
)
def test_collection_tables_are_checked_key_by_key(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text(f"[[collections]]\n{table}\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        build_config(path)
    text = str(err.value)
    assert text.startswith(f"{path}") and message in text and "\n" not in text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('batch_docs = "big"', 'batch_docs: "big" is not an integer ≥ 1'),
        ("batch_docs = 0", "batch_docs: 0 is not accepted (must be ≥ 1)"),
        ("limit = -1", "limit: -1 is not accepted (must be ≥ 0)"),
        ("recreate = 1", "recreate: 1 is not true or false"),
        ('on_error = "ignore"', "on_error: \"ignore\" is not one of 'fail' or 'skip'"),
        ("dims = [256, 0]", "dims item #2: 0 is not accepted (must be ≥ 1)"),
        ("chunk_overlap = 512", "chunk_overlap: 512 is not accepted (must be less than the chunk window"),
        ("timeout_s = 0", "timeout_s: 0 is not accepted (must be > 0)"),
        ("collections = 3", "`collections` must be an array of tables"),
    ],
)
def test_top_level_keys_name_the_file_and_key(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"^" + str(path).replace(".", r"\.")) as err:
        load_config_file(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_overrides_win_over_the_file_and_are_named_as_flags(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("chunk_overlap = 600\nbatch_docs = 10\n", encoding="utf-8")
    # the file's overlap is only checked against the window the run will use
    cfg = build_config(path, chunk_tokens=1024, batch_docs=None)
    assert (cfg.chunk_tokens, cfg.chunk_overlap, cfg.batch_docs) == (1024, 600, 10)
    with pytest.raises(InputError, match=r"^--batch-docs: 0 is not accepted \(must be ≥ 1\)$"):
        build_config(path, chunk_tokens=1024, batch_docs=0)


def test_models_raise_input_errors_and_keep_dataclass_behaviour() -> None:
    spec = CollectionSpec(64, "binary")
    assert {spec: 1}[CollectionSpec(dim=64, quantization="binary")] == 1  # frozen: hashable
    assert spec.bytes_per_vector == 8 and spec.to_dict()["dim"] == 64
    assert CollectionSpec.from_dict(spec.to_dict()) == spec
    assert CollectionSpec.from_dict({"dim": 8, "hnsw_m": 0}).hnsw_m == 0  # no graph: exact search
    with pytest.raises(OptionsError, match="manifest x: hnsw_m: -1 is not accepted"):
        CollectionSpec.from_dict({"dim": 8, "hnsw_m": -1}, where="manifest x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.dim = 32  # type: ignore[misc]
    cfg = IngestConfig(batch_docs=5)
    assert dataclasses.replace(cfg, limit=3).limit == 3
    with pytest.raises(InputError, match=r"^--limit: -1 is not accepted"):
        dataclasses.replace(cfg, limit=-1)
    with pytest.raises(InputError, match="batchdocs is not a known key"):
        IngestConfig(batchdocs=5)  # type: ignore[call-arg]
    assert cfg.with_overrides(limit=None, workers=2).workers == 2


def test_environment_is_read_when_options_are_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert IngestConfig().data_dir == Path("data") and IngestConfig().qdrant_url is None
    monkeypatch.setenv("STATIC_INGEST_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.setenv(
        "STATIC_INGEST_BEIR_DIR", os.pathsep.join([str(tmp_path / "b1"), str(tmp_path / "b2")])
    )
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    cfg = IngestConfig(beir_dirs=[tmp_path / "given", tmp_path / "b2"])
    assert cfg.data_dir == tmp_path / "env-data"
    assert cfg.qdrant_url == "http://qdrant:6333"
    assert cfg.beir_dirs == [tmp_path / "given", tmp_path / "b2", tmp_path / "b1"]
    assert dataclasses.replace(cfg).beir_dirs == cfg.beir_dirs  # no duplicates on revalidation
    explicit = IngestConfig(data_dir=tmp_path / "mine", qdrant_url="http://other:6333")
    assert (explicit.data_dir, explicit.qdrant_url) == (tmp_path / "mine", "http://other:6333")


def test_parser_is_generated_from_the_fields() -> None:
    parser = build_parser()
    flags = {opt for action in parser._actions for opt in action.option_strings}
    for name, info in model_fields(IngestConfig).items():
        flag = flag_of(name, info)
        assert (flag in flags) if flag else name == "collections", name
    assert {"--timeout", "--no-text", "--beir-dir", "--quantization", "--config", "--json"} <= flags
    args = parser.parse_args(
        [
            "scifact",
            "--dims",
            "1024, 256",
            "--no-text",
            "--beir-dir",
            "a",
            "--beir-dir",
            "b",
            "--timeout",
            "5",
        ]
    )
    assert options_from_args(args, IngestConfig) == {
        "dims": [1024, 256],
        "store_text": False,
        "beir_dirs": [Path("a"), Path("b")],
        "timeout_s": 5.0,
    }
    # a value that does not convert is left to the model, which names the flag
    bad = options_from_args(parser.parse_args(["x", "--dims", "64.5", "--limit", "ten"]), IngestConfig)
    assert bad == {"dims": ["64.5"], "limit": "ten"}
    with pytest.raises(InputError, match=r'--dims: "64.5" is not an integer ≥ 1; --limit: "ten" is not'):
        IngestConfig(**bad)


def test_every_field_has_a_description_in_the_json_schema() -> None:
    schema = TypeAdapter(IngestConfig).json_schema()
    props = schema["properties"]
    assert set(props) == set(model_fields(IngestConfig))
    assert all(p.get("description") for p in props.values())
    assert props["on_duplicate"]["enum"] == ["fail", "first", "last"]
    assert props["batch_docs"]["minimum"] == 1
    # environment-backed values are not frozen into the schema
    assert props["data_dir"]["default"] == "data"
    spec = schema["$defs"]["CollectionSpec"]["properties"]
    assert all(p.get("description") for p in spec.values())
