"""Partitions read back by another source object give exactly the documents of the planning pass."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ingest.options import IngestConfig
from ingest.partitions import Partition, SourceSpec, encode_partition, plan_partitions, read_partition
from ingest.records import Document


def write_beir(folder: Path, n: int) -> Path:
    """A BEIR folder of `n` lines: every 10th document empty, every 13th line not JSON."""
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        if i % 13 == 5:
            lines.append("{not json")
        elif i % 10 == 3:
            lines.append(json.dumps({"_id": f"d{i}", "title": "", "text": ""}))
        else:
            lines.append(
                json.dumps({"_id": f"d{i}", "title": f"t{i}", "text": f"text number {i} " * (i % 4)})
            )
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def spans_and_batches(source: Any, size: int) -> tuple[list[tuple[int, int]], list[list[Document]]]:
    batches = [list(b) for b in source.iter_batches(size)]
    return list(source.batch_spans), batches


def read_back(
    spec: SourceSpec, planner: Any, spans: list[tuple[int, int]], batches: list[list[Document]]
) -> None:
    from ingest import partitions

    partitions.worker_source.cache_clear()
    for (start, stop), docs in zip(spans, batches, strict=True):
        part = Partition(0, start, stop, tuple(d.id for d in docs), hint=planner.seek_hint(start))
        assert read_partition(spec, part) == docs
        # A subset (a sync that re-encodes a few documents) comes back in corpus order.
        some = docs[::3]
        assert read_partition(spec, Partition(0, start, stop, tuple(d.id for d in some))) == some


@pytest.mark.parametrize("zipped", [False, True])
def test_beir_partitions_seek_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zipped: bool
) -> None:
    from ingest.sources import beir

    monkeypatch.setattr(beir, "OFFSET_EVERY", 16)  # seek hints inside this small file
    folder = write_beir(tmp_path / "tiny", 300)
    target = folder
    if zipped:
        target = tmp_path / "tiny.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(folder / "corpus.jsonl", "tiny/corpus.jsonl")
    cfg = IngestConfig(data_dir=tmp_path / "data", on_error="skip")
    spec = SourceSpec.of(str(target), cfg)
    planner = spec.open()
    spans, batches = spans_and_batches(planner, 37)
    assert len(batches) > 5 and sum(map(len, batches)) == planner.counters.docs
    assert planner.seek_hint(spans[-1][0])["line"] > 1
    read_back(spec, planner, spans, batches)


def test_parquet_partitions_skip_files_and_row_groups(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "pq"
    folder.mkdir()
    for f in range(3):
        ids = [f"f{f}-{i}" for i in range(90)]
        texts = ["" if i % 11 == 0 else f"body {f} {i}" for i in range(90)]
        table = pa.table(
            {"id": ids, "text": texts, "title": [f"title {i}" if i % 2 else "" for i in range(90)]}
        )
        pq.write_table(table, folder / f"part{f}.parquet", row_group_size=20)
    spec = SourceSpec.of(str(folder), IngestConfig(data_dir=tmp_path / "data"))
    planner = spec.open()
    spans, batches = spans_and_batches(planner, 41)
    assert any(start >= 90 for start, _ in spans)  # spans in later files
    read_back(spec, planner, spans, batches)


def test_hf_partitions_are_index_ranges(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from ingest.sources import hf

    data = datasets.Dataset.from_dict(
        {"id": [f"h{i}" for i in range(120)], "text": [f"doc {i}" if i % 9 else "" for i in range(120)]}
    )
    saved = tmp_path / "saved"
    data.save_to_disk(str(saved))
    spec = SourceSpec.of(str(saved), IngestConfig(data_dir=tmp_path / "data"))
    planner = spec.open()
    assert isinstance(planner, hf.HFSource)
    spans, batches = spans_and_batches(planner, 25)
    read_back(spec, planner, spans, batches)


def test_duplicates_dropped_by_position(tmp_path: Path) -> None:
    folder = tmp_path / "dups"
    folder.mkdir()
    lines = [json.dumps({"_id": f"d{i % 40}", "title": "", "text": f"copy {i}"}) for i in range(60)]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = SourceSpec.of(str(folder), IngestConfig(data_dir=tmp_path / "data", on_duplicate="last"))
    planner = spec.open()
    spans, batches = spans_and_batches(planner, 15)
    drop = planner.duplicate_plan().drop
    for (start, stop), docs in zip(spans, batches, strict=True):
        part = Partition(
            0, start, stop, tuple(d.id for d in docs), drop=tuple(p for p in drop if start <= p <= stop)
        )
        assert read_partition(spec, part) == docs


def test_plan_and_encode_match_the_job(tmp_path: Path, small_model_dir: Path) -> None:
    """Partitions of an opened job encode to what the job's own encoder gives; storing them verifies."""
    import numpy as np

    from ingest.encode_batch import encode_docs
    from ingest.parallel import EncodeRecipe
    from ingest.pipeline import IngestJob

    folder = write_beir(tmp_path / "tiny", 200)
    cfg = IngestConfig(
        model=str(small_model_dir), data_dir=tmp_path / "data", on_error="skip", batch_docs=40, dims=[64]
    )
    job = IngestJob.open(str(folder), cfg)
    try:
        spec = SourceSpec.of(str(folder), cfg)
        recipe = EncodeRecipe.of(
            job.encoder, data_dir=cfg.data_dir, chunk_tokens=cfg.chunk_tokens, chunk_overlap=cfg.chunk_overlap
        )
        stored = 0
        for part in plan_partitions(job):
            batch = encode_partition(spec, recipe, part)
            want = encode_docs(job.chunker, job.encoder, part.batch_no, read_partition(spec, part))
            assert [(c.doc_id, c.chunk_no, c.text) for c in batch.chunks] == [
                (c.doc_id, c.chunk_no, c.text) for c in want.chunks
            ]
            assert np.array_equal(batch.vectors, want.vectors)
            stored += job.store_batch(batch).docs
        assert stored == job.docs_read > 100
        counts = job.verify_counts()
        assert set(counts.values()) == {job.expected_chunks(job.names[0])}
    finally:
        job.close()


