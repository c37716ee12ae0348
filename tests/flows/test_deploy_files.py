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


def test_prefect_yaml_matches_schema_flows_and_settings() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    from flows.serve import EVAL_CRON
    from flows.settings import EVAL_DEPLOYMENT, INGEST_DEPLOYMENT, NIGHTLY_CRON, WORK_POOL

    raw = _load_yaml(ROOT / "prefect.yaml")
    model = PrefectYamlModel.model_validate(raw)
    assert raw["prefect-version"] == _pins()["prefect"]
    by_name = {d.name: d for d in model.deployments}
    assert set(by_name) == {INGEST_DEPLOYMENT, EVAL_DEPLOYMENT}
    expected_cron = {INGEST_DEPLOYMENT: NIGHTLY_CRON, EVAL_DEPLOYMENT: EVAL_CRON}
    for name, dep in by_name.items():
        assert dep.work_pool is not None and dep.work_pool.name == WORK_POOL
        assert dep.entrypoint is not None
        flow = load_flow_from_entrypoint(str(ROOT / dep.entrypoint), use_placeholder_flow=False)
        # Every default parameter must be one the flow accepts (enforce_parameter_schema would reject it).
        assert set(dep.parameters) <= set(flow.parameters.properties), (name, dep.parameters)
        schedules = raw["deployments"][[d["name"] for d in raw["deployments"]].index(name)]["schedules"]
        assert [s["cron"] for s in schedules] == [expected_cron[name]]
        assert all(s.get("timezone") == "UTC" for s in schedules)


def test_compose_services_ports_env_and_images() -> None:
    from flows.settings import WORK_POOL

    compose = _load_yaml(ROOT / "docker" / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"qdrant", "prefect-server", "worker", "deploy"}

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
    assert worker["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert worker["command"] == ["prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["environment"]["QDRANT_URL"].startswith("http://qdrant:")
    assert worker["environment"]["QDRANT_API_KEY"].startswith("${QDRANT_API_KEY:?")
    assert {d: c["condition"] for d, c in worker["depends_on"].items()} == {
        "prefect-server": "service_healthy",
        "qdrant": "service_healthy",
    }
    assert services["deploy"]["environment"] == worker["environment"]
    assert set(compose["volumes"]) == {"qdrant_storage", "prefect_data", "ingest_data"}


def test_dockerfile_installs_the_pinned_cpu_torch_and_the_package() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    torch_pin = _pins()["torch"]
    assert f"pip install torch=={torch_pin} --index-url https://download.pytorch.org/whl/cpu" in text
    for path in ("ingest", "eval", "flows", "prefect.yaml", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, re.M), f"Dockerfile does not copy {path}"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", ".git", ".prefect"} <= set(ignored)
