"""eval.scoring: bytes/vector of what each mode searches, result rows, the comparison with the baseline."""

from __future__ import annotations

import pytest

from eval.metrics import MetricResult
from eval.options import EvalOptions
from eval.results import ConfigurationResult
from eval.scoring import compare_to_baseline, configuration_result, delta_pct, searched_bytes_per_vector
from eval.search import modes_for
from ingest.config import CollectionSpec


def test_bytes_per_vector_is_that_of_the_searched_structure() -> None:
    spec = CollectionSpec(dim=256, quantization="binary")
    by_mode = {m.name: searched_bytes_per_vector(spec, m) for m in modes_for(spec, (4,))}
    # exact ignores quantization (scans float32); the others search the 1-bit vectors first.
    assert by_mode == {"exact": 1024.0, "hnsw": 32.0, "no-rescore": 32.0, "rescore-x4": 32.0}
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
