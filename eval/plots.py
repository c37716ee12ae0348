"""PNG plots that decide: NDCG@10 vs serving RAM per vector (Pareto chart) and NDCG@10 vs dimension.

`ndcg_vs_ram.png`: every configuration × search setting at its RAM to serve per vector (log x), the
baseline line and the tolerance band, the Pareto front, the recommendation marked; modes that rescore
are hollow (they read the original float vectors from disk, which is not RAM). Labels are placed by
`place_labels`, which measures each label with the renderer and tries positions around its point until
it overlaps nothing already drawn (else leaves it out).

`ndcg_vs_dim.png`: one panel per quantization, one line per search mode (nudged sideways so equal
values stay visible), the baseline and the tolerance band in each panel, the modes explained in the
legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.metrics import PRIMARY_METRIC
from eval.recommend import fmt_bytes, ram_is_measured, reads_disk, recommend, serving_ram
from eval.results import ConfigurationResult, EvalResults
from eval.search import mode_family, mode_sort_key
from eval.stats import pareto_front

PARETO_FILE = "ndcg_vs_ram.png"
DIM_FILE = "ndcg_vs_dim.png"
QUANT_ORDER = ("none", "scalar", "binary")
QUANT_COLORS = {"none": "#1f77b4", "scalar": "#2ca02c", "binary": "#d62728"}
QUANT_NAMES = {"none": "float32 (no quantization)", "scalar": "scalar int8", "binary": "binary"}
# Label positions tried around a point: rings of growing radius (points), 12 directions each, the
# diagonals first; beyond the first ring a thin leader line joins label and point.
_RADII = (8.0, 16.0, 26.0, 38.0, 52.0)
_ANGLES = (30, -30, 150, -150, 90, -90, 0, 180, 60, -60, 120, -120)
_LEADER_FROM = 10.0


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mode_explanation(mode: str) -> str:
    """A short explanation of a mode name for legends."""
    family = mode_family(mode)
    if family == "exact":
        return "exact: full scan of the float vectors"
    if family == "hnsw":
        rest = mode.removeprefix("hnsw").strip("-_ ")
        return f"{mode}: HNSW graph" + (f" ({rest})" if rest else " (engine default ef)")
    if family == "no-rescore":
        return "no-rescore: quantized scores only"
    factor = mode.removeprefix("rescore-x")
    return f"{mode}: quantized HNSW, {factor}× candidates rescored (float)"


# -- label placement -------------------------------------------------------------------------------


@dataclass
class LabelSpec:
    """A label to place next to a data point (data coordinates), most important first."""

    x: float
    y: float
    text: str
    color: str = "black"
    weight: str = "normal"


def _overlaps(box: Any, others: Sequence[Any]) -> bool:
    return any(box.overlaps(o) for o in others)


def place_labels(fig: Any, ax: Any, labels: Sequence[LabelSpec], obstacles: Sequence[Any] = ()) -> list[Any]:
    """Place labels next to their points without overlapping each other, the points or `obstacles`.

    Each label is drawn at offsets around its point (nearest first, then further out with a leader
    line), measured with the figure's renderer, and kept at the first position whose box lies inside
    the axes and overlaps no marker, no text already in the axes (earlier labels included) and no
    obstacle box. A label with no free position is left out.

    Args:
        fig: The figure (its layout must be final: positions are in display pixels).
        ax: The axes of the points.
        labels: Labels in priority order.
        obstacles: Extra display-space boxes to keep clear (e.g. a legend inside the axes).

    Returns:
        The placed `Text` artists (annotations), in the order of `labels` minus the omitted ones.
    """
    renderer = fig.canvas.get_renderer()
    area = ax.get_window_extent(renderer)
    markers = marker_boxes(fig, ax)
    # Labels already in the axes (an earlier call) are kept clear too.
    taken: list[Any] = [*obstacles, *(text_box(t, renderer) for t in ax.texts)]
    placed = []
    for spec in labels:
        kept = None
        for radius in _RADII:
            for angle in _ANGLES:
                ox = round(radius * math.cos(math.radians(angle)), 1)
                oy = round(radius * math.sin(math.radians(angle)) * 0.8, 1)
                text = ax.annotate(
                    spec.text,
                    (spec.x, spec.y),
                    xytext=(ox, oy),
                    textcoords="offset points",
                    fontsize=7,
                    color=spec.color,
                    fontweight=spec.weight,
                    ha="left" if ox > 1 else "right" if ox < -1 else "center",
                    va="bottom" if oy > 1 else "top" if oy < -1 else "center",
                    arrowprops=(
                        {"arrowstyle": "-", "lw": 0.5, "color": "0.5", "shrinkA": 0, "shrinkB": 4}
                        if radius > _LEADER_FROM
                        else None
                    ),
                    zorder=6,
                )
                box = text_box(text, renderer).expanded(1.04, 1.1)
                inside = box.x0 >= area.x0 and box.x1 <= area.x1 and box.y0 >= area.y0 and box.y1 <= area.y1
                if inside and not _overlaps(box, taken) and not _overlaps(box, markers):
                    kept = text
                    taken.append(box)
                    break
                text.remove()
            if kept is not None:
                break
        if kept is not None:
            placed.append(kept)
    return placed


def marker_boxes(fig: Any, ax: Any) -> list[Any]:
    """Display-space boxes of every marker drawn in `ax` (scatter points and line markers)."""
    from matplotlib.transforms import Bbox

    px_per_pt = fig.dpi / 72.0
    boxes = []
    for coll in ax.collections:
        offsets = coll.get_offsets()
        if len(offsets) == 0:
            continue
        sizes = coll.get_sizes() if hasattr(coll, "get_sizes") else []
        for i, (px, py) in enumerate(ax.transData.transform(offsets)):
            size = sizes[i % len(sizes)] if len(sizes) else 36.0
            r = math.sqrt(size) / 2.0 * px_per_pt + 1.0
            if math.isfinite(px) and math.isfinite(py):
                boxes.append(Bbox.from_extents(px - r, py - r, px + r, py + r))
    for line in ax.lines:
        if line.get_marker() in ("", "None", None, " "):
            continue
        r = line.get_markersize() / 2.0 * px_per_pt + 1.0
        for px, py in ax.transData.transform(line.get_xydata()):
            if math.isfinite(px) and math.isfinite(py):
                boxes.append(Bbox.from_extents(px - r, py - r, px + r, py + r))
    return boxes


def text_box(text: Any, renderer: Any) -> Any:
    """Display-space box of the text of a label alone (an annotation's extent includes its leader line)."""
    from matplotlib.text import Text

    if hasattr(text, "update_positions"):
        text.update_positions(renderer)
    return Text.get_window_extent(text, renderer)


def text_boxes(fig: Any, texts: Sequence[Any]) -> list[Any]:
    """Display-space boxes of the texts of labels, measured with the figure's renderer (for checks)."""
    renderer = fig.canvas.get_renderer()
    return [text_box(t, renderer) for t in texts]


# -- axes helpers ----------------------------------------------------------------------------------


def y_limits(values: Sequence[float], baseline: float, within: float) -> tuple[float, float]:
    """A y-range that shows every point and the tolerance band without magnifying noise.

    The range spans at least 8 × the tolerance (and at least 0.02 NDCG), so that a difference of one
    query does not fill the plot.
    """
    lo = min([*values, baseline * (1.0 - within)])
    hi = max([*values, baseline])
    need = max(8.0 * within * baseline, 0.02)
    if hi - lo < need:
        # Grow mostly downwards: the interesting region is just below the baseline.
        lo = hi - need
    pad = 0.06 * (hi - lo)
    return max(0.0, lo - pad), hi + pad


def _band(ax: Any, baseline: float, within: float, label: bool = True) -> None:
    ax.axhspan(
        baseline * (1.0 - within),
        baseline,
        color="#2ca02c",
        alpha=0.12,
        lw=0,
        label=f"within {within:.0%} of the baseline" if label else None,
        zorder=0,
    )
    ax.axhline(baseline, color="0.25", lw=1.0, ls="--", label="baseline NDCG@10" if label else None, zorder=1)


def _bytes_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_bytes(v)))


