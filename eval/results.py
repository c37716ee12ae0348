"""Typed results of one eval and their one serialised form, results.json (written and read back here).

`EvalResults` holds the whole run: one `ConfigurationResult` per collection × search mode, the
recommended configuration, the optional `TeacherResult` and the context (model, engine, ingest,
queries, options, versions). `EvalResults.to_dict` gives the results.json content (schema
`RESULTS_SCHEMA`); `load_results` reads it back for `report`, `plots` and `compare`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from eval.metrics import PRIMARY_METRIC, MetricResult

RESULTS_SCHEMA = "static-ingest-eval/2"
# Schemas `load_results` reads. /2 added to every row the search depth of each metric, `hnsw_ef`, the
# measured serving cost (RAM, rescoring disk read, QPS with N clients) and the loss split; a /1 file reads
# back with those None (its @10 metrics came from one deep search, see `eval.search`).
READABLE_SCHEMAS: frozenset[str] = frozenset({"static-ingest-eval/1", RESULTS_SCHEMA})
METRICS_VIA = "beir.retrieval.evaluation.EvaluateRetrieval (pytrec_eval)"

T = TypeVar("T")


def _build(cls: type[T], data: Any, where: str) -> T:
    """Build a flat dataclass from a JSON object, keeping only its fields.

    Raises:
        ValueError: `data` is not an object or lacks a field without default, naming `where`.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    try:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _metrics(mean: dict[str, float], per_query: dict[str, dict[str, float]]) -> MetricResult:
    """A `MetricResult` from results.json's `metrics` and `per_query` sections."""
    n = len(per_query.get(PRIMARY_METRIC) or next(iter(per_query.values()), {}))
    return MetricResult(mean=dict(mean), per_query={m: dict(v) for m, v in per_query.items()}, n_queries=n)


def _build_scored(cls: type[T], data: Any, where: str, what: str) -> T:
    """`_build` for a section with `metrics` and `per_query` (a configuration row, the teacher).

    Raises:
        ValueError: not such a section, naming `where` and `what` it should be.
    """
    if not isinstance(data, dict) or "metrics" not in data:
        raise ValueError(f"{where}: not a {what} (no `metrics`)")
    return _build(cls, dict(data, metrics=_metrics(data["metrics"], data.get("per_query") or {})), where)


@dataclass
class SkippedCollection:
    """A configured collection left out of the eval, and why."""

    collection: str
    reason: str


@dataclass
class CollectionInfo:
    """A collection the eval searched.

    Attributes:
        name: Collection name.
        spec: Its configuration (`CollectionSpec.to_dict()`).
        engine_config: The configuration as the engine reports it.
        points: Points stored (from the ingest manifest), None if unknown.
    """

    name: str
    spec: dict[str, Any]
    engine_config: dict[str, Any]
    points: int | None = None


@dataclass
class IngestSummary:
    """What the ingest wrote for the baseline collection (from its manifest)."""

    docs: int | None = None
    chunks: int | None = None
    chunk_tokens: int | None = None
    chunk_overlap: int | None = None
    updated: str | None = None

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> IngestSummary:
        """Pick the summary out of an ingest manifest."""
        return cls(**{f.name: manifest.get(f.name) for f in fields(cls)})


@dataclass
class QueryStats:
    """The evaluated queries: how many, the qrels lines read, and the query encoding speed."""

    count: int
    qrels_rows: int
    encode_seconds: float
    queries_per_s: float


@dataclass
class ResultOptions:
    """The options that shape the numbers (as recorded in results.json)."""

    within: float
    alpha: float
    oversampling: list[float]
    min_docs: int
    ignore_identical_ids: bool
    permutations: int
    seed: int
    metrics_via: str = METRICS_VIA
    hnsw_ef: list[int] = field(default_factory=list)
    clients: int | None = None


