"""Models built locally: the stand-in's build keeps transformers quiet."""

from __future__ import annotations

import pytest

from ingest.encoder.models import quiet_transformers


def test_quiet_transformers_hides_warnings_and_bars_then_restores_them(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from transformers.utils import logging as hf_logging

    before = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
    logger = hf_logging.get_logger("transformers.modeling_utils")
    with quiet_transformers():
        logger.warning("BertModel LOAD REPORT (test)")
        assert not hf_logging.is_progress_bar_enabled()
    assert "LOAD REPORT" not in capfd.readouterr().err
    assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == before
    logger.warning("after the build (test)")
    assert "after the build (test)" in capfd.readouterr().err
