"""Report, recommendation, plots and compare, on results assembled from hand-built runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from eval.__main__ import main
from eval.compare import compare, resolve_results
from eval.metrics import MetricResult
from eval.recommend import decide
from eval.report import REFERENCE_NDCG10, model_caveat, published_row, render_report, summary_markdown
from eval.results import EvalResults, TeacherResult, load_results
from eval.runner import EvalRun, write_report

Factory = Callable[..., EvalResults]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_assembled_results_carry_deltas_and_p(make_results: Factory) -> None:
    results = make_results(degrade={(256, "binary", "no-rescore"): 0.6})
    by_key = {(c.dim, c.quantization, c.mode): c for c in results.configurations}
    # none: exact, hnsw (engine default), 3 × hnsw-ef; binary: exact, no-rescore, rescore-x1 (engine
    # default), rescore-x4, 3 × hnsw-ef.
    assert len(by_key) == 2 * 5 + 2 * 7
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
    # Published form comes first, then the recommendation, then the matrix.
    assert text.index(header) < text.index("## Recommendation") < text.index("## Full matrix")
    assert "| 64 | binary | no-rescore |" in text
    assert "(baseline)" in text
    assert "Produced with `test/static-model`" in text
    for name, (orig, bq) in REFERENCE_NDCG10.items():
        assert f"| {name} | {orig:.4f} | {bq:.4f} |" in text
    assert "`x`: does not exist" in text
    assert "WARNING" not in text
    assert "**Small sample: only 40 judged queries**" in text
    assert "95% interval of Δ" in text and "**← recommended**" in text
    assert "NDCG@10 from searches of" not in text  # the synthetic rows carry no depth
    assert [p.name for p in files.plots] == ["ndcg_vs_ram.png", "ndcg_vs_dim.png"]
    assert "![ndcg_vs_ram](ndcg_vs_ram.png)" in text
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


def test_non_beir_corpus_has_no_beir_reference_tables(make_results: Factory) -> None:
    results = make_results()
    results.source = {"kind": "parquet", "path": "corpus.parquet"}
    text = render_report(results)
    assert "## Published reference" not in text
    for name in REFERENCE_NDCG10:
        assert f"| {name} |" not in text
    assert "## Recommendation" in text and "## Full matrix" in text
    # Without binary rows at the full dim the published-form table would be empty: it is left out.
    results.configurations = [c for c in results.configurations if c.quantization == "none"]
    assert "## Published form" not in render_report(results)


def test_depth_of_each_metric_is_stated(make_results: Factory) -> None:
    results = make_results()
    for c in results.configurations:
        c.depth = {"NDCG@10": 10, "MRR@10": 10, "Recall@100": 100, "MAP@100": 100}
    text = render_report(results)
    assert "NDCG@10 from searches of 10 documents" in text
    assert "Recall@100 from searches of 100 documents" in text


def _fake_run(results: EvalResults, out: Path) -> Callable[..., EvalRun]:
    def run_eval(opts: object, *, echo: Callable[[str], None] | None = None) -> EvalRun:
        files = write_report(results, out)
        if echo:
            echo(f"report: {files.report_md}")
        return EvalRun(results, files)

    return run_eval


def test_cli_prints_the_published_table_and_the_recommendation(
    make_results: Factory, results_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    results = make_results(degrade={(256, "binary", "no-rescore"): 0.6})
    monkeypatch.setattr("eval.runner.run_eval", _fake_run(results, results_dir / "toyset" / "run-0"))
    assert main(["toyset"]) == 0
    out, err = capsys.readouterr()
    assert "| Dataset | Original vectors | Binary Quantization, no rescoring |" in out
    assert "| toyset |" in out
    assert "**Recommended: " in out and "Rule: " in out
    assert out == summary_markdown(results) + "\n"
    # The report path is said once, on stderr with the progress.
    assert "report.md" not in out and err.count("report.md") == 1


def test_cli_json_prints_parseable_results(
    make_results: Factory, results_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    results = make_results()
    monkeypatch.setattr("eval.runner.run_eval", _fake_run(results, results_dir / "toyset" / "run-0"))
    assert main(["toyset", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((results_dir / "toyset" / "run-0" / "results.json").read_text())
    assert {k: printed[k] for k in saved} == saved
    decision = decide(results)
    assert printed["decision"]["choice"]["mode"] == results.recommendation.mode  # type: ignore[union-attr]
    assert printed["decision"]["small_sample"] is True
    assert printed["decision"]["choice"]["delta_ci_pct"] == list(decision.interval(results.recommendation))  # type: ignore[arg-type]
    assert printed["files"]["report_md"].endswith("report.md")