def point_label(configs: Sequence[ConfigurationResult], first: ConfigurationResult | None = None) -> str:
    """One label for points that coincide: `d256 binary hnsw` and, below, `(= rescore-x1)`.

    Args:
        configs: The rows drawn at the same spot.
        first: The row named first (e.g. the recommended one); default the first of `configs`.
    """
    lead = first or configs[0]
    others = [m for m in dict.fromkeys(c.mode for c in configs) if m != lead.mode]
    text = f"d{lead.dim} {lead.quantization} {lead.mode}"
    return text + (f"\n(= {', '.join(others)})" if others else "")


def coinciding(
    configs: Sequence[ConfigurationResult],
) -> dict[tuple[float, float], list[ConfigurationResult]]:
    """Group rows drawn at the same spot (same RAM, same NDCG@10 to 4 decimals)."""
    groups: dict[tuple[float, float], list[ConfigurationResult]] = {}
    for c in configs:
        key = (round(serving_ram(c), 1), round(c.primary, 4))
        groups.setdefault(key, []).append(c)
    return groups


# -- the plots -------------------------------------------------------------------------------------


@dataclass
class Figure:
    """A built figure with its placed labels (for tests), closed by `save`."""

    fig: Any
    labels: list[Any]
    legend: Any
    axes: list[Any]

    def save(self, path: Path) -> Path:
        """Write the PNG and close the figure."""
        plt = _pyplot()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fig.savefig(path)
        finally:
            plt.close(self.fig)
        return path


