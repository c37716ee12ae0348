"""The chunk text is stored once per dataset, in the first collection; the others join on the point id."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.config import CollectionSpec, IngestConfig
from ingest.pipeline import run_ingest
from ingest.records import point_id
from ingest.stores import open_store

SPECS = [CollectionSpec(64, "none"), CollectionSpec(64, "binary"), CollectionSpec(32, "scalar")]


def _corpus(path: Path) -> Path:
    rows = {
        "id": [f"d{i}" for i in range(40)],
        "title": [f"Title {i}" for i in range(40)],
        "text": [f"document number {i} about cells and proteins" for i in range(40)],
    }
    pq.write_table(pa.table(rows), path)
    return path


def _cfg(data_dir: Path, model: Path, **kw: object) -> IngestConfig:
    return IngestConfig(model=str(model), data_dir=data_dir, collections=SPECS, **kw)  # type: ignore[arg-type]


def test_text_only_in_the_first_collection(small_model_dir: Path, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "toy.parquet")
    summary = run_ingest(str(corpus), _cfg(tmp_path / "data", small_model_dir), progress=False)
    names = list(summary.points)
    assert names == ["toy-d64-none", "toy-d64-binary", "toy-d32-scalar"]
    ids = [point_id("toy", f"d{i}", 0) for i in range(40)]
    with open_store(data_dir=tmp_path / "data", qdrant_url=None, read_only=True) as store:
        first = store.retrieve(names[0], ids, with_vectors=False)
        assert [p.payload["text"] for p in first] == [
            f"Title {i} document number {i} about cells and proteins" for i in range(40)
        ]
        for name in names[1:]:
            points = store.retrieve(name, ids, with_vectors=False)
            # The same point ids, the same fields but the text: a hit joins to its text by id.
            assert [p.id for p in points] == ids
            assert all("text" not in p.payload for p in points)
            assert [p.payload["doc_id"] for p in points] == [f"d{i}" for i in range(40)]
        for name in names:
            assert store.get_metadata(name)["text_collection"] == names[0]


def test_no_text_anywhere_with_no_text(small_model_dir: Path, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "toy.parquet")
    summary = run_ingest(
        str(corpus), _cfg(tmp_path / "data", small_model_dir, store_text=False), progress=False
    )
    with open_store(data_dir=tmp_path / "data", qdrant_url=None, read_only=True) as store:
        for name in summary.points:
            [point] = store.retrieve(name, [point_id("toy", "d0", 0)], with_vectors=False)
            assert "text" not in point.payload
            assert store.get_metadata(name)["text_collection"] is None
