"""Builders of bad inputs for the ingest CLI: corpora, Parquet files, zips, TOML files, loopback servers.

The reliability tests (`tests/ingest/test_bad_inputs.py`) build their inputs with these, and so does
`python -m benchmarks.bad_inputs`, which runs the same cases through the CLI and prints what a person
sees. Each builder writes only under the path it is given (or binds loopback sockets) and returns it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

NFCORPUS_MD5 = "a89dba18a62ef92f7d323ec890a0d38d"
HUGE_DOC_CHARS = 10_000_000


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
