"""eval.scoring: bytes/vector of what each mode searches, result rows, the comparison with the baseline."""

from __future__ import annotations

import pytest

from eval.metrics import MetricResult
from eval.options import EvalOptions
from eval.plan import CollectionPlan, CollectionTarget
from eval.results import ConfigurationResult
from eval.scoring import (
    compare_to_baseline,
    configuration_result,
    delta_pct,
    depth_metrics,
    metric_depths,
    searched_bytes_per_vector,
    target_modes,
)
from eval.search import SearchMode, modes_for
from ingest.config import CollectionSpec


def test_bytes_per_vector_is_that_of_the_searched_structure() -> None:
    spec = CollectionSpec(dim=256, quantization="binary")
    by_mode = {m.name: searched_bytes_per_vector(spec, m) for m in modes_for(spec, (4,), (64,))}
    # exact ignores quantization (scans float32); the others search the 1-bit vectors first.
    assert by_mode == {"exact": 1024.0, "no-rescore": 32.0, "rescore-x4": 32.0, "hnsw-ef64": 32.0}
    floats = CollectionSpec(dim=64)
    assert {searched_bytes_per_vector(floats, m) for m in modes_for(floats)} == {256.0}


def test_compare_to_baseline_fills_delta_and_p() -> None:
    spec = CollectionSpec(dim=64)
    mode = modes_for(spec)[0]

    def row(values: dict[str, float], baseline: bool = False) -> ConfigurationResult:
        metrics = MetricResult({"NDCG@10": sum(values.values()) / len(values)}, {"NDCG@10": values}, 3)
        return configuration_result("c", spec, mode, 0, metrics, {}, {}, is_baseline=baseline)

    base = row({"a": 0.5, "b": 0.5, "c": 0.5}, baseline=True)
    worse = row({"a": 0.25, "b": 0.25, "c": 0.25})
    opts = EvalOptions(target="x", permutations=100)
    assert compare_to_baseline([worse, base], opts) is base
    assert base.p_value == 1.0 and base.delta_pct == {"NDCG@10": 0.0}
    assert worse.delta_pct["NDCG@10"] == pytest.approx(-50.0)
    assert worse.p_value is not None and 0 < worse.p_value <= 1
    with pytest.raises(ValueError, match="no baseline row"):
        compare_to_baseline([worse], opts)
    assert delta_pct(1.0, 0.0) is None


def _row(spec: CollectionSpec, mode: SearchMode, ndcg: float, baseline: bool = False) -> ConfigurationResult:
    metrics = MetricResult({"NDCG@10": ndcg}, {"NDCG@10": {"a": ndcg, "b": ndcg}}, 2)
    return configuration_result(spec.name("ds"), spec, mode, 0, metrics, {}, {}, is_baseline=baseline)


