"""report.md: the published-form table, the recommendation (`eval.recommend`), the full matrix and the plots.

Everything here is a pure function of the `EvalResults` that `eval.assemble` builds (and that
results.json stores, see `eval.results`), so a report can be re-rendered from results.json alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import METRIC_NAMES, PRIMARY_METRIC
from eval.recommend import Decision, decide, decision_markdown, fmt_bytes, ram_is_measured, serving_ram
from eval.results import CollectionInfo, ConfigurationResult, EvalResults
from eval.search import mode_sort_key

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


def matrix_order(cfg: ConfigurationResult) -> tuple[int, int, tuple[int, float, str]]:
    """Sort key of the matrix: dim descending, then none/scalar/binary, then `mode_sort_key`."""
    return (-int(cfg.dim), _QUANT_ORDER.get(cfg.quantization, 9), mode_sort_key(cfg.mode))


def _opt(cfg: ConfigurationResult, name: str) -> Any:
    """A field helper A's cost/depth work adds to the rows (None while absent)."""
    return getattr(cfg, name, None)


def fmt_interval(ci: tuple[float, float] | None) -> str:
    """A confidence interval of a change in %, `–` when missing."""
    return "–" if ci is None else f"{ci[0]:+.2f} … {ci[1]:+.2f}%"


def qps_column(configurations: Sequence[ConfigurationResult]) -> tuple[str, list[str]]:
    """The QPS header and cells: measured with N concurrent clients if known, else one client."""
    clients = {_opt(c, "clients") for c in configurations if _opt(c, "qps") is not None}
    if clients:
        n = next(iter(clients)) if len(clients) == 1 else "N"
        cells = [
            "–" if _opt(c, "qps") is None else f"{float(_opt(c, 'qps')):,.0f}"
            for c in sorted(configurations, key=matrix_order)
        ]
        return f"QPS ({n} clients)", cells
    return "QPS (1 client)", [
        f"{c.latency['qps']:,.0f}" if "qps" in c.latency else "–"
        for c in sorted(configurations, key=matrix_order)
    ]


LOSS_PARTS = (
    ("delta_dim_pct", "Δ dim"),
    ("delta_hnsw_pct", "Δ HNSW"),
    ("delta_quantization_pct", "Δ quant."),
)


def mode_label(cfg: ConfigurationResult) -> str:
    """The mode as shown in tables: its name, with the HNSW ef when set and not already in the name."""
    ef = _opt(cfg, "hnsw_ef")
    label = cfg.mode
    if ef is not None and f"ef{ef}" not in label.replace("-", "").replace("=", ""):
        label += f" ef={ef}"
    if getattr(cfg, "engine_default", False):
        label += " (engine default)"
    return label + (" (baseline)" if cfg.is_baseline else "")


