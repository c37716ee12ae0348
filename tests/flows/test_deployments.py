"""Deployments: `flows/serve.py` registers both nightly schedules; `prefect.yaml` deploys and a process
worker runs a flow run of it (the path the README describes)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import TinyCorpus

ROOT = Path(__file__).resolve().parents[2]


def _crons(deployment: Any) -> list[str]:
    return [s.schedule.cron for s in deployment.schedules]


def test_serve_builds_and_registers_both_nightly_deployments(prefect_api_url: str) -> None:
    from prefect.client.orchestration import get_client

    from flows.serve import EVAL_CRON, build_deployments
    from flows.settings import EVAL_DEPLOYMENT, INGEST_DEPLOYMENT, NIGHTLY_CRON

    ingest, evaluate = build_deployments("nfcorpus", ingest_options={"limit": 500})
    assert (ingest.name, evaluate.name) == (INGEST_DEPLOYMENT, EVAL_DEPLOYMENT)
    assert ingest.parameters == {"target": "nfcorpus", "options": {"limit": 500}}
    assert evaluate.parameters == {"target": "nfcorpus"}
    ids = [ingest.apply(), evaluate.apply()]

    with get_client(sync_client=True) as client:
        stored = [client.read_deployment(i) for i in ids]
        flows = [client.read_flow(d.flow_id).name for d in stored]
    assert flows == ["ingest-corpus", "evaluate-corpus"]
    assert [_crons(d) for d in stored] == [[NIGHTLY_CRON], [EVAL_CRON]]
    assert stored[0].parameters == {"target": "nfcorpus", "options": {"limit": 500}}
    assert stored[0].entrypoint is not None and stored[0].entrypoint.endswith(
        "flows/ingest_flow.py:ingest_corpus"
    )


def test_serve_rejects_a_bad_default_option_before_registering() -> None:
    from flows.serve import build_deployments
    from ingest.errors import InputError

    with pytest.raises(InputError, match=r"--batch-docs: 0 is not accepted \(must be ≥ 1\)"):
        build_deployments("scifact", ingest_options={"batch_docs": 0})
    with pytest.raises(InputError, match="withinn is not a known key"):
        build_deployments("scifact", eval_options={"withinn": 0.1})


@pytest.mark.slow
def test_prefect_yaml_deploys_and_a_process_worker_runs_the_ingest(
    prefect_api_url: str, tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from flows.settings import INGEST_DEPLOYMENT, NIGHTLY_CRON, WORK_POOL

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

    data_dir = tmp_path / "data"
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"ingest-corpus/{INGEST_DEPLOYMENT}")
        assert _crons(deployment) == [NIGHTLY_CRON]
        assert deployment.work_pool_name == WORK_POOL
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
        ]
        flow_run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={
                "target": str(tiny_corpus.path),
                "options": {"model": "random-64", "data_dir": str(data_dir), "batch_docs": 50},
            },
        )
    worker = subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL, "--run-once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]

    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(flow_run.id).state
            if (state is not None and state.is_final()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert state is not None and state.is_completed(), (state, worker.stdout[-3000:], worker.stderr[-3000:])
    summaries = list((data_dir / "runs" / "tinybeir").glob("*/summary.json"))
    assert len(summaries) == 1
    assert '"verified": true' in summaries[0].read_text(encoding="utf-8")
