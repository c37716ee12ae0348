"""Hugging Face datasets: a hub dataset, streamed (`hf:name[:config][:split]`), or a `save_to_disk` folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.errors import DatasetNotFoundError, InputError
from ingest.records import Document
from ingest.sources.base import BadRecord, BaseSource, dataset_name, one_line

READ_ROWS = 1024
STRING_DTYPES = ("string", "large_string")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
COLUMN_FLAGS = {"id": "--id-col", "text": "--text-col", "title": "--title-col"}
PREFERRED_SPLITS = ("corpus", "train")
DEFAULT_TITLE_COL = "title"


def is_saved_dataset(path: Path) -> bool:
    """Whether `path` is a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file())
    )


def damaged_dataset_message(path: Path, exc: BaseException) -> str:
    """The one-line message for a saved dataset whose data files cannot be read."""
    arrows = sorted(p.name for p in Path(path).rglob("*.arrow"))[:3] if Path(path).is_dir() else []
    files = f" ({', '.join(arrows)}{', ...' if len(arrows) == 3 else ''})" if arrows else ""
    return (
        f"{path}: cannot read the saved dataset ({one_line(exc)}): a data file{files} is damaged or "
        "truncated; copy the folder again, or re-run `save_to_disk`"
    )


def _pick_split(splits: list[str], split: str | None, where: str, how: str) -> str:
    if split is not None:
        if split not in splits:
            raise InputError(f"{where}: no split {split!r}; it has: {', '.join(splits)}")
        return split
    if len(splits) == 1:
        return splits[0]
    for preferred in PREFERRED_SPLITS:
        if preferred in splits:
            return preferred
    raise InputError(f"{where} has splits {', '.join(splits)}: pick one with {how}")


