"""Step 2 of an eval: the store and which collections to evaluate: open the store the ingest wrote,
resolve the configured collections, skip missing or unfinished ones, check they share one model and
pick the baseline (`CollectionTarget`, `CollectionPlan`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eval.errors import EvalModelError, MissingCollectionError
from eval.options import EvalOptions
from eval.query_encoder import model_identity
from eval.results import CollectionInfo, SkippedCollection
from ingest.config import CollectionSpec, IngestConfig, resolve_collections
from ingest.stores.base import VectorStore

log = logging.getLogger("eval")


def open_eval_store(opts: EvalOptions) -> VectorStore:
    """Open the store the ingest wrote to, read-only: qdrant-edge under `data_dir`, or the server at
    `qdrant_url`.

    Args:
        opts: The eval options.

    Returns:
        The open store (close it when done).

    Raises:
        StoreError: the store cannot be opened (server unreachable, shard locked by a running ingest).
    """
    from ingest.stores import open_store

    return open_store(
        data_dir=opts.data_dir,
        qdrant_url=opts.qdrant_url,
        timeout_s=opts.timeout_s,
        read_only=True,
        retries=opts.retries,
    )


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

    def info(self) -> CollectionInfo:
        """The collection as results.json describes it."""
        return CollectionInfo(self.name, self.spec.to_dict(), self.engine_config, self.manifest.get("points"))


@dataclass
class CollectionPlan:
    """Which collections are evaluated, which are skipped (and why), the model and the baseline.

    Attributes:
        dataset: The dataset.
        targets: Collections present and complete, in spec order.
        skipped: Each configured collection left out, with the reason.
        model: The model description from the manifests (all targets share it).
        baseline: The float (`none`) collection of the largest dimension, searched exactly.
    """

    dataset: str
    targets: list[CollectionTarget]
    skipped: list[SkippedCollection]
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

    Args:
        opts: The eval options.
        dataset: The dataset.
        manifests: Collection name → manifest, for the dataset's collections in the store.

    Returns:
        The specs, in order.

    Raises:
        InputError: a configured dim exceeds the model's dimension (raised by the ingest's resolver).
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


def _writer_active(store: VectorStore, name: str) -> bool | None:
    """Whether an ingest is writing the collection now: True when its lock is held by a writer, False
    when not, None when the store cannot tell (a server keeps no lock)."""
    root = getattr(store, "root", None)
    if getattr(store, "backend", None) != "edge" or root is None:
        return None
    from pathlib import Path

    from ingest.errors import StoreError
    from ingest.stores.lock import LOCK_FILE_NAME, CollectionLock

    lock = CollectionLock(Path(root) / name / LOCK_FILE_NAME, name)
    try:
        lock.acquire(exclusive=False)
    except StoreError:
        return True
    lock.release()
    return False


def _unfinished_advice(store: VectorStore, name: str, manifest: dict[str, Any]) -> str:
    """What to do about a collection whose ingest has not finished, by whether one is running now."""
    rerun = f"`python -m ingest {manifest.get('dataset') or '<dataset>'}` with the same options"
    running = _writer_active(store, name)
    if running:
        return (
            "an ingest is writing it now (it holds the collection's lock): wait for it to end, then rerun "
            "this eval"
        )
    if running is False:
        return f"no ingest is running, so the last one stopped before the end: rerun {rerun} to complete it"
    return (
        "an ingest may still be running: if so, wait for it to end and rerun this eval; if not, rerun "
        f"{rerun} to complete it"
    )


def _skip_reason(store: VectorStore, spec: CollectionSpec, name: str, manifest: dict[str, Any]) -> str | None:
    """Why a configured collection cannot be evaluated, or None when it can."""
    if not store.collection_exists(name):
        return "does not exist (not ingested with this configuration)"
    status = manifest.get("status", "complete")
    if status == "incomplete":
        # The ingest's reason ends with what to run (complete the run, --sync, or --recreate).
        why = manifest.get("reason") or "its points are not exactly the chunks of the ingested corpus"
        return f"does not hold exactly the ingested corpus ({why})"
    if status != "complete":
        return f"ingest not finished (status {status!r}): {_unfinished_advice(store, name, manifest)}"
    stored = manifest.get("spec") or {}
    if stored and (stored.get("dim"), stored.get("quantization")) != (spec.dim, spec.quantization):
        return (
            f"holds dim {stored.get('dim')} / {stored.get('quantization')}, configured "
            f"{spec.dim} / {spec.quantization}"
        )
    return None


def plan_collections(store: VectorStore, dataset: str, opts: EvalOptions) -> CollectionPlan:
    """Decide which configured collections to evaluate (see `configured_specs`).

    Missing or unfinished collections are skipped with a reason.

    Args:
        store: The open store.
        dataset: The dataset (as the collections carry it).
        opts: The eval options.

    Returns:
        The plan.

    Raises:
        MissingCollectionError: no collection of the dataset exists, none of the configured ones is
            ready, or no float (`none`) collection is left to serve as the baseline: says which
            ingest to run.
        EvalModelError: the collections were built with different models.
    """
    where = opts.qdrant_url or f"{opts.data_dir} (embedded)"
    manifests = _dataset_manifests(store, dataset)
    if not manifests:
        raise MissingCollectionError(
            f"no collection of dataset {dataset!r} in the store at {where}: run "
            f"`python -m ingest {opts.target}` first (with the same --data-dir / --qdrant-url)"
        )
    targets: list[CollectionTarget] = []
    skipped: list[SkippedCollection] = []
    for spec in configured_specs(opts, dataset, manifests):
        name = spec.name(dataset)
        manifest = manifests.get(name) or (store.get_metadata(name) if store.collection_exists(name) else {})
        reason = _skip_reason(store, spec, name, manifest)
        if reason is not None:
            skipped.append(SkippedCollection(name, reason))
            log.warning("skipping %s: %s", name, reason)
            continue
        stored = manifest.get("spec") or {}
        spec_used = CollectionSpec.from_dict(stored, where=f"manifest of {name}") if stored else spec
        targets.append(CollectionTarget(spec_used, name, manifest, _engine_config(store, name)))
    if not targets:
        raise MissingCollectionError(
            f"none of the configured collections of {dataset!r} is ready in {where}: "
            + "; ".join(f"{s.collection}: {s.reason}" for s in skipped)
        )
    if len({model_identity(t.manifest.get("model") or {}) for t in targets}) > 1:
        detail = ", ".join(f"{t.name}: {(t.manifest.get('model') or {}).get('model_id')}" for t in targets)
        raise EvalModelError(
            f"the collections of {dataset!r} were built with different models ({detail}): re-ingest them "
            "with one model (--recreate), or evaluate them separately with --config"
        )
    floats = [t for t in targets if t.spec.quantization == "none"]
    if not floats:
        raise MissingCollectionError(
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
