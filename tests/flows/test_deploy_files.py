"""prefect.yaml, docker/compose.yaml and docker/Dockerfile agree with the code and the pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return {
        m.group(1).lower(): m.group(2) for d in deps if (m := re.match(r"([A-Za-z0-9_.-]+)==([^;\s]+)", d))
    }


def test_prefect_yaml_declares_the_one_nightly_pipeline() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    from flows.nightly import CRON, DEPLOYMENT, FLOW_NAME, SERVED_DEPLOYMENT, TIMEZONE
    from flows.settings import WORK_POOL

    raw = _load_yaml(ROOT / "prefect.yaml")
    model = PrefectYamlModel.model_validate(raw)
    assert raw["prefect-version"] == _pins()["prefect"]
    (dep,) = model.deployments
    assert dep.name == DEPLOYMENT != SERVED_DEPLOYMENT
    assert dep.work_pool is not None and dep.work_pool.name == WORK_POOL
    assert dep.entrypoint == "flows/nightly.py:nightly_pipeline"
    assert dep.concurrency_limit == 1
    flow = load_flow_from_entrypoint(str(ROOT / dep.entrypoint), use_placeholder_flow=False)
    assert flow.name == FLOW_NAME
    # Every default parameter must be one the flow accepts (enforce_parameter_schema would reject it).
    assert set(dep.parameters) <= set(flow.parameters.properties), dep.parameters
    assert {"target", "options", "eval_options", "force_eval"} == set(flow.parameters.properties)
    assert raw["deployments"][0]["schedules"] == [{"cron": CRON, "timezone": TIMEZONE}]
    assert (CRON, TIMEZONE) == ("0 2 * * *", "UTC")


def _services_of(compose: dict[str, Any], profile: str) -> dict[str, Any]:
    """The services `docker compose --profile <profile> up` starts (those without a profile included)."""
    return {n: s for n, s in compose["services"].items() if profile in s.get("profiles", [profile])}


def test_compose_profiles_are_self_contained_and_every_reference_resolves() -> None:
    compose = _load_yaml(ROOT / "docker" / "compose.yaml")
    services = compose["services"]
    assert set(services) == {
        "prefect-server",
        "qdrant",
        "worker",
        "deploy",
        "qdrant-0",
        "qdrant-1",
        "qdrant-2",
        "dask-scheduler",
        "dask-worker-1",
        "dask-worker-2",
        "cluster-worker",
        "cluster-deploy",
    }
    assert "profiles" not in services["prefect-server"]
    volumes = set(compose["volumes"])
    for profile in ("single", "cluster"):
        active = _services_of(compose, profile)
        for name, svc in active.items():
            # depends_on must name a service of the same profile (compose refuses others).
            assert set(svc.get("depends_on", {})) <= set(active), (profile, name)
            for mount in svc.get("volumes", []):
                assert mount.split(":")[0] in volumes, (name, mount)
            if svc.get("image") == "static-ingest:latest":
                assert svc["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}, name
        published = [p.rsplit(":", 2)[-2] for svc in active.values() for p in svc.get("ports", [])]
        assert len(published) == len(set(published)), (profile, published)
        assert all(p.startswith("${") for svc in active.values() for p in svc.get("ports", [])), (
            "ports are published on a configurable address (127.0.0.1 by default)"
        )
    # One worker per profile on the same pool: the profiles are meant to run one at a time.
    start = ["prefect", "worker", "start"]
    workers = [n for n, s in services.items() if (s.get("command") or [])[:3] == start]
    assert sorted(workers) == ["cluster-worker", "worker"]


def test_compose_single_profile_qdrant_prefect_and_worker() -> None:
    from flows.settings import WORK_POOL

    compose = _load_yaml(ROOT / "docker" / "compose.yaml")
    services = compose["services"]

    qdrant = services["qdrant"]
    assert qdrant["image"].startswith("qdrant/qdrant:")
    assert [p.rsplit(":", 2)[-2:] for p in qdrant["ports"]] == [["6333", "6333"], ["6334", "6334"]]
    assert qdrant["volumes"] == ["qdrant_storage:/qdrant/storage"]
    assert qdrant["environment"]["QDRANT__SERVICE__API_KEY"].startswith("${QDRANT_API_KEY:?")
    assert "/readyz" in " ".join(qdrant["healthcheck"]["test"])

    server = services["prefect-server"]
    assert server["image"] == f"prefecthq/prefect:{_pins()['prefect']}-python3.11"
    assert server["command"] == ["prefect", "server", "start", "--host", "0.0.0.0"]
    assert server["environment"]["PREFECT_SERVER_API_HOST"] == "0.0.0.0"
    assert server["environment"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert "/api/health" in " ".join(server["healthcheck"]["test"])

    worker = services["worker"]
    assert worker["command"] == ["prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["environment"]["QDRANT_URL"] == "http://qdrant:6333"
    assert worker["environment"]["QDRANT_API_KEY"].startswith("${QDRANT_API_KEY:?")
    assert "STATIC_INGEST_TASK_RUNNER" not in worker["environment"]
    assert {d: c["condition"] for d, c in worker["depends_on"].items()} == {
        "prefect-server": "service_healthy",
        "qdrant": "service_healthy",
    }
    assert services["deploy"]["environment"] == worker["environment"]
    assert f"prefect work-pool create {WORK_POOL} --type process" in services["deploy"]["command"][-1]
    assert services["deploy"]["command"][-1].rstrip().endswith("prefect --no-prompt deploy --all")


def test_compose_cluster_profile_qdrant_cluster_dask_and_worker() -> None:
    from flows.settings import WORK_POOL

    compose = _load_yaml(ROOT / "docker" / "compose.yaml")
    services = compose["services"]
    nodes = [services[f"qdrant-{i}"] for i in range(3)]
    for i, node in enumerate(nodes):
        env = node["environment"]
        assert env["QDRANT__CLUSTER__ENABLED"] == "true"
        assert env["QDRANT__CLUSTER__P2P__PORT"] == "6335"
        assert env["QDRANT__SERVICE__API_KEY"].startswith("${QDRANT_API_KEY:?")
        assert node["image"] == services["qdrant"]["image"]
        assert node["volumes"] == [f"qdrant_storage_{i}:/qdrant/storage"]
        assert "/readyz" in " ".join(node["healthcheck"]["test"])
        # Qdrant's image runs ./entrypoint.sh, which passes its arguments to ./qdrant.
        assert node["command"][0] == "./entrypoint.sh"
        assert node["command"][-2:] == ["--uri", f"http://qdrant-{i}:6335"]
        # The p2p port is never published.
        assert not any(p.endswith(":6335") for p in node.get("ports", []))
        if i:
            assert node["command"][1:3] == ["--bootstrap", "http://qdrant-0:6335"]
            assert node["depends_on"] == {"qdrant-0": {"condition": "service_healthy"}}
        else:
            assert "--bootstrap" not in node["command"]

    scheduler = services["dask-scheduler"]
    assert scheduler["command"][:4] == ["dask", "scheduler", "--port", "8786"]
    assert "8786" in " ".join(scheduler["healthcheck"]["test"])
    dask_workers = [services["dask-worker-1"], services["dask-worker-2"]]
    for n, dw in enumerate(dask_workers, start=1):
        assert dw["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
        assert dw["command"][dw["command"].index("--name") + 1] == f"dask-worker-{n}"
        assert dw["depends_on"]["dask-scheduler"] == {"condition": "service_healthy"}
        assert dw["volumes"] == ["ingest_data:/app/data"]

    worker = services["cluster-worker"]
    env = worker["environment"]
    assert worker["command"] == ["prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process"]
    assert env["STATIC_INGEST_TASK_RUNNER"] == "dask"
    assert env["STATIC_INGEST_DASK_ADDRESS"] == "tcp://dask-scheduler:8786"
    assert env["QDRANT_URL"] == "http://qdrant-0:6333"
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    # Tasks run on the Dask workers: they need the same Prefect API, Qdrant and data as the flow run.
    assert all(dw["environment"] == env for dw in dask_workers)
    assert services["cluster-deploy"]["environment"] == env
    assert set(worker["depends_on"]) == {
        "prefect-server",
        "dask-scheduler",
        *(f"qdrant-{i}" for i in range(3)),
    }


def test_dockerfile_installs_the_pinned_cpu_torch_and_the_package() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    torch_pin = _pins()["torch"]
    assert f"pip install torch=={torch_pin} --index-url https://download.pytorch.org/whl/cpu" in text
    # The same image runs the Dask scheduler and workers of the cluster profile.
    assert 'pip install ".[dask]"' in text
    for path in ("ingest", "eval", "flows", "prefect.yaml", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, re.M), f"Dockerfile does not copy {path}"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", ".git", ".prefect"} <= set(ignored)
