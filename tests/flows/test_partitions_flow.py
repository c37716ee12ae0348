"""The partitioned ingest flow on a Dask LocalCluster (loopback) against the CLI, on a slice of NFCorpus.

Every test compares whole point sets (ids, vectors bit for bit, payloads) of every collection with
those `python -m ingest` (`run_ingest`) stores from the same options.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.options import IngestConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BEIR_DIR = PROJECT_ROOT.parent / "shared" / "beir"
LIMIT = 900
BATCH_DOCS = 150  # → 6 partitions
MODEL = "random-64"  # random weights, 64-d: d64 × {none, binary, scalar}

pytestmark = pytest.mark.skipif(
    not (BEIR_DIR / "nfcorpus.zip").is_file(), reason="needs the offline NFCorpus in ../shared/beir"
)

Snapshot = dict[str, dict[str, tuple[np.ndarray, dict[str, Any]]]]


def options(data_dir: Path, **extra: Any) -> IngestConfig:
    return IngestConfig(
        model=MODEL,
        data_dir=data_dir,
        beir_dirs=[BEIR_DIR],
        limit=LIMIT,
        batch_docs=BATCH_DOCS,
        **extra,
    )


def snapshot(data_dir: Path, names: list[str]) -> Snapshot:
    """Every point of every collection: id → (vector, payload)."""
    from ingest.stores import open_store

    out: Snapshot = {}
    with open_store(data_dir=data_dir, qdrant_url=None) as store:
        for name in names:
            ids = sorted(store.scroll_ids(name))
            out[name] = {p.id: (np.asarray(p.vector), p.payload) for p in store.retrieve(name, ids)}
    return out


def assert_same_points(got: Snapshot, want: Snapshot) -> None:
    assert set(got) == set(want)
    for name, points in want.items():
        assert set(got[name]) == set(points), name
        for point_id, (vector, payload) in points.items():
            assert np.array_equal(got[name][point_id][0], vector), (name, point_id)
            assert got[name][point_id][1] == payload, (name, point_id)


@pytest.fixture(scope="module")
def cli_points(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """The CLI's points for the slice."""
    from ingest.pipeline import run_ingest

    data_dir = tmp_path_factory.mktemp("cli")
    summary = run_ingest("nfcorpus", options(data_dir), progress=False)
    assert summary.verified
    return snapshot(data_dir, sorted(summary.points))


@pytest.fixture(scope="module")
def dask_cluster(prefect_api_url: str) -> Iterator[Any]:
    """Two single-threaded Dask worker processes on loopback, reporting to the test Prefect server."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        env={"PREFECT_API_URL": prefect_api_url},
    ) as cluster:
        yield cluster


def run_flow(data_dir: Path, address: str) -> Any:
    from flows.ingest_flow import ingest_corpus

    return ingest_corpus(
        target="nfcorpus",
        options=options(data_dir),
        task_runner="dask",
        dask_address=address,
        return_state=True,
    )


def test_dask_flow_stores_the_cli_points_and_a_rerun_changes_nothing(
    dask_cluster: Any, cli_points: Snapshot, tmp_path: Path
) -> None:
    state = run_flow(tmp_path, dask_cluster.scheduler_address)
    assert state.is_completed(), state.message
    first = state.result()
    assert first["verified"] is True and first["docs"] == LIMIT
    assert first["encoded_docs"] == LIMIT
    assert_same_points(snapshot(tmp_path, sorted(first["points"])), cli_points)

    again = run_flow(tmp_path, dask_cluster.scheduler_address)
    assert again.is_completed(), again.message
    second = again.result()
    assert second["resumed_batches"] == LIMIT // BATCH_DOCS
    assert second["encoded_docs"] == 0 and second["added"] == 0 and second["changed"] == 0
    assert_same_points(snapshot(tmp_path, sorted(second["points"])), cli_points)


def test_a_worker_killed_mid_run_still_ends_with_the_exact_points(
    dask_cluster: Any, cli_points: Snapshot, tmp_path: Path
) -> None:
    from distributed import Client

    killed: list[int] = []

    def kill_a_busy_worker(stop: threading.Event) -> None:
        with Client(dask_cluster.scheduler_address, timeout=30) as client:
            while not stop.is_set():
                busy = [addr for addr, keys in client.processing().items() if keys]
                if busy:
                    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.05)

    stop = threading.Event()
    killer = threading.Thread(target=kill_a_busy_worker, args=(stop,), daemon=True)
    killer.start()
    try:
        state = run_flow(tmp_path, dask_cluster.scheduler_address)
    finally:
        stop.set()
        killer.join(timeout=30)
    assert killed, "no worker was busy while the flow ran"
    assert state.is_completed(), state.message
    result = state.result()
    assert result["verified"] is True and result["docs"] == LIMIT
    assert_same_points(snapshot(tmp_path, sorted(result["points"])), cli_points)


def test_entry_point_with_a_temporary_local_cluster(cli_points: Snapshot, tmp_path: Path) -> None:
    """`python -m flows.ingest_flow nfcorpus --task-runner dask --data-dir D` as written (plus the slice)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["STATIC_INGEST_BEIR_DIR"] = str(BEIR_DIR)
    cmd = [sys.executable, "-m", "flows.ingest_flow", "nfcorpus", "--task-runner", "dask"]
    cmd += ["--data-dir", str(tmp_path), "--limit", str(LIMIT), "--batch-docs", str(BATCH_DOCS)]
    cmd += ["--model", MODEL]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "verified    yes" in done.stdout + done.stderr
    assert_same_points(snapshot(tmp_path, sorted(cli_points)), cli_points)


