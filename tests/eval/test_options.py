"""The eval's option model: constraints, the ingest TOML, the generated parser and one-line CLI errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from eval.__main__ import build_parser, main
from eval.options import EvalOptions, EvalSettings
from ingest.errors import InputError
from ingest.optionmodel import flag_of, model_fields
from ingest.options import CollectionSpec


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("STATIC_INGEST_DATA_DIR", "STATIC_INGEST_BEIR_DIR", "QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"within": 2.0}, "--within: 2.0 is not accepted (must be < 1)"),
        ({"within": True}, "--within: true is not a number ≥ 0 and < 1"),
        ({"oversampling": (0.5,)}, "--oversampling: 0.5 is not accepted (must be ≥ 1)"),
        ({"min_docs": 0}, "--min-docs: 0 is not accepted (must be ≥ 1)"),
        ({"permutations": 1.5}, "--permutations: 1.5 is not an integer ≥ 1"),
        ({"alpha": 1.0}, "--alpha: 1.0 is not accepted (must be < 1)"),
        ({"quantizations": ["bin"]}, "--quantization: \"bin\" is not one of 'none', 'binary' or 'scalar'"),
        ({"queries_path": Path("q.jsonl")}, "give --queries and --qrels together"),
    ],
)
def test_bad_values_raise_one_line_input_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as err:
        EvalOptions(target="x", **overrides)  # type: ignore[arg-type]
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_defaults_title_and_serialisation() -> None:
    opts = EvalOptions(target="x", title_col="", oversampling=[1, 2])  # type: ignore[arg-type]
    assert opts.title_col is None and opts.oversampling == (1.0, 2.0)
    assert dataclasses.replace(opts, run_id="r").run_id == "r"
    assert json.loads(json.dumps(opts.to_dict()))["oversampling"] == [1.0, 2.0]
    assert EvalOptions.of("y", opts.settings()) == dataclasses.replace(opts, target="y")


def test_options_from_the_ingest_toml_name_its_keys(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'data_dir = "somewhere"\nmodel = "standin"\nchunk_tokens = 256\n'
        '[[collections]]\ndim = 64\nquantization = "binary"\n',
        encoding="utf-8",
    )
    opts = EvalOptions.build("scifact", config, within=0.05, min_docs=None)
    assert opts.data_dir == Path("somewhere") and opts.model is None  # the file's model is the ingest's
    assert opts.collections == [CollectionSpec(dim=64, quantization="binary")]
    config.write_text("[[collections]]\ndim = true\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.toml \[\[collections\]\] #1: dim: true is not an integer ≥ 1$"):
        EvalOptions.build("scifact", config)
    config.write_text('chunk_tokens = "x"\n', encoding="utf-8")  # an ingest key: still checked
    with pytest.raises(InputError, match=r'c\.toml: chunk_tokens: "x" is not an integer'):
        EvalOptions.build("scifact", config)


def test_parser_is_generated_from_the_settings() -> None:
    flags = {opt for action in build_parser()._actions for opt in action.option_strings}
    for name, info in model_fields(EvalSettings).items():
        flag = flag_of(name, info)
        assert (flag in flags) if flag else name == "collections", name
    assert {"--dims", "--quantization", "--no-ignore-identical-ids", "--id-col", "--queries"} <= flags


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--within", "0.5x"], 'error: --within: "0.5x" is not a number ≥ 0 and < 1'),
        (["--oversampling", "1,0.5"], "error: --oversampling: 0.5 is not accepted (must be ≥ 1)"),
        (["--dims", "0"], "error: --dims: 0 is not accepted (must be ≥ 1)"),
        (["--queries", "q.jsonl"], "error: give --queries and --qrels together"),
    ],
)
def test_cli_errors_are_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = tmp_path / "data", tmp_path / "reports"
    data.mkdir()
    assert main(["scifact", "--data-dir", str(data), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
    assert list(data.iterdir()) == [] and not out.exists()
