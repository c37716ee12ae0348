"""Serve the nightly pipeline from this process (no work pool or worker needed).

    python -m flows.serve                    # against PREFECT_API_URL, e.g. a `prefect server start`
    python -m flows.serve --target nfcorpus  # another corpus

The process registers `nightly-pipeline/nightly-served` (02:00 UTC), polls the Prefect server for its
scheduled and manually triggered runs, and runs them in subprocesses until interrupted; on shutdown
the deployment is paused. `prefect.yaml` declares the same flow as `nightly-pipeline/nightly` for a
worker on a process work pool: distinct names, so that neither registration overwrites the other (a
served deployment has no storage: a worker picking up its runs would fail).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from flows.settings import DEFAULT_TARGET

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


def build_deployment(
    target: str = DEFAULT_TARGET,
    *,
    ingest_options: dict[str, Any] | None = None,
    eval_options: dict[str, Any] | None = None,
    cron: str | None = None,
) -> RunnerDeployment:
    """The served nightly pipeline deployment, ready for `prefect.serve` or `.apply()`.

    Args:
        target: The corpus.
        ingest_options: Default options of the ingest (`IngestConfig` fields), checked here so that a bad
            one fails now rather than at night. Stored as given: the environment (STATIC_INGEST_DATA_DIR,
            ...) is read when a run starts, in the serving process.
        eval_options: Default options of the eval (`EvalSettings` fields), likewise.
        cron: Cron schedule in UTC (default `flows.nightly.CRON`, 02:00).

    Returns:
        The deployment `nightly-served` of the flow `nightly-pipeline`.

    Raises:
        InputError: on an unknown option or a bad value, naming it.
    """
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Cron

    from eval.options import EvalSettings
    from flows.nightly import CRON, SERVED_DEPLOYMENT, TIMEZONE, nightly_pipeline
    from ingest.options import IngestConfig

    IngestConfig(**(ingest_options or {}))
    EvalSettings(**(eval_options or {}))
    parameters: dict[str, Any] = {"target": target}
    if ingest_options:
        parameters["options"] = dict(ingest_options)
    if eval_options:
        parameters["eval_options"] = dict(eval_options)
    deployment = nightly_pipeline.to_deployment(
        name=SERVED_DEPLOYMENT,
        schedules=[Cron(cron or CRON, timezone=TIMEZONE)],
        parameters=parameters,
        concurrency_limit=1,
        tags=["static-ingest", "nightly", "served"],
        description="Ingest (sync), then evaluate unless nothing changed; served by `python -m flows.serve`.",
    )
    # `to_deployment` is sync/async dual; called from sync code it returns the deployment itself.
    assert isinstance(deployment, RunnerDeployment)
    return deployment


def worker_deployment_warning() -> str | None:
    """A warning when `prefect.yaml`'s deployment is registered with an active schedule: both would
    start a pipeline at the same time. None otherwise (or when the server cannot say)."""
    from prefect.client.orchestration import get_client

    from flows.nightly import DEPLOYMENT, FLOW_NAME

    name = f"{FLOW_NAME}/{DEPLOYMENT}"
    try:
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(name)
    except Exception:
        return None
    if deployment.paused or not any(s.active for s in deployment.schedules):
        return None
    return (
        f"warning: the worker deployment {name} (prefect.yaml) is also scheduled; both would start a "
        f"pipeline at night. Pause one: prefect deployment pause {name}"
    )


def main(argv: list[str] | None = None) -> int:
    """Serve the pipeline until interrupted; returns the exit code."""
    from flows.nightly import CRON

    parser = argparse.ArgumentParser(
        prog="python -m flows.serve", description="Serve the nightly pipeline (ingest, then eval)."
    )
    parser.add_argument("--target", default=DEFAULT_TARGET, help=f"corpus (default {DEFAULT_TARGET})")
    parser.add_argument("--cron", default=CRON, help=f"schedule, UTC (default {CRON!r})")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from prefect import serve

    deployment = build_deployment(args.target, cron=args.cron)
    warning = worker_deployment_warning()
    if warning:
        print(warning, file=sys.stderr)
    serve(deployment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
