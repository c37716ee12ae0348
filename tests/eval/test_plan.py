"""eval.plan: the configured collection list, skipped collections, the model check and the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.errors import EvalModelError, MissingCollectionError
from eval.options import EvalOptions
from eval.plan import CollectionPlan, CollectionTarget, configured_specs, open_eval_store, plan_collections
from ingest.config import CollectionSpec
from ingest.errors import InputError
from ingest.stores import open_store


def test_configured_specs() -> None:
    model = {"model_id": "m", "dim": 256}
    extra = CollectionSpec(dim=32, quantization="scalar")
    manifests = {
        "ds-d256-none": {"model": model, "spec": CollectionSpec(dim=256).to_dict()},
        "ds-d32-scalar": {"model": model, "spec": extra.to_dict()},
    }
    names = [s.name("ds") for s in configured_specs(EvalOptions(target="ds"), "ds", manifests)]
    # Default matrix for a 256-d model (256, 128, 64 × none, binary, scalar), then the extra collection.
    default = [f"ds-d{d}-{q}" for d in (256, 128, 64) for q in ("none", "binary", "scalar")]
    assert names == [*default, "ds-d32-scalar"]
    narrowed = configured_specs(
        EvalOptions(target="ds", dims=[64], quantizations=["binary"]), "ds", manifests
    )
    assert narrowed == [CollectionSpec(dim=64, quantization="binary")]
    with pytest.raises(InputError, match="exceed the model's dimension 256"):
        configured_specs(EvalOptions(target="ds", dims=[1024]), "ds", manifests)


def test_collection_target_reads_its_manifest() -> None:
    spec = CollectionSpec(dim=64, quantization="binary")
    target = CollectionTarget(spec, "ds-d64-binary", {"docs": 10, "chunks": 25, "points": 25}, {"hnsw_m": 16})
    assert target.chunks_per_doc == 2.5
    assert CollectionTarget(spec, "x", {}).chunks_per_doc == 1.0
    info = target.info()
    assert (info.name, info.points, info.engine_config) == ("ds-d64-binary", 25, {"hnsw_m": 16})
    assert info.spec == spec.to_dict()


def _store_with(data_dir: Path, collections: dict[str, tuple[CollectionSpec, dict[str, Any]]]) -> None:
    """Create empty embedded collections carrying the given manifests (as an ingest leaves them)."""
    store = open_store(data_dir=data_dir, qdrant_url=None)
    try:
        for name, (spec, manifest) in collections.items():
            store.ensure_collection(name, spec)
            store.set_metadata(name, {"dataset": "ds", "spec": spec.to_dict(), **manifest})
    finally:
        store.close()


def _plan(data_dir: Path, dataset: str = "ds", **options: Any) -> CollectionPlan:
    opts = EvalOptions(target=dataset, data_dir=data_dir, dims=[64], **options)
    store = open_eval_store(opts)
    try:
        return plan_collections(store, dataset, opts)
    finally:
        store.close()


def test_plan_skips_unfinished_collections_and_picks_the_float_baseline(tmp_path: Path) -> None:
    none, binary = CollectionSpec(dim=64), CollectionSpec(dim=64, quantization="binary")
    model = {"model_id": "m", "dim": 64}
    _store_with(
        tmp_path,
        {
            "ds-d64-none": (none, {"status": "complete", "model": model, "docs": 2, "chunks": 2}),
            "ds-d64-binary": (binary, {"status": "loading", "model": model}),
        },
    )
    plan = _plan(tmp_path)
    assert [t.name for t in plan.targets] == ["ds-d64-none"] and plan.baseline.name == "ds-d64-none"
    assert plan.model == model
    skipped = {s.collection: s.reason for s in plan.skipped}
    assert "ingest not finished (status 'loading')" in skipped.pop("ds-d64-binary")
    assert skipped == {"ds-d64-scalar": "does not exist (not ingested with this configuration)"}
    with pytest.raises(MissingCollectionError, match=r"none of the configured .* ds-d64-binary: ingest not"):
        _plan(tmp_path, quantizations=["binary"])
    with pytest.raises(MissingCollectionError, match="python -m ingest other"):
        _plan(tmp_path, dataset="other")


def test_plan_refuses_collections_of_different_models(tmp_path: Path) -> None:
    _store_with(
        tmp_path,
        {
            "ds-d64-none": (CollectionSpec(dim=64), {"model": {"model_id": "a", "dim": 64}}),
            "ds-d64-binary": (
                CollectionSpec(dim=64, quantization="binary"),
                {"model": {"model_id": "b", "dim": 64}},
            ),
        },
    )
    with pytest.raises(EvalModelError, match=r"different models .*ds-d64-none: a, ds-d64-binary: b"):
        _plan(tmp_path)
    with pytest.raises(MissingCollectionError, match=r"no float .* `python -m ingest ds --quantization none"):
        _plan(tmp_path, quantizations=["binary"])
