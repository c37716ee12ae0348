"""Search modes and the search of one collection × mode: a run plus per-query latencies.

Modes (see `modes_for`):
    exact           full scan over the original float vectors (no index, quantization ignored)
    hnsw            the collection's default ANN search (for quantized collections: the engine's
                    default quantized search, with its default rescoring)
    no-rescore      quantized collections only: the quantized index without rescoring
                    ("Binary Quantization, no rescoring")
    rescore-x{N}    quantized collections only: rescoring with the original vectors, oversampling N
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eval.aggregate import DOC_ID_KEY, distinct_docs, max_by_doc
from eval.metrics import Run
from ingest.config import CollectionSpec
from ingest.stores.base import Hit, SearchParams, VectorStore

DEFAULT_OVERSAMPLING: tuple[float, ...] = (1.0, 2.0, 4.0)
DEFAULT_MIN_DOCS = 100
WARMUP_QUERIES = 5


@dataclass(frozen=True)
class SearchMode:
    """One way of searching a collection.

    Attributes:
        name: Short name used in tables and results.json (`exact`, `hnsw`, `no-rescore`, `rescore-x4`).
        params: The store search parameters.
        description: How the number is obtained, in words, for the report.
    """

    name: str
    params: SearchParams
    description: str

    def to_dict(self) -> dict[str, Any]:
        """Return the mode as a JSON-serialisable dict."""
        return {"name": self.name, "params": self.params.describe(), "description": self.description}


def format_oversampling(value: float) -> str:
    """Return an oversampling factor as it appears in mode names (`4`, `1.5`)."""
    return f"{value:g}"


def modes_for(spec: CollectionSpec, oversampling: Sequence[float] = DEFAULT_OVERSAMPLING) -> list[SearchMode]:
    """Return the search modes that apply to a collection configuration.

    Args:
        spec: The collection configuration.
        oversampling: Oversampling factors of the rescoring modes (quantized collections only).

    Returns:
        `exact` and `hnsw` for every collection; for binary/scalar collections also `no-rescore` and
        one `rescore-x{N}` per oversampling factor.
    """
    modes = [
        SearchMode(
            "exact",
            SearchParams(exact=True, ignore_quantization=True),
            "full scan over the original float vectors (no index, quantization ignored)",
        ),
        SearchMode(
            "hnsw",
            SearchParams(),
            "HNSW with engine defaults"
            + (
                ""
                if spec.quantization == "none"
                else f" ({spec.quantization} quantization, engine default rescoring)"
            ),
        ),
    ]
    if spec.quantization != "none":
        modes.append(
            SearchMode(
                "no-rescore",
                SearchParams(rescore=False),
                f"HNSW over the {spec.quantization}-quantized vectors, no rescoring",
            )
        )
        for factor in oversampling:
            modes.append(
                SearchMode(
                    f"rescore-x{format_oversampling(factor)}",
                    SearchParams(rescore=True, oversampling=float(factor)),
                    f"HNSW over the {spec.quantization}-quantized vectors, oversampling "
                    f"{format_oversampling(factor)}, rescored with the original vectors",
                )
            )
    return modes


@dataclass
class SearchOutcome:
    """The result of searching one collection in one mode, one query at a time.

    Attributes:
        collection: Collection name.
        mode: The search mode.
        run: Query id → {doc id: max chunk score}, best first.
        latencies: Wall-clock seconds per query (including any re-query for more documents).
        initial_limit: Chunk hits asked for first.
        max_limit: Largest chunk limit any query needed.
        requeries: Number of extra searches made because too few distinct documents came back.
        short_queries: Queries that ended with fewer than `min_docs` documents (the collection ran out).
    """

    collection: str
    mode: SearchMode
    run: Run
    latencies: list[float]
    initial_limit: int
    max_limit: int
    requeries: int = 0
    short_queries: list[str] = field(default_factory=list)


def initial_chunk_limit(min_docs: int, chunks_per_doc: float) -> int:
    """Return how many chunk hits to ask for first so that about `min_docs` documents come back.

    Args:
        min_docs: Distinct documents wanted.
        chunks_per_doc: Mean chunks per document in the collection (from its manifest; 1 if unknown).

    Returns:
        `ceil(min_docs × max(1, chunks_per_doc) × 1.25)`: a margin for documents with several hits.
    """
    return math.ceil(min_docs * max(1.0, chunks_per_doc) * 1.25)


def search_docs(
    store: VectorStore,
    name: str,
    vector: np.ndarray,
    params: SearchParams,
    *,
    min_docs: int,
    limit: int,
    max_points: int,
    doc_key: str = DOC_ID_KEY,
) -> tuple[list[Hit], int, int]:
    """Search one query, doubling the chunk limit until `min_docs` distinct documents come back.

    Args:
        store: The store.
        name: Collection name.
        vector: One query vector (dim,) or (1, dim), normalised.
        params: Search parameters.
        min_docs: Distinct documents wanted.
        limit: First chunk limit.
        max_points: Points in the collection (no limit beyond it is useful).
        doc_key: Payload key of the document id.

    Returns:
        (hits, the limit that was finally used, the number of re-queries).
    """
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    limit = max(1, min(limit, max_points))
    requeries = 0
    while True:
        hits = store.search(name, query, limit, params)[0]
        enough = distinct_docs(hits, doc_key) >= min_docs
        exhausted = len(hits) < limit or limit >= max_points
        if enough or exhausted:
            return hits, limit, requeries
        limit = min(limit * 2, max_points)
        requeries += 1


def search_collection(
    store: VectorStore,
    name: str,
    query_ids: Sequence[str],
    vectors: np.ndarray,
    mode: SearchMode,
    *,
    min_docs: int = DEFAULT_MIN_DOCS,
    chunks_per_doc: float = 1.0,
    doc_key: str = DOC_ID_KEY,
    warmup: int = WARMUP_QUERIES,
) -> SearchOutcome:
    """Search every query against one collection in one mode, one query at a time, timing each.

    The first `warmup` queries are searched once untimed first (page cache, lazy index loads), then
    every query is searched and timed by a single client, one at a time.

    Args:
        store: The store.
        name: Collection name.
        query_ids: Query ids, in the row order of `vectors`.
        vectors: Query vectors (n × collection dim), L2-normalised float32.
        mode: The search mode.
        min_docs: Distinct documents each query must return (re-queried with a larger limit if not).
        chunks_per_doc: Mean chunks per document, to size the first limit.
        doc_key: Payload key of the document id.
        warmup: Untimed queries before measuring.

    Returns:
        The run, latencies and limits.

    Raises:
        ValueError: if the number of ids and vectors differ.
    """
    if len(query_ids) != len(vectors):
        raise ValueError(f"{len(query_ids)} query ids but {len(vectors)} query vectors")
    max_points = store.count(name)
    limit = initial_chunk_limit(min_docs, chunks_per_doc)
    for i in range(min(warmup, len(query_ids))):
        store.search(name, np.ascontiguousarray(vectors[i : i + 1], dtype=np.float32), limit, mode.params)
    run: Run = {}
    latencies: list[float] = []
    max_used = 0
    requeries = 0
    short: list[str] = []
    for qid, vector in zip(query_ids, vectors, strict=True):
        start = time.perf_counter()
        hits, used, extra = search_docs(
            store,
            name,
            vector,
            mode.params,
            min_docs=min_docs,
            limit=limit,
            max_points=max_points,
            doc_key=doc_key,
        )
        latencies.append(time.perf_counter() - start)
        run[qid] = max_by_doc(hits, doc_key)
        max_used = max(max_used, used)
        requeries += extra
        if len(run[qid]) < min_docs:
            short.append(qid)
    return SearchOutcome(
        collection=name,
        mode=mode,
        run=run,
        latencies=latencies,
        initial_limit=min(limit, max_points),
        max_limit=max_used,
        requeries=requeries,
        short_queries=short,
    )


def exact_numpy_search(
    queries: np.ndarray, docs: np.ndarray, doc_ids: Sequence[str], k: int, *, block: int = 4096
) -> list[dict[str, float]]:
    """Brute-force top-k by dot product (cosine for normalised vectors), in corpus blocks.

    Args:
        queries: Query vectors (n × d), L2-normalised.
        docs: Document vectors (m × d), L2-normalised.
        doc_ids: Ids of the rows of `docs`.
        k: Hits per query.
        block: Corpus rows per matrix product (bounds memory at n × block floats).

    Returns:
        Per query, {doc id: score} best first (ties by doc id descending, as trec_eval orders them);
        rows sharing a doc id (chunks) count once, by their best score.

    Raises:
        ValueError: if the dimensions or the id count do not match.
    """
    if queries.ndim != 2 or docs.ndim != 2 or queries.shape[1] != docs.shape[1]:
        raise ValueError(f"query and document vectors differ in shape: {queries.shape} vs {docs.shape}")
    if len(doc_ids) != len(docs):
        raise ValueError(f"{len(doc_ids)} doc ids but {len(docs)} document vectors")
    n, m = len(queries), len(docs)
    k = min(k, m)
    best_scores = np.full((n, 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((n, 0), dtype=np.int64)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    for start in range(0, m, block):
        sims = q @ np.ascontiguousarray(docs[start : start + block], dtype=np.float32).T
        rows = np.broadcast_to(np.arange(start, start + sims.shape[1]), sims.shape)
        scores = np.concatenate([best_scores, sims], axis=1)
        cand = np.concatenate([best_rows, rows], axis=1)
        if scores.shape[1] > k:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores = np.take_along_axis(scores, top, axis=1)
            cand = np.take_along_axis(cand, top, axis=1)
        best_scores, best_rows = scores, cand
    out: list[dict[str, float]] = []
    for i in range(n):
        pairs: dict[str, float] = {}
        for r, s in zip(best_rows[i], best_scores[i], strict=True):
            did = doc_ids[int(r)]
            pairs[did] = max(float(s), pairs.get(did, -math.inf))
        out.append(dict(sorted(pairs.items(), key=lambda item: (item[1], item[0]), reverse=True)))
    return out
