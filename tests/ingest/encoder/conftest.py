"""Fixtures of the encoder tests."""

from __future__ import annotations

import pytest

from tests.ingest.encoder.texts import read_beir_sample


@pytest.fixture(scope="module")
def beir_sample() -> list[str]:
    """First 300 SciFact documents as `title + " " + text`."""
    return read_beir_sample(300)
