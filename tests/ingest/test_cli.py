"""`python -m ingest`: a bad option or TOML value is one line on stderr, exit 2, and nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.__main__ import main


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("STATIC_INGEST_DATA_DIR", "STATIC_INGEST_BEIR_DIR", "QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)


def run_bad(argv: list[str], data_dir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI; check exit 2, a single `error:` line, no traceback and an untouched data dir."""
    data_dir.mkdir()
    assert main(["scifact", "--data-dir", str(data_dir), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert list(data_dir.iterdir()) == []
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-docs", "0"], "error: --batch-docs: 0 is not accepted (must be ≥ 1)"),
        (["--batch-docs", "big"], 'error: --batch-docs: "big" is not an integer ≥ 1'),
        (["--limit", "-1"], "error: --limit: -1 is not accepted (must be ≥ 0)"),
        (["--dims", "64.5"], 'error: --dims: "64.5" is not an integer ≥ 1'),
        (["--dims", "256,0"], "error: --dims: 0 is not accepted (must be ≥ 1)"),
        (["--quantization", "none,pq"], "error: --quantization: \"pq\" is not one of 'none', 'binary' or"),
        (["--chunk-overlap", "512"], "error: --chunk-overlap: 512 is not accepted (must be less than"),
        (["--workers", "-2"], "error: --workers: -2 is not accepted (must be ≥ 0)"),
        (["--timeout", "0"], "error: --timeout: 0 is not accepted (must be > 0)"),
        (["--on-error", "ignore"], "error: --on-error: \"ignore\" is not one of 'fail' or 'skip'"),
        (["--on-duplicate", "any"], 'error: --on-duplicate: "any" is not one of'),
    ],
)
def test_bad_flag_values(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_bad(argv, tmp_path / "data", capsys).startswith(message)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[[collections]]\ndim = true\n", "[[collections]] #1: dim: true is not an integer ≥ 1"),
        ("[[collections]]\ndim = 64.5\n", "[[collections]] #1: dim: 64.5 is not an integer ≥ 1"),
        ('[[collections]]\ndim = "64"\n', '[[collections]] #1: dim: "64" is not an integer ≥ 1'),
        (
            "[[collections]]\ndim = 64\nhnsw_m = -5\n",
            "[[collections]] #1: hnsw_m: -5 is not accepted (must be ≥ 0)",
        ),
        ('batch_docs = "big"\n', ': batch_docs: "big" is not an integer ≥ 1'),
        ("limit = -1\n", ": limit: -1 is not accepted (must be ≥ 0)"),
        ("modle = 'x'\n", ": unknown option 'modle'"),
    ],
)
def test_bad_toml_values(toml: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "matrix.toml"
    config.write_text(toml, encoding="utf-8")
    line = run_bad(["--config", str(config)], tmp_path / "data", capsys)
    assert line.startswith(f"error: {config}") and message in line


def test_flag_wins_over_a_bad_file_value_and_is_named_as_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text('batch_docs = "big"\nlimit = 5\n', encoding="utf-8")
    line = run_bad(
        ["--config", str(config), "--batch-docs", "64", "--limit", "-3"], tmp_path / "data", capsys
    )
    assert line == "error: --limit: -3 is not accepted (must be ≥ 0)"
