"""The second writer process of a bulk load (ingest/shard_writer.py): which dims it takes, the points
it writes, the lock hand-over, and its failures."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from benchmarks.synth_corpus import write_corpus
from ingest.batches import EncodedBatch
from ingest.config import CollectionSpec
from ingest.errors import StoreError
from ingest.parallel import usable_cores
from ingest.pipeline import IngestJob
from ingest.records import Chunk
from ingest.shard_writer import ShardWriter, bulk_load, split_target, writer_dims
from ingest.stores.edge import EdgeStore
from ingest.write import WriteTarget
from tests.ingest.test_pipeline_parallel import LONG_TAIL, cfg_for, ingest_sequentially, stored_points

# Two dims, each in two quantizations: the writer takes 64 (weight 1.25 of 2.375, within 0.55).
SPECS = [
    CollectionSpec(64, "none"),
    CollectionSpec(64, "binary"),
    CollectionSpec(32, "none"),
    CollectionSpec(32, "binary"),
]


def test_writer_dims_take_the_heaviest_dims_up_to_the_share() -> None:
    # Weights 1 + d/256: 5, 3, 2, 1.5, 1.25 (total 12.75). 1024 (0.39) and 256 (7/12.75 = 0.549) fit
    # in 0.55; adding 512 (0.63), 128 (0.67) or 64 (0.65) would not.
    assert writer_dims([1024, 512, 256, 128, 64]) == {1024, 256}
    assert writer_dims([1024] * 3 + [512] * 3 + [256] * 3 + [128] * 3 + [64] * 3) == {1024, 256}
    # The heaviest dim is taken even above the share (2 / 3.25 = 0.62), never every dim.
    assert writer_dims([256, 64]) == {256}
    assert writer_dims([256, 128, 64]) == {256}
    assert writer_dims([1024]) == set()
    assert writer_dims([1024, 1024, 1024]) == set()
    assert writer_dims([512, 256], share=0.1) == {512}
    assert writer_dims([512, 256], share=1.0) == set()  # both would fit: nothing is left here


def test_a_writer_is_only_worth_it_for_a_bulk_load() -> None:
    assert bulk_load(0, 230, None)  # an empty collection: everything is to load
    assert bulk_load(0, None, None)
    assert bulk_load(100_000, 171_332, None)  # 71,332 documents may be missing: a resumed load
    assert not bulk_load(184_499, 171_332, None)  # a sync of a corpus already held
    assert not bulk_load(160_000, 171_332, None)  # at most 11,332 missing
    assert not bulk_load(100_000, 171_332, 110_000)  # the limit bounds it
    assert not bulk_load(5, None, None)  # unknown size, already loaded before: no guess


def test_split_target_keeps_everything_but_the_collections() -> None:
    target = WriteTarget("ds", (("a", 64), ("b", 64), ("c", 32)), "a", False, "full")
    here, there = split_target(target, {64})
    assert here.collections == (("c", 32),) and there.collections == (("a", 64), ("b", 64))
    assert there.text_collection == here.text_collection == "a" and there.dataset == "ds"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "synth.parquet"
    write_corpus(path, 230, seed=5, lengths=LONG_TAIL)
    return path


@pytest.fixture(scope="module")
def sequential(corpus: Path, small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("sequential")
    return ingest_sequentially(corpus, cfg_for(data_dir, small_model_dir, collections=SPECS))


def test_a_run_with_a_writer_process_stores_exactly_the_sequential_points(
    corpus: Path, sequential: Path, small_model_dir: Path, tmp_path: Path
) -> None:
    assert usable_cores() >= 2, "the writer process needs two usable cores (the test machine has them)"
    job = IngestJob.open(str(corpus), cfg_for(tmp_path, small_model_dir, collections=SPECS))
    try:
        assert job.run_batches(workers=1) == 1
        assert job.writer_collections == ["synth-d64-none", "synth-d64-binary"]
        # Handed back: this process writes them again (sync deletions, indexes) and verifies them.
        summary = job.finalize()
        assert summary.verified and summary.docs == 230
    finally:
        job.close()
    want, got = stored_points(sequential), stored_points(tmp_path)
    assert sorted(got) == sorted(want) and len(got) == 4
    for name in want:
        assert got[name] == want[name], f"{name}: vectors or payloads differ"


def test_a_failed_write_there_stops_the_run_before_the_batch_counts_and_a_rerun_completes(
    corpus: Path, sequential: Path, small_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real_wait = ShardWriter.wait

    def failing_wait(self: ShardWriter, future: object) -> object:
        calls["n"] += 1
        result = real_wait(self, future)  # type: ignore[arg-type]
        if calls["n"] == 3:
            raise StoreError("collection 'synth-d64-none': injected failure")
        return result

    monkeypatch.setattr(ShardWriter, "wait", failing_wait)
    job = IngestJob.open(str(corpus), cfg_for(tmp_path, small_model_dir, collections=SPECS))
    try:
        with pytest.raises(StoreError, match="injected failure"):
            job.run_batches(workers=1)
        # Batches 0 and 1 were recorded in every collection; batch 2, written on both sides, was not.
        assert {name: sorted(job.checkpoints[name].done) for name in job.names} == {
            name: [0, 1] for name in job.names
        }
    finally:
        job.close()
    monkeypatch.setattr(ShardWriter, "wait", real_wait)
    job = IngestJob.open(str(corpus), cfg_for(tmp_path, small_model_dir, collections=SPECS))
    try:
        job.run_batches(workers=1)
        assert job.resumed_batches == 2
        assert job.finalize().verified
    finally:
        job.close()
    assert stored_points(tmp_path) == stored_points(sequential)


def _store(tmp_path: Path) -> EdgeStore:
    store = EdgeStore(tmp_path / "qdrant")
    for name in ("a", "b"):
        store.ensure_collection(name, CollectionSpec(8, "none"))
    return store


def _batch() -> EncodedBatch:
    chunks = [Chunk(f"d{i}", 0, f"text {i}", 0, 6) for i in range(3)]
    vectors = np.eye(3, 8, dtype=np.float32)
    return EncodedBatch(0, 3, chunks, vectors, 0.0)


def test_a_writer_process_that_dies_is_a_store_error_and_frees_its_locks(tmp_path: Path) -> None:
    store = _store(tmp_path)
    target = WriteTarget("ds", (("b", 8),), None, False, "full")
    writer = ShardWriter(store.root, target)
    try:
        writer.start(store)
        with pytest.raises(StoreError, match="in use by another process"):
            store.hold("b")  # the writer holds it now
        batch = _batch()
        old = {"b": {c.doc_id: 0 for c in batch.chunks}}
        assert writer.wait(writer.submit(batch, old, {})) == {"d0": 1, "d1": 1, "d2": 1}
        assert writer._pool is not None
        (pid,) = list(writer._pool._processes)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StoreError, match=r"writer process for collections b ended unexpectedly.*rerun"):
            writer.wait(writer.submit(batch, old, {}))
    finally:
        with pytest.raises(StoreError, match="ended unexpectedly"):
            writer.close()
    store.hold("b")  # its lock died with it
    assert store.count("b") == 3  # the flushed batch is there
    store.close()


def test_a_writer_that_cannot_lock_its_collections_fails_at_start(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.release("b")
    other = EdgeStore(tmp_path / "qdrant")
    other.hold("b")  # a second writer elsewhere (another open file description of the lock)
    writer = ShardWriter(store.root, WriteTarget("ds", (("b", 8),), None, False, "full"))
    try:
        with pytest.raises(StoreError, match="collection 'b' is in use by another process"):
            writer.start(store)
    finally:
        writer.close()
        other.close()
        store.close()
