"""Depth check: are a report's @10 figures those of the search a user runs for the top 10?

Usage:
    python -m benchmarks.eval_depth_check REPORT_DIR_OR_RESULTS_JSON [--beir-dir DIR] [--data-dir DIR]
        [--tolerance 0.002]

For the dataset of a report written by `python -m eval`, re-encodes the judged queries with the
collections' model and, for every row (collection × search mode), runs a fresh search of the same shard
with the row's search parameters at limit 10 — 11 when the eval dropped hits whose id equals the query
id, as BEIR does — written here independently of `eval.search`: a query whose chunk hits cover fewer
documents than asked is asked again with the limit raised by the documents still missing; documents
score as their best chunk. It prints, per row, the report's NDCG@10, the fresh one, their difference,
and for contrast the NDCG@10 a single limit-125 search gives (how the eval measured @10 before), then
the largest |difference|. Exits 1 if it exceeds the tolerance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from eval.data import load_eval_data
from eval.metrics import evaluate_run, ordered_run
from eval.options import EvalOptions
from eval.plan import open_eval_store
from eval.query_encoder import encode_queries, load_query_encoder
from eval.results import load_results
from ingest.stores.base import SearchParams, VectorStore

OLD_LIMIT = 125


def fresh_docs(store: VectorStore, name: str, vector: np.ndarray, params: SearchParams, docs: int) -> dict:
    """One query's top `docs` documents (max over chunks) from the smallest limit that covers them."""
    total = store.count(name)
    limit = min(docs, total)
    while True:
        hits = store.search(name, vector.reshape(1, -1), limit, params)[0]
        best: dict[str, float] = {}
        for h in hits:
            did = str(h.payload["doc_id"])
            best[did] = max(best.get(did, -np.inf), float(h.score))
        if len(best) >= docs or len(hits) < limit or limit >= total:
            return dict(list(ordered_run(best).items())[:docs])
        limit = min(limit + docs - len(best), total)


def old_style(store: VectorStore, name: str, vector: np.ndarray, params: SearchParams) -> dict:
    """One query's documents from a single limit-125 search (the former depth of every metric)."""
    best: dict[str, float] = {}
    for h in store.search(name, vector.reshape(1, -1), OLD_LIMIT, params)[0]:
        did = str(h.payload["doc_id"])
        best[did] = max(best.get(did, -np.inf), float(h.score))
    return ordered_run(best)


def main(argv: list[str] | None = None) -> int:
    """Run the check; return the exit status (0: every row within the tolerance)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report", type=Path, help="a report directory (or its results.json)")
    parser.add_argument("--beir-dir", type=Path, action="append", default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--tolerance", type=float, default=0.002)
    args = parser.parse_args(argv)
    path = args.report / "results.json" if args.report.is_dir() else args.report
    results = load_results(path)
    overrides: dict[str, Any] = {
        "data_dir": args.data_dir,
        "beir_dirs": args.beir_dir,
        "split": results.split,
    }
    opts = EvalOptions.build(results.dataset, **overrides)
    ignore = results.options.ignore_identical_ids
    docs = 11 if ignore else 10
    data = load_eval_data(opts)
    store = open_eval_store(opts)
    try:
        encoder = load_query_encoder(results.model, opts)
        queries = encode_queries(encoder, data)
        encoder.close()
        print(f"{results.dataset}: {len(queries.ids)} queries, fresh searches of {docs} documents")
        print(f"{'collection':<24} {'mode':<12} {'report':>7} {'fresh':>7} {'diff':>8} {'limit125':>8}")
        worst = 0.0
        for row in results.configurations:
            params = SearchParams(**row.params)
            vectors = np.ascontiguousarray(queries.at_dim(row.dim), dtype=np.float32)
            fresh = {
                q: fresh_docs(store, row.collection, v, params, docs)
                for q, v in zip(queries.ids, vectors, strict=True)
            }
            deep = {
                q: old_style(store, row.collection, v, params)
                for q, v in zip(queries.ids, vectors, strict=True)
            }
            value = evaluate_run(data.qrels, fresh, ignore_identical_ids=ignore).mean["NDCG@10"]
            before = evaluate_run(data.qrels, deep, ignore_identical_ids=ignore).mean["NDCG@10"]
            diff = row.primary - value
            worst = max(worst, abs(diff))
            cells = f"{row.primary:7.4f} {value:7.4f} {diff:+8.4f} {before:8.4f}"
            print(f"{row.collection:<24} {row.mode:<12} {cells}")
    finally:
        store.close()
    verdict = "OK" if worst <= args.tolerance else "FAIL"
    print(f"max |report - fresh| NDCG@10 = {worst:.4f} (tolerance {args.tolerance}): {verdict}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
