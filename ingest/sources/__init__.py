"""Corpus sources: BEIR (name, folder, zip), Parquet (file, folder, glob), Hugging Face datasets.

`open_source` turns what the user typed into a `Source`; every source streams bounded batches of
`Document` and keeps counters the pipeline reads after the pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.errors import InputError
from ingest.sources.base import (
    ON_DUPLICATE_POLICIES,
    ON_ERROR_POLICIES,
    BaseSource,
    EmptySourceError,
    Rejection,
    Source,
    SourceCounters,
    file_digest,
)
from ingest.sources.beir import (
    BeirSource,
    QrelsCheck,
    download_archive,
    extract_zip,
    open_beir,
    resolve_beir_name,
)
from ingest.sources.hf import HFSource, is_saved_dataset
from ingest.sources.parquet import GLOB_CHARS, ParquetSource, expand_parquet_target
from ingest.sources.registry import BEIR_DATASETS, BeirDataset, get_beir_dataset

__all__ = [
    "BEIR_DATASETS",
    "ON_DUPLICATE_POLICIES",
    "ON_ERROR_POLICIES",
    "BaseSource",
    "BeirDataset",
    "BeirSource",
    "EmptySourceError",
    "HFSource",
    "ParquetSource",
    "QrelsCheck",
    "Rejection",
    "Source",
    "SourceCounters",
    "download_archive",
    "extract_zip",
    "open_source",
    "resolve_beir_name",
]

PARQUET_SUFFIXES = (".parquet", ".pq")


def _has_beir_corpus(folder: Path) -> bool:
    return any(
        next(folder.glob(pattern), None) for pattern in ("corpus.jsonl", "*/corpus.jsonl", "*/*/corpus.jsonl")
    )


def _open_beir_path(path: Path, name: str | None, on_error: str, on_duplicate: str) -> BeirSource:
    """Open a local BEIR zip/folder/jsonl; a zip named like a registry dataset gets its md5 checked."""
    entry = get_beir_dataset(path.stem) if path.suffix.lower() == ".zip" else None
    md5 = file_digest(path, "md5") if entry is not None and entry.md5 is not None else None
    source = BeirSource(
        path,
        name=name,
        on_error=on_error,
        on_duplicate=on_duplicate,
        expected_md5=entry.md5 if entry is not None else None,
        archive_md5=md5,
    )
    if entry is not None and md5 is not None and md5 != entry.md5:
        source.warn(
            f"{path}: md5 {md5} differs from the published BEIR md5 {entry.md5} for {entry.name!r}: "
            "not the official archive (re-zipped or modified); using it anyway, check its contents "
            "if results look off"
        )
    return source


def open_source(
    target: str,
    *,
    data_dir: Path,
    beir_dirs: Sequence[Path] = (),
    id_col: str = "id",
    text_col: str = "text",
    title_col: str | None = "title",
    on_error: str = "fail",
    on_duplicate: str = "fail",
    download: bool = True,
    name: str | None = None,
    hf_split: str | None = None,
) -> BaseSource:
    """Open a corpus from what the user typed.

    Resolution, in order:
      1. `hf:<folder>` or `hf:name[:config][:split]`: a saved or hub Hugging Face dataset.
      2. An existing path: a `save_to_disk` folder (HF); a `.zip`, a folder holding `corpus.jsonl`
         or a `.jsonl` file (BEIR); a `.parquet` file or a folder of them (Parquet).
      3. A glob (`*`, `?`, `[`): Parquet files.
      4. A BEIR name (`scifact`, `cqadupstack:android`, or the stem of a local folder/zip):
         `<dir>/<name>/` or `<dir>/<name>.zip` in each of `beir_dirs`, then `<data_dir>/beir/`;
         else the official zip is downloaded to `<data_dir>/beir/<name>.zip` (md5-checked).

    Args:
        target: The path, glob, `hf:` spec or BEIR name.
        data_dir: The data directory (downloads go to `<data_dir>/beir/`).
        beir_dirs: Extra folders searched first for BEIR names.
        id_col: Id column for Parquet/HF (string or integer).
        text_col: Text column for Parquet/HF.
        title_col: Title column for Parquet/HF; the default `title` may be absent; None: no title.
        on_error: `fail` (first bad record raises) or `skip` (bad records are rejected and counted).
        on_duplicate: `fail`, `first` or `last`: what to do when an id repeats.
        download: Whether a missing BEIR registry dataset may be downloaded.
        name: The dataset name used in point ids and collection names; default: derived from
            the target (BEIR name, file/folder stem, hub dataset name).
        hf_split: The split of a HF dataset when not given in the `hf:` spec.

    Returns:
        The source (`BeirSource`, `ParquetSource` or `HFSource`); nothing is read yet beyond
        headers, schemas and (for registry zips) the md5.

    Raises:
        InputError: bad path, unsafe zip, missing or mistyped column, unknown policy.
        DatasetNotFoundError: unknown name (with close matches), offline without the file (with
            the exact path to put it at and the URL), HF dataset unreachable.
        ChecksumError: a downloaded archive that does not match its published md5.
    """
    if on_error not in ON_ERROR_POLICIES:
        raise InputError(f"unknown on_error policy {on_error!r}: use one of {', '.join(ON_ERROR_POLICIES)}")
    if on_duplicate not in ON_DUPLICATE_POLICIES:
        raise InputError(
            f"unknown on_duplicate policy {on_duplicate!r}: use one of {', '.join(ON_DUPLICATE_POLICIES)}"
        )
    table_options: dict[str, Any] = {
        "id_col": id_col,
        "text_col": text_col,
        "title_col": title_col,
        "on_error": on_error,
        "on_duplicate": on_duplicate,
    }
    if target.startswith("hf:"):
        spec = target[3:]
        if is_saved_dataset(Path(spec)):
            return HFSource.from_disk(Path(spec), hf_split, name=name, **table_options)
        if Path(spec).exists():
            raise InputError(
                f"{spec}: not a dataset saved with `save_to_disk` (no dataset_dict.json or state.json): "
                "check the folder, or give a hub dataset as hf:<org/name>[:<config>][:<split>]"
            )
        parts = spec.split(":")
        if not parts[0] or len(parts) > 3:
            raise InputError(
                f"{target!r}: expected hf:<org/name>[:<config>][:<split>] or hf:<saved dataset folder>"
            )
        config = parts[1] or None if len(parts) > 1 else None
        split = (parts[2] or None if len(parts) > 2 else None) or hf_split
        return HFSource.from_hub(parts[0], config, split, name=name, **table_options)
    path = Path(target).expanduser()
    if path.exists():
        if is_saved_dataset(path):
            return HFSource.from_disk(path, hf_split, name=name, **table_options)
        suffix = path.suffix.lower()
        if path.is_file() and suffix in (".zip", ".jsonl"):
            return _open_beir_path(path, name, on_error, on_duplicate)
        if (path.is_file() and suffix in PARQUET_SUFFIXES) or (
            path.is_dir() and not _has_beir_corpus(path) and next(path.rglob("*.parquet"), None)
        ):
            return ParquetSource(expand_parquet_target(str(path)), name=name, target=target, **table_options)
        if path.is_dir() and _has_beir_corpus(path):
            return _open_beir_path(path, name, on_error, on_duplicate)
        raise InputError(
            f"{path}: don't know how to read it: expected a BEIR folder or zip (corpus.jsonl, "
            "queries.jsonl, qrels/), a corpus .jsonl, a .parquet file or folder, or a save_to_disk folder"
        )
    if any(c in target for c in GLOB_CHARS):
        return ParquetSource(expand_parquet_target(target), name=name, target=target, **table_options)
    return open_beir(
        target,
        data_dir=data_dir,
        beir_dirs=list(beir_dirs),
        name=name,
        on_error=on_error,
        on_duplicate=on_duplicate,
        download=download,
    )
