"""eval.results: the typed results serialise to results.json once and read back, old files included."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from eval.report import render_report
from eval.results import RESULTS_SCHEMA, EvalResults, load_results, write_results_json

Factory = Callable[..., EvalResults]
DATA = Path(__file__).resolve().parent / "data"


def test_results_round_trip_through_results_json(make_results: Factory, tmp_path: Path) -> None:
    results = make_results(degrade={(256, "binary", "no-rescore"): 0.6})
    path = write_results_json(results, tmp_path / "run")
    saved = json.loads(path.read_text())
    assert saved["schema"] == RESULTS_SCHEMA
    loaded = load_results(path)
    assert loaded.to_dict() == saved
    assert loaded.baseline.collection == results.baseline.collection
    # The recommendation is stored without per-query values but reads back as its full row.
    assert loaded.recommendation is not None and loaded.recommendation in loaded.configurations
    assert loaded.recommendation.metrics.per_query
    assert render_report(loaded) == render_report(results)


SCHEMA2_ROW_FIELDS = (
    "hnsw_ef",
    "serving_ram_bytes",
    "serving_ram_per_vector",
    "rescore_disk_bytes_per_query",
    "qps",
    "clients",
    "delta_dim_pct",
    "delta_hnsw_pct",
    "delta_quantization_pct",
)


def test_a_results_json_of_the_dict_era_reads_back_unchanged() -> None:
    # Written by the eval before results were typed (schema /1, teacher section included).
    path = DATA / "results_schema1.json"
    results = load_results(path)
    # The same keys and values, written as schema /2: the fields /2 added are None (not measured then).
    expected = json.loads(path.read_text())
    expected["schema"] = RESULTS_SCHEMA
    expected["options"].update(hnsw_ef=[], clients=None)
    for row in [*expected["configurations"], expected["recommendation"]]:
        row.update(dict.fromkeys(SCHEMA2_ROW_FIELDS), engine_default=False, depth={}, cost={})
    assert results.to_dict() == expected
    assert results.teacher is not None and results.teacher.static_docs_per_s == 2600.0
    assert [s.collection for s in results.skipped] == ["tiny-d32-none"]
    assert render_report(results) == (DATA / "report_schema1.md").read_text()


def test_load_results_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "results.json")
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something-else/3"}')
    with pytest.raises(ValueError, match=r"not a results\.json written by `python -m eval`"):
        load_results(other)
    broken = json.loads((DATA / "results_schema1.json").read_text())
    del broken["queries"]
    other.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"other\.json: queries: expected an object"):
        load_results(other)
