"""Every option of both models reaches the run from every entry point.

For each field of `IngestConfig` and `EvalSettings` the test has a valid non-default value; it
writes them all on one command line (the `[[collections]]` through `--config`) of `python -m ingest`,
`python -m flows.ingest_flow`, `python -m eval` and `python -m flows.eval_flow`, and captures the
options object the run receives (the pipeline / eval entry, or the flow's first task), then stops.
A new field without a sample value fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eval.options import EvalOptions, EvalSettings
from ingest.optionmodel import flag_of, model_fields
from ingest.options import CollectionSpec, IngestConfig


class Captured(Exception):
    """Raised by the stand-in of the run once it has the options."""


def ingest_samples(tmp: Path) -> dict[str, Any]:
    return {
        "collections": [
            CollectionSpec(
                dim=32,
                quantization="scalar",
                hnsw_m=8,
                on_disk=True,
                shard_number=4,
                replication_factor=2,
                write_consistency_factor=2,
            )
        ],
        "model": "standin-x",
        "qdrant_url": "http://qdrant.example:6333",
        "data_dir": tmp / "data",
        "beir_dirs": [tmp / "beir1", tmp / "beir2"],
        "dims": [32, 16],
        "quantizations": ["scalar", "binary"],
        "limit": 7,
        "sync": "incremental",
        "recreate": True,
        "chunk_tokens": 128,
        "chunk_overlap": 16,
        "batch_docs": 33,
        "store_text": False,
        "workers": 2,
        "on_error": "skip",
        "on_duplicate": "last",
        "id_col": "doc_id",
        "text_col": "body",
        "title_col": "",
        "name": "mine",
        "timeout_s": 12.5,
        "retries": 2,
        "allow_empty": True,
        "force": True,
        "float_hnsw": True,
    }


def eval_samples(tmp: Path) -> dict[str, Any]:
    return {
        "collections": [CollectionSpec(dim=32, quantization="binary", binary_encoding="two_bits")],
        "dims": [32],
        "quantizations": ["binary"],
        "split": "dev",
        "data_dir": tmp / "data",
        "beir_dirs": [tmp / "beir1"],
        "qdrant_url": "http://qdrant.example:6333",
        "run_id": "run-1",
        "out": tmp / "reports",
        "within": 0.05,
        "oversampling": (2.0, 8.0),
        "min_docs": 50,
        "hnsw_ef": (32, 200),
        "clients": 3,
        "ignore_identical_ids": False,
        "baseline_model": "teacher-x",
        "queries_path": tmp / "q.jsonl",
        "qrels_path": tmp / "qrels.tsv",
        "model": "encoder-x",
        "name": "nm",
        "id_col": "doc_id",
        "text_col": "body",
        "title_col": "heading",
        "permutations": 500,
        "seed": 3,
        "alpha": 0.1,
        "timeout_s": 5.5,
        "retries": 1,
        "warmup": 2,
    }


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def command_line(model: type, samples: dict[str, Any], tmp: Path) -> list[str]:
    """The flags of every sample, and a TOML file for the fields that have no flag."""
    assert set(samples) == set(model_fields(model)), "every option needs a sample value"
    argv: list[str] = []
    toml: list[str] = []
    for name, info in model_fields(model).items():
        value = samples[name]
        assert value != info.get_default(call_default_factory=True), f"{name}: sample is the default"
        flag = flag_of(name, info)
        if flag is None:
            assert name == "collections"
            for spec in value:
                toml.append("[[collections]]")
                toml += [f"{k} = {toml_value(v)}" for k, v in spec.to_dict().items() if v is not None]
        elif isinstance(value, bool):
            argv.append(flag)
        elif isinstance(value, list) and value and isinstance(value[0], Path):
            for path in value:
                argv += [flag, str(path)]
        elif isinstance(value, list | tuple):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    config = tmp / "options.toml"
    config.write_text("\n".join(toml) + "\n", encoding="utf-8")
    return ["--config", str(config), *argv]


def assert_reached(options: Any, samples: dict[str, Any]) -> None:
    for name, want in samples.items():
        got = getattr(options, name)
        if name == "title_col" and want == "":
            assert got in ("", None), name  # '' means "no title column"
        else:
            assert got == want, (name, got, want)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("STATIC_INGEST_DATA_DIR", "STATIC_INGEST_BEIR_DIR", "QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)


def capture_into(found: list[Any], pick: Callable[..., Any]) -> Callable[..., Any]:
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        found.append(pick(*args, **kwargs))
        raise Captured

    return stand_in


@pytest.mark.usefixtures("clean_env")
def test_every_ingest_option_reaches_the_cli_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ingest.pipeline
    from ingest.__main__ import main

    samples = ingest_samples(tmp_path)
    found: list[Any] = []
    monkeypatch.setattr(
        ingest.pipeline, "run_ingest", capture_into(found, lambda target, cfg, **_: (target, cfg))
    )
    with pytest.raises(Captured):
        main(["tinybeir", *command_line(IngestConfig, samples, tmp_path)])
    target, cfg = found[0]
    assert target == "tinybeir" and isinstance(cfg, IngestConfig)
    assert_reached(cfg, samples)
    assert not (tmp_path / "data").exists()


@pytest.mark.usefixtures("clean_env")
def test_every_eval_option_reaches_the_cli_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import eval.runner
    from eval.__main__ import main

    samples = eval_samples(tmp_path)
    found: list[Any] = []
    monkeypatch.setattr(eval.runner, "run_eval", capture_into(found, lambda opts, **_: opts))
    with pytest.raises(Captured):
        main(["tinybeir", *command_line(EvalSettings, samples, tmp_path)])
    assert isinstance(found[0], EvalOptions) and found[0].target == "tinybeir"
    assert_reached(found[0], samples)


@pytest.mark.usefixtures("clean_env")
def test_every_ingest_option_reaches_the_flow_run(
    prefect_api_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import flows.ingest_flow

    samples = ingest_samples(tmp_path)
    found: list[Any] = []
    monkeypatch.setattr(
        flows.ingest_flow, "open_ingest", capture_into(found, lambda target, cfg: (target, cfg))
    )
    assert flows.ingest_flow.main(["tinybeir", *command_line(IngestConfig, samples, tmp_path)]) == 1
    target, cfg = found[0]
    assert target == "tinybeir" and isinstance(cfg, IngestConfig)
    assert_reached(cfg, samples)


@pytest.mark.usefixtures("clean_env")
def test_every_eval_option_reaches_the_flow_run(
    prefect_api_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import flows.eval_flow

    samples = eval_samples(tmp_path)
    found: list[Any] = []
    monkeypatch.setattr(flows.eval_flow, "load_data", capture_into(found, lambda opts: opts))
    assert flows.eval_flow.main(["tinybeir", *command_line(EvalSettings, samples, tmp_path)]) == 1
    assert isinstance(found[0], EvalOptions) and found[0].target == "tinybeir"
    assert_reached(found[0], samples)


def test_the_environment_is_read_by_the_flow_run(
    prefect_api_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A deployment's run gets no options: the environment of the process running it fills them."""
    import flows.ingest_flow
    from flows.ingest_flow import ingest_corpus

    found: list[Any] = []
    monkeypatch.setattr(flows.ingest_flow, "open_ingest", capture_into(found, lambda target, cfg: cfg))
    monkeypatch.setenv("STATIC_INGEST_DATA_DIR", str(tmp_path / "worker-data"))
    monkeypatch.setenv("STATIC_INGEST_BEIR_DIR", str(tmp_path / "worker-beir"))
    monkeypatch.setenv("QDRANT_URL", "http://worker-qdrant:6333")
    state = ingest_corpus(target="scifact", return_state=True)
    assert state.is_failed()
    cfg = found[0]
    assert cfg.data_dir == tmp_path / "worker-data"
    assert cfg.beir_dirs == [tmp_path / "worker-beir"]
    assert cfg.qdrant_url == "http://worker-qdrant:6333"


def test_flow_parameters_are_validated_by_the_models() -> None:
    from prefect.exceptions import ParameterTypeError

    from flows.eval_flow import evaluate_corpus
    from flows.ingest_flow import ingest_corpus

    params = ingest_corpus.validate_parameters({"target": "scifact", "options": {"batch_docs": 50}})
    assert isinstance(params["options"], IngestConfig) and params["options"].batch_docs == 50
    with pytest.raises(ParameterTypeError, match="batch_docs"):
        ingest_corpus.validate_parameters({"target": "scifact", "options": {"batch_docs": 0}})
    params = evaluate_corpus.validate_parameters({"target": "scifact", "options": {"oversampling": [2, 4]}})
    assert params["options"].oversampling == (2.0, 4.0)
    schema = ingest_corpus.parameters.model_dump()
    assert "IngestConfig" in schema["definitions"]
    props = schema["definitions"]["IngestConfig"]["properties"]
    assert props["batch_docs"]["description"].startswith("documents per batch")
