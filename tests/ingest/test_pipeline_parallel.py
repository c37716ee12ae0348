"""Process-mode ingest stores exactly what the sequential path stores; worker choice; reader errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.synth_corpus import LengthModel, write_corpus
from ingest.config import CollectionSpec, IngestConfig
from ingest.errors import InputError
from ingest.parallel import (
    AUTO_MIN_DOCS,
    choose_workers,
    size_hint,
    usable_cores,
)
from ingest.pipeline import IngestJob, run_ingest, workers_for
from ingest.stores import open_store

# Short windows, so many documents are cut into several chunks (the chunker's window path).
CHUNK_TOKENS = 48
LONG_TAIL = LengthModel(abstract_mean=60.0, abstract_sigma=0.8, title_only=0.1)


def cfg_for(data_dir: Path, model: Path, **kw: object) -> IngestConfig:
    base: dict[str, object] = {
        "model": str(model),
        "data_dir": data_dir,
        "collections": [CollectionSpec(64, "none"), CollectionSpec(32, "binary")],
        "batch_docs": 40,
        "chunk_tokens": CHUNK_TOKENS,
        "chunk_overlap": 8,
    }
    base.update(kw)
    return IngestConfig(**base)  # type: ignore[arg-type]


def stored_points(data_dir: Path) -> dict[str, dict[str, tuple[bytes, dict[str, object]]]]:
    """Every point of every collection: id -> (vector bytes, payload)."""
    out: dict[str, dict[str, tuple[bytes, dict[str, object]]]] = {}
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        for name in store.list_collections():
            ids = sorted(store.scroll_ids(name))
            points = store.retrieve(name, ids, with_vectors=True)
            assert [p.id for p in points] == ids
            out[name] = {p.id: (np.asarray(p.vector, dtype=np.float32).tobytes(), p.payload) for p in points}
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "synth.parquet"
    write_corpus(path, 230, seed=3, lengths=LONG_TAIL)
    return path


def ingest_sequentially(corpus: Path, cfg: IngestConfig) -> Path:
    """The plain path: `IngestJob.process_batch` over every batch, one after the other; returns the
    data directory."""
    job = IngestJob.open(str(corpus), cfg)
    try:
        for batch_no, docs in job.pending_batches():
            job.process_batch(batch_no, docs)
        assert job.finalize().verified
    finally:
        job.close()
    return cfg.data_dir


@pytest.fixture(scope="module")
def sequential(corpus: Path, small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plain path: `IngestJob.process_batch` over every batch, one after the other."""
    return ingest_sequentially(corpus, cfg_for(tmp_path_factory.mktemp("sequential"), small_model_dir))


def test_process_mode_stores_exactly_the_sequential_points(
    corpus: Path, sequential: Path, small_model_dir: Path, tmp_path: Path
) -> None:
    summary = run_ingest(str(corpus), cfg_for(tmp_path, small_model_dir, workers=2), progress=False)
    assert summary.verified and summary.docs == 230
    assert summary.chunks > 230  # some documents were cut into windows
    want = stored_points(sequential)
    got = stored_points(tmp_path)
    assert sorted(got) == ["synth-d32-binary", "synth-d64-none"]
    for name in want:
        assert got[name].keys() == want[name].keys()
        assert got[name] == want[name], f"{name}: vectors or payloads differ"
    assert summary.stage_seconds["encode"] > 0  # the workers' busy time is reported


def test_threaded_mode_stores_exactly_the_sequential_points(
    corpus: Path, sequential: Path, small_model_dir: Path, tmp_path: Path
) -> None:
    job = IngestJob.open(str(corpus), cfg_for(tmp_path, small_model_dir))
    try:
        assert job.run_batches(workers=0) == 0
        assert job.finalize().verified
    finally:
        job.close()
    assert stored_points(tmp_path) == stored_points(sequential)