@dataclass
class ConfigurationResult:
    """The evaluation of one collection × search mode (one row of the matrix).

    Attributes:
        collection: Collection name.
        dim: Its dimension.
        quantization: `none`, `binary` or `scalar`.
        mode: Search mode name (`exact`, `hnsw`, `no-rescore`, `rescore-x4`, ...).
        mode_order: Position of the mode in `eval.search.modes_for` (for stable tables).
        mode_description: How the number is obtained, in words.
        params: The store search parameters (`SearchParams.describe()`).
        spec: The collection configuration (`CollectionSpec.to_dict()`).
        engine_config: The collection's configuration as the engine reports it.
        bytes_per_vector: Bytes per vector of what this mode searches.
        is_baseline: Whether this is the baseline (largest float collection, exact search).
        metrics: Mean and per-query metrics.
        latency: p50/p95/mean ms, QPS and n.
        search: Limits used, re-queries, queries short of `min_docs`.
        delta_pct: Metric → relative change against the baseline in % (None: baseline scored 0).
        p_value: Paired randomization test p on per-query NDCG@10 against the baseline.
        hnsw_ef: Search-time HNSW ef (None: the engine default, the collection's ef_construct).
        engine_default: Whether the mode is the search the engine runs given no search parameters.
        depth: Metric → documents of the search it comes from (`{"NDCG@10": 10, "Recall@100": 100, ...}`).
        serving_ram_bytes: RAM the configuration × mode needs to serve, measured from the shard's files
            (`eval.cost`); None when not measurable (server store, /1 results).
        serving_ram_per_vector: `serving_ram_bytes` per point.
        rescore_disk_bytes_per_query: Bytes of original vectors read to rescore one @10 query (0: none).
        qps: Queries per second of the @10 search with `clients` concurrent clients.
        clients: Concurrent clients of `qps`.
        delta_dim_pct: Part of the NDCG@10 Δ% (of the baseline) due to the Matryoshka truncation: exact
            search at this dim against the baseline.
        delta_hnsw_pct: Part due to HNSW: the float HNSW search at this dim and ef against exact (0 for
            exact rows).
        delta_quantization_pct: Part due to quantization: this row against the float HNSW search at the
            same dim and ef (0 for float and exact rows). The three parts add up to `delta_pct["NDCG@10"]`.
        cost: How the serving cost was measured (parts counted, bytes of every part, shard).
    """

    collection: str
    dim: int
    quantization: str
    mode: str
    mode_order: int
    mode_description: str
    params: dict[str, Any]
    spec: dict[str, Any]
    engine_config: dict[str, Any]
    bytes_per_vector: float
    is_baseline: bool
    metrics: MetricResult
    latency: dict[str, float]
    search: dict[str, Any]
    delta_pct: dict[str, float | None] = field(default_factory=dict)
    p_value: float | None = None
    hnsw_ef: int | None = None
    engine_default: bool = False
    depth: dict[str, int] = field(default_factory=dict)
    serving_ram_bytes: int | None = None
    serving_ram_per_vector: float | None = None
    rescore_disk_bytes_per_query: float | None = None
    qps: float | None = None
    clients: int | None = None
    delta_dim_pct: float | None = None
    delta_hnsw_pct: float | None = None
    delta_quantization_pct: float | None = None
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> float:
        """The mean of the primary metric (NDCG@10)."""
        return float(self.metrics.mean[PRIMARY_METRIC])

    def to_dict(self, *, per_query: bool = True) -> dict[str, Any]:
        """The results.json row.

        Args:
            per_query: Include the per-query metrics (the `recommendation` copy leaves them out).
        """
        out: dict[str, Any] = {
            "collection": self.collection,
            "dim": self.dim,
            "quantization": self.quantization,
            "mode": self.mode,
            "mode_order": self.mode_order,
            "mode_description": self.mode_description,
            "params": dict(self.params),
            "spec": dict(self.spec),
            "engine_config": dict(self.engine_config),
            "bytes_per_vector": self.bytes_per_vector,
            "is_baseline": self.is_baseline,
            "metrics": dict(self.metrics.mean),
            "delta_pct": dict(self.delta_pct),
            "p_value": self.p_value,
            "latency": dict(self.latency),
            "search": dict(self.search),
            "hnsw_ef": self.hnsw_ef,
            "engine_default": self.engine_default,
            "depth": dict(self.depth),
            "serving_ram_bytes": self.serving_ram_bytes,
            "serving_ram_per_vector": self.serving_ram_per_vector,
            "rescore_disk_bytes_per_query": self.rescore_disk_bytes_per_query,
            "qps": self.qps,
            "clients": self.clients,
            "delta_dim_pct": self.delta_dim_pct,
            "delta_hnsw_pct": self.delta_hnsw_pct,
            "delta_quantization_pct": self.delta_quantization_pct,
            "cost": dict(self.cost),
        }
        if per_query:
            out["per_query"] = {m: dict(v) for m, v in self.metrics.per_query.items()}
        return out


