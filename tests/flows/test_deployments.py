"""Deployments: `flows/serve.py` builds and registers the served nightly pipeline; `prefect.yaml` and the
served deployment live side by side under distinct names (registering one never rewrites the other).

A worker running the `prefect.yaml` deployment end to end is `tests/flows/test_smoke.py`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _schedules(deployment: Any) -> list[tuple[str, str | None]]:
    return [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules]


def test_serve_builds_and_registers_the_served_nightly_pipeline(prefect_api_url: str) -> None:
    from prefect.client.orchestration import get_client

    from flows.nightly import CRON, FLOW_NAME, SERVED_DEPLOYMENT
    from flows.serve import build_deployment

    deployment = build_deployment("nfcorpus", ingest_options={"limit": 500}, eval_options={"within": 0.02})
    assert deployment.name == SERVED_DEPLOYMENT
    assert deployment.parameters == {
        "target": "nfcorpus",
        "options": {"limit": 500},
        "eval_options": {"within": 0.02},
    }
    deployment_id = deployment.apply()

    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
        assert client.read_flow(stored.flow_id).name == FLOW_NAME
    assert _schedules(stored) == [(CRON, "UTC")]
    assert stored.parameters == deployment.parameters
    assert stored.entrypoint is not None and stored.entrypoint.endswith("flows/nightly.py:nightly_pipeline")
    assert build_deployment().parameters == {"target": "scifact"}


def test_serve_rejects_a_bad_default_option_before_registering() -> None:
    from flows.serve import build_deployment
    from ingest.errors import InputError

    with pytest.raises(InputError, match=r"--batch-docs: 0 is not accepted \(must be ≥ 1\)"):
        build_deployment("scifact", ingest_options={"batch_docs": 0})
    with pytest.raises(InputError, match="withinn is not a known key"):
        build_deployment("scifact", eval_options={"withinn": 0.1})


@pytest.mark.slow
def test_prefect_yaml_and_serve_register_distinct_deployments_that_do_not_overwrite_each_other(
    prefect_api_url: str,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from flows.nightly import CRON, DEPLOYMENT, FLOW_NAME, SERVED_DEPLOYMENT
    from flows.serve import build_deployment, worker_deployment_warning
    from flows.settings import WORK_POOL

    env = {**os.environ, "PREFECT_API_URL": prefect_api_url}
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
    deploy = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    # Serving after `prefect deploy` (the order that used to break the worker's deployment).
    build_deployment("scifact").apply()

    with get_client(sync_client=True) as client:
        worker_dep = client.read_deployment_by_name(f"{FLOW_NAME}/{DEPLOYMENT}")
        served = client.read_deployment_by_name(f"{FLOW_NAME}/{SERVED_DEPLOYMENT}")
    assert worker_dep.id != served.id
    assert worker_dep.work_pool_name == WORK_POOL and served.work_pool_name is None
    assert worker_dep.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]
    assert worker_dep.path is None or Path(worker_dep.path).exists()
    assert _schedules(worker_dep) == _schedules(served) == [(CRON, "UTC")]
    limits = [d.global_concurrency_limit for d in (worker_dep, served)]
    assert all(limit is not None and limit.limit == 1 for limit in limits), limits
    warning = worker_deployment_warning()
    assert warning is not None and f"prefect deployment pause {FLOW_NAME}/{DEPLOYMENT}" in warning