def test_a_changed_document_is_the_only_one_read_back_and_encoded(
    tmp_path: Path, small_model_dir: Path
) -> None:
    """A sync after one edit: partitions spanning every batch, holding only the changed document."""
    from ingest.parallel import EncodeRecipe
    from ingest.pipeline import IngestJob

    folder = write_beir(tmp_path / "tiny", 200)
    cfg = IngestConfig(
        model=str(small_model_dir), data_dir=tmp_path / "data", on_error="skip", batch_docs=40, dims=[64]
    )

    def ingest() -> tuple[list[Partition], dict[str, int], int]:
        from ingest import partitions

        partitions.worker_source.cache_clear()
        job = IngestJob.open(str(folder), cfg)
        try:
            spec = SourceSpec.of(str(folder), cfg)
            recipe = EncodeRecipe.of(
                job.encoder,
                data_dir=cfg.data_dir,
                chunk_tokens=cfg.chunk_tokens,
                chunk_overlap=cfg.chunk_overlap,
            )
            parts = list(plan_partitions(job))
            for part in parts:
                job.store_batch(encode_partition(spec, recipe, part))
            job.finalize()
            return parts, job.verify_counts(), job.counts.encoded_docs
        finally:
            job.close()

    first, counts, encoded = ingest()
    assert len(first) > 3 and encoded > 100
    corpus = folder / "corpus.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    lines[150] = json.dumps({"_id": "d150", "title": "t150", "text": "an edited text, longer " * 300})
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again, recounted, encoded = ingest()
    # The first document to encode goes at once; the unchanged batches after it end in an empty
    # partition, stored only to checkpoint them.
    assert [p.ids for p in again] == [("d150",), ()]
    assert again[0].start == first[0].start and again[-1].stop == first[-1].stop
    assert encoded == 1
    assert recounted["tiny-d64-none"] > counts["tiny-d64-none"]  # the longer text: more chunks