PARETO_MARKERS = {"exact": "D", "hnsw": "o", "no-rescore": "v", "rescore": "s"}
FAMILY_NAMES = {
    "exact": "exact (full scan)",
    "hnsw": "HNSW",
    "no-rescore": "quantized, no rescoring",
    "rescore": "quantized, rescored × oversampling",
}


def _draw_points(
    ax: Any, configs: Sequence[ConfigurationResult], rec: ConfigurationResult | None, front: list[int]
) -> None:
    """Scatter every row (colour: quantization; marker: mode family; hollow: reads float vectors from
    disk), the Pareto front as a dotted step line, the baseline ringed and the recommendation as a star."""
    costs = [serving_ram(c) for c in configs]
    values = [c.primary for c in configs]
    ax.plot(
        [costs[i] for i in front],
        [values[i] for i in front],
        color="0.55",
        lw=1.0,
        ls=":",
        drawstyle="steps-post",
        label="Pareto front (nothing smaller is better)",
        zorder=2,
    )
    for quant in QUANT_ORDER:
        for family, marker in PARETO_MARKERS.items():
            rows = [c for c in configs if c.quantization == quant and mode_family(c.mode) == family]
            hollow = [c for c in rows if reads_disk(c)]
            solid = [c for c in rows if not reads_disk(c)]
            for group, face in ((solid, QUANT_COLORS[quant]), (hollow, "none")):
                if group:
                    ax.scatter(
                        [serving_ram(c) for c in group],
                        [c.primary for c in group],
                        marker=marker,
                        s=34,
                        facecolors=face,
                        edgecolors=QUANT_COLORS[quant],
                        linewidths=1.2,
                        zorder=4,
                    )
    base = next((c for c in configs if c.is_baseline), None)
    # The baseline ringed, the recommendation starred (the only one with a legend entry).
    marks = [(base, {"marker": "o", "s": 150, "facecolors": "none", "linewidths": 1.0})]
    if rec is not None:
        label = f"recommended: d{rec.dim} {rec.quantization} {rec.mode}"
        marks.append(
            (rec, {"marker": "*", "s": 320, "facecolors": "gold", "linewidths": 0.8, "label": label})
        )
    for cfg, style in marks:
        if cfg is not None:
            ax.scatter([serving_ram(cfg)], [cfg.primary], edgecolors="black", zorder=5, **style)


