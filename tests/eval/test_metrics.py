"""Metrics: hand-computed values, BEIR conventions, and a cross-check against ranx."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from eval.metrics import METRIC_NAMES, evaluate_run, ordered_run

BEIR_DIR = Path(__file__).resolve().parents[3] / "shared" / "beir"

# q1: graded judgements, one judged doc (d9) never retrieved, one zero-grade doc (d3) retrieved.
# q2: single relevant doc at rank 3.  q3: judged but absent from the run (counts as 0).
QRELS = {
    "q1": {"d1": 2, "d2": 1, "d3": 0, "d9": 1},
    "q2": {"d5": 1},
    "q3": {"d7": 1},
}
RUN = {
    "q1": {"d4": 0.9, "d2": 0.8, "d3": 0.7, "d1": 0.6},
    "q2": {"d6": 0.5, "d8": 0.4, "d5": 0.3},
}

# trec_eval nDCG: gain = grade, discount = 1 / log2(rank + 1).
# q1 ranking d4(0) d2(1) d3(0) d1(2): DCG = 1/log2(3) + 2/log2(5) = 0.63093 + 0.86135 = 1.49228
#    ideal grades 2,1,1:             IDCG = 2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.63093 + 0.5 = 3.13093
Q1_NDCG = (1 / math.log2(3) + 2 / math.log2(5)) / (
    2 + 1 / math.log2(3) + 1 / math.log2(4)
)  # 1.49228 / 3.13093 = 0.47663
# q2 ranking d6(0) d8(0) d5(1): DCG = 1/log2(4) = 0.5, IDCG = 1.
Q2_NDCG = 0.5
EXPECTED_PER_QUERY = {
    "NDCG@10": {"q1": Q1_NDCG, "q2": Q2_NDCG, "q3": 0.0},
    # relevant = grade > 0: q1 has d1, d2, d9 (3), retrieves d1, d2 → 2/3; q2 retrieves its only one.
    "Recall@100": {"q1": 2 / 3, "q2": 1.0, "q3": 0.0},
    # first relevant: q1 d2 at rank 2, q2 d5 at rank 3.
    "MRR@10": {"q1": 1 / 2, "q2": 1 / 3, "q3": 0.0},
    # AP = Σ precision at each relevant hit / R: q1 (1/2 + 2/4) / 3 = 1/3; q2 (1/3) / 1 = 1/3.
    "MAP@100": {"q1": 1 / 3, "q2": 1 / 3, "q3": 0.0},
}
EXPECTED_MEAN = {
    "NDCG@10": (Q1_NDCG + Q2_NDCG) / 3,  # 0.32554
    "Recall@100": (2 / 3 + 1) / 3,  # 5/9 = 0.55556
    "MRR@10": (1 / 2 + 1 / 3) / 3,  # 5/18 = 0.27778
    "MAP@100": (1 / 3 + 1 / 3) / 3,  # 2/9 = 0.22222
}


def test_hand_computed_values() -> None:
    result = evaluate_run(QRELS, RUN)
    assert pytest.approx(0.476626, abs=1e-6) == Q1_NDCG
    assert result.n_queries == 3
    for name in METRIC_NAMES:
        # beir rounds its means to 5 decimals.
        assert result.mean[name] == pytest.approx(EXPECTED_MEAN[name], abs=5e-6), name
        for qid, value in EXPECTED_PER_QUERY[name].items():
            assert result.per_query[name][qid] == pytest.approx(value, abs=1e-12), (name, qid)


def test_input_run_is_not_modified() -> None:
    run = {"q1": {"q1": 0.9, "d1": 0.5}}
    evaluate_run({"q1": {"d1": 1}}, run)
    assert run == {"q1": {"q1": 0.9, "d1": 0.5}}


def test_identical_ids_dropped_by_default_as_beir_does() -> None:
    # Judged itself relevant, as happens in ArguAna-like datasets.
    qrels = {"qA": {"qA": 1, "d1": 1}}
    run = {"qA": {"qA": 0.9, "d1": 0.8}}
    dropped = evaluate_run(qrels, run)
    # Without qA the list is d1 only: DCG = 1, IDCG = 1 + 1/log2(3) (qA stays judged) → 0.61315.
    assert dropped.per_query["NDCG@10"]["qA"] == pytest.approx(1 / (1 + 1 / math.log2(3)), abs=1e-12)
    assert dropped.per_query["Recall@100"]["qA"] == pytest.approx(0.5)
    kept = evaluate_run(qrels, run, ignore_identical_ids=False)
    assert kept.per_query["NDCG@10"]["qA"] == pytest.approx(1.0)
    assert kept.per_query["Recall@100"]["qA"] == pytest.approx(1.0)


def test_ties_follow_trec_eval_order_in_every_metric() -> None:
    # trec_eval breaks the tie by doc id descending: dB ranks before dA.
    qrels = {"q": {"dA": 1}}
    run = {"q": {"dA": 0.5, "dB": 0.5}}
    result = evaluate_run(qrels, run)
    assert result.per_query["NDCG@10"]["q"] == pytest.approx(1 / math.log2(3))
    assert result.per_query["MRR@10"]["q"] == pytest.approx(0.5)
    assert result.mean["MRR@10"] == pytest.approx(0.5)
    assert list(ordered_run(run["q"])) == ["dB", "dA"]


def test_empty_qrels_rejected() -> None:
    with pytest.raises(ValueError, match="qrels are empty"):
        evaluate_run({}, {"q": {"d": 1.0}})


def _ranx_per_query(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, dict]:
    from ranx import Qrels, Run, evaluate

    ranx_run = Run(run)
    evaluate(Qrels(qrels), ranx_run, ["ndcg@10", "recall@100", "mrr@10", "map@100"])
    names = {"ndcg@10": "NDCG@10", "recall@100": "Recall@100", "mrr@10": "MRR@10", "map@100": "MAP@100"}
    return {names[k]: {q: float(v) for q, v in d.items()} for k, d in ranx_run.scores.items()}


def test_hand_built_agrees_with_ranx() -> None:
    judged = {q: QRELS[q] for q in RUN}
    ours = evaluate_run(judged, RUN)
    theirs = _ranx_per_query(judged, RUN)
    for name in METRIC_NAMES:
        for qid in RUN:
            assert ours.per_query[name][qid] == pytest.approx(theirs[name][qid], abs=1e-9), (name, qid)


@pytest.mark.slow
def test_real_nfcorpus_qrels_agree_with_ranx_to_1e6() -> None:
    from ingest.sources.beir import BeirSource

    source = BeirSource(BEIR_DIR / "nfcorpus.zip")
    qrels = source.load_qrels("test")
    assert len(qrels) == 323
    assert sum(len(v) for v in qrels.values()) == 12334
    corpus_ids = sorted(source.corpus_ids())
    rng = random.Random(7)
    run: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        docs = rng.sample(corpus_ids, 150)
        scores = {d: rng.random() for d in docs}
        for d in list(judged)[:4]:  # a mix of ranks for judged docs, graded 1 and 2
            if rng.random() < 0.6:
                scores[d] = rng.random() + 0.2
        run[qid] = scores
    ours = evaluate_run(qrels, run)
    theirs = _ranx_per_query(qrels, run)
    qids = list(qrels)
    for name in METRIC_NAMES:
        a = ours.vector(name, qids)
        b = np.array([theirs[name][q] for q in qids])
        assert np.max(np.abs(a - b)) < 1e-6, name
        assert ours.mean[name] == pytest.approx(b.mean(), abs=5e-6), name
    assert 0.0 < ours.mean["NDCG@10"] < 1.0