def matrix_table(configurations: Sequence[ConfigurationResult], decision: Decision | None = None) -> str:
    """Render the full matrix (dim × quantization × mode) as a markdown table.

    Args:
        configurations: The rows.
        decision: The recommendation (its intervals fill the interval column; its choice is marked).
    """
    rows = sorted(configurations, key=matrix_order)
    parts = [(name, title) for name, title in LOSS_PARTS if any(_opt(c, name) is not None for c in rows)]
    with_disk = any(_opt(c, "rescore_disk_bytes_per_query") is not None for c in rows)
    qps_header, qps_cells = qps_column(rows)
    header = [
        "dim",
        "quantization",
        "mode",
        *METRIC_NAMES,
        "Δ NDCG@10",
        "95% interval of Δ",
        "p",
        *(title for _, title in parts),
        "RAM/vector" if ram_is_measured(rows) else "bytes/vector (formula)",
        *(["rescore disk/query"] if with_disk else []),
        "p50 ms",
        "p95 ms",
        qps_header,
    ]
    chosen = decision.choice if decision else None
    body = []
    for c, qps in zip(rows, qps_cells, strict=True):
        lat = c.latency
        mark = " **← recommended**" if chosen is not None and c is chosen else ""
        disk = _opt(c, "rescore_disk_bytes_per_query")
        body.append(
            [
                str(c.dim),
                c.quantization,
                mode_label(c) + mark,
                *(fmt_metric(c.metrics.mean[m]) for m in METRIC_NAMES),
                fmt_delta(c.delta_pct[PRIMARY_METRIC]),
                fmt_interval(decision.interval(c) if decision else None),
                fmt_p(c.p_value),
                *(fmt_delta(_opt(c, name)) for name, _ in parts),
                fmt_bytes(serving_ram(c)),
                *([("–" if disk is None else fmt_bytes(float(disk)))] if with_disk else []),
                f"{lat['p50_ms']:.2f}" if "p50_ms" in lat else "–",
                f"{lat['p95_ms']:.2f}" if "p95_ms" in lat else "–",
                qps,
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


def is_beir(results: EvalResults) -> bool:
    """Whether the corpus is a BEIR dataset (the published reference numbers are BEIR's)."""
    return str(results.source.get("kind", "")).lower() == "beir"


def has_published_form(results: EvalResults) -> bool:
    """Whether the published-form table has numbers: binary rows at the baseline's dimension."""
    row = published_row(results)
    return row["bq_no_rescore"] is not None or row["bq_rescore"] is not None


def summary_markdown(results: EvalResults, decision: Decision | None = None) -> str:
    """What `python -m eval` prints: the model warning, the published-form table and the recommendation."""
    decision = decision or decide(results)
    out: list[str] = [f"# {results.dataset} ({results.split}): {results.queries.count} judged queries", ""]
    caveat = model_caveat(results.model)
    if caveat:
        out += [caveat, ""]
    out += published_section(results)
    out += ["## Recommendation", "", *decision_markdown(decision), ""]
    return "\n".join(out)


def published_section(results: EvalResults) -> list[str]:
    """The published-form table (binary rows at full dim) as markdown lines; empty when there is none."""
    if not has_published_form(results):
        return []
    return [
        f"## Published form (dim {results.baseline.dim}, NDCG@10)",
        "",
        published_table([published_row(results)], with_delta=True),
        "",
    ]


def matrix_notes(results: EvalResults, decision: Decision) -> str:
    """What the matrix columns mean."""
    opts = results.options
    if decision.ram_measured:
        ram = (
            "RAM/vector: RAM the collection needs to serve (quantized vectors, HNSW links, id tracker, "
            "payload index, measured from the engine's files) per point; modes that rescore also read the "
            "original float vectors from disk (rescore disk/query), which is not counted as RAM."
        )
    else:
        ram = (
            "bytes/vector: RAM not measured; the size of the vector searched first (the quantized one for "
            "binary/scalar; rescoring also reads the original float vectors)."
        )
    split = ""
    if any(_opt(c, "delta_dim_pct") is not None for c in results.configurations):
        split = (
            " Δ dim, Δ HNSW, Δ quant. split Δ into the Matryoshka truncation (exact search at this dim "
            "against the baseline), HNSW (the float HNSW search at this dim and ef against exact) and "
            "quantization (this row against that float HNSW search)."
        )
        no_graph = sorted(
            {c.dim for c in results.configurations if c.quantization == "none" and c.mode == "exact"}
            - {c.dim for c in results.configurations if c.quantization == "none" and c.mode != "exact"}
        )
        if no_graph and any(c.quantization != "none" for c in results.configurations):
            split += (
                " The float collections of dim " + ", ".join(str(d) for d in no_graph) + " have no HNSW "
                "graph (the default matrix's; `--float-hnsw` at ingest builds one), so there Δ HNSW and "
                "Δ quant. are – and their sum is Δ − Δ dim."
            )
    return (
        "Δ is the relative change of NDCG@10 against the baseline; the 95% interval comes from a paired "
        "bootstrap over the queries (10,000 resamples, seed "
        f"{opts.seed}); p is a two-sided paired randomization test on per-query NDCG@10 ({opts.permutations} "
        f"sign flips, seed {opts.seed}).{split} {ram} Latency: one client, one query at a time, warm."
    )


def render_report(
    results: EvalResults,
    decision: Decision | None = None,
    *,
    image_link: Callable[[str], str] | None = None,
) -> str:
    """Render report.md from the results.

    Args:
        results: What `eval.assemble.assemble_results` builds (or `eval.results.load_results` reads).
        decision: The recommendation with its evidence (`eval.recommend.decide(results)` if None).
        image_link: Maps a plot file name to the link written in the markdown (default: the name,
            relative to report.md; the Prefect artifact embeds the PNG as a `data:` URL instead).

    Returns:
        The markdown text.
    """
    decision = decision or decide(results)
    model = results.model
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
    ]
    out += published_section(results)
    out += _recommendation_section(results, decision)
    out += [
        "## Full matrix",
        "",
        matrix_table(results.configurations, decision),
        "",
        matrix_notes(results, decision),
        "",
    ]
    out += _modes_section(results)
    out += _collections_section(results)
    if results.teacher:
        out += _teacher_section(results)
    if is_beir(results):
        out += _reference_section()
    if results.skipped:
        out += ["## Skipped collections", ""]
        out += [f"- `{s.collection}`: {s.reason}" for s in results.skipped]
        out.append("")
    if results.plots:
        from eval.plots import plot_caption

        out += ["## Plots", ""]
        for p in results.plots:
            link = image_link(p) if image_link else p
            out += [f"![{Path(p).stem}]({link})", "", plot_caption(Path(p).name, results), ""]
    return "\n".join(out)


def _modes_section(results: EvalResults) -> list[str]:
    seen: dict[tuple[str, str], ConfigurationResult] = {}
    for c in results.configurations:
        seen.setdefault((c.mode, c.mode_description), c)
    lines = ["## How each number was obtained", ""]
    for (name, _), c in sorted(seen.items(), key=lambda kv: (mode_sort_key(kv[0][0]), kv[0][1])):
        params = ", ".join(
            f"{k}={v}"
            for k, v in c.params.items()
            if v is not None and not (v is False and k in ("exact", "ignore_quantization"))
        )
        lines.append(f"- `{name}`: {c.mode_description} (search params: {params or 'engine defaults'})")
    ignore = results.options.ignore_identical_ids
    lines += depth_lines(results)
    lines += [
        f"- Metrics: pytrec_eval via beir `EvaluateRetrieval.evaluate` (MRR: `evaluate_custom`), "
        f"ignore_identical_ids={ignore}.",
        "",
    ]
    return lines


def depth_lines(results: EvalResults) -> list[str]:
    """Say which search limit produced each metric (the `depth` of the rows), as the user would search."""
    depths: dict[str, set[Any]] = {}
    for c in results.configurations:
        depth = getattr(c, "depth", None)
        if isinstance(depth, dict):
            for metric, limit in depth.items():
                depths.setdefault(metric, set()).add(limit)
    if not depths:
        return []
    parts = []
    for metric in [m for m in METRIC_NAMES if m in depths] + sorted(set(depths) - set(METRIC_NAMES)):
        limits = sorted(depths[metric], key=str)
        parts.append(f"{metric} from searches of {' / '.join(str(v) for v in limits)} documents")
    extra = (
        " (one more hit is asked for when identical ids are ignored, as BEIR does)"
        if results.options.ignore_identical_ids
        else ""
    )
    return [
        "- Depth: each metric comes from the search a user would run: " + "; ".join(parts) + extra + "; "
        "oversampling is relative to that limit; chunk hits are merged per document by max score, "
        "re-querying only as far as needed to fill the limit with distinct documents."
    ]


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


def _recommendation_section(results: EvalResults, decision: Decision) -> list[str]:
    lines = ["## Recommendation", "", *decision_markdown(decision), ""]
    lines.append(f"Produced with {_model_line(results.model)}.")
    caveat = model_caveat(results.model)
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
