"""Retrieval metrics as BEIR computes them (pytrec_eval via beir), with per-query values.

A *run* maps query id → {doc id: score}; *qrels* map query id → {doc id: graded relevance}.
The headline numbers come from beir's `EvaluateRetrieval.evaluate` / `evaluate_custom` (so they
match published BEIR tables, rounded to 5 decimals as BEIR rounds); the per-query values come from
`pytrec_eval.RelevanceEvaluator` with the same measures, and from the same MRR definition beir uses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

PRIMARY_METRIC = "NDCG@10"
METRIC_NAMES: tuple[str, ...] = ("NDCG@10", "Recall@100", "MRR@10", "MAP@100")
# pytrec_eval measure names behind each metric (MRR is beir's own, see `_mrr_at_k`).
_TREC_KEYS: dict[str, str] = {"NDCG@10": "ndcg_cut_10", "Recall@100": "recall_100", "MAP@100": "map_cut_100"}
# beir rounds its means to 5 decimals; per-query means agree with them to this.
BEIR_ROUNDING = 5e-6


@dataclass(frozen=True)
class MetricResult:
    """The metrics of one run.

    Attributes:
        mean: Metric name → BEIR's value (mean over the evaluated queries, rounded to 5 decimals).
        per_query: Metric name → {query id: value} (unrounded).
        n_queries: Number of queries evaluated.
    """

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]
    n_queries: int

    def vector(self, metric: str, query_ids: list[str]) -> np.ndarray:
        """Return the per-query values of `metric` in `query_ids` order (missing queries count 0)."""
        values = self.per_query[metric]
        return np.array([values.get(q, 0.0) for q in query_ids], dtype=np.float64)


def ordered_run(scores: dict[str, float]) -> dict[str, float]:
    """Return `scores` as a dict ordered best first, ties broken by doc id descending.

    trec_eval (and so pytrec_eval) breaks score ties by doc id descending; beir's MRR uses a stable
    sort over insertion order. Inserting in trec_eval's order makes both agree on ties.
    """
    return dict(sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True))


def drop_identical_ids(run: Run) -> Run:
    """Return a copy of `run` without hits whose doc id equals the query id (BEIR's default)."""
    return {qid: {did: s for did, s in hits.items() if did != qid} for qid, hits in run.items()}


def _mrr_at_k(qrels: Qrels, run: Run, k: int) -> dict[str, float]:
    """Per-query reciprocal rank within the top k, exactly as `beir.retrieval.custom_metrics.mrr`."""
    out: dict[str, float] = {}
    for qid, hits in run.items():
        relevant = {did for did, rel in qrels[qid].items() if rel > 0}
        top = sorted(hits.items(), key=lambda item: item[1], reverse=True)[:k]
        out[qid] = next((1.0 / (rank + 1) for rank, (did, _) in enumerate(top) if did in relevant), 0.0)
    return out


def evaluate_run(qrels: Qrels, run: Run, *, ignore_identical_ids: bool = True) -> MetricResult:
    """Compute NDCG@10, Recall@100, MRR@10 and MAP@100 of a run, mean and per query.

    Only queries present in `qrels` are evaluated; a qrels query missing from the run counts as an
    empty result (score 0), so the mean is always over every judged query.

    Args:
        qrels: Relevance judgements (query id → {doc id: grade}).
        run: Retrieved docs (query id → {doc id: score}); not modified.
        ignore_identical_ids: Drop hits whose doc id equals the query id first, as BEIR does.

    Returns:
        The metrics.

    Raises:
        ValueError: if `qrels` is empty.
    """
    import pytrec_eval
    from beir.retrieval.evaluation import EvaluateRetrieval

    if not qrels:
        raise ValueError("qrels are empty: nothing to evaluate (check the split and the qrels file)")
    judged = {qid: ordered_run(run.get(qid, {})) for qid in qrels}
    if ignore_identical_ids:
        judged = drop_identical_ids(judged)
    # beir mutates the run it is given; pass copies.
    ndcg, _map, recall, _p = EvaluateRetrieval.evaluate(
        qrels, copy.deepcopy(judged), [10, 100], ignore_identical_ids=False
    )
    mrr = EvaluateRetrieval.evaluate_custom(qrels, copy.deepcopy(judged), [10], metric="mrr")
    mean = {
        "NDCG@10": float(ndcg["NDCG@10"]),
        "Recall@100": float(recall["Recall@100"]),
        "MRR@10": float(mrr["MRR@10"]),
        "MAP@100": float(_map["MAP@100"]),
    }
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100"})
    trec = evaluator.evaluate(judged)
    per_query: dict[str, dict[str, float]] = {
        name: {qid: float(trec[qid][key]) for qid in qrels} for name, key in _TREC_KEYS.items()
    }
    per_query["MRR@10"] = _mrr_at_k(qrels, judged, 10)
    per_query = {name: per_query[name] for name in METRIC_NAMES}
    return MetricResult(mean=mean, per_query=per_query, n_queries=len(qrels))
