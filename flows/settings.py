"""Environment defaults for Prefect, applied before Prefect is first imported.

Every value is a default (`os.environ.setdefault`): anything set in the environment, a Prefect
profile or a compose file wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Work pool and schedule shared by `prefect.yaml` and `flows/serve.py`.
WORK_POOL = os.environ.get("STATIC_INGEST_WORK_POOL", "static-ingest")
NIGHTLY_CRON = "0 2 * * *"
DEFAULT_TARGET = os.environ.get("STATIC_INGEST_TARGET", "scifact")


def _prefect_home() -> Path:
    """`.prefect` in the project checkout, or in the working directory when installed elsewhere."""
    root = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return root / ".prefect"


def prefect_env_defaults() -> dict[str, str]:
    """Return the defaults: a project-local PREFECT_HOME, analytics off, a generous startup timeout.

    The startup timeout matters on a busy 2-core machine, where the temporary server Prefect
    starts for a flow run without PREFECT_API_URL can take well over Prefect's 20 s default.
    """
    return {
        "PREFECT_HOME": str(_prefect_home()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }


def apply_prefect_env_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each default that is not already set.

    Args:
        environ: The mapping to update; `os.environ` when None.

    Returns:
        The variables this call set (name -> value); already-set ones are left out.
    """
    env = os.environ if environ is None else environ
    applied: dict[str, str] = {}
    for name, value in prefect_env_defaults().items():
        if name not in env:
            env[name] = value
            applied[name] = value
    return applied