def _label_specs(
    configs: Sequence[ConfigurationResult],
    rec: ConfigurationResult | None,
    base: ConfigurationResult,
    others: Sequence[ConfigurationResult],
) -> list[LabelSpec]:
    """Labels in priority order: the recommendation, the baseline, then `others`; one per spot."""
    groups = coinciding(configs)
    specs: list[LabelSpec] = []
    seen: set[tuple[float, float]] = set()

    def add(cfg: ConfigurationResult, prefix: str = "", weight: str = "normal") -> None:
        key = (round(serving_ram(cfg), 1), round(cfg.primary, 4))
        if key in seen:
            return
        seen.add(key)
        text = prefix + point_label(groups[key], cfg)
        specs.append(LabelSpec(serving_ram(cfg), cfg.primary, text, weight=weight))

    if rec is not None:
        add(rec, "recommended: ", "bold")
    add(base, "baseline: ")
    for c in others:
        add(c)
    return specs


def zoom_limits(values: Sequence[float], baseline: float, within: float) -> tuple[float, float] | None:
    """The y-range of the close-up on the candidates (from 4 × the tolerance below the baseline up), or
    None when the whole range is not much larger (no close-up needed)."""
    full_lo, full_hi = y_limits(values, baseline, within)
    near = [v for v in values if v >= baseline * (1.0 - 4.0 * within)]
    lo, hi = y_limits(near or [baseline], baseline, within)
    if (full_hi - full_lo) < 2.0 * (hi - lo):
        return None
    return lo, hi


def pareto_figure(results: EvalResults) -> Figure:
    """Build the NDCG@10 vs serving-RAM chart (see the module docstring).

    The top panel shows every setting; when they spread far below the baseline, a bottom panel zooms
    into the candidates (from 4 × the tolerance below the baseline up) with every one of them labelled
    where room allows.
    """
    plt = _pyplot()
    configs = results.configurations
    base = results.baseline
    within = float(results.options.within)
    rec = results.recommendation or recommend(
        configs, base.primary, within=within, alpha=float(results.options.alpha)
    )
    measured = ram_is_measured(configs)
    costs = [serving_ram(c) for c in configs]
    values = [c.primary for c in configs]
    front = pareto_front(costs, values)
    zoom = zoom_limits(values, base.primary, within)
    fig = plt.figure(figsize=(10.5, 10.5 if zoom else 6.2), dpi=110)
    if zoom:
        ax = fig.add_axes((0.08, 0.57, 0.6, 0.38))
        close = fig.add_axes((0.08, 0.12, 0.6, 0.36))
        axes = [ax, close]
    else:
        ax = fig.add_axes((0.08, 0.2, 0.6, 0.72))
        axes = [ax]
    xlabel = (
        "RAM to serve per vector (measured, log scale)"
        if measured
        else "bytes per vector (formula; RAM not measured; log scale)"
    )
    for a in axes:
        _band(a, base.primary, within)
        _draw_points(a, configs, rec, front)
        _bytes_axis(a)
        a.set_xlim(min(costs) / 1.6, max(costs) * 1.6)
        a.set_xlabel(xlabel)
        a.set_ylabel(PRIMARY_METRIC)
        a.grid(True, alpha=0.3, which="major")
    ax.set_ylim(*y_limits(values, base.primary, within))
    ax.set_title(f"{results.dataset}: {PRIMARY_METRIC} vs memory ({results.queries.count} queries)")
    if zoom:
        close.set_ylim(*zoom)
        close.set_title("close-up near the baseline (the candidates)", fontsize=10)
    # Legend outside the axes: colour = quantization, marker = mode family, hollow = disk reads.
    from matplotlib.lines import Line2D

    handles, names = ax.get_legend_handles_labels()
    for quant in QUANT_ORDER:
        if any(c.quantization == quant for c in configs):
            handles.append(Line2D([], [], color=QUANT_COLORS[quant], marker="o", ls="", ms=6))
            names.append(QUANT_NAMES[quant])
    for family, marker in PARETO_MARKERS.items():
        if any(mode_family(c.mode) == family for c in configs):
            handles.append(Line2D([], [], color="0.3", marker=marker, ls="", ms=6))
            names.append(FAMILY_NAMES[family])
    if any(reads_disk(c) for c in configs):
        handles.append(Line2D([], [], color="0.3", marker="o", ls="", ms=6, mfc="none"))
        names.append("hollow: rescores with float vectors read from disk")
    legend = ax.legend(
        handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False
    )
    fig.text(
        0.08,
        0.015,
        "Each point is one collection × search setting. x: "
        + ("RAM the engine needs to serve it" if measured else "size of the vector searched first")
        + "; rescoring settings sit at their RAM and read the original\nfloat vectors from disk per query. "
        f"Shaded: within {within:.0%} of the baseline ({base.collection}, {base.mode}). Labelled: the "
        "recommendation, the baseline and the Pareto front\n(close-up: every candidate); labels that would "
        "overlap are left out.",
        fontsize=7.5,
        va="bottom",
    )
    fig.canvas.draw()
    labels = place_labels(fig, ax, _label_specs(configs, rec, base, [configs[i] for i in front]))
    if zoom:
        lo, hi = zoom
        near = sorted(
            (c for c in configs if lo <= c.primary <= hi),
            key=lambda c: (-c.primary, serving_ram(c)),
        )
        labels += place_labels(fig, close, _label_specs(configs, rec, base, near))
    return Figure(fig, labels, legend, axes)


