"""End-to-end ingest on real components: real NFCorpus, Parquet, HF datasets, edge and server stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.config import CollectionSpec, IngestConfig
from ingest.errors import CollectionMismatchError
from ingest.pipeline import IngestSummary, run_ingest
from ingest.records import point_id
from ingest.stores import open_store

BEIR_DIR = Path(__file__).resolve().parents[3] / "shared" / "beir"
NFCORPUS = BEIR_DIR / "nfcorpus.zip"


def small_cfg(data_dir: Path, model: Path, **kw: object) -> IngestConfig:
    base: dict[str, object] = {
        "model": str(model),
        "data_dir": data_dir,
        "collections": [CollectionSpec(64, "none"), CollectionSpec(32, "binary")],
        "batch_docs": 1024,
    }
    base.update(kw)
    return IngestConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def nfcorpus_run(
    small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, IngestSummary]:
    data_dir = tmp_path_factory.mktemp("nf")
    summary = run_ingest(str(NFCORPUS), small_cfg(data_dir, small_model_dir), progress=False)
    return data_dir, summary


def test_nfcorpus_end_to_end_exact_counts(nfcorpus_run: tuple[Path, IngestSummary]) -> None:
    data_dir, summary = nfcorpus_run
    assert summary.dataset == "nfcorpus"
    assert summary.docs == 3633
    assert summary.skipped_empty == 0 and summary.rejected == 0
    # Every document yields at least one chunk; a few NFCorpus abstracts exceed 512 tokens.
    assert summary.chunks >= 3633
    assert summary.points == {"nfcorpus-d64-none": summary.chunks, "nfcorpus-d32-binary": summary.chunks}
    assert summary.verified
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        manifest = store.get_metadata("nfcorpus-d64-none")
        assert manifest["status"] == "complete" and manifest["docs"] == 3633
        assert manifest["model"]["kind"] == "random"
        assert store.collection_spec("nfcorpus-d32-binary")["quantization"] == "binary"
        [point] = store.retrieve("nfcorpus-d64-none", [point_id("nfcorpus", "MED-10", 0)])
        assert point.payload["doc_id"] == "MED-10" and point.payload["chunk_no"] == 0
        assert point.payload["text"].startswith("Statin Use and Breast Cancer Survival")
        assert point.vector is not None and np.isclose(np.linalg.norm(point.vector), 1.0, atol=1e-5)


def test_second_ingest_changes_no_count_and_resumes(
    nfcorpus_run: tuple[Path, IngestSummary], small_model_dir: Path
) -> None:
    data_dir, first = nfcorpus_run
    again = run_ingest(str(NFCORPUS), small_cfg(data_dir, small_model_dir), progress=False)
    assert again.points == first.points and again.docs == first.docs and again.chunks == first.chunks
    assert again.resumed_batches == 4  # 3,633 docs in batches of 1,024: nothing re-encoded
    assert again.stage_seconds["encode"] == 0.0


def test_existing_collection_with_other_quantization_is_refused_untouched(
    nfcorpus_run: tuple[Path, IngestSummary], small_model_dir: Path
) -> None:
    data_dir, first = nfcorpus_run
    cfg = small_cfg(
        data_dir,
        small_model_dir,
        collections=[CollectionSpec(64, "none", name_template="nfcorpus-d32-binary")],
    )
    with pytest.raises(CollectionMismatchError, match=r"nfcorpus-d32-binary.*--recreate"):
        run_ingest(str(NFCORPUS), cfg, progress=False)
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        assert store.count("nfcorpus-d32-binary") == first.chunks


def test_existing_collection_with_other_chunking_is_refused_untouched(
    nfcorpus_run: tuple[Path, IngestSummary], small_model_dir: Path
) -> None:
    data_dir, first = nfcorpus_run
    cfg = small_cfg(data_dir, small_model_dir, chunk_tokens=256)
    with pytest.raises(CollectionMismatchError, match=r"chunk_tokens 512 \(this run: 256\).*--recreate"):
        run_ingest(str(NFCORPUS), cfg, progress=False)
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        assert store.count("nfcorpus-d64-none") == first.chunks
        assert store.get_metadata("nfcorpus-d64-none")["chunking"] == "token-windows-at-whitespace-v2"


def test_parquet_corpus_end_to_end(tmp_path: Path, small_model_dir: Path) -> None:
    pdir = tmp_path / "mycorpus"
    pdir.mkdir()
    for part in range(2):
        table = pa.table(
            {
                "doc_id": [f"p{part}-{i}" for i in range(150)],
                "body": [f"document {i} of part {part} about vectors and quantization" for i in range(150)],
            }
        )
        pq.write_table(table, pdir / f"part-{part}.parquet", row_group_size=40)
    cfg = small_cfg(tmp_path / "data", small_model_dir, id_col="doc_id", text_col="body", title_col="")
    summary = run_ingest(str(pdir), cfg, progress=False)
    assert (summary.dataset, summary.docs, summary.chunks) == ("mycorpus", 300, 300)
    assert summary.points == {"mycorpus-d64-none": 300, "mycorpus-d32-binary": 300}


def test_default_float_collections_have_no_graph_and_an_old_graph_is_kept(
    tmp_path: Path, small_model_dir: Path
) -> None:
    """The default matrix's float collections answer by exact search (hnsw_m 0); one built with a graph
    (an earlier default, or --float-hnsw) keeps it on a plain rerun; --float-hnsw on a graphless one is
    refused untouched (it would need --recreate)."""
    pdir = tmp_path / "graphs"
    pdir.mkdir()
    table = pa.table(
        {"id": [f"g{i}" for i in range(120)], "text": [f"note {i} on graphs" for i in range(120)]}
    )
    pq.write_table(table, pdir / "part-0.parquet")

    def cfg(data_dir: Path, **kw: object) -> IngestConfig:
        return IngestConfig(
            model=str(small_model_dir),
            data_dir=data_dir,
            name="graphs",
            dims=[64],
            quantizations=["none", "binary"],
            **kw,
        )  # type: ignore[arg-type]

    fresh = tmp_path / "fresh"
    assert run_ingest(str(pdir), cfg(fresh), progress=False).verified
    with open_store(data_dir=fresh, qdrant_url=None, read_only=True) as store:
        assert store.collection_spec("graphs-d64-none")["hnsw_m"] == 0
        assert store.collection_spec("graphs-d64-binary")["hnsw_m"] == 16
    with pytest.raises(CollectionMismatchError, match="hnsw_m"):
        run_ingest(str(pdir), cfg(fresh, float_hnsw=True), progress=False)

    old = tmp_path / "old"
    assert run_ingest(str(pdir), cfg(old, float_hnsw=True), progress=False).verified
    again = run_ingest(str(pdir), cfg(old), progress=False)
    assert again.verified and again.encoded_docs == 0
    with open_store(data_dir=old, qdrant_url=None, read_only=True) as store:
        assert store.collection_spec("graphs-d64-none")["hnsw_m"] == 16
        assert store.get_metadata("graphs-d64-none")["spec"]["hnsw_m"] == 16


def test_hf_saved_dataset_end_to_end(tmp_path: Path, small_model_dir: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_dict(
        {
            "id": [str(i) for i in range(50)],
            "title": ["t"] * 50,
            "text": [f"text number {i}" for i in range(50)],
        }
    )
    ds.save_to_disk(str(tmp_path / "hfcorpus"))
    summary = run_ingest(
        str(tmp_path / "hfcorpus"), small_cfg(tmp_path / "data", small_model_dir), progress=False
    )
    assert (summary.docs, summary.chunks, summary.verified) == (50, 50, True)


def test_server_backend_path_on_qdrant_client_memory_mode(tmp_path: Path, small_model_dir: Path) -> None:
    """API shape only: memory mode drops quantization, so no quality figure ever comes from it."""
    from qdrant_client import QdrantClient

    from ingest.stores.server import ServerStore

    store = ServerStore("http://memory.invalid:6333", client=QdrantClient(":memory:"))
    cfg = small_cfg(tmp_path / "data", small_model_dir, qdrant_url="http://memory.invalid:6333", limit=300)
    summary = run_ingest(str(NFCORPUS), cfg, progress=False, store=store)
    assert summary.backend == "server" and summary.docs == 300
    assert summary.points == {"nfcorpus-d64-none": summary.chunks, "nfcorpus-d32-binary": summary.chunks}
    again = run_ingest(str(NFCORPUS), cfg, progress=False, store=store)
    assert again.points == summary.points
    assert store.get_metadata("nfcorpus-d64-none")["status"] == "complete"
    store.close()
