"""Empty sources: a complete pass without a document raises EmptySourceError (an InputError) naming the
source and the way out, unless the source allows it; then it keeps a warning instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.errors import InputError
from ingest.sources import open_source
from ingest.sources.base import EmptySourceError
from tests.support.bad_inputs import empty_parquet


def beir_folder(tmp_path: Path, lines: list[str]) -> Path:
    root = tmp_path / "toy"
    root.mkdir()
    (root / "corpus.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return root


def test_empty_parquet_raises_at_the_end_of_the_pass(tmp_path: Path) -> None:
    path = empty_parquet(tmp_path / "corpus.parquet")
    source = open_source(str(path), data_dir=tmp_path)
    with pytest.raises(EmptySourceError) as info:
        list(source.iter_batches(10))
    assert isinstance(info.value, InputError)
    assert str(info.value) == (
        f"{source.display}: no documents to ingest: it holds no records: check that this is the right file "
        "(a complete export, the right split), or pass --allow-empty to create empty collections anyway"
    )
    assert info.value.counters.complete and info.value.counters.docs == 0


def test_empty_corpus_jsonl_and_all_blank_lines(tmp_path: Path) -> None:
    root = beir_folder(tmp_path, ["", "   "])
    source = open_source(str(root), data_dir=tmp_path)
    with pytest.raises(
        EmptySourceError, match=r"toy/corpus\.jsonl: no documents to ingest: it holds no records"
    ):
        list(source.iter_batches(10))


def test_every_record_dropped_says_how_many_and_why(tmp_path: Path) -> None:
    lines = [json.dumps({"_id": "a", "title": "", "text": ""}), json.dumps({"_id": "b", "text": " "}), "{bad"]
    source = open_source(str(beir_folder(tmp_path, lines)), data_dir=tmp_path, on_error="skip")
    with pytest.raises(EmptySourceError) as info:
        list(source.iter_batches(10))
    message = str(info.value)
    assert (
        "no documents to ingest: all 3 record(s) were dropped (2 empty, 1 rejected, 0 duplicate)" in message
    )
    assert message.endswith(
        "check the column options (--id-col, --text-col, --title-col) and the records, "
        "or pass --allow-empty to create empty collections anyway"
    )


def test_allow_empty_warns_instead(tmp_path: Path) -> None:
    path = empty_parquet(tmp_path / "corpus.parquet")
    source = open_source(str(path), data_dir=tmp_path)
    source.allow_empty = True
    assert list(source.iter_batches(10)) == []
    assert source.counters.complete and source.counters.docs == 0
    assert source.warnings[-1].endswith(
        "it holds no records: check that this is the right file (a complete "
        "export, the right split) (allowed: --allow-empty)"
    )
    assert source.describe()["warnings"] == source.warnings


def test_a_stopped_pass_is_not_called_empty(tmp_path: Path) -> None:
    root = beir_folder(tmp_path, [json.dumps({"_id": "a", "text": "x"})])
    source = open_source(str(root), data_dir=tmp_path)
    batches = source.iter_batches(10)
    assert [d.id for d in next(batches)] == ["a"]
    batches.close()  # a --limit stop: no error
    assert [[d.id for d in b] for b in source.iter_batches(10)] == [["a"]]