class HFSource(BaseSource):
    """A `datasets.Dataset` or `datasets.IterableDataset` read in batches with a column mapping.

    Positions are row numbers; locations read `<dataset>#<row>` (row from 0).
    """

    kind = "hf"

    def __init__(
        self,
        dataset: Any,
        *,
        label: str,
        name: str,
        id_col: str = "id",
        text_col: str = "text",
        title_col: str | None = DEFAULT_TITLE_COL,
        on_error: str = "fail",
        on_duplicate: str = "fail",
        info: dict[str, Any] | None = None,
    ) -> None:
        """Wrap a loaded dataset and check its columns when its features are known.

        Args:
            dataset: A `datasets.Dataset` or `datasets.IterableDataset` (one split).
            label: How the dataset is named in messages (`hf:org/name:config:split` or its folder).
            name: The dataset name.
            id_col: The id column (string or integer).
            text_col: The text column (string).
            title_col: The title column; the default `title` may be absent, another name must exist;
                None or "" means no title.
            on_error: `fail` or `skip`.
            on_duplicate: `fail`, `first` or `last`.
            info: Extra fields for `describe()`.

        Raises:
            InputError: on a missing column or a column of the wrong type, naming the dataset, the
                column and the flag to use.
        """
        super().__init__(dataset_name(name), on_error=on_error, on_duplicate=on_duplicate)
        self.dataset = dataset
        self.label = label
        self.id_col = id_col
        self.text_col = text_col
        self.title_col = title_col or None
        self.info = info or {}
        columns: list[str] | None = getattr(dataset, "column_names", None)
        self._has_title = self.title_col is not None
        if columns is not None:
            wanted = [("id", id_col), ("text", text_col)]
            if self.title_col is not None:
                if self.title_col in columns or self.title_col != DEFAULT_TITLE_COL:
                    wanted.append(("title", self.title_col))
                else:
                    self._has_title = False
            for role, col in wanted:
                if col not in columns:
                    raise InputError(
                        f"{label}: no {role} column {col!r}; the dataset has columns {columns}: "
                        f"name the right one with {COLUMN_FLAGS[role]}"
                    )
            features = getattr(dataset, "features", None)
            if features is not None:
                for role, col in wanted:
                    self._check_feature(role, col, features[col])

    def _check_feature(self, role: str, col: str, feature: Any) -> None:
        dtype = getattr(feature, "dtype", None) if type(feature).__name__ == "Value" else None
        ok = dtype in STRING_DTYPES or dtype == "null" or (role == "id" and dtype in INT_DTYPES)
        if not ok:
            expected = "a string or integer" if role == "id" else "a string"
            raise InputError(
                f"{self.label}: column {col!r} ({role}) has type {feature}, expected {expected}: "
                f"convert the column, or pick another one with {COLUMN_FLAGS[role]}"
            )

    @classmethod
    def from_hub(
        cls,
        repo: str,
        config: str | None = None,
        split: str | None = None,
        *,
        name: str | None = None,
        **options: Any,
    ) -> HFSource:
        """Stream a hub dataset with `datasets.load_dataset(repo, config, split=..., streaming=True)`.

        Args:
            repo: The hub id (`org/name`).
            config: The configuration, if any.
            split: The split; default: the only one, else `corpus`, else `train`.
            name: The dataset name; default: the last part of `repo`.
            **options: `id_col`, `text_col`, `title_col`, `on_error`, `on_duplicate`.

        Raises:
            DatasetNotFoundError: when the dataset cannot be loaded (offline, unknown, private).
            InputError: on an unknown split or bad columns.
        """
        import datasets

        label = "hf:" + ":".join(x for x in (repo, config, split) if x)
        try:
            loaded = datasets.load_dataset(repo, config, split=split, streaming=True)
        except Exception as exc:
            raise DatasetNotFoundError(
                f"{label}: could not load {repo!r} from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
                "If this machine is offline (HF_HUB_OFFLINE=1 or no network), run "
                f"`datasets.load_dataset({repo!r}, {config!r}, split=...).save_to_disk(DIR)` on a connected "
                "machine, copy DIR here and pass its path instead"
            ) from exc
        if isinstance(loaded, dict):
            split = _pick_split(list(loaded), split, label, f"hf:{repo}:{config or ''}:<split>")
            loaded = loaded[split]
            label = "hf:" + ":".join(x for x in (repo, config, split) if x)
        info = {"repo": repo, "config": config, "split": split, "streaming": True}
        return cls(loaded, label=label, name=name or repo.split("/")[-1], info=info, **options)

    @classmethod
    def from_disk(
        cls, path: Path, split: str | None = None, *, name: str | None = None, **options: Any
    ) -> HFSource:
        """Open a dataset saved with `save_to_disk` (memory-mapped Arrow, read in batches).

        Args:
            path: The folder.
            split: For a saved `DatasetDict`: the split; default: the only one, else `corpus`, else `train`.
            name: The dataset name; default: the folder name.
            **options: `id_col`, `text_col`, `title_col`, `on_error`, `on_duplicate`.

        Raises:
            InputError: when the folder is not a saved dataset, a file of it is missing or damaged (a
                truncated or corrupt `.arrow` file), or on a bad split or bad columns.
        """
        import datasets

        try:
            loaded = datasets.load_from_disk(str(path))
        except FileNotFoundError as exc:
            missing = f" ({exc.filename})" if exc.filename else ""
            raise InputError(
                f"{path}: the saved dataset is incomplete, a file is missing{missing}: copy the whole "
                "folder again, or re-run `save_to_disk`"
            ) from exc
        except Exception as exc:
            raise InputError(damaged_dataset_message(path, exc)) from exc
        if isinstance(loaded, datasets.DatasetDict):
            split = _pick_split(list(loaded), split, str(path), "the split option (hf_split)")
            loaded = loaded[split]
        info = {"path": str(path), "split": split, "fingerprint": getattr(loaded, "_fingerprint", None)}
        label = f"{path}" + (f"[{split}]" if split else "")
        return cls(loaded, label=label, name=name or Path(path).name, info=info, **options)

    @property
    def display(self) -> str:
        return self.label

    def _read_failure(self, exc: Exception) -> InputError | None:
        if isinstance(exc, KeyError | TypeError | AttributeError):
            return None  # programming errors, not the data
        if self.info.get("streaming"):
            return InputError(
                f"{self.label}: reading the dataset failed ({one_line(exc)}): the network or the hub "
                "failed mid-stream; rerun the same command (stored batches are kept), or save the dataset "
                "with `save_to_disk` on a connected machine and pass its folder"
            )
        return InputError(damaged_dataset_message(Path(str(self.info.get("path", self.label))), exc))

    def _where(self, position: int) -> str:
        return f"{self.label}#{position}"

    def _select(self, cols: list[str]) -> Any:
        return self.dataset.select_columns(cols) if hasattr(self.dataset, "select_columns") else self.dataset

    def _ids(self) -> Iterator[tuple[int, str]]:
        pos = 0
        for batch in self._select([self.id_col]).iter(batch_size=READ_ROWS * 4):
            for value in batch[self.id_col]:
                if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                    yield pos, str(value)
                pos += 1

    def _records(self) -> Iterator[tuple[int, Document | BadRecord]]:
        cols = [self.id_col, self.text_col] + ([self.title_col] if self._has_title and self.title_col else [])
        yield from self._rows(self._select(cols), cols, 0)

    def _records_from(
        self, start: int, stop: int, hint: dict[str, Any]
    ) -> Iterator[tuple[int, Document | BadRecord]]:
        """The rows `start` through `stop`: a contiguous index range of a map-style dataset."""
        if not hasattr(self.dataset, "select") or not hasattr(self.dataset, "__len__"):
            yield from super()._records_from(start, stop, hint)  # a streamed dataset: read and skip
            return
        cols = [self.id_col, self.text_col] + ([self.title_col] if self._has_title and self.title_col else [])
        rows = self._select(cols).select(range(start, min(stop + 1, len(self.dataset))))
        yield from self._rows(rows, cols, start)

    def _rows(self, rows: Any, cols: list[str], pos: int) -> Iterator[tuple[int, Document | BadRecord]]:
        """The documents of `rows` (columns `cols`: id, text and maybe title), numbered from `pos`."""
        for batch in rows.iter(batch_size=READ_ROWS):
            ids = batch[self.id_col]
            texts = batch[self.text_col]
            titles = batch[self.title_col] if len(cols) == 3 else [None] * len(ids)
            for doc_id, text, title in zip(ids, texts, titles, strict=True):
                yield pos, self._document(pos, doc_id, text, title)
                pos += 1

    def _document(self, pos: int, doc_id: Any, text: Any, title: Any) -> Document | BadRecord:
        location = self._where(pos)
        if (
            doc_id is None
            or isinstance(doc_id, bool)
            or not isinstance(doc_id, str | int)
            or not str(doc_id).strip()
        ):
            return BadRecord(
                "missing_id" if doc_id is None else "bad_id",
                location,
                f"column {self.id_col!r} is {doc_id!r}, expected a non-empty string or integer",
                "fix the row",
            )
        for role, col, value in (("text", self.text_col, text), ("title", self.title_col, title)):
            if value is not None and not isinstance(value, str):
                return BadRecord(
                    "bad_field_type",
                    location,
                    f"column {col!r} holds a {type(value).__name__}, expected a string",
                    f"fix the row, or pick another column with {COLUMN_FLAGS[role]}",
                    str(doc_id),
                )
        return Document(id=str(doc_id), title=title or "", text=text or "", location=location)

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self.label,
            "columns": {"id": self.id_col, "text": self.text_col, "title": self.title_col},
            **self.info,
        }
