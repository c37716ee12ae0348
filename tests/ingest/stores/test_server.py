"""ServerStore: API shape against qdrant-client's local mode, and server faults on loopback listeners.

Local mode is not an engine (it drops quantization and brute-forces), so nothing here measures quality.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.config import CollectionSpec
from ingest.errors import CollectionMismatchError, StoreError
from ingest.stores.base import SearchParams, VectorStore
from ingest.stores.server import ServerStore, redact_url

SECRET = "sk-test-3c1b9f0e-not-a-real-key"

pytestmark = pytest.mark.filterwarnings(
    "ignore:Local mode performs exact:UserWarning",
    "ignore:Api key is used with an insecure connection:UserWarning",
)


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def uuids(n: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{i}")) for i in range(n)]


@pytest.fixture
def memory_store() -> Iterator[ServerStore]:
    from qdrant_client import QdrantClient

    store = ServerStore(":memory:", client=QdrantClient(":memory:"), batch_size=7, parallel=2, poll_s=0.01)
    yield store
    store.close()


def test_api_shape_in_local_mode(memory_store: ServerStore) -> None:
    store = memory_store
    assert isinstance(store, VectorStore)
    spec = CollectionSpec(dim=24, quantization="binary", binary_encoding="two_bits", full_scan_threshold=10)
    assert store.ensure_collection("srv", spec) is True
    described = store.collection_spec("srv")
    assert (described["dim"], described["distance"]) == (24, "cosine")
    # Local mode keeps no quantization (nor optimizer settings): the store says where these values come from.
    assert (described["quantization"], described["binary_encoding"]) == ("binary", "two_bits")
    assert described["config_source"].startswith("local mode")

    vecs, ids = unit_rows(50, 24, 1) * 2.0, uuids(50)
    store.upsert("srv", ids, vecs, [{"i": i} for i in range(50)])  # 8 batches of <= 7, 2 in flight
    store.upsert("srv", ids, vecs, [{"i": i, "again": True} for i in range(50)])
    store.flush("srv")
    assert store.count("srv") == 50
    assert sorted(store.scroll_ids("srv")) == sorted(ids)
    got = store.retrieve("srv", [ids[3], str(uuid.uuid4()), ids[1]])
    assert [p.id for p in got] == [ids[3], ids[1]]
    assert got[0].vector is not None and got[0].vector.dtype == np.float32
    np.testing.assert_allclose(got[0].vector, vecs[3] / np.linalg.norm(vecs[3]), atol=1e-6)
    assert got[0].payload == {"i": 3, "again": True}

    hits = store.search("srv", vecs[:70:10], 3, SearchParams(hnsw_ef=64, rescore=True, oversampling=2.0))
    assert [row[0].id for row in hits] == ids[:70:10]
    assert all(len(row) == 3 for row in hits)

    assert store.get_metadata("srv") == {}
    store.set_metadata("srv", {"dataset": "a", "nested": {"x": 1}})
    store.set_metadata("srv", {"dataset": "b"})
    assert store.get_metadata("srv") == {"dataset": "b"}

    store.build_index("srv")  # local mode is green at once
    assert store.list_collections() == ["srv"]


def test_mismatch_and_recreate(memory_store: ServerStore) -> None:
    store = memory_store
    store.ensure_collection("m", CollectionSpec(dim=16))
    store.upsert("m", uuids(5), unit_rows(5, 16, 2), [{}] * 5)
    with pytest.raises(CollectionMismatchError) as err:
        store.ensure_collection("m", CollectionSpec(dim=32))
    assert "'m'" in str(err.value) and "dim: stored 16, requested 32" in str(err.value)
    assert "--recreate" in str(err.value)
    with pytest.raises(CollectionMismatchError, match="quantization: stored 'none', requested 'scalar'"):
        store.ensure_collection("m", CollectionSpec(dim=16, quantization="scalar"))
    assert store.count("m") == 5
    assert store.ensure_collection("m", CollectionSpec(dim=16)) is False
    assert store.ensure_collection("m", CollectionSpec(dim=32), recreate=True) is True
    assert store.count("m") == 0 and store.collection_spec("m")["dim"] == 32
    store.delete_collection("m")
    assert not store.collection_exists("m")


def test_a_bad_request_fails_at_once_without_retries(memory_store: ServerStore) -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match="reading collection 'nope' failed") as err:
        memory_store.collection_spec("nope")
    assert "attempts" not in str(err.value)
    assert time.monotonic() - started < 1.0


class Listener:
    """A loopback TCP server that misbehaves in one fixed way, counting the connections it gets."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.handle = handle
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        deadline = time.monotonic() + 60  # bounded, whatever the test does
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            self._held.append(conn)
            self.handle(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self.sock.close()


def drop(conn: socket.socket) -> None:
    conn.close()


def hang(conn: socket.socket) -> None:
    """Accept and never answer (the connection is closed when the listener stops)."""


def http_status(code: int, reason: str) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.settimeout(2)
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        answer.requests.append(data)  # type: ignore[attr-defined]
        body = b'{"status":{"error":"' + reason.encode() + b'"}}'
        conn.sendall(
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        conn.close()

    answer.requests = []  # type: ignore[attr-defined]
    return answer


@pytest.fixture
def listener() -> Iterator[Callable[[Callable[[socket.socket], None]], Listener]]:
    made: list[Listener] = []

    def make(handle: Callable[[socket.socket], None]) -> Listener:
        made.append(Listener(handle))
        return made[-1]

    yield make
    for item in made:
        item.close()


def rest_store(port: int, **kw: object) -> ServerStore:
    options: dict[str, object] = {"prefer_grpc": False, "timeout_s": 1.0, "max_retries": 3, "backoff_s": 0.01}
    options.update(kw)
    return ServerStore(f"http://127.0.0.1:{port}", SECRET, **options)  # type: ignore[arg-type]


def test_dropped_connections_are_retried_then_reported(
    listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    srv = listener(drop)
    store = rest_store(srv.port)
    with pytest.raises(StoreError) as err:
        store.ensure_collection("c", CollectionSpec(dim=8))
    store.close()
    text = str(err.value)
    assert f"http://127.0.0.1:{srv.port}" in text
    assert "kept dropping the connection" in text and "after 4 attempts" in text
    assert text.endswith("any proxy in between; --retries allows more attempts (now 3).")
    assert SECRET not in text and SECRET not in caplog.text and SECRET not in repr(store)
    assert srv.connections == 4  # one connection per attempt: each attempt really went out


def test_grpc_faults_name_the_grpc_port(listener: Callable[..., Listener]) -> None:
    srv = listener(drop)
    store = ServerStore(
        "http://127.0.0.1:1", SECRET, grpc_port=srv.port, timeout_s=1.0, max_retries=2, backoff_s=0.01
    )
    with pytest.raises(StoreError) as err:
        store.count("c")
    store.close()
    text = str(err.value)
    assert "http://127.0.0.1:1" in text and f"gRPC port {srv.port}" in text and "after 3 attempts" in text
    assert "UNAVAILABLE" in text and SECRET not in text


def test_unanswered_requests_time_out_and_are_retried(listener: Callable[..., Listener]) -> None:
    srv = listener(hang)
    store = rest_store(srv.port, max_retries=1)
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        store.list_collections()
    store.close()
    elapsed = time.monotonic() - started
    assert "after 2 attempts" in str(err.value) and "timeout 1s per request" in str(err.value)
    assert srv.connections == 2 and 1.5 < elapsed < 10


def test_server_errors_are_retried_but_auth_errors_are_not(listener: Callable[..., Listener]) -> None:
    unavailable = listener(http_status(503, "Service Unavailable"))
    store = rest_store(unavailable.port, max_retries=2)
    with pytest.raises(StoreError, match="after 3 attempts"):
        store.collection_exists("c")
    store.close()
    assert unavailable.connections == 3

    handler = http_status(401, "Unauthorized")
    refused = listener(handler)
    store = rest_store(refused.port)
    with pytest.raises(StoreError) as err:
        store.collection_exists("c")
    store.close()
    assert refused.connections == 1
    assert "not authorised" in str(err.value) and "QDRANT_API_KEY" in str(err.value)
    assert SECRET not in str(err.value)
    assert SECRET.encode() in handler.requests[0]  # the key was sent, just never shown


def test_redact_url_hides_credentials(tmp_path: Path) -> None:
    assert redact_url("https://user:pw@example.invalid:6333/x") == "https://example.invalid:6333/x"
    assert redact_url("http://127.0.0.1:6333") == "http://127.0.0.1:6333"


class RecordingQdrant:
    """A loopback HTTP stand-in for the few REST calls checked below: it answers like Qdrant and records
    each request body, to check what the real client sends (local mode ignores most of it)."""

    def __init__(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.calls: list[tuple[str, str, dict[str, object], dict[str, str]]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                calls.append((self.command, self.path.split("?")[0], body, dict(self.headers)))
                path = self.path.split("?")[0]
                if path.endswith("/exists"):
                    result: object = {"exists": False}
                elif path.endswith("/points/query/batch"):
                    result = [{"points": []} for _ in body.get("searches", [])]
                else:
                    result = True
                data = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_PATCH = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_requests_carry_deferred_indexing_quantization_and_search_params() -> None:
    import json

    fake = RecordingQdrant()
    store = rest_store(fake.port, max_retries=0)
    try:
        spec = CollectionSpec(
            dim=24, quantization="binary", binary_encoding="two_bits", full_scan_threshold=10, on_disk=True
        )
        store.ensure_collection("srv", spec, defer_index=True)
        store.set_metadata("srv", {"dataset": "scifact"})
        store.search("srv", unit_rows(2, 24, 3), 5, SearchParams(hnsw_ef=32, rescore=True, oversampling=3.0))
        store.search("srv", unit_rows(1, 24, 4), 5, SearchParams(exact=True))
    finally:
        store.close()
        fake.close()
    by_verb = {(verb, path): (body, headers) for verb, path, body, headers in fake.calls}
    create, headers = by_verb[("PUT", "/collections/srv")]
    assert headers.get("api-key") == SECRET
    assert create["vectors"] == {"size": 24, "distance": "Cosine", "on_disk": True}
    assert create["optimizers_config"] == {"indexing_threshold": 0}
    assert create["hnsw_config"] == {"m": 16, "ef_construct": 100, "full_scan_threshold": 10}
    assert create["quantization_config"] == {"binary": {"always_ram": True, "encoding": "two_bits"}}
    assert json.loads(create["metadata"]["static_ingest_spec"])["binary_encoding"] == "two_bits"  # type: ignore[index]
    patch = by_verb[("PATCH", "/collections/srv")][0]
    assert json.loads(patch["metadata"]["static_ingest_manifest"]) == {"dataset": "scifact"}  # type: ignore[index]
    searches = [
        body["searches"] for verb, path, body, _ in fake.calls if path.endswith("/points/query/batch")
    ]
    first, second = searches
    assert len(first) == 2 and first[0]["limit"] == 5 and len(first[0]["query"]["nearest"]) == 24  # type: ignore[index]
    assert first[0]["params"] == {  # type: ignore[index]
        "hnsw_ef": 32,
        "exact": False,
        "quantization": {"rescore": True, "oversampling": 3.0},
    }
    assert second[0]["params"] == {"exact": True, "quantization": {"ignore": True}}  # type: ignore[index]
