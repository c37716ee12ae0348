"""Hugging Face sources: datasets saved to disk, column checks, the offline hub error."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets
import huggingface_hub.constants
import pytest

from ingest.errors import DatasetNotFoundError, InputError
from ingest.sources import HFSource, open_source

ROWS = {"_id": ["a", "b", "c"], "title": ["T", "", None], "text": ["one", "two", "three"]}


def docs_of(source: HFSource, batch_size: int = 100) -> list[tuple[str, str, str]]:
    return [(d.id, d.title, d.text) for batch in source.iter_batches(batch_size) for d in batch]


def test_saved_dataset_by_path_and_hf_prefix(tmp_path: Path) -> None:
    folder = tmp_path / "my_corpus"
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(folder))
    for target in (str(folder), f"hf:{folder}"):
        source = open_source(target, data_dir=tmp_path, id_col="_id")
        assert isinstance(source, HFSource)
        assert source.name == "my_corpus"
        assert [len(b) for b in source.iter_batches(2)] == [2, 1]
        assert docs_of(source) == [("a", "T", "one"), ("b", "", "two"), ("c", "", "three")]
        assert source.counters.docs == 3
        assert source.describe()["fingerprint"]


def test_saved_dataset_dict_split_choice(tmp_path: Path) -> None:
    folder = tmp_path / "dd"
    dd = datasets.DatasetDict(
        {
            "queries": datasets.Dataset.from_dict({"id": ["q"], "text": ["query"]}),
            "corpus": datasets.Dataset.from_dict({"id": [1, 2], "text": ["doc one", "doc two"]}),
            "other": datasets.Dataset.from_dict({"id": [5], "text": ["x"]}),
        }
    )
    dd.save_to_disk(str(folder))
    source = open_source(str(folder), data_dir=tmp_path)
    assert isinstance(source, HFSource)
    assert docs_of(source) == [("1", "", "doc one"), ("2", "", "doc two")]
    assert docs_of(HFSource.from_disk(folder, "other")) == [("5", "", "x")]
    with pytest.raises(InputError, match=r"no split 'test'; it has: queries, corpus, other"):
        open_source(str(folder), data_dir=tmp_path, hf_split="test")


def test_saved_dataset_column_errors(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    datasets.Dataset.from_dict({"id": ["a"], "text": [["a", "list"]], "body": ["ok"]}).save_to_disk(
        str(folder)
    )
    with pytest.raises(InputError) as err:
        open_source(str(folder), data_dir=tmp_path)
    message = str(err.value)
    assert str(folder) in message and "column 'text' (text) has type" in message and "--text-col" in message
    with pytest.raises(
        InputError, match=r"no id column 'doc'; the dataset has columns \['id', 'text', 'body'\].*--id-col"
    ):
        open_source(str(folder), data_dir=tmp_path, id_col="doc")
    source = open_source(str(folder), data_dir=tmp_path, text_col="body")
    assert docs_of(source) == [("a", "", "ok")]


def test_saved_dataset_duplicates_and_null_ids(tmp_path: Path) -> None:
    folder = tmp_path / "dups"
    datasets.Dataset.from_dict({"id": ["a", None, "a"], "text": ["1", "2", "3"]}).save_to_disk(str(folder))
    with pytest.raises(InputError, match=r"'a' at .*dups#0, .*dups#2.*--on-duplicate"):
        docs_of(open_source(str(folder), data_dir=tmp_path))
    source = open_source(str(folder), data_dir=tmp_path, on_error="skip", on_duplicate="last")
    assert docs_of(source) == [("a", "", "3")]
    assert source.counters.rejected[0].location.endswith("dups#1")


def test_hub_dataset_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DatasetNotFoundError) as err:
        open_source("hf:BeIR/scifact:corpus", data_dir=tmp_path)
    message = str(err.value)
    assert "hf:BeIR/scifact:corpus" in message and "save_to_disk" in message and "offline" in message
    with pytest.raises(InputError, match=r"expected hf:<org/name>\[:<config>\]\[:<split>\]"):
        open_source("hf:a:b:c:d", data_dir=tmp_path)
    with pytest.raises(InputError, match=r"not a dataset saved with `save_to_disk`"):
        open_source(f"hf:{tmp_path}", data_dir=tmp_path)


def test_streamed_dataset_without_features_checks_rows(tmp_path: Path) -> None:
    def rows() -> object:
        yield {"id": "a", "text": "fine"}
        yield {"id": "b", "text": ["not", "a", "string"]}
        yield {"id": 3, "text": "int id"}

    stream = datasets.IterableDataset.from_generator(rows)
    assert stream.features is None  # so the check happens row by row
    strict = HFSource(stream, label="hf:toy/stream", name="stream", title_col=None)
    with pytest.raises(
        InputError, match=r"hf:toy/stream#1: column 'text' holds a list.*--text-col.*--on-error skip"
    ):
        docs_of(strict)
    lenient = HFSource(stream, label="hf:toy/stream", name="stream", title_col=None, on_error="skip")
    assert docs_of(lenient, batch_size=1) == [("a", "", "fine"), ("3", "", "int id")]
    assert lenient.counters.rejected[0].reason == "bad_field_type"
