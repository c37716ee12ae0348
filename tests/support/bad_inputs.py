"""Builders of bad inputs for the ingest CLI: corpora, Parquet files, zips, TOML files, loopback servers.

The reliability tests (`tests/ingest/test_bad_inputs.py`) build their inputs with these, and so does
`python -m benchmarks.bad_inputs`, which runs the same cases through the CLI and prints what a person
sees. Each builder writes only under the path it is given (or binds loopback sockets) and returns it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

NFCORPUS_MD5 = "a89dba18a62ef92f7d323ec890a0d38d"
HUGE_DOC_CHARS = 10_000_000
# The corpus of the damaged archives: 400 documents of a few hundred bytes.
DOCS = [
    {"_id": f"d{i}", "title": f"Title {i}", "text": f"some words of document number {i} " * 8}
    for i in range(400)
]


def doc(i: int, **fields: Any) -> dict[str, Any]:
    """A small valid BEIR corpus record `d<i>`; `fields` override or add keys."""
    record: dict[str, Any] = {
        "_id": f"d{i}",
        "title": f"Title {i}",
        "text": f"document number {i} about cells",
    }
    record.update(fields)
    return record


def write_corpus(folder: Path, lines: Sequence[dict[str, Any] | str | bytes]) -> Path:
    """Write `folder/corpus.jsonl` (dicts as JSON, str as text, bytes as they are) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = [
        line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
        for line in lines
    ]
    path = folder / "corpus.jsonl"
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def write_huge_corpus(folder: Path, chars: int = HUGE_DOC_CHARS) -> Path:
    """A corpus of three documents, the middle one (`huge`) exactly `chars` characters of words."""
    vocab = ("protein", "cell", "cancer", "vitamin", "diet", "study", "risk", "effect")
    sentence = " ".join(f"{vocab[i % len(vocab)]}{i % 997}" for i in range(1000)) + ". "
    text = (sentence * (chars // len(sentence) + 1))[:chars]
    return write_corpus(folder, [doc(0), {"_id": "huge", "title": "Huge", "text": text}, doc(2)])


def write_parquet(path: Path, columns: dict[str, list[Any]]) -> Path:
    """Write a Parquet file of the given columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def write_escaping_zip(path: Path, entry: str = "../escape.txt") -> Path:
    """A BEIR-looking zip (`toy/corpus.jsonl`) with one more entry that would land outside its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("toy/corpus.jsonl", json.dumps(doc(1)) + "\n")
        zf.writestr(entry, "escaped\n")
    return path


def write_collections_config(path: Path, collections: Sequence[dict[str, Any]]) -> Path:
    """A TOML file with one `[[collections]]` table per dict."""

    def value(v: Any) -> str:
        return json.dumps(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

    tables = ["[[collections]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in c.items()) for c in collections]
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def write_beir_with_qrels(folder: Path, missing: int = 5) -> Path:
    """A BEIR folder whose test qrels judge `missing` documents that are not in the corpus."""
    write_corpus(folder, [doc(i) for i in range(3)])
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "cells?"}) + "\n", encoding="utf-8"
    )
    (folder / "qrels").mkdir(exist_ok=True)
    rows = ["query-id\tcorpus-id\tscore", "q1\td1\t1"] + [f"q1\tgone{i}\t1" for i in range(missing)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def free_port() -> int:
    """A loopback TCP port with nothing listening on it (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_bytes(body: bytes) -> Iterator[str]:
    """Serve `body` for every GET on a loopback HTTP server; yields its base URL, stops on exit."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def hold_collection_lock(data_dir: Path, name: str) -> Iterator[None]:
    """Create collection `name` under `data_dir` and keep it open for writing (its lock held)."""
    from ingest.config import CollectionSpec
    from ingest.stores.edge import EdgeStore

    store = EdgeStore(data_dir / "qdrant")
    try:
        store.ensure_collection(name, CollectionSpec(dim=64))
        yield
    finally:
        store.close()


# -- damaged archives, Parquet files and saved datasets -------------------------------------------------


def beir_zip(folder: Path, name: str = "toy") -> Path:
    """A deflated BEIR zip `<name>.zip` holding `<name>/corpus.jsonl` (`DOCS`), queries and qrels."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.zip"
    corpus = "".join(json.dumps(d) + "\n" for d in DOCS)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}/corpus.jsonl", corpus)
        zf.writestr(f"{name}/queries.jsonl", json.dumps({"_id": "q1", "text": "words"}) + "\n")
        zf.writestr(f"{name}/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return path


def member_span(path: Path, member: str) -> tuple[int, int]:
    """Return (offset, length) of a member's compressed data inside the archive."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def flip_bytes(path: Path, offset: int, count: int) -> None:
    """Invert `count` bytes of a file from `offset` on."""
    raw = bytearray(path.read_bytes())
    for i in range(offset, offset + count):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def crc_damaged_zip(folder: Path) -> Path:
    """`folder/toy.zip`, whose directory is intact but whose corpus data fails its CRC check.

    The member is stored (not deflated) so changed bytes decode fine and only the CRC notices.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("toy/corpus.jsonl", "".join(json.dumps(d) + "\n" for d in DOCS))
    offset, _ = member_span(path, "toy/corpus.jsonl")
    raw = bytearray(path.read_bytes())
    i = raw.index(b"document number 7", offset)
    raw[i : i + 8] = b"DOCUMENT"  # still valid JSON: only the CRC can tell
    path.write_bytes(bytes(raw))
    return path


def truncated_member_zip(folder: Path) -> Path:
    """`folder/toy.zip`, whose directory says the corpus member is half its real compressed size (a cut
    copy)."""
    path = beir_zip(folder)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("toy/corpus.jsonl")
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    # The first central directory entry is the corpus: its compressed size field is at offset 20.
    assert raw[central + 46 : central + 46 + len(b"toy/corpus.jsonl")] == b"toy/corpus.jsonl"
    raw[central + 20 : central + 24] = struct.pack("<I", info.compress_size // 2)
    path.write_bytes(bytes(raw))
    return path


def broken_stream_zip(folder: Path) -> Path:
    """`folder/toy.zip`, whose deflated corpus data is garbled at its start (the block header)."""
    path = beir_zip(folder)
    offset, _ = member_span(path, "toy/corpus.jsonl")
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 4] = b"\xff" * 4
    path.write_bytes(bytes(raw))
    return path


def good_parquet(path: Path, rows: int = 5000) -> Path:
    """A Parquet corpus (`id`, `text`) in row groups of 1,000 rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id": [str(i) for i in range(rows)], "text": [f"row {i} " * 20 for i in range(rows)]})
    pq.write_table(table, path, row_group_size=1000)
    return path


def damage_row_group(path: Path, group: int) -> Path:
    """Garble the first page header of a row group's text column (the footer stays readable)."""
    import pyarrow.parquet as pq

    column = pq.ParquetFile(path).metadata.row_group(group).column(1)
    flip_bytes(path, column.data_page_offset, 12)
    return path


def empty_parquet(path: Path) -> Path:
    """A valid Parquet file with the columns `id` and `text` and no row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), path)
    return path


def saved_dataset(folder: Path, rows: int = 3000) -> Path:
    """A Hugging Face dataset (`id`, `text`) written by `save_to_disk` into `folder`."""
    import datasets

    data = {"id": [str(i) for i in range(rows)], "text": [f"text {i} " * 10 for i in range(rows)]}
    datasets.disable_progress_bars()  # a listing of messages, not of progress
    datasets.Dataset.from_dict(data).save_to_disk(str(folder))
    return folder


def damaged_copy(saved: Path, dest: Path, damage: str) -> Path:
    """Copy a saved dataset to `dest` and damage its arrow file: `truncated` (half of it), `garbage` (its
    first 64 bytes zeroed) or `missing` (deleted)."""
    shutil.copytree(saved, dest)
    arrow = next(dest.glob("*.arrow"))
    raw = arrow.read_bytes()
    if damage == "truncated":
        arrow.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        arrow.write_bytes(b"\x00" * 64 + raw[64:])
    else:
        arrow.unlink()
    return dest


def write_toy_beir(folder: Path, docs: int = 40) -> Path:
    """A small complete BEIR folder: `docs` documents, a query per five documents, test qrels."""
    write_corpus(folder, [doc(i) for i in range(docs)])
    queries = [{"_id": f"q{i}", "text": f"document number {i} about cells"} for i in range(0, docs, 5)]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    rows = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(0, docs, 5)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def write_big_corpus(folder: Path, docs: int = 3000, text_chars: int = 3000, seed: int = 0) -> Path:
    """A BEIR corpus of `docs` documents of about `text_chars` characters of seeded random words each
    (random so that the engine's payload compression cannot shrink them): enough to fill a small tmpfs."""
    import random

    rng = random.Random(seed)
    vocab = ["protein", "cell", "cancer", "vitamin", "diet", "study", "risk", "effect", "blood", "gene"]
    vocab += [
        f"{a}{b}" for a in ("anti", "pro", "meta", "endo") for b in ("lysis", "genic", "toxic", "tropic")
    ]
    per_doc = max(1, text_chars // 10)  # words of about 9 characters and a space
    stems = rng.choices(vocab, k=docs * per_doc)
    numbers = rng.choices(range(1000), k=docs * per_doc)
    words = [f"{w}{n}" for w, n in zip(stems, numbers, strict=True)]
    lines = [
        {"_id": f"d{i}", "title": "", "text": " ".join(words[i * per_doc : (i + 1) * per_doc])}
        for i in range(docs)
    ]
    return write_corpus(folder, lines)


# -- file systems and locks -----------------------------------------------------------------------------


class MountError(RuntimeError):
    """This process may not mount (not root, or no CAP_SYS_ADMIN)."""


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise MountError(f"`{' '.join(cmd)}` failed: {done.stderr.strip() or done.returncode}")


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `where` (created if needed) and unmount it on exit.

    Raises:
        MountError: mounting is not permitted here.
    """
    where.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)])
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def resize_tmpfs(where: Path, size: str) -> None:
    """Grow (or shrink) a tmpfs mounted by `small_tmpfs`; its files stay."""
    _run(["mount", "-o", f"remount,size={size}", str(where)])


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """Make the directory `path` read-only for the duration, as a person meets it: a read-only bind
    mount of it onto itself when this process may mount (root with CAP_SYS_ADMIN), else `chmod -R a-w`
    (which stops a writer that is not root). Yields `"mount"` or `"chmod"`.

    Raises:
        MountError: running as root without mount rights (chmod would stop nothing).
    """
    try:
        _run(["mount", "--bind", str(path), str(path)])
    except MountError:
        if os.geteuid() == 0:
            raise
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")] if not p.is_symlink()}
        for p, mode in modes.items():
            p.chmod(mode & ~0o222)
        try:
            yield "chmod"
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    try:
        _run(["mount", "-o", "remount,bind,ro", str(path)])
        yield "mount"
    finally:
        subprocess.run(["umount", str(path)], check=False)


@contextlib.contextmanager
def hold_writer_lock(data_dir: Path, name: str) -> Iterator[None]:
    """Hold the writer's lock of an existing embedded collection, as a running ingest does."""
    from ingest.stores.lock import LOCK_FILE_NAME, CollectionLock

    lock = CollectionLock(data_dir / "qdrant" / name / LOCK_FILE_NAME, name)
    lock.acquire(exclusive=True)
    try:
        yield
    finally:
        lock.release()
