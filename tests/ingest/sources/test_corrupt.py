"""Corrupt inputs end in one line naming the file and what to do: damaged zips (CRC, truncated or broken
member data), unreadable Parquet footers and row groups, saved HF datasets with damaged arrow files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingest.errors import InputError
from ingest.sources import BeirSource, extract_zip, open_source
from tests.support.bad_inputs import (
    DOCS,
    broken_stream_zip,
    crc_damaged_zip,
    damaged_copy,
    flip_bytes,
    good_parquet,
    member_span,
    truncated_member_zip,
)
from tests.support.bad_inputs import saved_dataset as save_dataset

CORRUPT_ZIPS = {"crc": crc_damaged_zip, "truncated": truncated_member_zip, "broken-stream": broken_stream_zip}
ZIP_ADVICE = "the zip is corrupt or truncated (an interrupted download or copy); download or copy it again"


@pytest.mark.parametrize("kind", sorted(CORRUPT_ZIPS))
def test_damaged_zip_member_names_archive_member_and_fix(tmp_path: Path, kind: str) -> None:
    path = CORRUPT_ZIPS[kind](tmp_path)
    source = open_source(str(path), data_dir=tmp_path)  # the directory is intact: opening works
    assert isinstance(source, BeirSource)
    with pytest.raises(InputError) as info:
        for _ in source.iter_batches(50):
            pass
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: toy/corpus.jsonl is damaged inside the archive (")
    assert ZIP_ADVICE in message
    assert f"`unzip -t {path}`" in message
    cause = {
        "crc": "(BadZipFile: Bad CRC-32 for file 'toy/corpus.jsonl')",
        "truncated": "(BadZipFile: Bad CRC-32",
    }
    assert cause.get(kind, "(error: Error -3 while decompressing data: invalid block type)") in message


def test_crc_error_in_the_id_pass_and_in_extract(tmp_path: Path) -> None:
    path = crc_damaged_zip(tmp_path)
    with pytest.raises(
        InputError, match=r"toy/corpus\.jsonl is damaged inside the archive \(BadZipFile: Bad CRC-32"
    ):
        list(BeirSource(path).corpus_ids())
    dest = tmp_path / "out"
    with pytest.raises(InputError, match=r"toy/corpus\.jsonl is damaged inside the archive"):
        extract_zip(path, dest)
    assert not dest.exists() and not list(tmp_path.glob(".out.*"))  # nothing half-written is left


def test_damaged_queries_member_is_named(tmp_path: Path) -> None:
    path = tmp_path / "toy.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("toy/corpus.jsonl", json.dumps(DOCS[0]) + "\n")
        zf.writestr("toy/queries.jsonl", json.dumps({"_id": "q1", "text": "words words"}) + "\n")
    offset, _ = member_span(path, "toy/queries.jsonl")
    raw = bytearray(path.read_bytes())
    i = raw.index(b"words words", offset)
    raw[i : i + 5] = b"WORDS"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"toy/queries\.jsonl is damaged inside the archive \(BadZipFile"):
        BeirSource(path).load_queries(None)


def test_cli_exits_2_on_a_crc_damaged_zip(
    tmp_path: Path, small_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.__main__ import main

    path = crc_damaged_zip(tmp_path)
    data_dir = tmp_path / "data"
    code = main([str(path), "--data-dir", str(data_dir), "--model", str(small_model_dir), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(
        f"error: {path}: toy/corpus.jsonl is damaged inside the archive (BadZipFile: Bad CRC-32"
    )
    assert ZIP_ADVICE in err[-1]
    assert not any("Traceback" in line for line in err)


# -- Parquet ----------------------------------------------------------------------------------------


def test_corrupt_page_names_file_and_row_group(tmp_path: Path) -> None:
    path = good_parquet(tmp_path / "corpus.parquet")
    column = pq.ParquetFile(path).metadata.row_group(2).column(1)
    flip_bytes(path, column.data_page_offset, 12)  # the page header of row group 2's text column
    source = open_source(str(path), data_dir=tmp_path)  # footer intact: schema checks pass
    seen = 0
    with pytest.raises(InputError) as info:
        for batch in source.iter_batches(500):
            seen += len(batch)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: row group 2 (of 5) cannot be read (OSError: ")
    assert message.endswith("the file is damaged (a corrupt page); re-export it or copy it again")
    assert seen == 2000  # the two good row groups came through first


@pytest.mark.parametrize("damage", ["truncated", "footer", "zero-bytes"])
def test_unreadable_parquet_footer_names_file_and_fix(tmp_path: Path, damage: str) -> None:
    path = good_parquet(tmp_path / "corpus.parquet")
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 3])
    elif damage == "footer":
        path.write_bytes(raw[:-100] + b"\x00" * 92 + raw[-8:])
    else:
        path.write_bytes(b"")
    with pytest.raises(InputError) as info:
        open_source(str(path), data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not a readable Parquet file (ArrowInvalid: ")
    assert message.endswith(
        "it is empty, truncated or damaged, or not Parquet; re-export it or copy it again"
    )


def test_cli_exits_2_on_a_corrupt_parquet_page(
    tmp_path: Path, small_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.__main__ import main

    path = good_parquet(tmp_path / "corpus.parquet", rows=3000)
    column = pq.ParquetFile(path).metadata.row_group(1).column(1)
    flip_bytes(path, column.data_page_offset, 12)
    code = main(
        [
            *(str(path), "--data-dir", str(tmp_path / "data"), "--model", str(small_model_dir)),
            *("--title-col", "", "--no-progress", "--batch-docs", "500"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"error: {path}: row group 1 (of 3) cannot be read")
    assert err[-1].endswith("re-export it or copy it again")


# -- saved Hugging Face datasets --------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_dataset(tmp_path_factory.mktemp("hf") / "saved")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_arrow_file_names_folder_file_and_fix(
    saved_dataset: Path, tmp_path: Path, damage: str
) -> None:
    folder = damaged_copy(saved_dataset, tmp_path / "saved", damage)
    with pytest.raises(InputError) as info:
        open_source(str(folder), data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{folder}: cannot read the saved dataset (")
    assert "a data file (data-00000-of-00001.arrow) is damaged or truncated" in message
    assert message.endswith("copy the folder again, or re-run `save_to_disk`")


def test_missing_arrow_file_is_named(saved_dataset: Path, tmp_path: Path) -> None:
    folder = damaged_copy(saved_dataset, tmp_path / "saved", "missing")
    with pytest.raises(InputError) as info:
        open_source(f"hf:{folder}", data_dir=tmp_path)
    assert str(info.value) == (
        f"{folder}: the saved dataset is incomplete, a file is missing "
        f"({folder}/data-00000-of-00001.arrow): copy the whole folder again, or re-run `save_to_disk`"
    )


def test_cli_exits_2_on_a_damaged_saved_dataset(
    saved_dataset: Path, tmp_path: Path, small_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.__main__ import main

    folder = damaged_copy(saved_dataset, tmp_path / "saved", "truncated")
    code = main(
        [str(folder), "--data-dir", str(tmp_path / "data"), "--model", str(small_model_dir), "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"error: {folder}: cannot read the saved dataset (")
    assert not (tmp_path / "data" / "qdrant").exists()  # refused before any collection was created
