"""Run ids: one scheme for every run directory the project writes (ingest and eval)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_run_id() -> str:
    """A run id that sorts by start time and is unique even for runs started in the same second.

    Returns:
        `YYYYmmddTHHMMSSZ-<6 hex digits>`, the start time in UTC and 3 random bytes.
    """
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
