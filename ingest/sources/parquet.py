"""Parquet corpora (a file, a folder of files, or a glob) read in record batches with a column mapping."""

from __future__ import annotations

import bisect
import glob as globlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import InputError
from ingest.records import Document
from ingest.sources.base import BadRecord, BaseSource, dataset_name, file_digest, one_line, prefetched

if TYPE_CHECKING:
    import pyarrow as pa

GLOB_CHARS = "*?["
# Rows read from Parquet at a time; documents are then re-batched to the caller's size.
READ_ROWS = 4096
DEFAULT_TITLE_COL = "title"
COLUMN_FLAGS = {"id": "--id-col", "text": "--text-col", "title": "--title-col"}


def _is_string(t: pa.DataType) -> bool:
    import pyarrow.types as pat

    if pat.is_dictionary(t):
        return _is_string(t.value_type)
    return pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t) or pat.is_null(t)


def _is_id_type(t: pa.DataType) -> bool:
    import pyarrow.types as pat

    if pat.is_dictionary(t):
        return _is_id_type(t.value_type)
    return (_is_string(t) and not pat.is_null(t)) or pat.is_integer(t)


def expand_parquet_target(target: str) -> list[Path]:
    """Return the Parquet files of a file, a folder (searched recursively) or a glob, sorted.

    Raises:
        InputError: when nothing matches.
    """
    if any(c in target for c in GLOB_CHARS) and not Path(target).exists():
        files = sorted(Path(p) for p in globlib.glob(target, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"the glob {target!r} matches no file: check the pattern and the folder")
        return files
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise InputError(
                f"{path} holds no *.parquet file: point at a file, a folder of Parquet files or a glob"
            )
        return files
    if path.is_file():
        return [path]
    raise InputError(f"{path} does not exist: check the path")


def iter_record_batches(
    path: Path, columns: list[str], batch_size: int, *, first_group: int = 0, prefetch: bool = True
) -> Iterator[pa.RecordBatch]:
    """`read_record_batches`, decoding the next batch in a thread while the caller works on this one.

    Arrow decodes (zstd, pages to arrays) with the GIL released, so on a second core this takes the
    decoding off the reader's path: a sync of 171,332 documents spends ~0.6 s decoding beside its
    hashing. One batch is decoded ahead (bounded memory).

    Args:
        path, columns, batch_size, first_group: As `read_record_batches`.
        prefetch: Decode ahead in a thread (False: in the caller's thread).

    Raises:
        InputError: as `read_record_batches`.
    """
    batches = read_record_batches(path, columns, batch_size, first_group=first_group)
    return prefetched(batches, name=f"parquet-read {path.name}") if prefetch else batches


def read_record_batches(
    path: Path, columns: list[str], batch_size: int, *, first_group: int = 0
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of `columns` from one Parquet file, one row group at a time.

    Memory stays bounded by one row group, whatever the file's size: the live Arrow memory of one
    `ParquetFile.iter_batches` over a whole file grew in steps as it went (pyarrow 26, measured on the
    scale bench's corpora: 38 -> 70 -> 88 MB over the 21 row groups of 171,332 documents, 18 MB over the
    3 of 17,133), while a reader per row group stays at 12-14 MB. After each batch the Arrow pool's
    freed pages go back to the OS (its mimalloc otherwise keeps them resident; about 1 ms per call).

    Args:
        path: The Parquet file.
        columns: The columns to read, in order.
        batch_size: Rows per record batch at most.
        first_group: The first row group to read (a partition's; earlier ones are not read).

    Raises:
        InputError: the file or one of its row groups cannot be read (naming the file and the group).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pool = pa.default_memory_pool()
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(unreadable_message(path, exc)) from exc
    with parquet:
        for group in range(first_group, parquet.num_row_groups):
            # One thread: Arrow's decoding threads keep allocator pages of their own, and reading is
            # a small share of an ingest (the encoder is the bottleneck).
            batches = parquet.iter_batches(
                batch_size=batch_size, row_groups=[group], columns=columns, use_threads=False
            )
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (pa.ArrowException, OSError) as exc:
                    raise InputError(
                        f"{path}: row group {group} (of {parquet.num_row_groups}) cannot be read "
                        f"({one_line(exc)}): the file is damaged (a corrupt page); re-export it or copy "
                        "it again"
                    ) from exc
                yield batch
                pool.release_unused()


def unreadable_message(path: Path, exc: BaseException) -> str:
    """The one-line message for a Parquet file whose footer or schema cannot be read."""
    return (
        f"{path}: not a readable Parquet file ({one_line(exc)}): it is empty, truncated or damaged, or not "
        "Parquet; re-export it or copy it again"
    )


class ParquetSource(BaseSource):
    """Parquet files streamed in record batches; only the mapped columns are read.

    Positions are row numbers across all files, in file order; locations read `file#row` with the
    row counted from 0 within the file.
    """

    kind = "parquet"

    def __init__(
        self,
        files: list[Path],
        *,
        name: str | None = None,
        id_col: str = "id",
        text_col: str = "text",
        title_col: str | None = DEFAULT_TITLE_COL,
        on_error: str = "fail",
        on_duplicate: str = "fail",
        target: str | None = None,
    ) -> None:
        """Check every file's schema (no data is read yet).

        Args:
            files: The Parquet files, in reading order.
            name: The dataset name; default: the stem of the single file, or of the folder/glob parent.
            id_col: The id column (string or integer).
            text_col: The text column (string).
            title_col: The title column (string). The default `title` may be absent (empty titles);
                any other name must exist; None or "" means no title.
            on_error: `fail` or `skip` (rows with a null id are rejected and counted).
            on_duplicate: `fail`, `first` or `last`.
            target: The file/folder/glob as given, for `describe()`.

        Raises:
            InputError: naming the file, the column and what to do, on a missing column or a wrong
                column type (text not a string, id not a string or integer), or an unreadable file.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not files:
            raise InputError("no Parquet files given")
        self.files = [Path(f) for f in files]
        self.target = target or str(self.files[0])
        if name is None:
            t = Path(self.target)
            name = self.files[0].stem if len(self.files) == 1 else (t.name if t.is_dir() else t.parent.name)
        super().__init__(dataset_name(name), on_error=on_error, on_duplicate=on_duplicate)
        self.id_col = id_col
        self.text_col = text_col
        self.title_col = title_col or None
        self._title_in: list[bool] = []
        self._starts: list[int] = []
        total = 0
        for f in self.files:
            try:
                with pq.ParquetFile(f) as meta:
                    schema, rows = meta.schema_arrow, meta.metadata.num_rows
            except (pa.ArrowException, OSError) as exc:
                raise InputError(unreadable_message(f, exc)) from exc
            self._title_in.append(self._check_schema(f, schema))
            self._starts.append(total)
            total += rows
        self.num_rows = total
        self._sha256: str | None = None

    def _check_schema(self, path: Path, schema: pa.Schema) -> bool:
        """Validate the mapped columns of one file; return whether it has the title column."""
        have = schema.names
        wanted = [("id", self.id_col), ("text", self.text_col)]
        title_optional = self.title_col == DEFAULT_TITLE_COL
        if self.title_col is not None and (self.title_col in have or not title_optional):
            wanted.append(("title", self.title_col))
        for role, col in wanted:
            if col not in have:
                raise InputError(
                    f"{path}: no {role} column {col!r}; the file has columns {have}: "
                    f"name the right one with {COLUMN_FLAGS[role]}"
                )
            t = schema.field(col).type
            ok = _is_id_type(t) if role == "id" else _is_string(t)
            if not ok:
                expected = "a string or integer" if role == "id" else "a string"
                raise InputError(
                    f"{path}: column {col!r} ({role}) has type {t}, expected {expected}: convert the "
                    f"column, or pick another one with {COLUMN_FLAGS[role]}"
                )
        return self.title_col is not None and self.title_col in have

    @property
    def display(self) -> str:
        return self.target

    def _where(self, position: int) -> str:
        i = bisect.bisect_right(self._starts, position) - 1
        return f"{self.files[i]}#{position - self._starts[i]}"

    def _columns(self, i: int) -> list[str]:
        cols = [self.id_col, self.text_col]
        if self._title_in[i] and self.title_col is not None:
            cols.append(self.title_col)
        return cols

    def _ids(self) -> Iterator[tuple[int, str]]:
        for i, f in enumerate(self.files):
            pos = self._starts[i]
            for batch in iter_record_batches(f, [self.id_col], READ_ROWS * 4):
                for value in batch.column(0).to_pylist():
                    if value is not None:
                        yield pos, str(value)
                    pos += 1

    def _records(self) -> Iterator[tuple[int, Document | BadRecord]]:
        for i, f in enumerate(self.files):
            pos = self._starts[i]
            cols = self._columns(i)
            for batch in iter_record_batches(f, cols, READ_ROWS):
                ids = batch.column(0).to_pylist()
                texts = batch.column(1).to_pylist()
                titles = batch.column(2).to_pylist() if len(cols) == 3 else [None] * len(ids)
                for doc_id, text, title in zip(ids, texts, titles, strict=True):
                    location = f"{f}#{pos - self._starts[i]}"
                    if doc_id is None or not str(doc_id).strip():
                        yield (
                            pos,
                            BadRecord(
                                "missing_id",
                                location,
                                f"column {self.id_col!r} is null or empty",
                                "give the row an id",
                            ),
                        )
                    else:
                        yield (
                            pos,
                            Document(id=str(doc_id), title=title or "", text=text or "", location=location),
                        )
                    pos += 1

    def _records_from(
        self, start: int, stop: int, hint: dict[str, Any]
    ) -> Iterator[tuple[int, Document | BadRecord]]:
        """The records at positions `start` through `stop`: only the files and row groups that hold them."""
        import pyarrow.parquet as pq

        for i, f in enumerate(self.files):
            end = self._starts[i + 1] if i + 1 < len(self.files) else self.num_rows
            if end <= start or self._starts[i] > stop:
                continue
            with pq.ParquetFile(f) as meta:
                sizes = [meta.metadata.row_group(g).num_rows for g in range(meta.num_row_groups)]
            pos = self._starts[i]
            first_group = 0
            while first_group < len(sizes) and pos + sizes[first_group] <= start:
                pos += sizes[first_group]
                first_group += 1
            cols = self._columns(i)
            for batch in iter_record_batches(f, cols, READ_ROWS, first_group=first_group):
                ids = batch.column(0).to_pylist()
                texts = batch.column(1).to_pylist()
                titles = batch.column(2).to_pylist() if len(cols) == 3 else [None] * len(ids)
                for doc_id, text, title in zip(ids, texts, titles, strict=True):
                    if pos > stop:
                        return
                    if pos >= start:
                        yield pos, self._row(f, pos - self._starts[i], doc_id, text, title)
                    pos += 1

    def _row(self, f: Path, row: int, doc_id: Any, text: Any, title: Any) -> Document | BadRecord:
        location = f"{f}#{row}"
        if doc_id is None or not str(doc_id).strip():
            return BadRecord(
                "missing_id", location, f"column {self.id_col!r} is null or empty", "give the row an id"
            )
        return Document(id=str(doc_id), title=title or "", text=text or "", location=location)

    def sha256(self) -> str:
        """Return a sha256 of the files (one file: its own sha256; several: of their sha256 lines)."""
        if self._sha256 is None:
            digests = [file_digest(f) for f in self.files]
            if len(digests) == 1:
                self._sha256 = digests[0]
            else:
                self._sha256 = hashlib.sha256("\n".join(digests).encode()).hexdigest()
        return self._sha256

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self.target,
            "files": [str(f) for f in self.files],
            "columns": {"id": self.id_col, "text": self.text_col, "title": self.title_col},
            "rows": self.num_rows,
            "sha256": self.sha256(),
        }