def test_loss_split_into_dim_hnsw_and_quantization_parts() -> None:
    full, small, binary = (
        CollectionSpec(dim=256),
        CollectionSpec(dim=64),
        CollectionSpec(dim=64, quantization="binary"),
    )
    modes = {
        (s.dim, s.quantization, m.name): m for s in (full, small, binary) for m in modes_for(s, (4,), (64,))
    }
    base = _row(full, modes[(256, "none", "exact")], 0.5, baseline=True)
    exact64 = _row(small, modes[(64, "none", "exact")], 0.45)
    hnsw64 = _row(small, modes[(64, "none", "hnsw")], 0.44)
    hnsw64_ef = _row(small, modes[(64, "none", "hnsw-ef64")], 0.43)
    rescored = _row(binary, modes[(64, "binary", "rescore-x4")], 0.42)
    binary_ef = _row(binary, modes[(64, "binary", "hnsw-ef64")], 0.40)
    rows = [base, exact64, hnsw64, hnsw64_ef, rescored, binary_ef]
    compare_to_baseline(rows, EvalOptions(target="x", permutations=10))
    # Parts of the loss in % of the baseline's 0.5: dim 0.45 vs 0.5, HNSW 0.44 vs 0.45, quantization the rest.
    assert (exact64.delta_dim_pct, exact64.delta_hnsw_pct, exact64.delta_quantization_pct) == pytest.approx(
        (-10.0, 0.0, 0.0)
    )
    assert (hnsw64.delta_dim_pct, hnsw64.delta_hnsw_pct, hnsw64.delta_quantization_pct) == pytest.approx(
        (-10.0, -2.0, 0.0)
    )
    assert (
        rescored.delta_dim_pct,
        rescored.delta_hnsw_pct,
        rescored.delta_quantization_pct,
    ) == pytest.approx((-10.0, -2.0, -4.0))
    # The ef-64 binary row is compared with the float HNSW search at the same ef.
    assert (binary_ef.delta_hnsw_pct, binary_ef.delta_quantization_pct) == pytest.approx((-4.0, -6.0))
    for row in rows:
        parts = (row.delta_dim_pct or 0.0) + (row.delta_hnsw_pct or 0.0) + (row.delta_quantization_pct or 0.0)
        assert parts == pytest.approx(row.delta_pct["NDCG@10"])
    # Without a float collection at the row's dim the parts that need it stay unknown.
    lone = _row(binary, modes[(64, "binary", "no-rescore")], 0.3)
    compare_to_baseline([base, lone], EvalOptions(target="x", permutations=10))
    assert lone.delta_dim_pct is None and lone.delta_quantization_pct is None


def test_each_metric_from_its_depth() -> None:
    shallow = MetricResult(
        {"NDCG@10": 0.4, "MRR@10": 0.5, "Recall@100": 0.1, "MAP@100": 0.1},
        {m: {"a": v} for m, v in {"NDCG@10": 0.4, "MRR@10": 0.5, "Recall@100": 0.1, "MAP@100": 0.1}.items()},
        1,
    )
    deep = MetricResult(
        {"NDCG@10": 0.9, "MRR@10": 0.9, "Recall@100": 0.7, "MAP@100": 0.3},
        {m: {"a": v} for m, v in {"NDCG@10": 0.9, "MRR@10": 0.9, "Recall@100": 0.7, "MAP@100": 0.3}.items()},
        1,
    )
    merged = depth_metrics(shallow, deep)
    assert merged.mean == {"NDCG@10": 0.4, "MRR@10": 0.5, "Recall@100": 0.7, "MAP@100": 0.3}
    assert merged.per_query["NDCG@10"] == {"a": 0.4} and merged.per_query["MAP@100"] == {"a": 0.3}
    assert metric_depths(100, list(merged.mean)) == {
        "NDCG@10": 10,
        "MRR@10": 10,
        "Recall@100": 100,
        "MAP@100": 100,
    }


def test_exact_is_searched_once_per_dim() -> None:
    specs = [CollectionSpec(dim=64, quantization=q) for q in ("none", "binary", "scalar")]
    specs.append(CollectionSpec(dim=32, quantization="binary"))
    targets = [CollectionTarget(s, s.name("ds"), {}) for s in specs]
    plan = CollectionPlan("ds", targets, [], {}, targets[0])
    opts = EvalOptions(target="ds", oversampling=(2,), hnsw_ef=(64,))
    names = {t.spec.name("ds"): [m.name for m in target_modes(t, plan, opts)] for t in targets}
    assert names["ds-d64-none"] == ["exact", "hnsw", "hnsw-ef64"]
    # A quantized collection's exact search is the float one's of the same dim: searched once.
    assert names["ds-d64-binary"] == ["no-rescore", "rescore-x2", "hnsw-ef64"]
    assert names["ds-d64-scalar"] == ["no-rescore", "rescore-x2", "hnsw-ef64"]
    assert names["ds-d32-binary"][0] == "exact"  # no float collection at 32