def test_unknown_task_runner_is_one_line_exit_2(tmp_path: Path) -> None:
    from flows.ingest_flow import main

    assert main(["nfcorpus", "--data-dir", str(tmp_path), "--dask-address", "tcp://127.0.0.1:1"]) == 2
    assert not any(tmp_path.iterdir())


# -- server backend: partition tasks write straight to Qdrant ----------------------------------------

SERVER_URL = "http://memory.invalid:6333"


def server_snapshot(store: Any, names: list[str]) -> Snapshot:
    return {
        name: {
            p.id: (np.asarray(p.vector), p.payload)
            for p in store.retrieve(name, sorted(store.scroll_ids(name)))
        }
        for name in names
    }


def test_server_backend_tasks_upsert_the_cli_points_themselves(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API shape only: qdrant-client's memory mode stands in for the server, shared in this process by
    every connection the flow and its tasks open (one runner thread: memory mode is not thread-safe).
    Every upsert must come from a task's thread, none from the flow's; the points equal the CLI's."""
    from qdrant_client import QdrantClient

    import ingest.stores
    from flows.ingest_flow import ingest_corpus
    from ingest.pipeline import run_ingest
    from ingest.stores.server import ServerStore

    upsert_threads: list[int] = []

    class SharedServer(ServerStore):
        """One memory-mode client behind every connection; closing a connection keeps it."""

        def upsert(self, name: str, ids: list[str], vectors: Any, payloads: list[dict[str, Any]]) -> None:
            upsert_threads.append(threading.get_ident())
            super().upsert(name, ids, vectors, payloads)

        def close(self) -> None:
            pass

    flow_client, cli_client = QdrantClient(":memory:"), QdrantClient(":memory:")

    def open_shared(**kwargs: Any) -> ServerStore:
        assert kwargs["qdrant_url"] == SERVER_URL
        return SharedServer(SERVER_URL, client=flow_client)

    cli = run_ingest(
        "nfcorpus",
        options(tmp_path / "cli", qdrant_url=SERVER_URL),
        progress=False,
        store=ServerStore(SERVER_URL, client=cli_client),
    )
    assert cli.verified
    names = sorted(cli.points)
    want = server_snapshot(ServerStore(SERVER_URL, client=cli_client), names)

    monkeypatch.setattr(ingest.stores, "open_store", open_shared)
    flow_options = options(tmp_path / "flow", qdrant_url=SERVER_URL, workers=1)
    state = ingest_corpus(target="nfcorpus", options=flow_options, task_runner="local", return_state=True)
    assert state.is_completed(), state.message
    first = state.result()
    assert first["verified"] is True and first["encoded_docs"] == LIMIT
    assert upsert_threads and threading.get_ident() not in upsert_threads
    got = server_snapshot(SharedServer(SERVER_URL, client=flow_client), names)
    assert_same_points(got, want)
    assert all("doc_hash" in payload for _, payload in got[names[0]].values())

    upsert_threads.clear()
    again = ingest_corpus(target="nfcorpus", options=flow_options, task_runner="local", return_state=True)
    assert again.is_completed(), again.message
    second = again.result()
    assert second["encoded_docs"] == 0 and second["added"] == 0 and second["changed"] == 0
    assert not upsert_threads
    assert_same_points(server_snapshot(SharedServer(SERVER_URL, client=flow_client), names), want)
    flow_client.close()
    cli_client.close()
