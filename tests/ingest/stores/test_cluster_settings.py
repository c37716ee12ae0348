"""Qdrant cluster settings of a collection spec (`shard_number`, `replication_factor`,
`write_consistency_factor`): read from the TOML file, sent by the server backend on create (the REST
request a loopback stand-in receives, and the kwargs qdrant-client's local mode gets), compared on
reuse, and ignored with a warning by the embedded engine.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.config import CollectionSpec, build_config
from ingest.errors import CollectionMismatchError, InputError
from ingest.stores.edge import EdgeStore
from ingest.stores.server import ServerStore

pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")

CLUSTER = {"shard_number": 3, "replication_factor": 2, "write_consistency_factor": 2}


class FakeQdrant:
    """A loopback HTTP stand-in answering like a Qdrant server for create / exists / get collection.

    It records each request body and reports a collection `name` as created with `params` (the cluster
    settings a real cluster reports under `config.params`), so the comparison on reuse is the server path.
    """

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        calls, existing = self.calls, existing or {}

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                calls.append((self.command, path, body))
                name = path.split("/")[2] if path.count("/") >= 2 else ""
                result: object = True
                if path.endswith("/exists"):
                    result = {"exists": name in existing}
                elif self.command == "GET" and name in existing:
                    result = _collection_info(existing[name])
                data = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_PATCH = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def store(self) -> ServerStore:
        return ServerStore(f"http://127.0.0.1:{self.port}", prefer_grpc=False, max_retries=0, timeout_s=5)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _collection_info(params: dict[str, Any]) -> dict[str, Any]:
    """A `GET /collections/{name}` result of a 16-d float collection with the given cluster params."""
    return {
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": 0,
        "points_count": 0,
        "segments_count": 1,
        "config": {
            "params": {"vectors": {"size": 16, "distance": "Cosine"}, **params},
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10},
            "optimizer_config": {
                "deleted_threshold": 0.2,
                "vacuum_min_vector_number": 1000,
                "default_segment_number": 0,
                "indexing_threshold": 0,
                "flush_interval_sec": 5,
            },
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
        },
        "payload_schema": {},
    }


@pytest.fixture
def fake_qdrant() -> Iterator[Any]:
    made: list[FakeQdrant] = []

    def make(existing: dict[str, dict[str, Any]] | None = None) -> FakeQdrant:
        made.append(FakeQdrant(existing))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def test_toml_collections_carry_cluster_settings_and_bad_ones_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(
        "[[collections]]\ndim = 64\nquantization = 'binary'\n"
        "shard_number = 6\nreplication_factor = 2\nwrite_consistency_factor = 2\n"
        "[[collections]]\ndim = 32\n",
        encoding="utf-8",
    )
    first, second = build_config(path).collections
    assert (first.shard_number, first.replication_factor, first.write_consistency_factor) == (6, 2, 2)
    assert (second.shard_number, second.replication_factor, second.write_consistency_factor) == (
        None,
        None,
        None,
    )

    path.write_text("[[collections]]\ndim = 64\nwrite_consistency_factor = 2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"write_consistency_factor.*at most replication_factor = 1") as err:
        build_config(path)
    assert "cluster.toml" in str(err.value) and "\n" not in str(err.value)
    path.write_text("[[collections]]\ndim = 64\nshard_number = 0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"shard_number: 0 is not accepted"):
        build_config(path)


def test_server_create_request_carries_the_cluster_settings(fake_qdrant: Any) -> None:
    fake = fake_qdrant()
    store = fake.store()
    try:
        assert store.ensure_collection("sharded", CollectionSpec(dim=16, **CLUSTER)) is True
        assert store.ensure_collection("plain", CollectionSpec(dim=16)) is True
    finally:
        store.close()
    creates = {path: body for verb, path, body in fake.calls if verb == "PUT"}
    sharded, plain = creates["/collections/sharded"], creates["/collections/plain"]
    assert {k: sharded[k] for k in CLUSTER} == CLUSTER
    assert sharded["vectors"] == {"size": 16, "distance": "Cosine", "on_disk": False}
    assert json.loads(sharded["metadata"]["static_ingest_spec"])["shard_number"] == 3
    # Unset: not sent, so the server's defaults apply (1 shard standalone, one per node in a cluster).
    assert not set(CLUSTER) & set(plain)


def test_server_reuse_compares_the_cluster_settings_the_server_reports(fake_qdrant: Any) -> None:
    fake = fake_qdrant({"c": CLUSTER})
    store = fake.store()
    try:
        assert store.collection_spec("c")["shard_number"] == 3
        assert store.ensure_collection("c", CollectionSpec(dim=16, **CLUSTER)) is False
        # Left unset in the request: whatever the server chose is accepted.
        assert store.ensure_collection("c", CollectionSpec(dim=16)) is False
        with pytest.raises(CollectionMismatchError) as err:
            store.ensure_collection("c", CollectionSpec(dim=16, shard_number=6, replication_factor=2))
    finally:
        store.close()
    assert "shard_number: stored 3, requested 6" in str(err.value)
    assert "replication_factor" not in str(err.value)
    assert not [call for call in fake.calls if call[0] == "PUT"], "a mismatch must not touch the server"


def test_local_mode_receives_the_settings_and_compares_them_as_recorded() -> None:
    from qdrant_client import QdrantClient

    client = QdrantClient(":memory:")
    sent: list[dict[str, Any]] = []
    create = client.create_collection

    def recording_create(collection_name: str, **kwargs: Any) -> bool:
        sent.append(kwargs)
        return create(collection_name, **kwargs)

    client.create_collection = recording_create  # type: ignore[method-assign]
    store = ServerStore(":memory:", client=client)
    try:
        store.ensure_collection("c", CollectionSpec(dim=8, **CLUSTER))
        assert {k: sent[0][k] for k in CLUSTER} == CLUSTER
        # Local mode keeps none of them (params.shard_number is None there): the recorded spec answers.
        assert client.get_collection("c").config.params.shard_number is None
        spec = store.collection_spec("c")
        assert {k: spec[k] for k in CLUSTER} == CLUSTER
        assert store.ensure_collection("c", CollectionSpec(dim=8, **CLUSTER)) is False
        with pytest.raises(CollectionMismatchError, match="write_consistency_factor: stored 2, requested 1"):
            store.ensure_collection(
                "c", CollectionSpec(dim=8, shard_number=3, replication_factor=2, write_consistency_factor=1)
            )
        assert store.ensure_collection("c", CollectionSpec(dim=8, shard_number=1), recreate=True) is True
        assert sent[-1]["shard_number"] == 1 and sent[-1]["replication_factor"] is None
    finally:
        store.close()


def test_embedded_engine_ignores_cluster_settings_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ingest.stores.base"), EdgeStore(tmp_path / "q") as store:
        assert store.ensure_collection("c", CollectionSpec(dim=8, **CLUSTER)) is True
        assert store.ensure_collection("c", CollectionSpec(dim=8, shard_number=6)) is False
        assert store.ensure_collection("c", CollectionSpec(dim=8)) is False
        assert "shard_number" not in store.collection_spec("c")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0] == (
        "collection 'c': shard_number=3, replication_factor=2, write_consistency_factor=2 ignored: the edge "
        "backend keeps one local shard; these settings apply on a Qdrant server (--qdrant-url)"
    )
    assert warnings[1].startswith("collection 'c': shard_number=6 ignored")
