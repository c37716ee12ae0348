"""Search modes and the search of one collection × mode at the depth a user queries.

Modes (see `modes_for`), each a distinct search — no two modes of a collection run the same search:
    exact           full scan over the original float vectors (no index, quantization ignored)
    hnsw            float collections: HNSW at the engine's default `ef` (the collection's `ef_construct`)
                    (none on a float collection without a graph, `hnsw_m` 0: the default matrix's)
    hnsw-ef{E}      HNSW with search-time `ef` E (each of `--hnsw-ef`, default 64, 128, 256; a value equal
                    to the engine default is the `hnsw` / default row already); on a quantized collection
                    with the engine's default quantized search (see below)
    no-rescore      quantized collections: the quantized index without rescoring
    rescore-x{N}    quantized collections: rescoring with the original vectors, oversampling N

The engine's default quantized search (no `rescore` / `oversampling` given) is, in Qdrant and qdrant-edge,
rescoring for binary quantization and no rescoring for scalar (`QuantizedVectors::default_rescoring`), with
oversampling 1. So on a binary collection the default search *is* `rescore-x1` and on a scalar one it is
`no-rescore`: those rows carry the default and there is no separate `hnsw` row (`SearchMode.engine_default`).

Depth (`search_collection`): every metric comes from the search a user would run for it.
    @10 metrics (NDCG@10, MRR@10)       one search of limit 10 (11 when hits whose id equals the query id
                                        are dropped, as BEIR does: it asks for one more), oversampling
                                        relative to that limit — rescore-x1 rescores 10 (11) candidates
    @100 metrics (Recall@100, MAP@100)  one search of limit `min_docs` (default 100; +1 likewise)
Chunked corpora: a document scores as its best chunk (max), and a search must return the wanted number
of distinct documents. A query whose chunk hits cover too few documents is asked again with the limit
raised by the number of documents still missing (each extra hit adds at most one new document, so the
limit never overshoots the smallest one that fills the depth for an exact search), until the depth is
filled or the collection runs out; the document list is then cut to the depth. An unchunked corpus never
re-queries: its @10 figures come from exactly one limit-10 (11) search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval.aggregate import DOC_ID_KEY, distinct_docs, max_by_doc
from eval.metrics import Run
from ingest.config import CollectionSpec
from ingest.stores.base import Hit, SearchParams, VectorStore

DEFAULT_OVERSAMPLING: tuple[float, ...] = (1.0, 2.0, 4.0)
# Search-time HNSW ef values swept besides the engine default (which is the collection's ef_construct).
DEFAULT_HNSW_EF: tuple[int, ...] = (64, 128, 256)
DEFAULT_MIN_DOCS = 100
# Documents the @10 metrics are computed from.
SHALLOW_DOCS = 10
DEFAULT_CLIENTS = 4
WARMUP_QUERIES = 5


@dataclass(frozen=True)
class SearchMode:
    """One way of searching a collection.

    Attributes:
        name: Short name used in tables and results.json (`exact`, `hnsw`, `hnsw-ef64`, `no-rescore`,
            `rescore-x4`).
        params: The store search parameters.
        description: How the number is obtained, in words, for the report.
        engine_default: Whether this is the search the engine runs when given no search parameters.
    """

    name: str
    params: SearchParams
    description: str
    engine_default: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the mode as a JSON-serialisable dict."""
        return {
            "name": self.name,
            "params": self.params.describe(),
            "description": self.description,
            "engine_default": self.engine_default,
        }


def format_oversampling(value: float) -> str:
    """Return an oversampling factor as it appears in mode names (`4`, `1.5`)."""
    return f"{value:g}"


def default_rescoring(quantization: str) -> bool:
    """Whether the engine rescores a quantized search by default: binary yes, scalar no (Qdrant's rule)."""
    return quantization == "binary"


def rescores(spec: CollectionSpec, params: SearchParams) -> bool:
    """Whether a search re-ranks its candidates with the original vectors (reading them).

    Args:
        spec: The collection.
        params: The search parameters (None fields take the engine default).
    """
    if spec.quantization == "none" or params.exact or params.ignore_quantization:
        return False
    return default_rescoring(spec.quantization) if params.rescore is None else bool(params.rescore)


def effective_oversampling(params: SearchParams) -> float:
    """The oversampling a search runs with (the engine default is 1)."""
    return 1.0 if params.oversampling is None else float(params.oversampling)


