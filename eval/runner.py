"""Orchestration of an eval: the coarse steps the CLI and the Prefect `evaluate_corpus` flow both call.

    opts  = with_run_id(EvalOptions(target="nfcorpus", ...))
    data  = load_eval_data(opts)                            # eval.data: queries + qrels (+ checksum)
    store = open_eval_store(opts)                           # eval.plan
    plan  = plan_collections(store, data.dataset, opts)     # eval.plan: collections, model, baseline
    enc   = load_query_encoder(plan.model, opts)            # eval.query_encoder
    qemb  = encode_queries(enc, data)
    for target, mode in planned_searches(plan, opts):                   # eval.scoring
        outcome = search_configuration(store, target, mode, qemb, opts)
        rows.append(score_configuration(outcome, target, data, opts, plan))
    base    = compare_to_baseline(rows, opts)
    teacher = run_teacher_baseline(opts, data, base, static_encoder=enc)   # eval.teacher, optional
    results = assemble_results(...)                         # eval.assemble → eval.results.EvalResults
    write_report(results, report_dir(opts, data.dataset))   # plots, results.json, report.md

`run_eval(opts)` does all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from eval.assemble import assemble_results
from eval.data import load_eval_data
from eval.environment import engine_description
from eval.metrics import PRIMARY_METRIC
from eval.options import EvalOptions
from eval.plan import open_eval_store, plan_collections
from eval.query_encoder import encode_queries, load_query_encoder
from eval.report import write_report_md
from eval.results import ConfigurationResult, EvalResults, write_results_json
from eval.scoring import compare_to_baseline, planned_searches, score_configuration, search_configuration
from ingest.run_ids import new_run_id

log = logging.getLogger("eval")


def with_run_id(opts: EvalOptions, run_id: str | None = None) -> EvalOptions:
    """A copy of `opts` with a fixed run id (a flow fixes it once so every task writes to one place).

    Args:
        opts: The options.
        run_id: The run id to fix; None: keep `opts.run_id`, else a new one (`ingest.run_ids`).
    """
    return replace(opts, run_id=run_id or opts.run_id or new_run_id())


def report_dir(opts: EvalOptions, dataset: str) -> Path:
    """`<out>/<dataset>/<run id>/` (a new run id is fixed into `opts` on first call)."""
    if not opts.run_id:
        opts.run_id = new_run_id()
    return opts.out / dataset / opts.run_id


@dataclass
class ReportFiles:
    """Paths written for one eval."""

    directory: Path
    report_md: Path
    results_json: Path
    plots: list[Path]


def write_report(results: EvalResults, out_dir: Path) -> ReportFiles:
    """Write the plots, results.json and report.md into `out_dir` (records the plots in `results`)."""
    from eval.plots import write_plots

    plots = write_plots(results, out_dir)
    results.plots = [p.name for p in plots]
    results_json = write_results_json(results, out_dir)
    report_md = write_report_md(results, out_dir)
    return ReportFiles(out_dir, report_md, results_json, plots)


@dataclass
class EvalRun:
    """What `run_eval` returns."""

    results: EvalResults
    files: ReportFiles


def run_eval(opts: EvalOptions, *, echo: Callable[[str], None] | None = None) -> EvalRun:
    """Run the whole eval: load, plan, encode, search every collection × mode, score, report.

    Args:
        opts: The options.
        echo: Called with one progress line per step (e.g. `print` to stderr); None: log only.

    Returns:
        The results and the files written.

    Raises:
        EvalError: (EvalInputError, MissingCollectionError, EvalModelError) saying what to do.
        IngestError: (InputError, StoreError, DatasetNotFoundError) from the ingest functions it
            calls (reading the corpus, queries and qrels; opening the store).
    """
    say = echo or log.info
    opts = with_run_id(opts)
    data = load_eval_data(opts)
    say(f"{data.dataset} ({data.split}): {len(data.queries)} judged queries, {data.qrels_rows} qrels rows")
    store = open_eval_store(opts)
    try:
        engine = engine_description(store, opts)
        plan = plan_collections(store, data.dataset, opts)
        for s in plan.skipped:
            say(f"skipping {s.collection}: {s.reason}")
        encoder = load_query_encoder(plan.model, opts)
        queries = encode_queries(encoder, data)
        say(f"encoded {len(queries.ids)} queries with {plan.model.get('model_id')} in {queries.seconds:.2f}s")
        rows: list[ConfigurationResult] = []
        for target, mode in planned_searches(plan, opts):
            outcome = search_configuration(store, target, mode, queries, opts)
            row = score_configuration(outcome, target, data, opts, plan)
            rows.append(row)
            say(
                f"{target.name:<32} {mode.name:<12} NDCG@10 {row.metrics.mean[PRIMARY_METRIC]:.4f}  "
                f"p50 {row.latency['p50_ms']:.2f} ms"
            )
        base = compare_to_baseline(rows, opts)
        teacher = None
        if opts.baseline_model:
            from eval.teacher import run_teacher_baseline

            say(f"transformer baseline {opts.baseline_model}: encoding the corpus ...")
            teacher = run_teacher_baseline(opts, data, base, static_encoder=encoder)
            say(f"{opts.baseline_model} NDCG@10 {teacher.metrics.mean[PRIMARY_METRIC]:.4f}")
        encoder.close()
        results = assemble_results(
            opts=opts, data=data, plan=plan, queries=queries, rows=rows, engine=engine, teacher=teacher
        )
    finally:
        store.close()
    files = write_report(results, report_dir(opts, data.dataset))
    say(f"report: {files.report_md}")
    return EvalRun(results, files)
