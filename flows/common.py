"""Helpers the flows share: retry policy, artifact keys, markdown tables."""

from __future__ import annotations

import re
from typing import Any

from eval.errors import EvalInputError, EvalModelError
from ingest.errors import (
    ChecksumError,
    CollectionMismatchError,
    DatasetNotFoundError,
    InputError,
    ModelError,
)

# Errors a retry cannot fix: the same input fails the same way. Store errors (an unreachable or
# busy server) and anything unexpected are retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    EvalInputError,
    EvalModelError,
    InputError,
    CollectionMismatchError,
    ModelError,
    DatasetNotFoundError,
    ChecksumError,
)


def retried(retries: int = 2, delays: int | list[int] | None = None) -> dict[str, Any]:
    """Task options of a retried task: `retries` retries after `delays` seconds (default 2 then 10),
    permanent errors not retried (`is_transient`), no result cache (arguments are live objects or
    arrays: nothing to key a cache on, nothing worth persisting).

    Use as `@task(name=..., **retried())`.
    """
    from prefect.cache_policies import NO_CACHE

    return {
        "retries": retries,
        "retry_delay_seconds": [2, 10] if delays is None else delays,
        "retry_condition_fn": is_transient,
        "cache_policy": NO_CACHE,
    }


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry a failed task run unless its error is permanent.

    Args:
        task: The task (unused; part of Prefect's callback signature).
        task_run: The task run (unused).
        state: The Failed state; its result is the exception the task raised.

    Returns:
        False for the errors in `PERMANENT_ERRORS`, True otherwise.
    """
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:
        return True
    return not isinstance(exc, PERMANENT_ERRORS)


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from free text: lowercase letters, digits and dashes only."""
    key = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    return key or "artifact"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Render rows (same keys) as a GitHub-flavoured markdown table; empty string for no rows."""
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")