def modes_for(
    spec: CollectionSpec,
    oversampling: Sequence[float] = DEFAULT_OVERSAMPLING,
    hnsw_ef: Sequence[int] = DEFAULT_HNSW_EF,
    *,
    exact: bool = True,
) -> list[SearchMode]:
    """Return the distinct search modes of a collection configuration (see the module docstring).

    Args:
        spec: The collection configuration.
        oversampling: Oversampling factors of the rescoring modes (quantized collections only).
        hnsw_ef: Search-time HNSW ef values besides the engine default (values equal to the
            collection's `ef_construct`, the engine default, are left out: that search is already a row).
        exact: Include `exact` (a quantized collection's exact search is the float collection's of the
            same dim: leave it out when that one is evaluated).

    Returns:
        `exact` (unless excluded), then for float collections `hnsw` and `hnsw-ef{E}` (none without
        a graph, `hnsw_m` 0: the default matrix's, whose every search is exact); for quantized
        collections `no-rescore`, one `rescore-x{N}` per oversampling factor (the engine-default one
        marked) and `hnsw-ef{E}` (engine-default quantized search at that ef).
    """
    default_ef = spec.hnsw_ef_construct
    efs = list(dict.fromkeys(int(e) for e in hnsw_ef if int(e) != default_ef))
    modes: list[SearchMode] = []
    if exact:
        modes.append(
            SearchMode(
                "exact",
                SearchParams(exact=True, ignore_quantization=True),
                "full scan over the original float vectors (no index, quantization ignored)",
            )
        )
    if spec.quantization == "none" and spec.hnsw_m == 0:
        return modes  # no graph (hnsw_m 0): every search of the collection is the full scan above
    if spec.quantization == "none":
        modes.append(
            SearchMode(
                "hnsw",
                SearchParams(),
                f"HNSW at the engine default ef (= ef_construct {default_ef})",
                engine_default=True,
            )
        )
        for ef in efs:
            modes.append(SearchMode(f"hnsw-ef{ef}", SearchParams(hnsw_ef=ef), f"HNSW at ef {ef}"))
        return modes
    quant = spec.quantization
    default_note = f" — the engine default search (ef {default_ef})"
    modes.append(
        SearchMode(
            "no-rescore",
            SearchParams(rescore=False),
            f"HNSW over the {quant}-quantized vectors, no rescoring"
            + ("" if default_rescoring(quant) else default_note),
            engine_default=not default_rescoring(quant),
        )
    )
    factors = list(dict.fromkeys(float(f) for f in oversampling))
    for factor in factors:
        is_default = default_rescoring(quant) and factor == 1.0
        modes.append(
            SearchMode(
                f"rescore-x{format_oversampling(factor)}",
                SearchParams(rescore=True, oversampling=factor),
                f"HNSW over the {quant}-quantized vectors, oversampling {format_oversampling(factor)}, "
                "rescored with the original vectors" + (default_note if is_default else ""),
                engine_default=is_default,
            )
        )
    default_search = "rescored, oversampling 1" if default_rescoring(quant) else "no rescoring"
    for ef in efs:
        modes.append(
            SearchMode(
                f"hnsw-ef{ef}",
                SearchParams(hnsw_ef=ef),
                f"HNSW at ef {ef} over the {quant}-quantized vectors, engine default quantized search "
                f"({default_search})",
            )
        )
    return modes


def depth_docs(depth: int, ignore_identical_ids: bool) -> int:
    """Documents to ask for so that `depth` remain after BEIR drops hits whose id equals the query id."""
    return depth + 1 if ignore_identical_ids else depth


@dataclass
class QuerySearch:
    """One query searched to a depth in documents.

    Attributes:
        docs: Doc id → max chunk score, best first, at most the depth asked for.
        limit: The chunk limit of the last search.
        searches: Engine searches made (1 + re-queries).
        chunk_hits_asked: Sum of the limits of every search (the candidates rescoring starts from).
    """

    docs: dict[str, float]
    limit: int
    searches: int
    chunk_hits_asked: int


