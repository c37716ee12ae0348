"""EdgeStore against the real qdrant-edge engine: round trips, locking, mismatches, quantization, HNSW."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.config import CollectionSpec
from ingest.errors import CollectionMismatchError, InputError, StoreError
from ingest.stores import open_store
from ingest.stores.base import SearchParams, VectorStore
from ingest.stores.edge import EdgeStore
from ingest.stores.server import ServerStore


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def uuids(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)]


def top_ids(hits: list[list[object]]) -> list[list[str]]:
    return [[h.id for h in row] for row in hits]  # type: ignore[attr-defined]


def recall(got: list[list[str]], want: list[list[str]]) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want, strict=True)]))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path / "qdrant")
    yield s
    s.close()


def test_round_trip_ids_vectors_payloads(store: EdgeStore) -> None:
    assert isinstance(store, VectorStore)
    dim, n = 48, 400
    raw = np.random.default_rng(1).standard_normal((n, dim)).astype(np.float32) * 3.0  # not normalised
    ids = uuids(n)
    payloads = [
        {"doc_id": f"d{i}", "chunk_no": i % 3, "text": "naïve café ✓", "meta": {"k": [i, None]}}
        for i in range(n)
    ]
    assert store.ensure_collection("rt", CollectionSpec(dim=dim)) is True
    store.upsert("rt", ids, raw, payloads)
    store.flush("rt")

    assert store.count("rt") == n
    assert sorted(store.scroll_ids("rt")) == sorted(ids)
    asked = [ids[5], str(uuid.uuid4()), ids[0]]  # a missing id in the middle is left out, order kept
    got = store.retrieve("rt", asked)
    assert [p.id for p in got] == [ids[5], ids[0]]
    for p, i in zip(got, (5, 0), strict=True):
        assert p.vector is not None and p.vector.dtype == np.float32
        np.testing.assert_allclose(p.vector, raw[i] / np.linalg.norm(raw[i]), atol=1e-6)
        assert p.payload == payloads[i]
    assert store.retrieve("rt", [ids[1]], with_vectors=False)[0].vector is None

    hits = store.search("rt", raw[:3], 4, SearchParams(exact=True))
    assert [row[0].id for row in hits] == ids[:3]
    assert hits[0][0].payload["doc_id"] == "d0"
    assert abs(hits[0][0].score - 1.0) < 1e-5


def test_upsert_twice_keeps_count_and_updates(store: EdgeStore) -> None:
    vecs, ids = unit_rows(300, 32, 2), uuids(300)
    store.ensure_collection("twice", CollectionSpec(dim=32, quantization="binary"))
    store.upsert("twice", ids, vecs, [{"v": 1}] * 300)
    store.upsert("twice", ids, vecs, [{"v": 2}] * 300)
    assert store.count("twice") == 300
    assert store.retrieve("twice", [ids[7]])[0].payload == {"v": 2}


def test_mismatch_leaves_collection_untouched_and_recreate_works(store: EdgeStore) -> None:
    vecs, ids = unit_rows(200, 32, 3), uuids(200)
    store.ensure_collection("mm", CollectionSpec(dim=32, quantization="binary"))
    store.upsert("mm", ids, vecs, [{}] * 200)

    with pytest.raises(CollectionMismatchError) as dim_err:
        store.ensure_collection("mm", CollectionSpec(dim=64, quantization="binary"))
    text = str(dim_err.value)
    assert "'mm'" in text and "dim: stored 32, requested 64" in text and "--recreate" in text
    with pytest.raises(CollectionMismatchError, match="quantization: stored 'binary', requested 'none'"):
        store.ensure_collection("mm", CollectionSpec(dim=32, quantization="none"))
    with pytest.raises(
        CollectionMismatchError, match="binary_encoding: stored 'one_bit', requested 'two_bits'"
    ):
        store.ensure_collection(
            "mm", CollectionSpec(dim=32, quantization="binary", binary_encoding="two_bits")
        )
    assert store.count("mm") == 200
    assert store.collection_spec("mm")["dim"] == 32
    assert store.ensure_collection("mm", CollectionSpec(dim=32, quantization="binary")) is False

    assert store.ensure_collection("mm", CollectionSpec(dim=64), recreate=True) is True
    spec = store.collection_spec("mm")
    assert (spec["dim"], spec["quantization"], spec["points_count"]) == (64, "none", 0)


def test_recreate_rebuilds_a_damaged_shard(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    with EdgeStore(root) as s:
        s.ensure_collection("dmg", CollectionSpec(dim=8))
        s.upsert("dmg", uuids(3), unit_rows(3, 8, 10), [{}] * 3)
    (root / "dmg" / "shard" / "edge_config.json").write_text("{not json", encoding="utf-8")
    with EdgeStore(root) as s:
        with pytest.raises(StoreError, match="pass --recreate"):
            s.ensure_collection("dmg", CollectionSpec(dim=8))
        # The message's advice works: recreate does not need to open the damaged shard first.
        assert s.ensure_collection("dmg", CollectionSpec(dim=8), recreate=True) is True
        assert s.count("dmg") == 0 and s.collection_spec("dmg")["dim"] == 8


def test_engine_reports_quantization_and_index_config(store: EdgeStore) -> None:
    store.ensure_collection(
        "sq",
        CollectionSpec(
            dim=16, quantization="scalar", scalar_quantile=0.95, always_ram=False, hnsw_m=8, on_disk=True
        ),
    )
    bq_spec = CollectionSpec(
        dim=16, quantization="binary", binary_encoding="two_bits", full_scan_threshold=None
    )
    store.ensure_collection("bq", bq_spec, defer_index=False)
    store.ensure_collection("dflt", CollectionSpec(dim=16))
    assert store.collection_spec("dflt")["full_scan_threshold"] == 10  # the spec's default: HNSW is measured
    sq, bq = store.collection_spec("sq"), store.collection_spec("bq")
    assert (sq["quantization"], sq["scalar_quantile"], sq["always_ram"], sq["hnsw_m"], sq["on_disk"]) == (
        "scalar",
        0.95,
        False,
        8,
        True,
    )
    assert (bq["quantization"], bq["binary_encoding"], bq["full_scan_threshold"]) == (
        "binary",
        "two_bits",
        10_000,
    )
    assert sq["wal"] is False and sq["indexing_threshold_kb"] == 0 and bq["indexing_threshold_kb"] == 1
    assert store.list_collections() == ["bq", "dflt", "sq"]
    store.upsert("sq", uuids(50), unit_rows(50, 16, 4), [{}] * 50)
    store.build_index("sq")
    # build_index re-opens the shard with a new optimizer setting; every other setting must survive.
    after = store.collection_spec("sq")
    assert (
        after["on_disk"] is True and after["scalar_quantile"] == 0.95 and after["indexing_threshold_kb"] == 1
    )


def test_manifest_is_atomic_json_beside_the_shard(store: EdgeStore) -> None:
    store.ensure_collection("man", CollectionSpec(dim=8))
    assert store.get_metadata("man") == {}
    store.set_metadata("man", {"dataset": "x", "points": 1})
    store.set_metadata("man", {"dataset": "y"})
    assert store.get_metadata("man") == {"dataset": "y"}
    coll_dir = store.root / "man"
    assert json.loads((coll_dir / "manifest.json").read_text()) == {"dataset": "y"}
    assert sorted(p.name for p in coll_dir.iterdir()) == ["ingest.lock", "manifest.json", "shard"]
    assert not list((coll_dir / "shard").glob("*manifest*"))


def test_reopen_keeps_points_index_and_manifest(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    with EdgeStore(root) as s:
        s.ensure_collection("keep", CollectionSpec(dim=32, quantization="binary", full_scan_threshold=10))
        s.upsert("keep", uuids(500), unit_rows(500, 32, 5), [{"i": i} for i in range(500)])
        s.build_index("keep")
        s.set_metadata("keep", {"status": "done"})
    with EdgeStore(root, read_only=True) as r:
        spec = r.collection_spec("keep")
        assert (spec["points_count"], spec["indexed_vectors_count"]) == (500, 500)
        assert r.get_metadata("keep") == {"status": "done"}
        with pytest.raises(StoreError, match="read-only"):
            r.upsert("keep", uuids(1), unit_rows(1, 32, 6), [{}])


def test_delete_collection(store: EdgeStore) -> None:
    store.ensure_collection("gone", CollectionSpec(dim=8))
    store.set_metadata("gone", {"a": 1})
    store.delete_collection("gone")
    assert not store.collection_exists("gone") and store.list_collections() == []
    assert store.get_metadata("gone") == {}
    with pytest.raises(StoreError, match="does not exist"):
        store.count("gone")


def test_bad_input_is_rejected_with_the_reason(store: EdgeStore) -> None:
    with pytest.raises(InputError, match="not usable"):
        store.ensure_collection("../escape", CollectionSpec(dim=8))
    store.ensure_collection("bad", CollectionSpec(dim=8))
    with pytest.raises(InputError, match=r"shape \(n, 8\)"):
        store.upsert("bad", uuids(2), unit_rows(2, 9, 7), [{}, {}])
    nan = unit_rows(3, 8, 8)
    nan[1, 2] = np.nan
    with pytest.raises(InputError, match="vector #1"):
        store.upsert("bad", uuids(3), nan, [{}] * 3)
    with pytest.raises(InputError, match="differ"):
        store.upsert("bad", uuids(2), unit_rows(3, 8, 9), [{}] * 3)
    assert store.count("bad") == 0


LOCK_PROBE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from ingest.errors import StoreError
    from ingest.stores.edge import EdgeStore
    store = EdgeStore(Path(sys.argv[1]), read_only=sys.argv[2] == "read")
    try:
        if sys.argv[2] == "read":
            store.count("locked")
        else:
            pid = "6f1c2d0a-7b7e-4c1e-9a51-5a7a71c1d9e3"
            store.upsert("locked", [pid], np.ones((1, 8), np.float32), [{}])
        print("OK")
    except StoreError as exc:
        print("REFUSED", exc)
    finally:
        store.close()
    """
)


