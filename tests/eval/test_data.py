"""eval.data: judged queries and qrels from BEIR folders/zips and from --queries/--qrels files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.data import corpus_checksum, load_eval_data, read_qrels_file, read_queries_file
from eval.errors import EvalInputError
from eval.options import EvalOptions
from ingest.errors import InputError

BEIR_DIR = Path(__file__).resolve().parents[3] / "shared" / "beir"


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
    with pytest.raises(EvalInputError, match=r"--queries FILE\.jsonl"):
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
    only_unjudged = tmp_path / "unjudged.tsv"
    only_unjudged.write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(EvalInputError, match="no judged query has a text"):
        load_eval_data(
            EvalOptions(target=str(corpus), data_dir=tmp_path, queries_path=queries, qrels_path=only_unjudged)
        )


def test_missing_queries_or_qrels_file_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(EvalInputError, match=r"nope\.jsonl does not exist: check --queries"):
        read_queries_file(tmp_path / "nope.jsonl")
    with pytest.raises(EvalInputError, match=r"nope\.tsv does not exist: check --qrels"):
        read_qrels_file(tmp_path / "nope.tsv")


def test_corpus_checksum_prefers_sha256() -> None:
    assert corpus_checksum({"sha256": "ab", "fingerprint": "f"}) == "sha256:ab"
    assert corpus_checksum({"corpus_sha256": "cd"}) == "sha256:cd"
    assert corpus_checksum({"archive_md5": "ef"}) == "archive_md5:ef"
    assert corpus_checksum({"kind": "hf"}) is None


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
