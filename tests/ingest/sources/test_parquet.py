"""Parquet sources: file, folder, glob, column mapping, schema errors, policies."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.errors import InputError
from ingest.sources import ParquetSource, open_source


def write_table(path: Path, columns: dict[str, list], schema: pa.Schema | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path, row_group_size=4)
    return path


def docs_of(source: ParquetSource, batch_size: int = 100) -> list[tuple[str, str, str]]:
    return [(d.id, d.title, d.text) for batch in source.iter_batches(batch_size) for d in batch]


def test_single_file_with_int_ids_and_bounded_batches(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "corpus_a.parquet",
        {"id": list(range(10)), "title": [f"t{i}" for i in range(10)], "text": [f"x{i}" for i in range(10)]},
    )
    source = open_source(str(path), data_dir=tmp_path)
    assert isinstance(source, ParquetSource)
    assert source.name == "corpus_a"
    assert [len(b) for b in source.iter_batches(4)] == [4, 4, 2]
    docs = docs_of(source)
    assert docs[0] == ("0", "t0", "x0") and docs[-1] == ("9", "t9", "x9")
    assert next(source.iter_batches(1))[0].location == f"{path}#0"
    described = source.describe()
    assert described["rows"] == 10 and described["counters"]["docs"] == 1
    assert len(described["sha256"]) == 64


def test_directory_and_glob_with_column_mapping(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    write_table(folder / "part-0.parquet", {"doc": ["a", "b"], "body": ["A", "B"], "head": ["h", None]})
    write_table(folder / "part-1.parquet", {"doc": ["c"], "body": ["C"], "head": ["hc"]})
    (folder / "notes.txt").write_text("not parquet")
    mapping = {"id_col": "doc", "text_col": "body", "title_col": "head"}
    by_dir = open_source(str(folder), data_dir=tmp_path, **mapping)
    by_glob = open_source(str(folder / "part-*.parquet"), data_dir=tmp_path, name="my-corpus", **mapping)
    expected = [("a", "h", "A"), ("b", "", "B"), ("c", "hc", "C")]
    assert by_dir.name == "shards" and by_glob.name == "my-corpus"
    assert isinstance(by_dir, ParquetSource) and isinstance(by_glob, ParquetSource)
    assert docs_of(by_dir) == docs_of(by_glob) == expected
    with pytest.raises(InputError, match=r"the glob '.*nothing-\*\.parquet' matches no file"):
        open_source(str(folder / "nothing-*.parquet"), data_dir=tmp_path)


def test_title_column_optional_only_by_default(tmp_path: Path) -> None:
    path = write_table(tmp_path / "c.parquet", {"id": ["a"], "text": ["body"]})
    assert docs_of(ParquetSource([path])) == [("a", "", "body")]
    with pytest.raises(InputError, match=r"no title column 'heading'.*\['id', 'text'\].*--title-col"):
        ParquetSource([path], title_col="heading")


def test_missing_column_names_file_columns_and_flag(tmp_path: Path) -> None:
    path = write_table(tmp_path / "c.parquet", {"doc_id": ["a"], "contents": ["body"]})
    with pytest.raises(InputError) as err:
        open_source(str(path), data_dir=tmp_path)
    message = str(err.value)
    assert str(path) in message and "no id column 'id'" in message
    assert "['doc_id', 'contents']" in message and "--id-col" in message
    with pytest.raises(InputError, match=r"no text column 'text'.*--text-col"):
        open_source(str(path), data_dir=tmp_path, id_col="doc_id")


@pytest.mark.parametrize(
    ("columns", "role", "col", "flag"),
    [
        ({"id": ["a"], "text": [["list", "of", "str"]]}, "text", "text", "--text-col"),
        ({"id": [1.5], "text": ["x"]}, "id", "id", "--id-col"),
        ({"id": ["a"], "text": [{"k": "v"}]}, "text", "text", "--text-col"),
        ({"id": ["a"], "text": ["x"], "title": [3]}, "title", "title", "--title-col"),
    ],
)
def test_wrong_column_type(tmp_path: Path, columns: dict, role: str, col: str, flag: str) -> None:
    path = write_table(tmp_path / "c.parquet", columns)
    with pytest.raises(InputError) as err:
        open_source(str(path), data_dir=tmp_path)
    message = str(err.value)
    assert str(path) in message and f"column {col!r} ({role}) has type" in message and flag in message


def test_null_ids_duplicates_and_empty_rows(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    write_table(folder / "0.parquet", {"id": ["a", None, "b"], "text": ["one", "two", ""]})
    write_table(folder / "1.parquet", {"id": ["a", "c"], "text": ["again", "three"]})
    with pytest.raises(InputError) as err:
        docs_of(ParquetSource(sorted(folder.glob("*.parquet")), on_duplicate="first"))
    assert f"{folder / '0.parquet'}#1: column 'id' is null or empty" in str(err.value)
    assert "--on-error skip" in str(err.value)

    with pytest.raises(InputError, match=rf"'a' at {folder / '0.parquet'}#0, {folder / '1.parquet'}#0"):
        docs_of(ParquetSource(sorted(folder.glob("*.parquet")), on_error="skip"))

    source = ParquetSource(sorted(folder.glob("*.parquet")), on_error="skip", on_duplicate="last")
    assert docs_of(source) == [("a", "", "again"), ("c", "", "three")]
    counters = source.counters
    assert (counters.rejected_count, counters.skipped_empty, counters.duplicates_dropped) == (1, 1, 1)
    assert counters.rejected[0].location == f"{folder / '0.parquet'}#1"


def test_large_string_and_dictionary_columns(tmp_path: Path) -> None:
    schema = pa.schema(
        [("id", pa.int64()), ("text", pa.large_string()), ("title", pa.dictionary(pa.int8(), pa.string()))]
    )
    table = pa.table(
        {
            "id": pa.array([7, 8], pa.int64()),
            "text": pa.array(["x", "y"], pa.large_string()),
            "title": pa.array(["t", "t"]).dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string())),
        },
        schema=schema,
    )
    path = tmp_path / "c.parquet"
    pq.write_table(table, path)
    assert docs_of(ParquetSource([path])) == [("7", "t", "x"), ("8", "t", "y")]


def test_prefetched_batches_equal_the_batches_read_in_place_and_stop_early(tmp_path: Path) -> None:
    import threading

    from ingest.sources.parquet import iter_record_batches

    path = write_table(
        tmp_path / "c.parquet", {"id": [str(i) for i in range(30)], "text": [f"x{i}" for i in range(30)]}
    )
    ahead = [b.to_pydict() for b in iter_record_batches(path, ["id", "text"], 3)]
    in_place = [b.to_pydict() for b in iter_record_batches(path, ["id", "text"], 3, prefetch=False)]
    assert ahead == in_place and sum(len(b["id"]) for b in ahead) == 30
    early = iter_record_batches(path, ["id", "text"], 3)
    assert next(early).to_pydict()["id"] == ["0", "1", "2"]
    early.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name.startswith("parquet-read")]


def test_prefetched_raises_the_readers_error_at_its_place() -> None:
    from collections.abc import Iterator

    from ingest.sources.base import prefetched

    closed: list[bool] = []

    def items() -> Iterator[int]:
        try:
            yield 1
            yield 2
            raise InputError("row group 1 is damaged")
        finally:
            closed.append(True)

    got: list[int] = []
    with pytest.raises(InputError, match="row group 1 is damaged"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2] and closed == [True]
