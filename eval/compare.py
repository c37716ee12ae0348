"""`python -m eval compare`: one published-form table across datasets from several report directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.report import model_caveat, published_row, published_table
from eval.results import load_results

RESULTS_FILE = "results.json"


def _latest(run_files: list[Path]) -> Path:
    return max(run_files, key=lambda p: (p.stat().st_mtime, p.parent.name))


def resolve_results(path: Path) -> list[Path]:
    """Find the results.json files a path stands for.

    Accepts a results.json, a run directory (`reports/<dataset>/<run>`), a dataset directory
    (`reports/<dataset>`: its latest run) or a reports root (the latest run of every dataset in it).

    Raises:
        FileNotFoundError: when the path does not exist or holds no results.json, saying what to pass.
    """
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: pass a report directory such as reports/scifact/<run id>"
        )
    if path.is_file():
        return [path]
    if (path / RESULTS_FILE).is_file():
        return [path / RESULTS_FILE]
    runs = sorted(path.glob(f"*/{RESULTS_FILE}"))
    if runs:
        return [_latest(runs)]
    found = []
    for dataset_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        dataset_runs = sorted(dataset_dir.glob(f"*/{RESULTS_FILE}"))
        if dataset_runs:
            found.append(_latest(dataset_runs))
    if not found:
        raise FileNotFoundError(
            f"no {RESULTS_FILE} under {path}: pass reports/<dataset>/<run id>, reports/<dataset> or reports/"
        )
    return found


def compare(paths: list[Path]) -> tuple[str, list[dict[str, Any]]]:
    """Build the cross-dataset table.

    Args:
        paths: Report paths (see `resolve_results`).

    Returns:
        (markdown text, the rows as dicts: dataset, original, bq_no_rescore, bq_rescore, deltas, model,
        run directory).

    Raises:
        FileNotFoundError, ValueError: a path holds no usable results.json.
    """
    rows: list[dict[str, Any]] = []
    caveats: set[str] = set()
    models: set[str] = set()
    for path in paths:
        for results_path in resolve_results(path):
            results = load_results(results_path)
            row = published_row(results)
            row["run_dir"] = str(results_path.parent)
            rows.append(row)
            models.add(str(row.get("model_id")))
            caveat = model_caveat(results.model)
            if caveat:
                caveats.add(caveat)
    lines = ["NDCG@10 at full dimension; Δ is the relative change against the original vectors.", ""]
    lines.append(published_table(rows, with_delta=True))
    lines.append("")
    lines.append("Model(s): " + ", ".join(f"`{m}`" for m in sorted(models)))
    lines.append("Runs: " + ", ".join(f"`{r['run_dir']}`" for r in rows))
    for caveat in sorted(caveats):
        lines += ["", caveat]
    return "\n".join(lines) + "\n", rows
