"""report.md: the published-form table, the full matrix and the recommendation rule (`recommend`).

Everything here is a pure function of the `EvalResults` that `eval.assemble` builds (and that
results.json stores, see `eval.results`), so a report can be re-rendered from results.json alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metrics import METRIC_NAMES, PRIMARY_METRIC
from eval.results import CollectionInfo, ConfigurationResult, EvalResults

DEFAULT_WITHIN = 0.02
DEFAULT_ALPHA = 0.05
PUBLISHED_MODEL = "sentence-transformers/static-retrieval-mrl-en-v1"
# NDCG@10 published for static-retrieval-mrl-en-v1 at 1024 dims: original vectors vs binary
# quantization without rescoring.
REFERENCE_NDCG10: dict[str, tuple[float, float]] = {
    "scifact": (0.5935, 0.5420),
    "trec-covid": (0.4428, 0.4419),
    "arguana": (0.4439, 0.4216),
    "nfcorpus": (0.3004, 0.2803),
}
PUBLISHED_HEADER = (
    "Dataset",
    "Original vectors",
    "Binary Quantization, no rescoring",
    "BQ + rescoring (oversampling {o})",
)


# -- selection -------------------------------------------------------------------------------------


def rescore_mode_for_table(results: EvalResults) -> str | None:
    """Return the rescoring mode shown in the published-form table: oversampling 4, else the largest."""
    factors = [float(o) for o in results.options.oversampling]
    if not factors:
        return None
    chosen = 4.0 if 4.0 in factors else max(factors)
    return f"rescore-x{chosen:g}"


def published_row(results: EvalResults) -> dict[str, Any]:
    """Return the published-form numbers of one dataset at the full (baseline) dimension.

    Returns:
        `dataset`, `dim`, `original`, `bq_no_rescore`, `bq_rescore` (NDCG@10 or None when that
        configuration was not evaluated), `rescore_mode`, and the Δ% of the two BQ columns.
    """
    base = results.baseline
    dim = base.dim
    no_rescore = results.find(dim=dim, quantization="binary", mode="no-rescore")
    mode = rescore_mode_for_table(results)
    rescore = results.find(dim=dim, quantization="binary", mode=mode) if mode else None
    original = base.metrics.mean[PRIMARY_METRIC]

    def ndcg(cfg: ConfigurationResult | None) -> float | None:
        return None if cfg is None else cfg.primary

    def delta(value: float | None) -> float | None:
        return None if value is None or original == 0 else (value - original) / original * 100.0

    return {
        "dataset": results.dataset,
        "dim": dim,
        "original": original,
        "bq_no_rescore": ndcg(no_rescore),
        "bq_rescore": ndcg(rescore),
        "rescore_mode": mode,
        "delta_no_rescore_pct": delta(ndcg(no_rescore)),
        "delta_rescore_pct": delta(ndcg(rescore)),
        "model_id": results.model.get("model_id"),
    }


def recommend(
    configurations: Sequence[ConfigurationResult],
    baseline_ndcg: float,
    *,
    within: float = DEFAULT_WITHIN,
    alpha: float = DEFAULT_ALPHA,
) -> ConfigurationResult | None:
    """Pick the cheapest configuration (bytes/vector) at acceptable quality.

    Acceptable: NDCG@10 ≥ (1 − within) × baseline, and not significantly worse than the baseline
    (paired randomization p ≥ alpha, or NDCG@10 at least the baseline's). Ties in bytes/vector go to
    the higher NDCG@10, then the lower p50 latency.

    Args:
        configurations: Result rows.
        baseline_ndcg: NDCG@10 of the baseline.
        within: Allowed relative loss (0.02 = 2%).
        alpha: Significance level.

    Returns:
        The chosen row, or None when none qualifies.
    """
    ok = []
    for cfg in configurations:
        ndcg = cfg.primary
        p = cfg.p_value
        close = ndcg >= (1.0 - within) * baseline_ndcg
        not_worse = ndcg >= baseline_ndcg or p is None or p >= alpha
        if close and not_worse:
            ok.append(cfg)
    if not ok:
        return None
    return min(
        ok,
        key=lambda c: (c.bytes_per_vector, -c.primary, c.latency.get("p50_ms", math.inf)),
    )


def model_caveat(model: dict[str, Any]) -> str | None:
    """Return a loud warning when the model is the offline stand-in or has random weights, else None."""
    text = json.dumps(model, default=str).lower()
    random = bool(model.get("random_weights")) or model.get("weights") == "random"
    standin = (
        bool(model.get("standin") or model.get("stand_in") or model.get("is_standin"))
        or str(model.get("kind", "")).lower() in {"standin", "stand-in", "stand_in", "random"}
        or "stand-in" in text
        or "standin" in text
    )
    if random:
        return (
            "**WARNING: these numbers come from a model with RANDOM weights. They measure the pipeline, "
            "not retrieval quality; do not quote them as the quality of any real model.**"
        )
    if standin:
        return (
            "**WARNING: these numbers come from the OFFLINE STAND-IN model, not "
            f"`{PUBLISHED_MODEL}`. They are not comparable to the published numbers; rerun with the real "
            "model for quality claims.**"
        )
    return None


# -- formatting ------------------------------------------------------------------------------------


def fmt_metric(value: float | None) -> str:
    """Format a metric value (4 decimals), `–` when missing."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def fmt_delta(value: float | None) -> str:
    """Format a relative change in percent with a sign, `–` when missing."""
    return "–" if value is None or math.isnan(value) else f"{value:+.2f}%"


def fmt_p(value: float | None) -> str:
    """Format a p-value, `–` when missing."""
    if value is None:
        return "–"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def fmt_bytes(value: float) -> str:
    """Format bytes per vector."""
    return f"{value:g}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """Render a GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def published_table(rows: list[dict[str, Any]], *, with_delta: bool = False) -> str:
    """Render published-form rows (see `published_row`) as a markdown table.

    Args:
        rows: One row per dataset.
        with_delta: Add the relative change of the two BQ columns against the original.
    """
    modes = {r["rescore_mode"] for r in rows if r.get("rescore_mode")}
    factor = next(iter(modes)).removeprefix("rescore-x") if len(modes) == 1 else "N"
    header = [h.format(o=factor) for h in PUBLISHED_HEADER]
    if with_delta:
        header += ["Δ no rescoring", "Δ rescoring"]
    body = []
    for r in rows:
        line = [
            r["dataset"],
            fmt_metric(r["original"]),
            fmt_metric(r["bq_no_rescore"]),
            fmt_metric(r["bq_rescore"]),
        ]
        if with_delta:
            line += [fmt_delta(r["delta_no_rescore_pct"]), fmt_delta(r["delta_rescore_pct"])]
        body.append(line)
    return markdown_table(header, body)


_QUANT_ORDER = {"none": 0, "scalar": 1, "binary": 2}


def matrix_order(cfg: ConfigurationResult) -> tuple[int, int, int]:
    """Sort key of the matrix: dim descending, then none/scalar/binary, then mode order."""
    return (-int(cfg.dim), _QUANT_ORDER.get(cfg.quantization, 9), int(cfg.mode_order))


def matrix_table(configurations: Sequence[ConfigurationResult]) -> str:
    """Render the full matrix (dim × quantization × mode) as a markdown table."""
    header = [
        "dim",
        "quantization",
        "mode",
        *METRIC_NAMES,
        "Δ NDCG@10",
        "p",
        "bytes/vector",
        "p50 ms",
        "p95 ms",
        "QPS",
    ]
    body = []
    for c in sorted(configurations, key=matrix_order):
        lat = c.latency
        body.append(
            [
                str(c.dim),
                c.quantization,
                c.mode + (" (baseline)" if c.is_baseline else ""),
                *(fmt_metric(c.metrics.mean[m]) for m in METRIC_NAMES),
                fmt_delta(c.delta_pct[PRIMARY_METRIC]),
                fmt_p(c.p_value),
                fmt_bytes(c.bytes_per_vector),
                f"{lat['p50_ms']:.2f}" if "p50_ms" in lat else "–",
                f"{lat['p95_ms']:.2f}" if "p95_ms" in lat else "–",
                f"{lat['qps']:.0f}" if "qps" in lat else "–",
            ]
        )
    return markdown_table(header, body)


def describe_config(cfg: ConfigurationResult) -> str:
    """One-line description of a configuration."""
    return f"`{cfg.collection}` · {cfg.mode} (dim {cfg.dim}, {cfg.quantization})"


def _engine_line(results: EvalResults) -> str:
    engine = results.engine
    backend = engine.get("backend", "?")
    where = engine.get("location", "")
    version = engine.get("version")
    return f"{backend}" + (f" {version}" if version else "") + (f" at `{where}`" if where else "")


def _model_line(model: dict[str, Any]) -> str:
    mid = model.get("model_id", "?")
    rev = model.get("revision")
    return f"`{mid}`" + (f" (revision `{rev}`)" if rev else "")


def render_report(results: EvalResults) -> str:
    """Render report.md from the results.

    Args:
        results: What `eval.assemble.assemble_results` builds (or `eval.results.load_results` reads).

    Returns:
        The markdown text.
    """
    model = results.model
    opts = results.options
    base = results.baseline
    caveat = model_caveat(model)
    out: list[str] = [f"# Quantization eval: {results.dataset} ({results.split})", ""]
    if caveat:
        out += [caveat, ""]
    out += [
        f"- Model: {_model_line(model)}, {model.get('dim', '?')} dims",
        f"- Engine: {_engine_line(results)}",
        f"- Queries: {results.queries.count} judged queries, "
        f"{results.queries.qrels_rows} qrels rows; "
        f"corpus checksum `{results.corpus_checksum or 'unknown'}`",
        f"- Run: `{results.run_id}` at {results.created}",
        f"- Baseline: {describe_config(base)}, NDCG@10 {fmt_metric(base.metrics.mean[PRIMARY_METRIC])}",
        *[f"- Warning: {w}" for w in results.warnings],
        "",
        f"## Published form (dim {base.dim})",
        "",
        published_table([published_row(results)]),
        "",
        "## Full matrix",
        "",
        matrix_table(results.configurations),
        "",
        "Δ is the relative change of NDCG@10 against the baseline; p is a two-sided paired randomization "
        f"test on per-query NDCG@10 ({opts.permutations} sign flips, "
        f"seed {opts.seed}). "
        "bytes/vector is the size of the vector searched first (the quantized one for binary/scalar; "
        "rescoring also reads the original float vectors). Latency: one client, one query at a time, "
        f"warm, each query asked until ≥ {opts.min_docs} distinct documents came back "
        "(chunk hits aggregated per document by max score).",
        "",
    ]
    out += _modes_section(results)
    out += _collections_section(results)
    out += _recommendation_section(results)
    if results.teacher:
        out += _teacher_section(results)
    out += _reference_section()
    if results.skipped:
        out += ["## Skipped collections", ""]
        out += [f"- `{s.collection}`: {s.reason}" for s in results.skipped]
        out.append("")
    if results.plots:
        out += ["## Plots", ""]
        out += [f"![{Path(p).stem}]({p})" for p in results.plots]
        out.append("")
    return "\n".join(out)


def _modes_section(results: EvalResults) -> list[str]:
    seen: dict[str, ConfigurationResult] = {}
    for c in results.configurations:
        seen.setdefault(c.mode, c)
    lines = ["## How each number was obtained", ""]
    for name, c in sorted(seen.items(), key=lambda kv: kv[1].mode_order):
        params = ", ".join(
            f"{k}={v}"
            for k, v in c.params.items()
            if v is not None and not (v is False and k in ("exact", "ignore_quantization"))
        )
        lines.append(f"- `{name}`: {c.mode_description} (search params: {params or 'engine defaults'})")
    ignore = results.options.ignore_identical_ids
    lines += [
        f"- Metrics: pytrec_eval via beir `EvaluateRetrieval.evaluate` (MRR: `evaluate_custom`), "
        f"ignore_identical_ids={ignore}.",
        "",
    ]
    return lines


# Qdrant's default `full_scan_threshold` (KB): below it a segment answers even HNSW queries by full scan.
QDRANT_DEFAULT_FULL_SCAN_KB = 10_000


def index_note(collection: CollectionInfo) -> str:
    """Say whether HNSW-mode queries really use the graph or a full scan of a small segment.

    Qdrant compares the size of a segment's original vectors (KB) with `full_scan_threshold`.
    """
    cfg = collection.engine_config or {}
    points = collection.points or cfg.get("points_count")
    dim = collection.spec.get("dim") or cfg.get("dim")
    threshold = cfg.get("full_scan_threshold") or collection.spec.get("full_scan_threshold")
    default = threshold is None
    threshold = QDRANT_DEFAULT_FULL_SCAN_KB if default else threshold
    if not points or not dim:
        return "unknown size"
    kb = points * dim * 4 / 1024
    where = f"{kb:,.0f} KB of vectors vs full_scan_threshold {threshold:,} KB" + (
        " (default)" if default else ""
    )
    if kb < threshold:
        return f"HNSW modes answered by full scan ({where})"
    return f"HNSW graph ({where})"


def _collections_section(results: EvalResults) -> list[str]:
    rows = []
    for c in results.collections:
        cfg = c.engine_config or {}
        spec = c.spec
        rows.append(
            [
                f"`{c.name}`",
                str(c.points or cfg.get("points_count") or "?"),
                str(spec.get("dim")),
                spec.get("quantization", "?")
                + (f" ({spec.get('binary_encoding')})" if spec.get("quantization") == "binary" else ""),
                f"m={cfg.get('hnsw_m', spec.get('hnsw_m'))}, ef_construct="
                f"{cfg.get('hnsw_ef_construct', spec.get('hnsw_ef_construct'))}",
                str(cfg.get("indexed_vectors_count", "?")),
                index_note(c),
            ]
        )
    if not rows:
        return []
    return [
        "## Collections",
        "",
        markdown_table(
            ["collection", "points", "dim", "quantization", "HNSW", "indexed", "search path"], rows
        ),
        "",
    ]


def _recommendation_section(results: EvalResults) -> list[str]:
    within = float(results.options.within)
    rec = results.recommendation
    model = results.model
    lines = ["## Recommendation", ""]
    if rec is None:
        lines.append(
            f"No configuration is within {within:.0%} of the baseline NDCG@10 and not significantly worse."
        )
    else:
        base = results.baseline
        saving = base.bytes_per_vector / rec.bytes_per_vector if rec.bytes_per_vector else math.inf
        lines.append(
            f"Cheapest configuration within {within:.0%} of the baseline NDCG@10 and not significantly worse "
            f"(p ≥ {DEFAULT_ALPHA} or better): **{describe_config(rec)}** — NDCG@10 "
            f"{fmt_metric(rec.metrics.mean[PRIMARY_METRIC])} ({fmt_delta(rec.delta_pct[PRIMARY_METRIC])}, "
            f"p {fmt_p(rec.p_value)}), {fmt_bytes(rec.bytes_per_vector)} bytes/vector "
            f"({saving:.0f}× smaller than the baseline's {fmt_bytes(base.bytes_per_vector)})."
        )
        if rec.quantization != "none" and rec.mode != "no-rescore":
            lines += [
                "",
                f"This mode rescores with the original float vectors ({rec.dim * 4} bytes each): keep "
                "them on disk (`on_disk = true`) so RAM holds only the quantized vectors.",
            ]
    lines.append("")
    lines.append(f"Produced with {_model_line(model)}.")
    caveat = model_caveat(model)
    if caveat:
        lines += ["", caveat]
    lines.append("")
    return lines


def _teacher_section(results: EvalResults) -> list[str]:
    t = results.teacher
    if t is None:
        return []
    q = results.queries
    lines = [
        f"## Transformer baseline: `{t.model_id}`",
        "",
        "Corpus and queries encoded with the transformer, exact numpy search (dot product of normalised "
        "vectors, whole documents as BEIR encodes them: title + text, truncated by the model).",
        "",
        markdown_table(
            ["model", *METRIC_NAMES, "Δ NDCG@10 vs baseline", "p", "docs/s", "queries/s"],
            [
                [
                    f"`{t.model_id}`",
                    *(fmt_metric(t.metrics.mean[m]) for m in METRIC_NAMES),
                    fmt_delta(t.delta_pct.get(PRIMARY_METRIC)),
                    fmt_p(t.p_value),
                    _rate(t.docs_per_s),
                    _rate(t.queries_per_s),
                ],
                [
                    f"`{results.model.get('model_id', '?')}` (baseline)",
                    *(fmt_metric(results.baseline.metrics.mean[m]) for m in METRIC_NAMES),
                    fmt_delta(0.0),
                    "–",
                    _rate(t.static_docs_per_s),
                    _rate(q.queries_per_s),
                ],
            ],
        ),
        "",
        "docs/s: both models encode the same whole documents in the same process, one after the other "
        "(static: its own tokenizer and mean pooling; transformer: sentence-transformers on CPU); "
        "queries/s: query encoding only.",
        "",
    ]
    return lines


def _rate(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.0f}"


def _reference_section() -> list[str]:
    rows = [
        [name, fmt_metric(orig), fmt_metric(bq), fmt_delta((bq - orig) / orig * 100.0)]
        for name, (orig, bq) in REFERENCE_NDCG10.items()
    ]
    return [
        f"## Published reference (`{PUBLISHED_MODEL}`, 1024 dims, NDCG@10)",
        "",
        markdown_table(["Dataset", "Original vectors", "Binary Quantization, no rescoring", "Δ"], rows),
        "",
        f"These numbers apply only to `{PUBLISHED_MODEL}`; another model (or the offline stand-in) gives "
        "different absolute values.",
        "",
    ]


# -- file ------------------------------------------------------------------------------------------


def write_report_md(results: EvalResults, out_dir: Path) -> Path:
    """Write report.md into `out_dir` (created if needed) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.md"
    path.write_text(render_report(results), encoding="utf-8")
    return path
