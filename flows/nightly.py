"""The nightly pipeline: ingest (sync) the corpus, then evaluate it, in one flow run.

    python -m flows.nightly scifact --limit 1000         # one local run (temporary Prefect server)

One parent flow calls `ingest-corpus` and then `evaluate-corpus` as subflows, so the eval can only
start once the ingest has finished and verified its counts, and one schedule, one run (with both
subflows under it) and one set of parameters describe a night. The eval is skipped, with an artifact
saying why, when the ingest's sync changed nothing (no document added, changed or deleted): the
collections, and so the report, are those of the last evaluated night. `force_eval` evaluates anyway.

Why not an eval deployment triggered by the ingest's completion: the trigger needs an automation on
the server, the skip decision would have to be rebuilt from events, and a manual ingest run would
fire an eval too; a parent flow keeps the order, the skip rule and the parameters in code.

Deployments of this flow (names in `DEPLOYMENT` / `SERVED_DEPLOYMENT`): `prefect.yaml` declares
`nightly-pipeline/nightly` for a worker on a process work pool; `python -m flows.serve` serves
`nightly-pipeline/nightly-served` from its own process. Distinct names, so the two never overwrite
each other's registration (a served deployment has no storage: a worker running it would fail).
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from eval.options import EvalSettings
from flows.common import artifact_key
from flows.eval_flow import evaluate_corpus
from flows.ingest_flow import ingest_corpus, model_markdown
from flows.settings import DEFAULT_TARGET, NIGHTLY_CRON
from ingest.optionmodel import model_fields
from ingest.options import IngestConfig, StoreOptions

FLOW_NAME = "nightly-pipeline"
DEPLOYMENT = "nightly"
SERVED_DEPLOYMENT = "nightly-served"
TIMEZONE = "UTC"
CRON = NIGHTLY_CRON
# The options of the eval that say where and what the ingest wrote; the eval takes the ingest's unless
# its own options set them (see `eval_settings_for`).
SHARED_OPTIONS: tuple[str, ...] = (
    *model_fields(StoreOptions),
    "name",
    "id_col",
    "text_col",
    "title_col",
)


def eval_settings_for(ingest: IngestConfig, settings: EvalSettings | None) -> EvalSettings:
    """The eval's options: `settings`, with every shared option it leaves at its default taken from the
    ingest's, so that the eval reads the store, collections and dataset name the ingest just wrote.

    Args:
        ingest: The ingest's options.
        settings: The eval's options (None: all defaults).

    Returns:
        The eval's options.
    """
    given = settings if settings is not None else EvalSettings()
    defaults = EvalSettings()
    values = {name: getattr(given, name) for name in model_fields(EvalSettings)}
    for name in SHARED_OPTIONS:
        if values[name] == getattr(defaults, name):
            values[name] = getattr(ingest, name)
    return EvalSettings(**values)


def changed_documents(summary: dict[str, Any]) -> int:
    """Documents the ingest added, changed or deleted (`IngestSummary.to_dict()` counts)."""
    return int(summary.get("added", 0)) + int(summary.get("changed", 0)) + int(summary.get("deleted", 0))


def nightly_markdown(summary: dict[str, Any], evaluated: dict[str, Any] | None, skipped: str | None) -> str:
    """The pipeline's artifact: what the ingest changed, with which model, and what the eval did."""
    dataset = summary.get("dataset", "?")
    lines = [
        f"# Nightly pipeline: {dataset}",
        model_markdown(summary.get("model") or {}),
        f"Ingest (sync `{summary.get('sync', '?')}`): {summary.get('added', 0)} added, "
        f"{summary.get('changed', 0)} changed, {summary.get('unchanged', 0)} unchanged, "
        f"{summary.get('deleted', 0)} deleted; {summary.get('encoded_docs', 0)} documents encoded in "
        f"{float(summary.get('seconds', 0.0)):.1f} s; point counts "
        f"{'verified' if summary.get('verified') else 'NOT verified'}.",
    ]
    if skipped is not None:
        lines.append(f"**Eval skipped**: {skipped}")
    elif evaluated is not None:
        rec = evaluated.get("recommendation") or {}
        choice = f"`{rec.get('collection')}` searched as `{rec.get('mode')}`" if rec else "none qualifies"
        lines.append(
            f"Eval: report `{evaluated.get('report_md')}`; recommended configuration: {choice} "
            f"(artifacts `{artifact_key('eval', str(evaluated.get('dataset', dataset)))}-*`)."
        )
    return "\n\n".join(lines)


@flow(name=FLOW_NAME, log_prints=True)
def nightly_pipeline(
    target: str = DEFAULT_TARGET,
    options: IngestConfig | None = None,
    eval_options: EvalSettings | None = None,
    force_eval: bool = False,
) -> dict[str, Any]:
    """Ingest (sync) `target`, then evaluate it unless the ingest changed nothing.

    Args:
        target: A BEIR dataset name, a path or `hf:NAME`, as for the ingest.
        options: The ingest's options (`ingest.options.IngestConfig`); None: defaults.
        eval_options: The eval's options (`eval.options.EvalSettings`); the store, collections and
            dataset options it leaves at their defaults come from `options`.
        force_eval: Evaluate even when no document was added, changed or deleted.

    Returns:
        `{"ingest": the ingest summary dict, "eval": the eval flow's result or None, "eval_skipped":
        the reason or None}`.

    Raises:
        IngestError: the ingest failed (the eval does not run); the eval's errors likewise.
    """
    logger = get_run_logger()
    cfg = options if options is not None else IngestConfig()
    # The task runner: STATIC_INGEST_TASK_RUNNER / STATIC_INGEST_DASK_ADDRESS of the worker (compose: dask).
    summary = ingest_corpus(target=target, options=cfg)
    changed = changed_documents(summary)
    skipped: str | None = None
    evaluated: dict[str, Any] | None = None
    if changed == 0 and not force_eval:
        skipped = (
            f"nothing changed in {summary.get('dataset', target)} since the last ingest (0 documents added, "
            f"changed or deleted; {summary.get('unchanged', 0)} unchanged), so the collections and their "
            "last report stand. Set the parameter `force_eval` (`--force-eval`) to evaluate anyway."
        )
        logger.info("eval skipped: %s", skipped)
    else:
        evaluated = evaluate_corpus(target=target, options=eval_settings_for(cfg, eval_options))
    create_markdown_artifact(
        nightly_markdown(summary, evaluated, skipped),
        key=artifact_key("nightly", str(summary.get("dataset", target))),
        description=f"Nightly pipeline of {summary.get('dataset', target)}: ingest, then eval or why not",
    )
    return {"ingest": summary, "eval": evaluated, "eval_skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline once with the ingest CLI's options (a temporary Prefect server unless
    PREFECT_API_URL); the eval takes its defaults and the ingest's store options."""
    from ingest.__main__ import build_parser, config_from_args
    from ingest.errors import IngestError

    parser = build_parser(prog="python -m flows.nightly")
    parser.add_argument("--force-eval", action="store_true", help="evaluate even when nothing changed")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = config_from_args(args)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = nightly_pipeline(target=args.target, options=cfg, force_eval=args.force_eval, return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
