"""The recommendation: the configuration × search setting that needs the least RAM to serve at acceptable
quality, with the evidence a reader needs to trust it (interval of the change, p-value, sample size).

Rule (`recommend`):
    1. acceptable = NDCG@10 at most `within` below the baseline's (relative) AND not significantly
       worse (paired randomization p ≥ alpha, or NDCG@10 at least the baseline's);
    2. among the acceptable rows, the least serving RAM per vector (`serving_ram_per_vector`, measured
       from the engine's files; `bytes_per_vector`, a formula, while that is unknown);
    3. rows within `RAM_TIE_TOLERANCE` of that least RAM tie: the ones that read the least from disk
       to rescore come first (`rescore_disk_bytes_per_query`; the benchmark's page cache hides that
       cost from its latency), then the fastest (p50 latency) wins; rows within
       `LATENCY_TIE_TOLERANCE` (or `LATENCY_TIE_MS`) of the fastest tie on speed too (timing noise),
       and the higher NDCG@10 among them wins, then the lower p50.

`decide` adds what the report, the CLI and the flow print: a paired bootstrap interval of the change
of every row (`eval.stats.paired_bootstrap_cis`), a small-sample warning, and the runner-up rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.metrics import PRIMARY_METRIC
from eval.results import ConfigurationResult, EvalResults
from eval.stats import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, paired_bootstrap_cis

DEFAULT_WITHIN = 0.01
DEFAULT_ALPHA = 0.05
# Below this many judged queries a 1% difference is mostly noise: say so next to the recommendation.
SMALL_SAMPLE_QUERIES = 100
# Serving RAM per vector within 1% of the least counts as the same cost (measured sizes vary by a few
# bytes of file headers between collections of the same layout).
RAM_TIE_TOLERANCE = 0.01
# p50 latencies within 10% (or 0.05 ms) of the fastest count as equally fast: sub-millisecond medians
# move by that much between runs on a busy machine, and no user notices; quality decides then.
LATENCY_TIE_TOLERANCE = 0.10
LATENCY_TIE_MS = 0.05


def serving_ram(cfg: ConfigurationResult) -> float:
    """RAM per vector the configuration needs to serve: measured if known, else the bytes/vector formula."""
    measured = getattr(cfg, "serving_ram_per_vector", None)
    return float(measured) if measured is not None else float(cfg.bytes_per_vector)


def ram_is_measured(configurations: Sequence[ConfigurationResult]) -> bool:
    """Whether every row carries a measured serving RAM (else the formula fills in)."""
    return bool(configurations) and all(
        getattr(c, "serving_ram_per_vector", None) is not None for c in configurations
    )


def reads_disk(cfg: ConfigurationResult) -> bool:
    """Whether a setting rescores with the original float vectors (read from disk, not held in RAM)."""
    disk = getattr(cfg, "rescore_disk_bytes_per_query", None)
    if disk is not None:
        return float(disk) > 0
    return cfg.quantization != "none" and cfg.mode.startswith("rescore")


def disk_read(cfg: ConfigurationResult) -> float:
    """Bytes read from disk per query to rescore (measured; else 0, or unknown-but-positive for rescoring
    modes, counted as one float vector per result so they rank after those that read nothing)."""
    disk = getattr(cfg, "rescore_disk_bytes_per_query", None)
    if disk is not None:
        return float(disk)
    return float(cfg.dim * 4) if reads_disk(cfg) else 0.0


def p50_ms(cfg: ConfigurationResult) -> float:
    """Median single-client latency in ms (infinite when not measured)."""
    return float(cfg.latency.get("p50_ms", math.inf))


def rejection(cfg: ConfigurationResult, baseline_ndcg: float, *, within: float, alpha: float) -> str | None:
    """Why a row is not acceptable, in words, or None when it is.

    Args:
        cfg: The row.
        baseline_ndcg: NDCG@10 of the baseline.
        within: Allowed relative loss (0.01 = 1%).
        alpha: Significance level of the paired randomization test.
    """
    ndcg = cfg.primary
    if ndcg < (1.0 - within) * baseline_ndcg:
        loss = (baseline_ndcg - ndcg) / baseline_ndcg * 100.0 if baseline_ndcg else math.inf
        return f"loses {loss:.2f}% (more than {within:.0%})"
    p = cfg.p_value
    if ndcg < baseline_ndcg and p is not None and p < alpha:
        return f"measurably worse than the baseline (p {p:.3f} < {alpha:g})"
    return None


def recommend(
    configurations: Sequence[ConfigurationResult],
    baseline_ndcg: float,
    *,
    within: float = DEFAULT_WITHIN,
    alpha: float = DEFAULT_ALPHA,
) -> ConfigurationResult | None:
    """Pick the configuration with the least serving RAM at acceptable quality (rule: module docstring).

    Args:
        configurations: Result rows (the baseline among them is acceptable by definition).
        baseline_ndcg: NDCG@10 of the baseline.
        within: Allowed relative loss (0.01 = 1%).
        alpha: Significance level.

    Returns:
        The chosen row, or None when none qualifies.
    """
    ok = [c for c in configurations if rejection(c, baseline_ndcg, within=within, alpha=alpha) is None]
    if not ok:
        return None
    least = min(serving_ram(c) for c in ok)
    tied = [c for c in ok if serving_ram(c) <= least * (1.0 + RAM_TIE_TOLERANCE)]
    least_disk = min(disk_read(c) for c in tied)
    tied = [c for c in tied if disk_read(c) <= least_disk * (1.0 + RAM_TIE_TOLERANCE)]
    fastest = min(p50_ms(c) for c in tied)
    if math.isfinite(fastest):
        slack = max(fastest * LATENCY_TIE_TOLERANCE, LATENCY_TIE_MS)
        tied = [c for c in tied if p50_ms(c) <= fastest + slack]
    return min(tied, key=lambda c: (-c.primary, p50_ms(c), serving_ram(c), c.mode_order))


def row_key(cfg: ConfigurationResult) -> tuple[str, str]:
    """The identity of a row: (collection, mode)."""
    return (cfg.collection, cfg.mode)


def change_intervals(
    results: EvalResults, *, n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE
) -> dict[tuple[str, str], tuple[float, float]]:
    """Paired bootstrap interval of every row's NDCG@10 change against the baseline, in %.

    All rows share the same resamples of the queries (seed: the results' `seed` option), so the
    intervals are reproducible from results.json.

    Returns:
        `row_key` → (lower %, upper %); empty when per-query values are missing.
    """
    base = results.baseline
    qids = list(base.metrics.per_query.get(PRIMARY_METRIC, {}))
    rows = [c for c in results.configurations if c.metrics.per_query.get(PRIMARY_METRIC)]
    if not qids or not rows:
        return {}
    import numpy as np

    scores = np.column_stack([c.metrics.vector(PRIMARY_METRIC, qids) for c in rows])
    bounds = paired_bootstrap_cis(
        scores,
        base.metrics.vector(PRIMARY_METRIC, qids),
        n_resamples=n_resamples,
        seed=int(results.options.seed),
        confidence=confidence,
    )
    return {row_key(c): (float(lo), float(hi)) for c, (lo, hi) in zip(rows, bounds, strict=True)}


@dataclass
class Decision:
    """The recommendation and its evidence.

    Attributes:
        choice: The recommended row, or None when nothing qualifies.
        baseline: The baseline row.
        within: Allowed relative loss.
        alpha: Significance level.
        n_queries: Judged queries behind every figure.
        intervals: `row_key` → 95% paired bootstrap interval of the NDCG@10 change in %.
        confidence: Coverage of the intervals.
        alternatives: The other acceptable rows, least RAM first (at most a handful).
        ram_measured: Whether RAM is measured (else the bytes/vector formula).
    """

    choice: ConfigurationResult | None
    baseline: ConfigurationResult
    within: float
    alpha: float
    n_queries: int
    intervals: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    confidence: float = DEFAULT_CONFIDENCE
    alternatives: list[ConfigurationResult] = field(default_factory=list)
    ram_measured: bool = False

    @property
    def small_sample(self) -> bool:
        """Fewer than `SMALL_SAMPLE_QUERIES` queries: the recommendation is tentative."""
        return self.n_queries < SMALL_SAMPLE_QUERIES

    def interval(self, cfg: ConfigurationResult) -> tuple[float, float] | None:
        """The interval of a row, if computed."""
        return self.intervals.get(row_key(cfg))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (printed by `python -m eval --json` beside the results)."""

        def brief(c: ConfigurationResult) -> dict[str, Any]:
            ci = self.interval(c)
            return {
                "collection": c.collection,
                "dim": c.dim,
                "quantization": c.quantization,
                "mode": c.mode,
                "ndcg_at_10": c.primary,
                "delta_pct": c.delta_pct.get(PRIMARY_METRIC),
                "delta_ci_pct": None if ci is None else list(ci),
                "p_value": c.p_value,
                "serving_ram_per_vector": serving_ram(c),
                "p50_ms": c.latency.get("p50_ms"),
            }

        return {
            "rule": rule_text(self.within, self.alpha, self.ram_measured),
            "within": self.within,
            "alpha": self.alpha,
            "confidence": self.confidence,
            "n_queries": self.n_queries,
            "small_sample": self.small_sample,
            "ram_measured": self.ram_measured,
            "choice": None if self.choice is None else brief(self.choice),
            "baseline": brief(self.baseline),
            "alternatives": [brief(c) for c in self.alternatives],
        }


def decide(
    results: EvalResults, *, n_resamples: int = DEFAULT_RESAMPLES, max_alternatives: int = 4
) -> Decision:
    """The recommendation of `results` with its evidence (a pure function of results.json).

    Args:
        results: The eval results.
        n_resamples: Bootstrap resamples of the intervals.
        max_alternatives: How many other acceptable rows to keep.

    Returns:
        The decision.
    """
    opts = results.options
    base = results.baseline
    within, alpha = float(opts.within), float(opts.alpha)
    # The stored choice (made by `eval.assemble` with this rule), so report and results.json agree.
    choice = results.recommendation
    ok = [
        c
        for c in results.configurations
        if c is not choice and rejection(c, base.primary, within=within, alpha=alpha) is None
    ]
    ok.sort(key=lambda c: (serving_ram(c), p50_ms(c), -c.primary))
    n_queries = len(base.metrics.per_query.get(PRIMARY_METRIC, {})) or int(results.queries.count)
    return Decision(
        choice=choice,
        baseline=base,
        within=within,
        alpha=alpha,
        n_queries=n_queries,
        intervals=change_intervals(results, n_resamples=n_resamples),
        alternatives=ok[:max_alternatives],
        ram_measured=ram_is_measured(results.configurations),
    )


# -- words -----------------------------------------------------------------------------------------


def fmt_bytes(value: float) -> str:
    """Bytes in a readable unit (`96 B`, `1.2 KB`, `3.4 MB`; 1 KB = 1024 B)."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def fmt_pct(value: float | None) -> str:
    """A signed percentage with two decimals (`−` as a true minus sign), `–` when missing."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+.2f}%".replace("-", "−")


def rule_text(within: float, alpha: float, ram_measured: bool) -> str:
    """The rule in one sentence a non-statistician reads at once."""
    ram = "RAM to serve" if ram_measured else "memory per vector (bytes/vector formula; RAM not measured)"
    return (
        f"Among the settings whose NDCG@10 is at most {within:.0%} below the baseline and not measurably "
        f"worse (a paired test over the queries gives p ≥ {alpha:g}), pick the one that needs the least "
        f"{ram}; at equal memory the one that reads least from disk to rescore, then the faster one, and "
        "at equal speed (within 10% or 0.05 ms) the better one."
    )


def describe_choice(cfg: ConfigurationResult) -> str:
    """`scifact-d256-binary` searched as `hnsw` (dim 256, binary quantization)."""
    quant = "float vectors" if cfg.quantization == "none" else f"{cfg.quantization} quantization"
    default = ", the engine's default search" if getattr(cfg, "engine_default", False) else ""
    return f"`{cfg.collection}` searched as `{cfg.mode}` (dim {cfg.dim}, {quant}{default})"


def evidence_text(decision: Decision, cfg: ConfigurationResult) -> str:
    """The quality change of a row in plain words: change, interval, p and what they mean."""
    delta = cfg.delta_pct.get(PRIMARY_METRIC)
    ci = decision.interval(cfg)
    p = cfg.p_value
    base = decision.baseline.primary
    parts = [f"NDCG@10 {cfg.primary:.4f} vs {base:.4f} for the baseline ({fmt_pct(delta)})."]
    if ci is not None:
        parts.append(
            f"With {decision.n_queries} queries the true change is likely between {fmt_pct(ci[0])} and "
            f"{fmt_pct(ci[1])} ({decision.confidence:.0%} interval)."
        )
    if p is not None:
        if p >= decision.alpha:
            verdict = "chance alone easily explains the gap: no measurable change"
        elif (delta or 0) >= 0:
            verdict = "measurably better than the baseline"
        else:
            verdict = "measurably worse than the baseline"
        parts.append(f"p = {p:.2f} ({verdict}).")
    return " ".join(parts)


def throughput(cfg: ConfigurationResult, base: ConfigurationResult) -> str:
    """`; 3,159 queries/s with 4 clients (baseline 2,152)` when measured, else empty."""
    qps, clients = getattr(cfg, "qps", None), getattr(cfg, "clients", None)
    if qps is None or not clients:
        return ""
    base_qps = getattr(base, "qps", None)
    return f"; {qps:,.0f} queries/s with {clients} clients" + (
        f" (baseline {base_qps:,.0f})" if base_qps is not None else ""
    )


def decision_markdown(decision: Decision) -> list[str]:
    """The recommendation as markdown lines (report, CLI, Prefect artifact)."""
    base = decision.baseline
    rec = decision.choice
    lines: list[str] = []
    if rec is None:
        lines.append(
            f"**No setting qualifies**: every configuration loses more than {decision.within:.0%} of the "
            "baseline's NDCG@10 or is measurably worse. Keep the baseline "
            f"({describe_choice(base)}), or allow a larger loss with `--within`."
        )
    else:
        ram, base_ram = serving_ram(rec), serving_ram(base)
        what = "RAM to serve" if decision.ram_measured else "memory (bytes/vector formula)"
        if rec is base or row_key(rec) == row_key(base):
            lines.append(
                f"**Keep the baseline: {describe_choice(rec)}.** Nothing that needs less {what} stays "
                f"within {decision.within:.0%} of its NDCG@10."
            )
        else:
            saving = f"{base_ram / ram:.1f}× less than" if ram > 0 and ram < base_ram else "vs"
            lines.append(f"**Recommended: {describe_choice(rec)}.**")
            lines.append("")
            lines.append(
                f"- Cost: {fmt_bytes(ram)} of {what} per vector, {saving} the baseline's "
                f"{fmt_bytes(base_ram)}; median latency {p50_ms(rec):.2f} ms "
                f"(baseline {p50_ms(base):.2f} ms)" + throughput(rec, base) + "."
            )
            disk = getattr(rec, "rescore_disk_bytes_per_query", None)
            if reads_disk(rec):
                lines.append(
                    "- Rescoring reads the original float vectors"
                    + (f" ({fmt_bytes(float(disk))} per query)" if disk else "")
                    + ": keep them on disk (`on_disk = true`) so RAM holds only the quantized vectors."
                )
            lines.append(f"- Quality: {evidence_text(decision, rec)}")
    if decision.small_sample:
        lines += [
            "",
            f"**Small sample: only {decision.n_queries} judged queries** (fewer than "
            f"{SMALL_SAMPLE_QUERIES}). Differences of a few percent cannot be told from chance here; treat "
            "the recommendation as tentative and confirm it on more queries.",
        ]
    lines += ["", f"Rule: {rule_text(decision.within, decision.alpha, decision.ram_measured)}"]
    if decision.alternatives:
        lines += ["", "Other settings that also qualify (least memory first):", ""]
        for c in decision.alternatives:
            ci = decision.interval(c)
            ci_text = "" if ci is None else f", interval {fmt_pct(ci[0])} … {fmt_pct(ci[1])}"
            lines.append(
                f"- {describe_choice(c)}: {fmt_bytes(serving_ram(c))}/vector, p50 {p50_ms(c):.2f} ms, "
                f"NDCG@10 {fmt_pct(c.delta_pct.get(PRIMARY_METRIC))}{ci_text}"
            )
    return lines
