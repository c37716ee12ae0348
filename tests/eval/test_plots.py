"""Plots: labels measured with the renderer do not overlap, the legend stays off the data, the y-range does
not magnify one query, rescoring is drawn at its RAM, and the PNGs are written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from eval import plots
from eval.plots import (
    LabelSpec,
    dim_figure,
    marker_boxes,
    mode_explanation,
    pareto_figure,
    place_labels,
    text_boxes,
    write_plots,
    y_limits,
)
from eval.recommend import serving_ram
from eval.results import EvalResults

Factory = Callable[..., EvalResults]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_no_overlap(boxes: list) -> None:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_pareto_labels_do_not_overlap_each_other_the_points_or_the_legend(make_results: Factory) -> None:
    results = make_results(degrade={(256, "binary", "no-rescore"): 0.6})
    figure = pareto_figure(results)
    try:
        texts = [t.get_text() for t in figure.labels]
        assert texts[0].startswith("recommended: ") and any(t.startswith("baseline: ") for t in texts)
        boxes = text_boxes(figure.fig, figure.labels)
        _assert_no_overlap(boxes)
        renderer = figure.fig.canvas.get_renderer()
        for label, box in zip(figure.labels, boxes, strict=True):
            area = label.axes.get_window_extent(renderer)
            assert area.x0 <= box.x0 and box.x1 <= area.x1 and area.y0 <= box.y0 and box.y1 <= area.y1
            assert not any(box.overlaps(m) for m in marker_boxes(figure.fig, label.axes))
        area = figure.axes[0].get_window_extent(renderer)
        # The legend sits outside the axes, so it hides no point (the baseline included).
        assert not figure.legend.get_window_extent(renderer).overlaps(area)
    finally:
        plots._pyplot().close(figure.fig)


def test_close_up_panel_only_when_points_spread_far_below_the_baseline(make_results: Factory) -> None:
    spread = make_results(degrade={(256, "binary", "no-rescore"): 3.0})
    values = [c.primary for c in spread.configurations]
    assert min(values) < 0.5 * spread.baseline.primary
    figure = pareto_figure(spread)
    try:
        assert len(figure.axes) == 2
        lo, hi = figure.axes[1].get_ylim()
        assert lo <= spread.baseline.primary * 0.99 and hi >= spread.baseline.primary
        assert hi - lo >= 8 * 0.01 * spread.baseline.primary
        assert figure.axes[1].get_ylim() != figure.axes[0].get_ylim()
    finally:
        plots._pyplot().close(figure.fig)
    assert plots.zoom_limits([0.40, 0.401, 0.405], 0.405, 0.01) is None  # nothing far below: one panel


def test_crowded_labels_are_nudged_or_left_out(make_results: Factory) -> None:
    # Many labels at the same spot (the "d256 hosvescore" overprint): each placed one is free of the others.
    results = make_results()
    figure = pareto_figure(results)
    try:
        base = results.baseline
        specs = [LabelSpec(serving_ram(base), base.primary, f"label number {i}") for i in range(40)]
        placed = place_labels(figure.fig, figure.axes[0], specs)
        assert 0 < len(placed) < 40  # some fit around the point, the rest are left out
        _assert_no_overlap(text_boxes(figure.fig, [*figure.labels, *placed]))
    finally:
        plots._pyplot().close(figure.fig)


def test_y_range_does_not_magnify_one_query() -> None:
    # Points 0.869–0.875 with a 1% tolerance: the range spans at least 8 × 1% of the baseline.
    lo, hi = y_limits([0.869, 0.872, 0.875], baseline=0.875, within=0.01)
    assert hi - lo >= 8 * 0.01 * 0.875
    assert lo < 0.869 and hi > 0.875
    lo, hi = y_limits([0.15, 0.40], baseline=0.40, within=0.01)
    assert lo <= 0.15 and hi >= 0.40 and hi - lo < 0.4


def test_rescoring_is_drawn_at_its_ram_not_the_formula(make_results: Factory) -> None:
    results = make_results()
    for c in results.configurations:
        # As measured: quantized vectors + graph in RAM, float vectors on disk.
        c.serving_ram_per_vector = 1024.0 if c.quantization == "none" else 200.0
        c.rescore_disk_bytes_per_query = 40960.0 if c.mode.startswith("rescore") else 0.0
    figure = pareto_figure(results)
    try:
        ax = figure.axes[0]
        xs = {float(x) for coll in ax.collections for x, _ in coll.get_offsets()}
        assert xs <= {1024.0, 200.0}  # nothing at the 32× smaller formula (8 or 32 bytes)
        assert "measured" in ax.get_xlabel()
    finally:
        plots._pyplot().close(figure.fig)


def test_dim_panels_one_per_quantization_with_every_mode_explained(make_results: Factory) -> None:
    results = make_results()
    figure = dim_figure(results)
    try:
        assert [ax.get_title() for ax in figure.axes] == ["float32 (no quantization)", "binary"]
        legend = [t.get_text() for t in figure.legend.get_texts()]
        for mode in {c.mode for c in results.configurations}:
            assert mode_explanation(mode) in legend
        assert "baseline NDCG@10" in legend and "within 1% of the baseline" in legend
        renderer = figure.fig.canvas.get_renderer()
        for ax in figure.axes:
            assert not figure.legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    finally:
        plots._pyplot().close(figure.fig)


def test_write_plots_writes_both_pngs(make_results: Factory, tmp_path: Path) -> None:
    paths = write_plots(make_results(), tmp_path)
    assert [p.name for p in paths] == ["ndcg_vs_ram.png", "ndcg_vs_dim.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("mode", "words"),
    [("exact", "full scan"), ("hnsw", "engine default ef"), ("hnsw-ef64", "ef64"), ("rescore-x4", "4×")],
)
def test_mode_explanations(mode: str, words: str) -> None:
    assert words in mode_explanation(mode)
