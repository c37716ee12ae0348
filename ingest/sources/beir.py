"""BEIR corpora: name resolution, download with md5 check, safe zips, and the streaming reader.

A BEIR zip is read in place: `corpus.jsonl` is streamed out of the archive (`zipfile.open`), so
nothing is extracted and nothing can be left half-written. Every entry name is still checked
against zip-slip when the archive is opened, and `extract_zip` is there for callers that want a
folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ingest.errors import ChecksumError, DatasetNotFoundError, InputError
from ingest.records import Document
from ingest.sources.base import BadRecord, BaseSource, dataset_name, file_digest, one_line
from ingest.sources.jsonl import fast_id, numbered_lines, parse_corpus_line, read_qrels_rows, read_queries
from ingest.sources.registry import BEIR_REPRODUCE_URL, BeirDataset, get_beir_dataset, suggest_names

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
READ_BUFFER = 1 << 20
# Every this many lines of corpus.jsonl a pass records the byte offset (partition reads seek to it).
OFFSET_EVERY = 1024
MAX_MISSING_SHOWN = 20


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Return why a zip entry may not be extracted, or None if it is safe."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "`..` component escapes the target folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


# What zipfile raises on damaged member data whose directory entry is intact: a CRC mismatch
# (BadZipFile "Bad CRC-32"), a broken deflate/bzip2/lzma stream (zlib.error, OSError, EOFError when the
# data ends early), a method zipfile cannot decode (NotImplementedError).
ZIP_DATA_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
)


def corrupt_member_message(zip_path: Path, member: str, exc: BaseException) -> str:
    """The one-line message for a zip member that cannot be read: the archive, the member, the
    cause and what to do."""
    if isinstance(exc, NotImplementedError):
        return (
            f"{zip_path}: cannot decompress {member} ({one_line(exc)}): re-create the zip with the "
            "standard deflate method (`zip -r`), or extract it and pass the folder"
        )
    return (
        f"{zip_path}: {member} is damaged inside the archive ({one_line(exc)}): the zip is corrupt or "
        f"truncated (an interrupted download or copy); download or copy it again (`unzip -t {zip_path}` "
        "lists the damaged members)"
    )


def check_zip_entries(zf: zipfile.ZipFile, zip_path: Path) -> None:
    """Refuse an archive with an entry that would land outside its target folder (zip-slip).

    Raises:
        InputError: naming the archive and the first unsafe entry.
    """
    for info in zf.infolist():
        reason = _unsafe_reason(info)
        if reason is not None:
            raise InputError(
                f"{zip_path}: refusing unsafe zip entry {info.filename!r} ({reason}): the archive is "
                "corrupt or malicious; download it again from the official source"
            )


def extract_zip(zip_path: Path, dest: Path) -> Path:
    """Extract an archive into `dest` safely: every entry is checked first, extraction goes to a
    temporary folder beside `dest` that is renamed into place, so `dest` is never half-written.

    Args:
        zip_path: The archive.
        dest: The folder to create; must not exist yet.

    Returns:
        `dest`.

    Raises:
        InputError: on an unsafe entry (nothing is written), a bad archive, or an existing `dest`.
    """
    if dest.exists():
        raise InputError(f"{dest} already exists: remove it or read the existing folder instead")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{zip_path}: not a valid zip archive ({exc}): download it again") from exc
    with zf:
        check_zip_entries(zf, zip_path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
        try:
            for info in zf.infolist():
                try:
                    zf.extract(info, tmp)
                except ZIP_DATA_ERRORS as exc:
                    if isinstance(exc, OSError) and exc.errno is not None:
                        raise  # the file system failed (a full or read-only destination), not the data
                    raise InputError(corrupt_member_message(zip_path, info.filename, exc)) from exc
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def download_archive(url: str, dest: Path, md5: str | None, *, timeout: float = 60.0) -> Path:
    """Download `url` to `dest`: streamed to a temporary file beside it, md5-checked, renamed into place.

    Args:
        url: Any URL urllib opens (`https://`, `file://`).
        dest: The final path of the archive.
        md5: The expected md5 hex digest; None skips the check.
        timeout: Socket timeout in seconds.

    Returns:
        `dest`.

    Raises:
        ChecksumError: when the md5 differs (the download is deleted).
        DatasetNotFoundError: when the URL cannot be fetched (offline, 404, ...), saying where to put
            the file by hand.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    while block := response.read(READ_BUFFER):
                        digest.update(block)
                        out.write(block)
            except (urllib.error.URLError, OSError) as exc:
                check = f" (md5 {md5})" if md5 else ""
                raise DatasetNotFoundError(
                    f"could not download {url} ({exc}). If this machine is offline, fetch {url}{check} on "
                    f"a connected machine and copy it to {dest.resolve()}"
                ) from exc
        got = digest.hexdigest()
        if md5 is not None and got != md5:
            raise ChecksumError(
                f"downloaded {url} has md5 {got}, expected {md5}: the file was deleted; retry the "
                f"download, or fetch it by hand and check `md5sum` before copying it to {dest.resolve()}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _is_path_like(target: str) -> bool:
    return "/" in target or "\\" in target or os.sep in target or target.startswith(("~", "."))


def _local_candidates(name: str, dirs: list[Path]) -> Iterator[Path]:
    """Yield `<dir>/<name>/` (if it holds a corpus) then `<dir>/<name>.zip`, for each dir in order."""
    for d in dirs:
        folder = d / name
        if (folder / CORPUS_FILE).is_file() or (folder / name / CORPUS_FILE).is_file():
            yield folder
        elif folder.is_dir() and any(folder.glob(f"*/{CORPUS_FILE}")):
            yield folder  # a multi-corpus folder such as cqadupstack
        if (d / f"{name}.zip").is_file():
            yield d / f"{name}.zip"


@dataclass
class ResolvedDataset:
    """Where a BEIR name was found.

    Attributes:
        path: The folder or zip.
        archive_md5: The md5 of the zip when it was computed (registry zips), else None.
        warnings: Warnings raised on the way (an md5 that differs from the published one).
        downloaded: True when the zip was just downloaded.
    """

    path: Path
    archive_md5: str | None = None
    warnings: list[str] = field(default_factory=list)
    downloaded: bool = False


def resolve_beir_name(
    name: str, *, data_dir: Path, beir_dirs: list[Path] | None = None, download: bool = True
) -> ResolvedDataset:
    """Find a BEIR dataset by name: `<dir>/<name>/` or `<dir>/<name>.zip` in each of `beir_dirs`,
    then in `<data_dir>/beir/`; else download the official zip to `<data_dir>/beir/<name>.zip`.

    A local zip of a registry name whose md5 differs from the published one is still used, with a
    warning (re-zipped archives hold the same files); a downloaded one that differs is an error.

    Args:
        name: The dataset name (a registry name, or the stem of a local folder/zip).
        data_dir: The data directory; downloads go to `<data_dir>/beir/`.
        beir_dirs: Extra folders searched first, in order.
        download: Whether a registry dataset missing locally may be downloaded.

    Returns:
        Where it is, with its md5 and any warning.

    Raises:
        InputError: when `name` contains a path separator (it is then neither a path nor a name).
        DatasetNotFoundError: for an unknown name (with close matches), a non-public dataset, or
            when downloading is off or fails; the message gives the exact path to put the zip at
            and the URL to fetch it from.
        ChecksumError: when a downloaded archive does not match its published md5.
    """
    if _is_path_like(name):
        raise InputError(
            f"{name!r} is not an existing path, and a dataset name cannot contain path separators: "
            "check the path, or give a plain BEIR name such as `scifact`"
        )
    dirs = [*(beir_dirs or []), data_dir / "beir"]
    entry = get_beir_dataset(name)
    key = entry.name if entry is not None else name
    for found in _local_candidates(key, dirs):
        resolved = ResolvedDataset(found)
        if found.suffix == ".zip" and entry is not None and entry.md5 is not None:
            resolved.archive_md5 = got = file_digest(found, "md5")
            if got != entry.md5:
                resolved.warnings.append(
                    f"{found}: md5 {got} differs from the published BEIR md5 {entry.md5} for {key!r}: "
                    "not the official archive (re-zipped or modified); using it anyway, check its "
                    "contents if results look off"
                )
        return resolved
    searched = ", ".join(str(d) for d in dirs)
    if entry is None:
        close = suggest_names(name)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise DatasetNotFoundError(
            f"unknown dataset {name!r}: not a BEIR name and no {name}.zip or {name}/ in {searched}. "
            f"{hint}Known BEIR names: see `ingest.sources.registry.BEIR_DATASETS`; a local corpus can "
            "be given as a path (BEIR folder or zip, Parquet file/dir/glob, saved HF dataset) or hf:<name>"
        )
    target = (data_dir / "beir" / f"{key}.zip").resolve()
    if entry.url is None:
        raise DatasetNotFoundError(
            f"{key!r} is not publicly downloadable from BEIR: build it as described at "
            f"{BEIR_REPRODUCE_URL} and put the folder at {target.with_suffix('')} (or a zip at {target})"
        )
    if not download:
        raise DatasetNotFoundError(
            f"{key!r} is not available locally (searched {searched}) and downloading is off: fetch "
            f"{entry.url} (md5 {entry.md5}) on a connected machine and copy it to {target}"
        )
    return ResolvedDataset(download_archive(entry.url, target, entry.md5), entry.md5, downloaded=True)


@dataclass
class QrelsCheck:
    """How a qrels split relates to the queries and the corpus.

    Attributes:
        split: The split.
        rows: Judgement lines in the file.
        pairs: Distinct (query, doc) pairs (a repeated pair keeps its last score, as in BEIR).
        queries: Distinct queries judged.
        missing_queries: Judged query ids without a line in queries.jsonl.
        missing_doc_pairs: Pairs whose doc id is not in the corpus.
        missing_doc_ids: The first missing doc ids, sorted.
    """

    split: str
    rows: int
    pairs: int
    queries: int
    missing_queries: list[str] = field(default_factory=list)
    missing_doc_pairs: int = 0
    missing_doc_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the check as a JSON-serialisable dict."""
        return dict(self.__dict__)


class _Files:
    """The files of one BEIR dataset, in a folder or under a prefix inside a zip."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path = path
        self.prefix = prefix
        self.is_zip = path.suffix.lower() == ".zip" and path.is_file()

    def display(self, rel: str) -> str:
        return f"{self.path}/{self.prefix}{rel}"

    def exists(self, rel: str) -> bool:
        if not self.is_zip:
            return (self.path / self.prefix / rel).is_file()
        with zipfile.ZipFile(self.path) as zf:
            return f"{self.prefix}{rel}" in zf.NameToInfo

    def list_dir(self, rel: str) -> list[str]:
        """Return the file names directly inside the folder `rel`."""
        if not self.is_zip:
            folder = self.path / self.prefix / rel
            return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        base = f"{self.prefix}{rel}/"
        with zipfile.ZipFile(self.path) as zf:
            return sorted(
                n[len(base) :]
                for n in zf.namelist()
                if n.startswith(base) and "/" not in n[len(base) :] and n != base
            )

    @contextlib.contextmanager
    def open(self, rel: str) -> Iterator[IO[bytes]]:
        if not self.is_zip:
            with (self.path / self.prefix / rel).open("rb", buffering=READ_BUFFER) as fh:
                yield fh
            return
        member_name = f"{self.prefix}{rel}"
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(member_name) as member:
                yield io.BufferedReader(member, buffer_size=READ_BUFFER)  # type: ignore[type-var]
        except ZIP_DATA_ERRORS as exc:
            # Reading the member failed (the caller's own errors are InputErrors and pass through).
            # OSErrors with an errno come from the file system (EIO, ...), not from bad data.
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise InputError(corrupt_member_message(self.path, member_name, exc)) from exc


def _find_roots(names: list[str]) -> list[str]:
    """Return the prefixes (`""`, `"scifact/"`, ...) of every folder holding a corpus.jsonl."""
    return sorted(n[: -len(CORPUS_FILE)] for n in names if n == CORPUS_FILE or n.endswith(f"/{CORPUS_FILE}"))


def _pick_root(roots: list[str], subset: str | None, where: Path) -> str:
    if not roots:
        raise InputError(
            f"{where}: no {CORPUS_FILE} found: a BEIR dataset holds corpus.jsonl, queries.jsonl and "
            "qrels/<split>.tsv (optionally inside one top-level folder)"
        )
    if subset is not None:
        matches = [r for r in roots if r.rstrip("/").split("/")[-1] == subset]
        if len(matches) != 1:
            subs = sorted({r.rstrip("/").split("/")[-1] for r in roots})
            raise InputError(f"{where}: no sub-corpus {subset!r}; it holds: {', '.join(subs)}")
        return matches[0]
    shallowest = min(r.count("/") for r in roots)
    top = [r for r in roots if r.count("/") == shallowest]
    if len(top) > 1:
        listed = ", ".join(r.rstrip("/").split("/")[-1] for r in top)
        raise InputError(
            f"{where}: holds {len(top)} corpora ({listed}): pick one as <name>:<subset>, e.g. "
            f"{where.stem}:{top[0].rstrip('/').split('/')[-1]}"
        )
    return top[0]


class BeirSource(BaseSource):
    """A BEIR dataset (folder, zip, or a bare corpus.jsonl) streamed line by line.

    Positions are line numbers of corpus.jsonl, so errors read `…/corpus.jsonl:<line>`.
    """

    kind = "beir"

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        subset: str | None = None,
        on_error: str = "fail",
        on_duplicate: str = "fail",
        expected_md5: str | None = None,
        archive_md5: str | None = None,
    ) -> None:
        """Open a BEIR dataset; nothing is read but the zip directory or folder listing.

        Args:
            path: A BEIR folder, a zip of one, or a corpus `.jsonl` file.
            name: The dataset name; default: the folder/zip stem (`<stem>-<subset>` for a subset).
            subset: For multi-corpus datasets (cqadupstack): the sub-corpus folder name.
            on_error: `fail` or `skip` (bad lines are rejected and counted).
            on_duplicate: `fail`, `first` or `last`.
            expected_md5: The published md5 of the zip, reported by `describe()`.
            archive_md5: The md5 of the zip if already computed (else `describe()` computes it).

        Raises:
            InputError: when the path holds no corpus, several corpora and no subset, or an
                unsafe zip entry.
        """
        path = Path(path)
        corpus_file = CORPUS_FILE
        if path.is_file() and path.suffix.lower() == ".jsonl":
            corpus_file = path.name
            stem = path.parent.name if path.stem == "corpus" else path.stem
            files = _Files(path.parent)
        elif path.is_file():
            try:
                with zipfile.ZipFile(path) as zf:
                    check_zip_entries(zf, path)
                    names = zf.namelist()
            except zipfile.BadZipFile as exc:
                raise InputError(f"{path}: not a valid zip archive ({exc}): download it again") from exc
            files = _Files(path, _pick_root(_find_roots(names), subset, path))
            stem = path.stem
        elif path.is_dir():
            names = [p.relative_to(path).as_posix() for p in path.rglob(CORPUS_FILE)]
            files = _Files(path, _pick_root(_find_roots(names), subset, path))
            stem = path.name
        else:
            raise InputError(f"{path} does not exist: check the path")
        raw_name = name or (f"{stem}-{subset}" if subset else stem)
        super().__init__(dataset_name(raw_name), on_error=on_error, on_duplicate=on_duplicate)
        self.path = path
        self.subset = subset
        self.expected_md5 = expected_md5
        self.archive_md5 = archive_md5
        self._files = files
        self._corpus = corpus_file
        self._corpus_sha256: str | None = None
        self._corpus_lines: int | None = None
        self._line_offsets: dict[int, int] = {}

    @property
    def display(self) -> str:
        return self._files.display(self._corpus)

    def _where(self, position: int) -> str:
        return f"{self.display}:{position}"

    def _ids(self) -> Iterator[tuple[int, str]]:
        digest = hashlib.sha256()
        lineno = 0
        with self._files.open(self._corpus) as fh:
            for lineno, raw in numbered_lines(fh, digest):
                doc_id = fast_id(raw)
                if doc_id is not None:
                    yield lineno, doc_id
        # Only a complete pass gives a checksum.
        self._corpus_sha256 = digest.hexdigest()
        self._corpus_lines = lineno

    def _records(self) -> Iterator[tuple[int, Document | BadRecord]]:
        with self._files.open(self._corpus) as fh:
            for lineno, raw in numbered_lines(fh):
                if lineno % OFFSET_EVERY == 0:  # the next line starts here (for `seek_hint`)
                    self._line_offsets[lineno + 1] = fh.tell()
                item = parse_corpus_line(raw, f"{self.display}:{lineno}")
                if item is not None:
                    yield lineno, item

    def seek_hint(self, position: int) -> dict[str, Any]:
        """The nearest line at or before `position` whose byte offset a pass recorded."""
        line = position - (position - 1) % OFFSET_EVERY
        offset = self._line_offsets.get(line)
        return {"line": line, "offset": offset} if offset is not None else {}

    def _records_from(
        self, start: int, stop: int, hint: dict[str, Any]
    ) -> Iterator[tuple[int, Document | BadRecord]]:
        line, offset = int(hint.get("line", 1)), int(hint.get("offset", 0))
        if line > start or line <= 1:
            line, offset = 1, 0
        with self._files.open(self._corpus) as fh:
            # A zip member seeks by decompressing up to the offset (no extraction needed).
            fh.seek(offset)
            lines = numbered_lines(fh) if line == 1 else enumerate(fh, start=line)
            for lineno, raw in lines:
                if lineno > stop:
                    return
                if lineno < start:
                    continue
                item = parse_corpus_line(raw, f"{self.display}:{lineno}")
                if item is not None:
                    yield lineno, item

    def corpus_ids(self) -> Iterator[str]:
        """Yield every readable corpus id (a cheap pass: regex on the line start)."""
        for _, doc_id in self._ids():
            yield doc_id

    def corpus_sha256(self) -> str:
        """Return the sha256 of corpus.jsonl (the inner file for a zip), computed once by streaming."""
        if self._corpus_sha256 is None:
            for _ in self._ids():
                pass
        assert self._corpus_sha256 is not None
        return self._corpus_sha256

    def splits(self) -> list[str]:
        """Return the qrels splits present (`qrels/<split>.tsv`)."""
        return [n[: -len(".tsv")] for n in self._files.list_dir("qrels") if n.endswith(".tsv")]

    def _qrels_file(self, split: str) -> str:
        rel = f"qrels/{split}.tsv"
        if not self._files.exists(rel):
            have = self.splits()
            raise InputError(
                f"{self._files.display(rel)} does not exist: split {split!r} is not in this dataset; "
                f"available splits: {', '.join(have) if have else 'none (no qrels folder)'}"
            )
        return rel

    def load_qrels(self, split: str = "test") -> dict[str, dict[str, int]]:
        """Return `{query id: {doc id: score}}` for a split, as BEIR's GenericDataLoader does
        (every row kept, score 0 included; a repeated pair keeps its last score).

        Raises:
            InputError: when the split is missing or a line is malformed (naming `file:line`).
        """
        rel = self._qrels_file(split)
        qrels: dict[str, dict[str, int]] = {}
        with self._files.open(rel) as fh:
            for row in read_qrels_rows(fh, self._files.display(rel)):
                qrels.setdefault(row.query_id, {})[row.doc_id] = row.score
        return qrels

    def count_qrels_rows(self, split: str = "test") -> int:
        """Return the number of judgement lines of a split (header excluded)."""
        rel = self._qrels_file(split)
        with self._files.open(rel) as fh:
            return sum(1 for _ in read_qrels_rows(fh, self._files.display(rel)))

    def load_queries(self, split: str | None = "test") -> dict[str, str]:
        """Return `{query id: text}`: with a split, only the queries judged in it (BEIR's behaviour);
        with `split=None`, every query in queries.jsonl.

        Raises:
            InputError: when queries.jsonl or the split is missing, or a line is bad (`file:line`).
        """
        if not self._files.exists(QUERIES_FILE):
            raise InputError(
                f"{self._files.display(QUERIES_FILE)} does not exist: a BEIR dataset needs queries.jsonl "
                "for evaluation"
            )
        with self._files.open(QUERIES_FILE) as fh:
            queries = read_queries(fh, self._files.display(QUERIES_FILE))
        if split is None:
            return queries
        judged = self.load_qrels(split)
        return {qid: queries[qid] for qid in judged if qid in queries}

    def check_qrels(self, split: str = "test") -> QrelsCheck:
        """Compare a qrels split with the queries and the corpus (one cheap pass over corpus ids).

        Judged docs missing from the corpus are logged as a warning and counted (the official
        ArguAna test qrels name 5 such docs); they can never be retrieved.
        """
        rel = self._qrels_file(split)
        rows = 0
        qrels: dict[str, dict[str, int]] = {}
        with self._files.open(rel) as fh:
            for row in read_qrels_rows(fh, self._files.display(rel)):
                rows += 1
                qrels.setdefault(row.query_id, {})[row.doc_id] = row.score
        queries = self.load_queries(None) if self._files.exists(QUERIES_FILE) else {}
        wanted = {doc_id for judged in qrels.values() for doc_id in judged}
        for doc_id in self.corpus_ids():
            wanted.discard(doc_id)
        missing_pairs = sum(1 for judged in qrels.values() for doc_id in judged if doc_id in wanted)
        check = QrelsCheck(
            split=split,
            rows=rows,
            pairs=sum(len(j) for j in qrels.values()),
            queries=len(qrels),
            missing_queries=sorted(q for q in qrels if q not in queries),
            missing_doc_pairs=missing_pairs,
            missing_doc_ids=sorted(wanted)[:MAX_MISSING_SHOWN],
        )
        if missing_pairs:
            self.warn(
                f"{self._files.display(rel)}: {missing_pairs} judged pair(s) name {len(wanted)} doc id(s) "
                f"missing from the corpus (e.g. {check.missing_doc_ids[:5]}): they count as unretrievable"
            )
        if check.missing_queries:
            self.warn(
                f"{self._files.display(rel)}: {len(check.missing_queries)} judged query id(s) have no text "
                f"in {QUERIES_FILE} (e.g. {check.missing_queries[:5]}): they are left out of the evaluation"
            )
        return check

    def _describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "corpus": self.display,
            "subset": self.subset,
            "corpus_sha256": self.corpus_sha256(),
            "corpus_lines": self._corpus_lines,
        }
        if self._files.is_zip:
            if self.archive_md5 is None:
                self.archive_md5 = file_digest(self.path, "md5")
            out["archive_md5"] = self.archive_md5
            out["expected_md5"] = self.expected_md5
        return out


def open_beir(
    target: str,
    *,
    data_dir: Path,
    beir_dirs: list[Path] | None = None,
    name: str | None = None,
    on_error: str = "fail",
    on_duplicate: str = "fail",
    download: bool = True,
) -> BeirSource:
    """Open a BEIR dataset by name (`scifact`, `cqadupstack:android`), resolving it as
    `resolve_beir_name` does.

    Raises:
        InputError, DatasetNotFoundError, ChecksumError: see `resolve_beir_name` and `BeirSource`.
    """
    base, _, subset = target.partition(":")
    entry: BeirDataset | None = get_beir_dataset(base)
    resolved = resolve_beir_name(base, data_dir=data_dir, beir_dirs=beir_dirs, download=download)
    key = entry.name if entry is not None else base
    source = BeirSource(
        resolved.path,
        name=name or (f"{key}-{subset}" if subset else key),
        subset=subset or None,
        on_error=on_error,
        on_duplicate=on_duplicate,
        expected_md5=entry.md5 if entry is not None else None,
        archive_md5=resolved.archive_md5,
    )
    for message in resolved.warnings:
        source.warn(message)
    return source