def test_process_mode_keeps_batches_before_a_bad_record(small_model_dir: Path, tmp_path: Path) -> None:
    ids = [f"d{i}" for i in range(100)] + [None]
    table = pa.table({"id": ids, "title": ["t"] * 101, "text": [f"text number {i}" for i in range(101)]})
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    cfg = cfg_for(tmp_path / "data", small_model_dir, batch_docs=30)
    job = IngestJob.open(str(path), cfg)
    try:
        with pytest.raises(InputError, match=r"bad\.parquet#100"):
            job.run_batches(workers=1)
        name = job.names[0]
        assert job.store.count(name) == 90  # the three full batches read before row 100
        assert sorted(job.checkpoints[name].done) == [0, 1, 2]
    finally:
        job.close()


def test_run_batches_chooses_workers_like_workers_for(
    corpus: Path, small_model_dir: Path, tmp_path: Path
) -> None:
    forced = IngestJob.open(str(corpus), cfg_for(tmp_path / "forced", small_model_dir, workers=3))
    try:
        assert workers_for(forced) == 3  # cfg.workers >= 1 is obeyed
        with pytest.raises(ValueError, match="not -1"):
            forced.run_batches(workers=-1)
        assert forced.checkpoints[forced.names[0]].done == {}  # nothing ran
    finally:
        forced.close()
    job = IngestJob.open(str(corpus), cfg_for(tmp_path / "auto", small_model_dir))
    try:
        assert workers_for(job) == 0  # 230 documents: threads in this process
        assert job.run_batches() == 0
        summary = job.finalize()
    finally:
        job.close()
    assert summary.verified and summary.docs == 230


def test_choose_workers() -> None:
    assert choose_workers(3, 10, None) == 3  # asked for: always
    assert choose_workers(0, AUTO_MIN_DOCS - 1, None) == 0  # small corpus: in-process
    assert choose_workers(0, 10**6, 500) == 0  # a small limit counts too
    expected = 1 if usable_cores() >= 2 else 0
    assert choose_workers(0, AUTO_MIN_DOCS, None) == expected  # one collection or fifteen, a sync or not
    assert choose_workers(0, None, None) == expected  # size unknown


def test_size_hint_reads_source_descriptions() -> None:
    assert size_hint({"rows": 171_332}) == 171_332
    assert size_hint({"corpus_lines": 5183, "rows": None}) == 5183
    assert size_hint({"path": "x"}) is None


def test_pipelined_points_equal_the_libraries_chunk_by_chunk(
    corpus: Path, small_model_dir: Path, tmp_path: Path
) -> None:
    """The fast pipeline against the plainest path: the tokenizer counts, sentence-transformers encodes."""
    from ingest.chunking import Chunker
    from ingest.encoder.static import load_encoder, slice_normalise
    from ingest.records import Document, point_id

    summary = run_ingest(str(corpus), cfg_for(tmp_path, small_model_dir, workers=2), progress=False)
    table = pq.read_table(corpus).to_pylist()
    docs = [Document(str(r["id"]), r["title"] or "", r["text"] or "") for r in table]
    plain = load_encoder(str(small_model_dir), data_dir=tmp_path, fast=False)
    chunks = Chunker(plain.tokenizer, CHUNK_TOKENS, 8).chunk(docs)
    assert len(chunks) == summary.chunks
    vectors = plain.encode([c.text for c in chunks])
    got = stored_points(tmp_path)
    for name, dim in (("synth-d64-none", 64), ("synth-d32-binary", 32)):
        want = slice_normalise(vectors, dim)
        ids = [point_id("synth", c.doc_id, c.chunk_no) for c in chunks]
        assert sorted(got[name]) == sorted(ids)
        for pid, chunk, vec in zip(ids, chunks, want, strict=True):
            stored, payload = got[name][pid]
            # The chunk text is stored once per dataset, in the first collection of the matrix.
            assert payload.get("text") == (chunk.text if name == "synth-d64-none" else None)
            assert (payload["char_start"], payload["char_end"]) == (chunk.char_start, chunk.char_end)
            assert np.abs(np.frombuffer(stored, dtype=np.float32) - vec).max() < 1e-5