def probe(root: Path, mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", LOCK_PROBE, str(root), mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_second_process_cannot_write_or_read_beside_a_writer(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    writer = EdgeStore(root)
    writer.ensure_collection("locked", CollectionSpec(dim=8))
    try:
        out = probe(root, "write")
        assert out.startswith("REFUSED")
        assert "'locked'" in out and str(root / "locked" / "ingest.lock") in out
        assert "another ingest is running" in out
        assert probe(root, "read").startswith("REFUSED collection 'locked' is being written")
        # In the same process a second store is refused too.
        with pytest.raises(StoreError, match="in use by another process"):
            EdgeStore(root).ensure_collection("locked", CollectionSpec(dim=8))
    finally:
        writer.close()
    assert probe(root, "write") == "OK"
    with EdgeStore(root, read_only=True) as reader:
        assert reader.count("locked") == 1
        assert probe(root, "read") == "OK"  # readers share
        assert probe(root, "write").startswith("REFUSED")


def colliding_sign_patterns() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A query, 1000 points and the exact top-5, where one-bit codes cannot rank the top group.

    40 points share the query's sign pattern (all positive), so their binary codes are identical and
    score the same; the other 960 differ in at least 8 signs. The exact top-5 is put last so that any
    tie order by insertion misses it.
    """
    dim = 64
    rng = np.random.default_rng(0)
    query = np.full(dim, 1 / np.sqrt(dim), dtype=np.float32)
    same_sign = np.abs(rng.standard_normal((40, dim))).astype(np.float32) + 0.01
    same_sign /= np.linalg.norm(same_sign, axis=1, keepdims=True)
    same_sign = same_sign[np.argsort(same_sign @ query)]  # best five last
    other = rng.standard_normal((960, dim)).astype(np.float32)
    other[:, :8] = -np.abs(other[:, :8])
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    points = np.vstack([same_sign, other])
    exact = [int(i) for i in np.argsort(-(points @ query))[:5]]
    assert sorted(exact) == [35, 36, 37, 38, 39]
    return query[None, :], points, exact


@pytest.mark.parametrize("built", [False, True])
def test_binary_without_rescore_misranks_and_rescore_with_oversampling_recovers(
    store: EdgeStore, built: bool
) -> None:
    query, points, exact = colliding_sign_patterns()
    ids = uuids(len(points), seed=11)
    store.ensure_collection("bin", CollectionSpec(dim=64, quantization="binary"))
    store.upsert("bin", ids, points, [{"i": i} for i in range(len(points))])
    if built:
        store.build_index("bin")
    want = [ids[i] for i in exact]

    exact_hits = store.search("bin", query, 5, SearchParams(exact=True))[0]
    assert [h.id for h in exact_hits] == want
    np.testing.assert_allclose([h.score for h in exact_hits], (points @ query[0])[exact], atol=1e-5)

    raw = store.search("bin", query, 5, SearchParams(rescore=False))[0]
    assert len({h.score for h in raw}) == 1  # identical codes: the quantized scores tie
    assert {h.payload["i"] for h in raw} <= set(range(40))  # it does find the colliding group...
    assert {h.id for h in raw} != set(want)  # ...but cannot rank inside it

    rescored = store.search("bin", query, 5, SearchParams(rescore=True, oversampling=8.0))[0]
    assert [h.id for h in rescored] == want
    np.testing.assert_allclose([h.score for h in rescored], (points @ query[0])[exact], atol=1e-5)
    ignored = store.search("bin", query, 5, SearchParams(ignore_quantization=True))[0]
    assert [h.id for h in ignored] == want


def build_random(
    store: EdgeStore, name: str, full_scan_threshold: int | None
) -> tuple[np.ndarray, list[str]]:
    vecs, ids = unit_rows(3000, 64, 21), uuids(3000, seed=21)
    spec = CollectionSpec(dim=64, hnsw_m=4, hnsw_ef_construct=8, full_scan_threshold=full_scan_threshold)
    store.ensure_collection(name, spec)
    store.upsert(name, ids, vecs, [{}] * len(ids))
    return vecs, ids


def test_hnsw_is_deferred_then_built_and_used_below_full_scan_threshold(store: EdgeStore) -> None:
    queries = unit_rows(40, 64, 22)
    build_random(store, "fast", full_scan_threshold=10)
    truth = top_ids(store.search("fast", queries, 10, SearchParams(exact=True)))
    low_ef = SearchParams(hnsw_ef=10)

    deferred = store.collection_spec("fast")
    assert (deferred["indexing_threshold_kb"], deferred["indexed_vectors_count"]) == (0, 0)
    # No graph yet: the appendable segment is scanned in full, so a tiny ef changes nothing.
    assert recall(top_ids(store.search("fast", queries, 10, low_ef)), truth) == 1.0

    store.build_index("fast")
    built = store.collection_spec("fast")
    assert (built["indexing_threshold_kb"], built["indexed_vectors_count"]) == (1, 3000)
    # A sparse graph (m=4, ef_construct=8) searched with ef=10 misses neighbours; a larger ef finds more.
    r_low = recall(top_ids(store.search("fast", queries, 10, low_ef)), truth)
    r_high = recall(top_ids(store.search("fast", queries, 10, SearchParams(hnsw_ef=400))), truth)
    assert r_low < 0.8 and r_high > r_low + 0.2
    assert top_ids(store.search("fast", queries, 10, SearchParams(exact=True))) == truth


def test_full_scan_threshold_counts_kb_of_float_vectors(store: EdgeStore) -> None:
    # 3000 vectors x 64 dims x 4 bytes = 750 KB: below a 751 KB threshold the segment is scanned in full,
    # at 749 KB it is searched through HNSW. The engine default (10,000 KB) means full scan here.
    queries = unit_rows(40, 64, 23)
    low_ef = SearchParams(hnsw_ef=10)
    recalls = {}
    for name, threshold in (("t749", 749), ("t751", 751), ("tdefault", None)):
        build_random(store, name, full_scan_threshold=threshold)
        store.build_index(name)
        assert store.collection_spec(name)["indexed_vectors_count"] == 3000
        truth = top_ids(store.search(name, queries, 10, SearchParams(exact=True)))
        recalls[name] = recall(top_ids(store.search(name, queries, 10, low_ef)), truth)
    assert recalls["t749"] < 0.8
    assert recalls["t751"] == 1.0 and recalls["tdefault"] == 1.0


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection:UserWarning")
def test_open_store_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edge = open_store(data_dir=tmp_path, qdrant_url=None)
    assert isinstance(edge, EdgeStore) and edge.root == tmp_path / "qdrant"
    edge.close()
    monkeypatch.setenv("QDRANT_API_KEY", "from-env-secret")
    server = open_store(data_dir=tmp_path, qdrant_url="http://127.0.0.1:6333", timeout_s=3)
    assert isinstance(server, ServerStore) and server.timeout_s == 3
    assert "from-env-secret" not in repr(server) and "api_key=set" in repr(server)
    server.close()