def search_docs(
    store: VectorStore,
    name: str,
    vector: np.ndarray,
    params: SearchParams,
    *,
    docs: int,
    max_points: int,
    doc_key: str = DOC_ID_KEY,
) -> QuerySearch:
    """Search one query until `docs` distinct documents come back (see the module docstring: limit
    `docs` first, raised by the number of documents still missing).

    Args:
        store: The store.
        name: Collection name.
        vector: One query vector (dim,) or (1, dim), normalised.
        params: Search parameters.
        docs: Distinct documents wanted.
        max_points: Points in the collection (no limit beyond it is useful).
        doc_key: Payload key of the document id.

    Returns:
        The documents (max over chunks, cut to `docs`), the last limit and the searches made.
    """
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    limit = max(1, min(docs, max_points))
    searches = 0
    asked = 0
    while True:
        hits: list[Hit] = store.search(name, query, limit, params)[0]
        searches += 1
        asked += limit
        found = distinct_docs(hits, doc_key)
        if found >= docs or len(hits) < limit or limit >= max_points:
            ranked = max_by_doc(hits, doc_key)
            return QuerySearch(dict(list(ranked.items())[:docs]), limit, searches, asked)
        limit = min(limit + (docs - found), max_points)


@dataclass
class DepthOutcome:
    """Every query searched to one depth.

    Attributes:
        depth: Documents the metrics of this depth use (10 or `min_docs`).
        docs_asked: Documents asked for (depth, +1 when identical ids are dropped).
        run: Query id → {doc id: score}, best first.
        latencies: Wall-clock seconds per query (re-queries included), one query at a time.
        max_limit: Largest chunk limit any query needed.
        requeries: Extra searches made because too few distinct documents came back.
        short_queries: Queries that ended with fewer documents than asked (the collection ran out).
        chunk_hits_asked: Per query, the sum of the limits of its searches.
    """

    depth: int
    docs_asked: int
    run: Run
    latencies: list[float]
    max_limit: int
    requeries: int
    short_queries: list[str]
    chunk_hits_asked: list[int]

    def summary(self) -> dict[str, Any]:
        """Limits, re-queries and short queries as recorded in a results row."""
        return {
            "depth": self.depth,
            "docs_asked": self.docs_asked,
            "max_limit": self.max_limit,
            "requeries": self.requeries,
            "short_queries": len(self.short_queries),
            "mean_chunk_hits_asked": float(np.mean(self.chunk_hits_asked)) if self.chunk_hits_asked else 0.0,
        }


def search_depth(
    store: VectorStore,
    name: str,
    query_ids: Sequence[str],
    vectors: np.ndarray,
    params: SearchParams,
    *,
    depth: int,
    docs: int,
    max_points: int,
    doc_key: str = DOC_ID_KEY,
) -> DepthOutcome:
    """Search every query to one depth, one query at a time, timing each (re-queries included).

    Args:
        store: The store.
        name: Collection name.
        query_ids: Query ids, in the row order of `vectors`.
        vectors: Query vectors (n × collection dim), L2-normalised float32.
        params: Search parameters.
        depth: The metrics' depth (recorded).
        docs: Distinct documents asked for (depth, +1 when identical ids are dropped).
        max_points: Points in the collection.
        doc_key: Payload key of the document id.

    Returns:
        The run, latencies and limits.
    """
    run: Run = {}
    latencies: list[float] = []
    asked: list[int] = []
    max_limit = requeries = 0
    short: list[str] = []
    for qid, vector in zip(query_ids, vectors, strict=True):
        start = time.perf_counter()
        found = search_docs(store, name, vector, params, docs=docs, max_points=max_points, doc_key=doc_key)
        latencies.append(time.perf_counter() - start)
        run[qid] = found.docs
        max_limit = max(max_limit, found.limit)
        requeries += found.searches - 1
        asked.append(found.chunk_hits_asked)
        if len(found.docs) < docs:
            short.append(qid)
    return DepthOutcome(depth, docs, run, latencies, max_limit, requeries, short, asked)


def concurrent_qps(
    store: VectorStore,
    name: str,
    vectors: np.ndarray,
    params: SearchParams,
    *,
    docs: int,
    max_points: int,
    clients: int,
    doc_key: str = DOC_ID_KEY,
) -> float:
    """Queries per second with `clients` threads searching the shard at once, one query per call each.

    qdrant-edge serves concurrent searches on one shard from several threads (one `EdgeShard`, shared);
    how far they overlap depends on the cores free, so QPS is a property of the machine and its load.

    Args:
        store: The store.
        name: Collection name.
        vectors: Query vectors; every one is searched once (as `search_docs` at `docs`).
        params: Search parameters.
        docs: Distinct documents per query.
        max_points: Points in the collection.
        clients: Concurrent client threads.
        doc_key: Payload key of the document id.

    Returns:
        Queries / wall-clock seconds of the whole pass.
    """

    def one(i: int) -> None:
        search_docs(store, name, vectors[i], params, docs=docs, max_points=max_points, doc_key=doc_key)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(len(vectors))))
    seconds = time.perf_counter() - start
    return len(vectors) / seconds if seconds > 0 else math.inf


