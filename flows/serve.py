"""Serve both flows on their nightly schedules from this process (no work pool or worker needed).

    python -m flows.serve                    # against PREFECT_API_URL, e.g. a `prefect server start`
    python -m flows.serve --target nfcorpus  # another corpus

The process polls the Prefect server for scheduled and manually triggered runs of the two
deployments and runs them in subprocesses until interrupted. `prefect.yaml` declares the same
deployments for a worker on a `process` work pool.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from flows.settings import DEFAULT_TARGET, EVAL_DEPLOYMENT, INGEST_DEPLOYMENT, NIGHTLY_CRON

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

# The eval runs an hour after the ingest, once the collections are rebuilt.
EVAL_CRON = "0 3 * * *"


def build_deployments(
    target: str = DEFAULT_TARGET,
    *,
    ingest_options: dict[str, Any] | None = None,
    eval_options: dict[str, Any] | None = None,
    ingest_cron: str = NIGHTLY_CRON,
    eval_cron: str = EVAL_CRON,
) -> list[RunnerDeployment]:
    """The nightly ingest and eval deployments, ready for `prefect.serve` or `.apply()`.

    Args:
        target: The corpus both deployments work on.
        ingest_options: Default options of the ingest flow (`IngestConfig` fields), checked here so
            that a bad one fails now rather than at night. Stored as given: the environment
            (STATIC_INGEST_DATA_DIR, ...) is read when a run starts, in the serving process.
        eval_options: Default options of the eval flow (`EvalSettings` fields), likewise.
        ingest_cron: Cron schedule of the ingest (UTC).
        eval_cron: Cron schedule of the eval (UTC).

    Returns:
        `[ingest deployment, eval deployment]`.

    Raises:
        InputError: on an unknown option or a bad value, naming it.
    """
    from prefect.deployments.runner import RunnerDeployment

    from eval.options import EvalSettings
    from flows.eval_flow import evaluate_corpus
    from flows.ingest_flow import ingest_corpus
    from ingest.options import IngestConfig

    IngestConfig(**(ingest_options or {}))
    EvalSettings(**(eval_options or {}))

    ingest = ingest_corpus.to_deployment(
        name=INGEST_DEPLOYMENT,
        cron=ingest_cron,
        parameters=_parameters(target, ingest_options),
        tags=["static-ingest", "ingest"],
        description="Ingest the corpus into every collection configuration (resumes from checkpoints).",
    )
    evaluate = evaluate_corpus.to_deployment(
        name=EVAL_DEPLOYMENT,
        cron=eval_cron,
        parameters=_parameters(target, eval_options),
        tags=["static-ingest", "eval"],
        description="NDCG@10 of every collection × search mode vs the full-precision baseline.",
    )
    # `to_deployment` is sync/async dual; called from sync code it returns the deployment itself.
    assert isinstance(ingest, RunnerDeployment) and isinstance(evaluate, RunnerDeployment)
    return [ingest, evaluate]


def _parameters(target: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Deployment parameters: the target, and the options only when some are set."""
    return {"target": target, "options": dict(options)} if options else {"target": target}


def main(argv: list[str] | None = None) -> int:
    """Serve the deployments until interrupted; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.serve", description="Serve the nightly ingest and eval deployments."
    )
    parser.add_argument("--target", default=DEFAULT_TARGET, help=f"corpus (default {DEFAULT_TARGET})")
    parser.add_argument("--ingest-cron", default=NIGHTLY_CRON, help=f"default {NIGHTLY_CRON!r} (UTC)")
    parser.add_argument("--eval-cron", default=EVAL_CRON, help=f"default {EVAL_CRON!r} (UTC)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from prefect import serve

    serve(*build_deployments(args.target, ingest_cron=args.ingest_cron, eval_cron=args.eval_cron))
    return 0


if __name__ == "__main__":
    sys.exit(main())