@dataclass
class TeacherResult:
    """The transformer baseline: a sentence-transformers model with exact numpy search.

    Attributes:
        model_id: The model as named by `--baseline-model`.
        location: Where it was loaded from.
        dim: Its embedding dimension.
        max_seq_length: Its truncation length in tokens.
        docs: Documents encoded.
        docs_per_s: Document encoding speed.
        queries_per_s: Query encoding speed.
        encode_seconds: Document encoding time.
        search: How it was searched, in words.
        metrics: Mean and per-query metrics.
        delta_pct: Metric → relative change against the static baseline in %.
        p_value: Paired randomization test p on per-query NDCG@10 against the static baseline.
        static_docs_per_s: The static model's speed on the same documents, if measured.
    """

    model_id: str
    location: str
    dim: int
    max_seq_length: int
    docs: int
    docs_per_s: float
    queries_per_s: float
    encode_seconds: float
    search: str
    metrics: MetricResult
    delta_pct: dict[str, float | None]
    p_value: float | None
    static_docs_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `teacher` section of results.json (`static_docs_per_s` only when measured)."""
        out: dict[str, Any] = {
            "model_id": self.model_id,
            "location": self.location,
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
            "docs": self.docs,
            "docs_per_s": self.docs_per_s,
            "queries_per_s": self.queries_per_s,
            "encode_seconds": self.encode_seconds,
            "search": self.search,
            "metrics": dict(self.metrics.mean),
            "delta_pct": dict(self.delta_pct),
            "p_value": self.p_value,
            "per_query": {m: dict(v) for m, v in self.metrics.per_query.items()},
        }
        if self.static_docs_per_s is not None:
            out["static_docs_per_s"] = self.static_docs_per_s
        return out


@dataclass
class EvalResults:
    """Everything one eval found (= results.json).

    Attributes:
        dataset, split: What was evaluated.
        run_id: The run id (the report directory's name).
        created: UTC time the results were assembled (ISO 8601, seconds).
        corpus_checksum: `sha256:<hex>` of the corpus, if known.
        source: The corpus source description.
        model: The model description from the collections' manifest.
        engine: The search engine (`eval.environment.engine_description`).
        ingest: What the ingest wrote (baseline collection's manifest).
        queries: The evaluated queries.
        options: The options that shape the numbers.
        collections: The collections searched.
        configurations: One row per collection × mode.
        recommendation: The cheapest acceptable row (one of `configurations`), or None.
        skipped: Configured collections left out.
        warnings: Problems worth a line in the report.
        teacher: The transformer baseline, if one was run.
        versions: Python and package versions.
        plots: File names of the plots in the report directory.
    """

    dataset: str
    split: str
    run_id: str
    created: str
    corpus_checksum: str | None
    source: dict[str, Any]
    model: dict[str, Any]
    engine: dict[str, Any]
    ingest: IngestSummary
    queries: QueryStats
    options: ResultOptions
    collections: list[CollectionInfo]
    configurations: list[ConfigurationResult]
    recommendation: ConfigurationResult | None
    skipped: list[SkippedCollection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    teacher: TeacherResult | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> ConfigurationResult:
        """The baseline row.

        Raises:
            ValueError: no row is the baseline.
        """
        for cfg in self.configurations:
            if cfg.is_baseline:
                return cfg
        raise ValueError(
            "results hold no baseline configuration (the full-dim `none` collection, exact search)"
        )

    def find(self, *, dim: int, quantization: str, mode: str) -> ConfigurationResult | None:
        """The row with this dim, quantization and mode, or None."""
        for cfg in self.configurations:
            if (cfg.dim, cfg.quantization, cfg.mode) == (dim, quantization, mode):
                return cfg
        return None

    def to_dict(self) -> dict[str, Any]:
        """The results.json content (schema `RESULTS_SCHEMA`)."""
        base = self.baseline
        rec = self.recommendation
        return {
            "schema": RESULTS_SCHEMA,
            "dataset": self.dataset,
            "split": self.split,
            "run_id": self.run_id,
            "created": self.created,
            "corpus_checksum": self.corpus_checksum,
            "source": self.source,
            "model": self.model,
            "engine": self.engine,
            "ingest": _flat(self.ingest),
            "queries": _flat(self.queries),
            "options": _flat(self.options),
            "baseline": {"collection": base.collection, "mode": base.mode, "dim": base.dim},
            "collections": [_flat(c) for c in self.collections],
            "configurations": [c.to_dict() for c in self.configurations],
            "recommendation": None if rec is None else rec.to_dict(per_query=False),
            "skipped": [_flat(s) for s in self.skipped],
            "warnings": list(self.warnings),
            "teacher": None if self.teacher is None else self.teacher.to_dict(),
            "versions": self.versions,
            "plots": list(self.plots),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "results") -> EvalResults:
        """Read results.json content back (any schema in `READABLE_SCHEMAS`).

        Raises:
            ValueError: a section is missing or malformed, naming it.
        """
        configs = [
            _build_scored(ConfigurationResult, c, f"{where}: configurations[{i}]", "configuration row")
            for i, c in enumerate(data.get("configurations") or [])
        ]
        rec_data = data.get("recommendation")
        recommendation = None
        if rec_data:
            # The stored copy has no per-query values: point at the full row it copies.
            key = (rec_data.get("collection"), rec_data.get("mode"))
            recommendation = next(
                (c for c in configs if (c.collection, c.mode) == key), None
            ) or _build_scored(ConfigurationResult, rec_data, f"{where}: recommendation", "configuration row")
        teacher = data.get("teacher")
        top = dict(
            data,
            ingest=_build(IngestSummary, data.get("ingest") or {}, f"{where}: ingest"),
            queries=_build(QueryStats, data.get("queries"), f"{where}: queries"),
            options=_build(ResultOptions, data.get("options"), f"{where}: options"),
            collections=[
                _build(CollectionInfo, c, f"{where}: collections") for c in data.get("collections") or []
            ],
            configurations=configs,
            recommendation=recommendation,
            skipped=[_build(SkippedCollection, s, f"{where}: skipped") for s in data.get("skipped") or []],
            teacher=None
            if not teacher
            else _build_scored(TeacherResult, teacher, f"{where}: teacher", "teacher section"),
        )
        return _build(cls, top, where)


def _flat(obj: Any) -> dict[str, Any]:
    """A flat dataclass as a dict, in field order (lists copied)."""
    return {f.name: _copy(getattr(obj, f.name)) for f in fields(obj)}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def write_results_json(results: EvalResults, out_dir: Path) -> Path:
    """Write results.json into `out_dir` (created if needed), atomically, and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results.to_dict(), indent=1, default=_json_default) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_results(path: Path) -> EvalResults:
    """Read a results.json written by `python -m eval` (any schema in `READABLE_SCHEMAS`).

    Args:
        path: The results.json file.

    Returns:
        The typed results.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: it is not a results.json of this tool, or a section is malformed.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{path} does not exist: pass a report directory made by `python -m eval`"
        ) from exc
    if not isinstance(data, dict) or data.get("schema") not in READABLE_SCHEMAS:
        raise ValueError(
            f"{path} is not a results.json written by `python -m eval` (schema {RESULTS_SCHEMA})"
        )
    return EvalResults.from_dict(data, str(path))


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
