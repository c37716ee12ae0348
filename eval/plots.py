"""PNG plots: NDCG@10 vs dimension per mode; NDCG@10 vs bytes/vector with the Pareto front marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metrics import PRIMARY_METRIC
from eval.results import ConfigurationResult, EvalResults
from eval.stats import pareto_front


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, ax: Any, xlabel: str, title: str, path: Path) -> None:
    """Label, grid and legend the axes, then save the figure to `path`."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(PRIMARY_METRIC)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def series_by_mode(configurations: Sequence[ConfigurationResult]) -> dict[str, list[tuple[int, float]]]:
    """Group configurations into lines `quantization/mode` → [(dim, NDCG@10)] sorted by dim."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for c in configurations:
        lines.setdefault(f"{c.quantization}/{c.mode}", []).append((int(c.dim), c.primary))
    return {k: sorted(v) for k, v in sorted(lines.items())}


def plot_ndcg_vs_dim(results: EvalResults, path: Path) -> Path:
    """Plot NDCG@10 against the Matryoshka dimension, one line per quantization/mode; return the path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    try:
        for label, points in series_by_mode(results.configurations).items():
            dims, values = zip(*points, strict=True)
            style = "-" if label.startswith("none/") else "--"
            ax.plot(dims, values, style, marker="o", label=label)
        ax.set_xscale("log", base=2)
        dims_all = sorted({int(c.dim) for c in results.configurations})
        ax.set_xticks(dims_all)
        ax.set_xticklabels([str(d) for d in dims_all])
        _finish(fig, ax, "dimension", f"{results.dataset}: {PRIMARY_METRIC} vs dimension", path)
    finally:
        plt.close(fig)
    return path


def plot_ndcg_vs_bytes(results: EvalResults, path: Path) -> Path:
    """Plot NDCG@10 against bytes/vector (log scale) and mark the Pareto front; return the path."""
    plt = _pyplot()
    configs = results.configurations
    costs = [float(c.bytes_per_vector) for c in configs]
    values = [c.primary for c in configs]
    front = pareto_front(costs, values)
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    try:
        for quant, marker in (("none", "o"), ("binary", "s"), ("scalar", "^")):
            idx = [i for i, c in enumerate(configs) if c.quantization == quant]
            if idx:
                ax.scatter(
                    [costs[i] for i in idx], [values[i] for i in idx], marker=marker, label=quant, alpha=0.7
                )
        ax.plot(
            [costs[i] for i in front],
            [values[i] for i in front],
            "k-",
            lw=1.2,
            label="Pareto front",
            zorder=3,
        )
        for i in front:
            c = configs[i]
            ax.annotate(
                f"d{c.dim} {c.mode}",
                (costs[i], values[i]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xscale("log", base=2)
        _finish(
            fig,
            ax,
            "bytes / vector (searched structure)",
            f"{results.dataset}: {PRIMARY_METRIC} vs memory",
            path,
        )
    finally:
        plt.close(fig)
    return path


def write_plots(results: EvalResults, out_dir: Path) -> list[Path]:
    """Write both plots into `out_dir`; return their paths."""
    return [
        plot_ndcg_vs_dim(results, out_dir / "ndcg_vs_dim.png"),
        plot_ndcg_vs_bytes(results, out_dir / "ndcg_vs_bytes.png"),
    ]