def plot_ndcg_vs_ram(results: EvalResults, path: Path) -> Path:
    """Write the NDCG@10 vs serving-RAM chart to `path`; return the path."""
    return pareto_figure(results).save(path)


MODE_COLORS = {
    "exact": "black",
    "hnsw": "#1f77b4",
    "no-rescore": "#d62728",
}
RESCORE_COLORS = ("#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MODE_MARKERS = {"exact": "D", "hnsw": "o", "no-rescore": "v", "rescore": "s"}


def dim_figure(results: EvalResults) -> Figure:
    """Build NDCG@10 vs dimension, one panel per quantization (see the module docstring)."""
    plt = _pyplot()
    configs = results.configurations
    base = results.baseline
    within = float(results.options.within)
    quants = [q for q in QUANT_ORDER if any(c.quantization == q for c in configs)]
    quants += sorted({c.quantization for c in configs} - set(quants))
    modes = sorted({c.mode for c in configs}, key=mode_sort_key)
    dims = sorted({int(c.dim) for c in configs})
    width = 3.6 * len(quants) + 4.4
    fig, axes = plt.subplots(1, len(quants), figsize=(width, 5.0), dpi=110, sharey=True, squeeze=False)
    axes = list(axes[0])
    fig.subplots_adjust(left=0.85 / width, right=1 - 4.2 / width, top=0.86, bottom=0.2, wspace=0.06)
    rescore_modes = [m for m in modes if mode_family(m) == "rescore"]
    hnsw_modes = [m for m in modes if mode_family(m) == "hnsw"]
    styles: dict[str, dict[str, Any]] = {}
    for m in modes:
        family = mode_family(m)
        if family == "rescore":
            color = RESCORE_COLORS[rescore_modes.index(m) % len(RESCORE_COLORS)]
        elif family == "hnsw" and len(hnsw_modes) > 1:
            shade = hnsw_modes.index(m) / max(1, len(hnsw_modes) - 1)
            color = plt.get_cmap("Blues")(0.95 - 0.5 * shade)
        else:
            color = MODE_COLORS.get(family, "gray")
        styles[m] = {
            "color": color,
            "marker": MODE_MARKERS.get(family, "o"),
            "ls": "-" if family in ("exact", "hnsw") else "--",
        }
    # Equal values would hide each other: nudge each mode sideways by a fixed factor (log x).
    nudge = {m: 2 ** (0.03 * (i - (len(modes) - 1) / 2)) for i, m in enumerate(modes)}
    values = [c.primary for c in configs]
    for ax, quant in zip(axes, quants, strict=True):
        _band(ax, base.primary, within, label=ax is axes[0])
        for m in modes:
            rows = sorted(
                (c for c in configs if c.quantization == quant and c.mode == m), key=lambda c: c.dim
            )
            if not rows:
                continue
            ax.plot(
                [c.dim * nudge[m] for c in rows],
                [c.primary for c in rows],
                ms=5,
                lw=1.2,
                mfc="none" if any(reads_disk(c) for c in rows) else styles[m]["color"],
                label=m,
                **styles[m],
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.set_xlim(min(dims) / 1.4, max(dims) * 1.4)
        ax.minorticks_off()
        ax.set_title(QUANT_NAMES.get(quant, quant), fontsize=10)
        ax.set_xlabel("dimension (Matryoshka truncation)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(PRIMARY_METRIC)
    axes[0].set_ylim(*y_limits(values, base.primary, within))
    fig.suptitle(f"{results.dataset}: {PRIMARY_METRIC} vs dimension, per quantization", fontsize=11)
    # One legend for all panels: every mode with its explanation, plus the band and the baseline.
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            ms=5,
            lw=1.2,
            mfc="none" if mode_family(m) == "rescore" else styles[m]["color"],
            **styles[m],
        )
        for m in modes
    ]
    names = [mode_explanation(m) for m in modes]
    band_handles, band_names = axes[0].get_legend_handles_labels()
    keep = [(h, n) for h, n in zip(band_handles, band_names, strict=True) if n not in modes]
    handles += [h for h, _ in keep]
    names += [n for _, n in keep]
    legend = fig.legend(
        handles,
        names,
        loc="upper left",
        bbox_to_anchor=(1 - 4.05 / width, 0.86),
        fontsize=7.5,
        frameon=False,
        title="search mode",
        title_fontsize=8,
        alignment="left",
    )
    fig.text(
        0.85 / width,
        0.02,
        "Solid lines: exact and HNSW searches (in a quantized panel, HNSW at that ef with the engine's "
        "default rescoring); dashed: explicit rescoring settings.\n"
        "Hollow markers: the search reads the original float vectors from disk to rescore. "
        "Lines are nudged sideways so that equal values stay visible.",
        fontsize=7.5,
        va="bottom",
    )
    return Figure(fig, [], legend, axes)


def plot_ndcg_vs_dim(results: EvalResults, path: Path) -> Path:
    """Write the NDCG@10 vs dimension panels to `path`; return the path."""
    return dim_figure(results).save(path)


def plot_caption(name: str, results: EvalResults) -> str:
    """The caption of a plot file in report.md (what to read from it)."""
    within = float(results.options.within)
    if name == PARETO_FILE:
        return (
            f"*{PRIMARY_METRIC} against the RAM each setting needs to serve a vector (log scale). The shaded "
            f"band is within {within:.0%} of the baseline; the star is the recommendation; hollow markers "
            "rescore with the float vectors read from disk. Points up and to the left are better.*"
        )
    if name == DIM_FILE:
        return (
            f"*{PRIMARY_METRIC} against the Matryoshka dimension, one panel per quantization, one line per "
            "search mode (explained in the legend); dashed line and band: the baseline and the tolerance.*"
        )
    return ""


def write_plots(results: EvalResults, out_dir: Path) -> list[Path]:
    """Write both plots into `out_dir`; return their paths (the decision chart first)."""
    return [
        plot_ndcg_vs_ram(results, out_dir / PARETO_FILE),
        plot_ndcg_vs_dim(results, out_dir / DIM_FILE),
    ]
