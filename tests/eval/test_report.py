"""Report, recommendation, plots and compare, on results assembled from hand-built runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from eval.__main__ import main
from eval.compare import compare, resolve_results
from eval.metrics import MetricResult
from eval.report import REFERENCE_NDCG10, model_caveat, published_row, recommend, render_report
from eval.results import ConfigurationResult, EvalResults, TeacherResult, load_results
from eval.runner import write_report

Factory = Callable[..., EvalResults]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(bytes_per_vector: float, ndcg: float, p: float | None, p50: float = 1.0) -> ConfigurationResult:
    return ConfigurationResult(
        collection=f"c{bytes_per_vector:g}",
        dim=64,
        quantization="binary",
        mode="no-rescore",
        mode_order=2,
        mode_description="",
        params={},
        spec={},
        engine_config={},
        bytes_per_vector=bytes_per_vector,
        is_baseline=False,
        metrics=MetricResult({"NDCG@10": ndcg}, {}, 0),
        latency={"p50_ms": p50},
        search={},
        p_value=p,
    )


def test_recommend_picks_cheapest_acceptable() -> None:
    rows = [
        _row(1024, 0.500, 1.0),  # baseline
        _row(256, 0.495, 0.30),  # -1%, not significant: acceptable
        _row(32, 0.492, 0.01),  # -1.6% but significantly worse: rejected
        _row(8, 0.400, 0.50),  # -20%: rejected
        _row(128, 0.489, 0.40),  # -2.2%: outside 2%
    ]
    assert recommend(rows, 0.500, within=0.02) is rows[1]
    # With 3% allowed, 128 B at -2.2% qualifies and is cheaper.
    assert recommend(rows, 0.500, within=0.03) is rows[4]
    # Better than the baseline counts as acceptable even with a small p.
    better = _row(16, 0.520, 0.001)
    assert recommend([*rows, better], 0.500) is better
    assert recommend([_row(8, 0.1, 0.5)], 0.5) is None


def test_recommend_tie_on_bytes_prefers_quality_then_speed() -> None:
    a, b, c = _row(32, 0.495, 0.5, p50=2.0), _row(32, 0.498, 0.5, p50=3.0), _row(32, 0.498, 0.5, p50=1.0)
    assert recommend([a, b, c], 0.5) is c


def test_assembled_results_carry_deltas_and_p(make_results: Factory) -> None:
    results = make_results(degrade={(256, "binary", "no-rescore"): 0.6})
    by_key = {(c.dim, c.quantization, c.mode): c for c in results.configurations}
    assert len(by_key) == 2 * 2 + 2 * 5  # none: exact, hnsw; binary: + no-rescore, rescore-x1, rescore-x4
    base = by_key[(256, "none", "exact")]
    assert base is results.baseline
    assert base.is_baseline and base.p_value == 1.0 and base.delta_pct["NDCG@10"] == 0.0
    worse = by_key[(256, "binary", "no-rescore")]
    expected = (worse.primary - base.primary) / base.primary * 100
    assert worse.delta_pct["NDCG@10"] == pytest.approx(expected)
    assert worse.delta_pct["NDCG@10"] < -5
    assert worse.p_value is not None and worse.p_value < 0.05
    assert worse.bytes_per_vector == 32.0  # 256 bits
    assert by_key[(256, "binary", "exact")].bytes_per_vector == 1024.0  # exact scans the float vectors
    assert set(worse.metrics.per_query["NDCG@10"]) == {f"q{i}" for i in range(40)}
    assert results.recommendation is not None and results.recommendation in results.configurations
    saved = results.to_dict()
    assert "per_query" not in saved["recommendation"] and "per_query" in saved["configurations"][0]
    assert saved["baseline"] == {"collection": "toyset-d256-none", "mode": "exact", "dim": 256}


def test_report_has_published_table_matrix_and_recommendation(
    make_results: Factory, results_dir: Path
) -> None:
    results = make_results(degrade={(256, "binary", "no-rescore"): 0.6})
    files = write_report(results, results_dir / "toyset" / "run-0")
    text = files.report_md.read_text()
    row = published_row(results)
    assert row["rescore_mode"] == "rescore-x4"
    header = (
        "| Dataset | Original vectors | Binary Quantization, no rescoring | BQ + rescoring (oversampling 4) |"
    )
    assert header in text
    assert (
        f"| toyset | {row['original']:.4f} | {row['bq_no_rescore']:.4f} | {row['bq_rescore']:.4f} |" in text
    )
    # Published form comes first, then the matrix, then the recommendation.
    assert text.index(header) < text.index("## Full matrix") < text.index("## Recommendation")
    assert "| 64 | binary | no-rescore |" in text
    assert "(baseline)" in text
    assert "Produced with `test/static-model`" in text
    for name, (orig, bq) in REFERENCE_NDCG10.items():
        assert f"| {name} | {orig:.4f} | {bq:.4f} |" in text
    assert "`x`: does not exist" in text
    assert "WARNING" not in text
    for png in files.plots:
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert png.stat().st_size > 5000
    saved = json.loads(files.results_json.read_text())
    assert saved["configurations"][0]["per_query"]["NDCG@10"]
    assert saved["versions"]["beir"] == "2.2.0"
    assert render_report(load_results(files.results_json)) == text


def test_standin_and_random_models_are_flagged(make_results: Factory) -> None:
    standin = make_results(
        model={"model_id": "static-ingest/standin-minilm-distilled", "kind": "standin", "dim": 256}
    )
    text = render_report(standin)
    assert "OFFLINE STAND-IN" in text
    assert text.index("OFFLINE STAND-IN") < text.index("## Published form")
    random_model = {"model_id": "random-1024", "random_weights": True, "dim": 256}
    assert "RANDOM weights" in (model_caveat(random_model) or "")
    assert model_caveat({"model_id": "sentence-transformers/static-retrieval-mrl-en-v1"}) is None


def test_compare_one_row_per_dataset(
    make_results: Factory, results_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    a = make_results("scifact", seed=1)
    b = make_results("nfcorpus", seed=2, degrade={(256, "binary", "no-rescore"): 0.5})
    write_report(a, results_dir / "scifact" / "run-1")
    old = make_results("nfcorpus", seed=3)
    write_report(old, results_dir / "nfcorpus" / "run-0")
    write_report(b, results_dir / "nfcorpus" / "run-2")
    (results_dir / "nfcorpus" / "run-2" / "results.json").touch()  # newest
    # Run dir, dataset dir (latest run) and the reports root all resolve.
    assert resolve_results(results_dir / "nfcorpus") == [results_dir / "nfcorpus" / "run-2" / "results.json"]
    assert len(resolve_results(results_dir)) == 2
    text, rows = compare([results_dir / "scifact" / "run-1", results_dir / "nfcorpus"])
    assert [r["dataset"] for r in rows] == ["scifact", "nfcorpus"]
    nf = published_row(b)
    assert f"| nfcorpus | {nf['original']:.4f} | {nf['bq_no_rescore']:.4f} |" in text
    assert f"{nf['delta_no_rescore_pct']:+.2f}%" in text
    assert "Δ no rescoring" in text
    out_file = results_dir / "table.md"
    assert main(["compare", str(results_dir), "--output", str(out_file)]) == 0
    printed = capsys.readouterr().out
    assert printed == out_file.read_text()
    assert "| scifact |" in printed and "| nfcorpus |" in printed


def test_compare_errors_name_the_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "no results.json under" in capsys.readouterr().err


def test_teacher_section_shows_both_encode_speeds(make_results: Factory) -> None:
    results = make_results()
    results.teacher = TeacherResult(
        model_id="all-MiniLM-L6-v2",
        location="/models/all-MiniLM-L6-v2",
        dim=384,
        max_seq_length=256,
        docs=3633,
        docs_per_s=9.2,
        queries_per_s=69.0,
        encode_seconds=395.0,
        search="exact numpy",
        metrics=MetricResult(
            {"NDCG@10": 0.3159, "Recall@100": 0.3115, "MRR@10": 0.504, "MAP@100": 0.1424}, {}, 0
        ),
        delta_pct={"NDCG@10": 78.99},
        p_value=0.0001,
        static_docs_per_s=2650.0,
    )
    text = render_report(results)
    assert "## Transformer baseline: `all-MiniLM-L6-v2`" in text
    assert "| `all-MiniLM-L6-v2` | 0.3159 | 0.3115 | 0.5040 | 0.1424 | +78.99% | 0.0001 | 9 | 69 |" in text
    assert "(baseline) |" in text and "| 2,650 |" in text
