"""End to end on real NFCorpus: ingest once with the offline stand-in, run `python -m eval`, check numbers.

The matrix is limited to dims 256/64 × none/binary (a low full_scan_threshold so HNSW really runs).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eval.__main__ import main
from eval.compare import compare
from eval.errors import EvalModelError, MissingCollectionError
from eval.options import EvalOptions
from eval.plan import open_eval_store, plan_collections
from eval.query_encoder import load_query_encoder
from ingest.config import CollectionSpec, IngestConfig

BEIR_DIR = Path(__file__).resolve().parents[3] / "shared" / "beir"
SPECS = [
    CollectionSpec(dim=d, quantization=q, full_scan_threshold=100)
    for d in (256, 64)
    for q in ("none", "binary")
]
NOT_INGESTED = CollectionSpec(dim=128, quantization="none", full_scan_threshold=100)
RUN_ID = "e2e"

pytestmark = pytest.mark.slow


@dataclass
class EvalCase:
    data_dir: Path
    model_path: Path
    out: Path
    run_dir: Path
    results: dict[str, Any]
    report: str


def _toml(specs: list[CollectionSpec]) -> str:
    tables = []
    for s in specs:
        tables.append(
            f'[[collections]]\ndim = {s.dim}\nquantization = "{s.quantization}"\n'
            f"full_scan_threshold = {s.full_scan_threshold}\n"
        )
    return "\n".join(tables)


@pytest.fixture(scope="session")
def nfcorpus_eval(tmp_path_factory: pytest.TempPathFactory, standin_dir: Path) -> EvalCase:
    """Ingest NFCorpus once (stand-in model, 4 collections), then run the eval CLI once."""
    from ingest.pipeline import run_ingest

    model_path = standin_dir
    root = tmp_path_factory.mktemp("eval-e2e")
    data_dir = root / "data"
    cfg = IngestConfig(
        collections=list(SPECS), model=str(model_path), data_dir=data_dir, beir_dirs=[BEIR_DIR]
    )
    summary = run_ingest("nfcorpus", cfg, progress=False)
    assert summary.docs == 3633
    config = root / "eval.toml"
    # The config also names a collection that was never ingested: it must be skipped, not fail.
    config.write_text(_toml([*SPECS, NOT_INGESTED]))
    out = root / "reports"
    code = main(
        [
            "nfcorpus",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--beir-dir",
            str(BEIR_DIR),
            "--out",
            str(out),
            "--run-id",
            RUN_ID,
            "--oversampling",
            "1,4",
            "--permutations",
            "2000",
        ]
    )
    assert code == 0
    run_dir = out / "nfcorpus" / RUN_ID
    return EvalCase(
        data_dir,
        model_path,
        out,
        run_dir,
        json.loads((run_dir / "results.json").read_text()),
        (run_dir / "report.md").read_text(),
    )


def _config(results: dict[str, Any], dim: int, quant: str, mode: str) -> dict[str, Any]:
    return next(
        c for c in results["configurations"] if (c["dim"], c["quantization"], c["mode"]) == (dim, quant, mode)
    )


def test_report_files_and_sections(nfcorpus_eval: EvalCase) -> None:
    run_dir = nfcorpus_eval.run_dir
    for name in ("report.md", "results.json", "ndcg_vs_dim.png", "ndcg_vs_ram.png"):
        assert (run_dir / name).is_file(), name
        assert (run_dir / name).stat().st_size > 1000
    text = nfcorpus_eval.report
    assert "OFFLINE STAND-IN" in text  # the stand-in is flagged loudly, before any number
    assert text.index("OFFLINE STAND-IN") < text.index("## Published form")
    assert (
        "| Dataset | Original vectors | Binary Quantization, no rescoring | BQ + rescoring (oversampling 4) |"
        in text
    )
    assert "## Full matrix" in text and "## Recommendation" in text
    assert "`nfcorpus-d128-none`: does not exist" in text
    assert "edge" in text and "0.9.0" in text


def test_results_json_contents(nfcorpus_eval: EvalCase) -> None:
    results = nfcorpus_eval.results
    assert results["dataset"] == "nfcorpus" and results["split"] == "test"
    assert results["queries"]["count"] == 323
    assert results["queries"]["qrels_rows"] == 12334
    with zipfile.ZipFile(BEIR_DIR / "nfcorpus.zip") as zf:
        digest = hashlib.sha256(zf.read("nfcorpus/corpus.jsonl")).hexdigest()
    assert results["corpus_checksum"] == f"sha256:{digest}"
    assert results["model"]["kind"] == "stand-in"
    assert results["versions"]["qdrant-edge-py"] == "0.9.0"
    # 2 float collections × (exact, hnsw, hnsw-ef64/128/256) + 2 binary × (no-rescore, rescore-x1 — the
    # engine's default binary search —, rescore-x4, hnsw-ef64/128/256); a binary collection's exact search
    # is the float one's of the same dim (a row of its own only while the runner lists it).
    pairs = [(c["collection"], c["mode"]) for c in results["configurations"]]
    assert len(set(pairs)) == len(pairs)
    for dim in (256, 64):
        modes = {m for col, m in pairs if col == f"nfcorpus-d{dim}-none"}
        assert modes == {"exact", "hnsw", "hnsw-ef64", "hnsw-ef128", "hnsw-ef256"}
        modes = {m for col, m in pairs if col == f"nfcorpus-d{dim}-binary"} - {"exact"}
        assert modes == {"no-rescore", "rescore-x1", "rescore-x4", "hnsw-ef64", "hnsw-ef128", "hnsw-ef256"}
    assert [s["collection"] for s in results["skipped"]] == ["nfcorpus-d128-none"]
    for c in results["configurations"]:
        assert len(c["per_query"]["NDCG@10"]) == 323
        assert c["latency"]["p50_ms"] > 0 and c["latency"]["qps"] > 0
        assert c["search"]["short_queries"] == 0  # every query got ≥ 100 distinct documents
        per_query_mean = np.mean(list(c["per_query"]["NDCG@10"].values()))
        assert c["metrics"]["NDCG@10"] == pytest.approx(per_query_mean, abs=5e-6)
    # bytes/vector is that of what each mode searches: exact ignores quantization and scans float32.
    assert _config(results, 64, "binary", "no-rescore")["bytes_per_vector"] == 8
    assert _config(results, 64, "none", "exact")["bytes_per_vector"] == 256
    base = _config(results, 256, "none", "exact")
    assert base["is_baseline"] and results["baseline"]["collection"] == "nfcorpus-d256-none"
    assert 0.15 < base["metrics"]["NDCG@10"] < 0.45


def _ndcg10(ranked: list[str], judged: dict[str, int]) -> float:
    """trec_eval nDCG@10: gain = grade, discount log2(rank + 1), ideal from all judged grades."""
    dcg = sum(judged.get(d, 0) / np.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


@pytest.mark.parametrize("dim", [256, 64])
def test_exact_ndcg_equals_numpy_brute_force(nfcorpus_eval: EvalCase, dim: int) -> None:
    from ingest.encoder.static import load_encoder, slice_normalise
    from ingest.sources.beir import BeirSource

    results = nfcorpus_eval.results
    source = BeirSource(BEIR_DIR / "nfcorpus.zip")
    qrels = source.load_qrels("test")
    queries = source.load_queries("test")
    qids = list(qrels)
    opts = EvalOptions(target="nfcorpus", data_dir=nfcorpus_eval.data_dir)
    store = open_eval_store(opts)
    try:
        name = f"nfcorpus-d{dim}-none"
        points = store.retrieve(name, store.scroll_ids(name), with_vectors=True)
        # The chunk text lives in one collection of the dataset, joined by point id.
        sample = points[:: max(1, len(points) // 40)]
        text_collection = store.get_metadata(name)["text_collection"]
        texts = [p.payload["text"] for p in store.retrieve(text_collection, [p.id for p in sample])]
    finally:
        store.close()
    assert len(points) == results["collections"][0]["points"]
    chunk_vectors = np.stack([p.vector for p in points]).astype(np.float32)
    chunk_docs = np.array([p.payload["doc_id"] for p in points])
    encoder = load_encoder(str(nfcorpus_eval.model_path), data_dir=nfcorpus_eval.data_dir)
    # The stored vectors are the model's own: re-encode a sample of chunk texts.
    again = slice_normalise(encoder.encode(texts), dim)
    assert np.allclose(again, np.stack([p.vector for p in sample]), atol=1e-5)
    q = slice_normalise(encoder.encode_queries([queries[i] for i in qids]), dim)
    sims = q @ chunk_vectors.T  # every query × every chunk
    scores = []
    for row, qid in enumerate(qids):
        best: dict[str, float] = {}
        for doc, s in zip(chunk_docs, sims[row], strict=True):
            if doc != qid and s > best.get(doc, -2.0):
                best[doc] = float(s)
        ranked = sorted(best, key=lambda d: (best[d], d), reverse=True)
        scores.append(_ndcg10(ranked, qrels[qid]))
    expected = float(np.mean(scores))
    got = _config(results, dim, "none", "exact")["metrics"]["NDCG@10"]
    assert got == pytest.approx(expected, abs=1e-4)


def test_binary_without_rescoring_differs_from_exact(nfcorpus_eval: EvalCase) -> None:
    results = nfcorpus_eval.results
    for dim in (256, 64):
        exact = _config(results, dim, "none", "exact")["metrics"]["NDCG@10"]
        no_rescore = _config(results, dim, "binary", "no-rescore")
        # exact ignores quantization: the binary collection holds the same float vectors.
        binary_exact = [c for c in results["configurations"] if c["collection"].endswith(f"d{dim}-binary")]
        for row in (c for c in binary_exact if c["mode"] == "exact"):
            assert row["metrics"]["NDCG@10"] == pytest.approx(exact, abs=1e-9)
        assert no_rescore["metrics"]["NDCG@10"] != pytest.approx(exact, abs=1e-3)
        assert no_rescore["delta_pct"]["NDCG@10"] < 0
        assert no_rescore["bytes_per_vector"] == dim / 8


def test_compare_reads_the_run(nfcorpus_eval: EvalCase) -> None:
    text, rows = compare([nfcorpus_eval.out / "nfcorpus"])
    assert rows[0]["dataset"] == "nfcorpus"
    base = _config(nfcorpus_eval.results, 256, "none", "exact")["metrics"]["NDCG@10"]
    assert f"| nfcorpus | {base:.4f} |" in text
    assert "OFFLINE STAND-IN" in text


def test_mismatched_query_model_is_refused(nfcorpus_eval: EvalCase) -> None:
    opts = EvalOptions(target="nfcorpus", data_dir=nfcorpus_eval.data_dir, model="random-256")
    store = open_eval_store(opts)
    try:
        plan = plan_collections(store, "nfcorpus", opts)
    finally:
        store.close()
    with pytest.raises(EvalModelError, match="query encoder mismatch"):
        load_query_encoder(plan.model, opts)


def test_unknown_dataset_says_to_ingest_first(nfcorpus_eval: EvalCase) -> None:
    opts = EvalOptions(target="scifact", data_dir=nfcorpus_eval.data_dir)
    store = open_eval_store(opts)
    try:
        with pytest.raises(MissingCollectionError, match="python -m ingest scifact"):
            plan_collections(store, "scifact", opts)
    finally:
        store.close()