@dataclass
class SearchOutcome:
    """The result of searching one collection in one mode at each metric's depth.

    Attributes:
        collection: Collection name.
        mode: The search mode.
        shallow: The @10 searches (timed: the latency of the row).
        deep: The @100 (`min_docs`) searches.
        points: Points in the collection.
        qps: Queries per second of the @10 search with `clients` concurrent clients (None: not measured).
        clients: Concurrent clients of `qps`.
        footprint: The shard's files by part (`eval.cost.ShardFootprint`), None when not measurable.
    """

    collection: str
    mode: SearchMode
    shallow: DepthOutcome
    deep: DepthOutcome
    points: int
    qps: float | None = None
    clients: int | None = None
    footprint: Any = None

    @property
    def latencies(self) -> list[float]:
        """Per-query seconds of the @10 search (what a user waits for)."""
        return self.shallow.latencies


def search_collection(
    store: VectorStore,
    name: str,
    query_ids: Sequence[str],
    vectors: np.ndarray,
    mode: SearchMode,
    *,
    min_docs: int = DEFAULT_MIN_DOCS,
    ignore_identical_ids: bool = True,
    doc_key: str = DOC_ID_KEY,
    warmup: int = WARMUP_QUERIES,
    clients: int | None = None,
) -> SearchOutcome:
    """Search every query against one collection in one mode at the depth of each metric.

    The first `warmup` queries are searched once untimed (page cache, lazy index loads); then the @10
    search (limit 10, or 11 with `ignore_identical_ids`) of every query is timed by a single client, one
    query at a time; then the @100 search (limit `min_docs`, +1 likewise); then, with `clients`, the @10
    searches again by that many concurrent clients for QPS.

    Args:
        store: The store.
        name: Collection name.
        query_ids: Query ids, in the row order of `vectors`.
        vectors: Query vectors (n × collection dim), L2-normalised float32.
        mode: The search mode.
        min_docs: Depth of the @100 metrics in documents.
        ignore_identical_ids: Ask one document more at each depth (BEIR drops hits whose id is the query's).
        doc_key: Payload key of the document id.
        warmup: Untimed queries before measuring.
        clients: Concurrent clients of the QPS pass; None skips it.

    Returns:
        Both depths' runs, latencies and limits, and the QPS.

    Raises:
        ValueError: if the number of ids and vectors differ.
    """
    if len(query_ids) != len(vectors):
        raise ValueError(f"{len(query_ids)} query ids but {len(vectors)} query vectors")
    max_points = store.count(name)
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    shallow_docs = depth_docs(SHALLOW_DOCS, ignore_identical_ids)
    deep_docs = depth_docs(min_docs, ignore_identical_ids)
    for i in range(min(warmup, len(query_ids))):
        search_docs(
            store, name, rows[i], mode.params, docs=shallow_docs, max_points=max_points, doc_key=doc_key
        )
    common: dict[str, Any] = {"max_points": max_points, "doc_key": doc_key}
    shallow = search_depth(
        store, name, query_ids, rows, mode.params, depth=SHALLOW_DOCS, docs=shallow_docs, **common
    )
    deep = search_depth(store, name, query_ids, rows, mode.params, depth=min_docs, docs=deep_docs, **common)
    qps = None
    if clients is not None and len(query_ids):
        qps = concurrent_qps(store, name, rows, mode.params, docs=shallow_docs, clients=clients, **common)
    return SearchOutcome(name, mode, shallow, deep, max_points, qps, clients)


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


def mode_family(mode: str) -> str:
    """`exact`, `hnsw`, `no-rescore` or `rescore` (the family of a mode name such as `rescore-x4`)."""
    for family in ("no-rescore", "rescore", "hnsw", "exact"):
        if mode.startswith(family):
            return family
    return mode


_FAMILY_ORDER = ("exact", "hnsw", "no-rescore", "rescore")


def mode_sort_key(mode: str) -> tuple[int, float, str]:
    """Order modes for legends: exact, hnsw (default, then by ef), no-rescore, rescore by oversampling."""
    family = mode_family(mode)
    rank = _FAMILY_ORDER.index(family) if family in _FAMILY_ORDER else len(_FAMILY_ORDER)
    digits = "".join(ch if ch.isdigit() or ch == "." else " " for ch in mode).split()
    try:
        number = float(digits[-1]) if digits else -1.0
    except ValueError:
        number = -1.0
    return (rank, number, mode)