def test_an_encoder_worker_ends_when_its_parent_is_killed(small_model_dir: Path, tmp_path: Path) -> None:
    """kill -9 of the process that owns a `ProcessEncoder`: its worker exits by itself (it used to
    linger, holding its memory, for as long as anyone let it)."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ingest.encoder.static import load_encoder\n"
        "from ingest.parallel import EncodeRecipe, ProcessEncoder\n"
        "from ingest.records import Document\n"
        "if __name__ == '__main__':\n"
        "    data = Path(sys.argv[2])\n"
        "    recipe = EncodeRecipe.of(load_encoder(sys.argv[1], data_dir=data), data_dir=data, "
        "chunk_tokens=64, chunk_overlap=8)\n"
        "    pool = ProcessEncoder(recipe)\n"
        "    next(pool.map([(0, [Document(id='d1', title='', text='a small text')])]))\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(600)\n"
    )
    root = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen(
        [sys.executable, str(script), str(small_model_dir), str(tmp_path / "data")],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    workers: list[psutil.Process] = []
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        workers = [p for p in psutil.Process(owner.pid).children(recursive=True) if "python" in p.name()]
        assert workers, "no encoder worker process was started"
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=30)
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"worker(s) {[p.pid for p in alive]} outlived their killed parent"
    finally:
        if owner.poll() is None:
            owner.kill()
        for proc in workers:  # whatever outlived the test: never leave it running
            if proc.is_running():
                proc.kill()


def test_an_empty_batch_starts_no_worker(small_model_dir: Path, tmp_path: Path) -> None:
    import multiprocessing

    from ingest.encoder.static import load_encoder
    from ingest.parallel import EncodeRecipe, ProcessEncoder

    encoder = load_encoder(str(small_model_dir), data_dir=tmp_path)
    recipe = EncodeRecipe.of(encoder, data_dir=tmp_path, chunk_tokens=64, chunk_overlap=8)
    pool = ProcessEncoder(recipe)
    try:
        [batch] = list(pool.map([(7, [])]))
        assert (batch.batch_no, batch.docs, batch.chunks, batch.vectors.shape) == (7, 0, [], (0, encoder.dim))
        assert multiprocessing.active_children() == []
    finally:
        pool.close()


def test_prewarmed_workers_are_started_before_the_collections_open_and_used_or_let_go(
    corpus: Path, small_model_dir: Path, tmp_path: Path
) -> None:
    import multiprocessing

    reference = run_ingest(str(corpus), cfg_for(tmp_path / "ref", small_model_dir, workers=1), progress=False)
    want = stored_points(tmp_path / "ref")
    # Asked for one worker: it is started by `open`, before any batch, and `run_batches` uses it.
    job = IngestJob.open(str(corpus), cfg_for(tmp_path / "warm", small_model_dir, workers=1), prewarm=True)
    try:
        assert job._pool is not None and job._pool.workers == 1
        assert len(multiprocessing.active_children()) == 1  # spawned already
        assert job.run_batches() == 1
        assert job._pool is None and len(job._stopping) == 1  # the prewarmed pool, no second one
        summary = job.finalize()
    finally:
        job.close()
    assert multiprocessing.active_children() == []
    assert summary.verified and stored_points(tmp_path / "warm") == want
    # A wrong guess (2 prewarmed, 1 used) is let go; the run is the same.
    job = IngestJob.open(str(corpus), cfg_for(tmp_path / "wrong", small_model_dir, workers=2), prewarm=True)
    try:
        assert job._pool is not None and job._pool.workers == 2
        assert job.run_batches(workers=1) == 1
        job.finalize()
    finally:
        job.close()
    assert multiprocessing.active_children() == []
    assert stored_points(tmp_path / "wrong") == want and reference.verified
    # Automatic choice on a small corpus: nothing is prewarmed.
    job = IngestJob.open(str(corpus), cfg_for(tmp_path / "auto", small_model_dir), prewarm=True)
    try:
        assert job._pool is None and multiprocessing.active_children() == []
    finally:
        job.close()
