"""Models built locally: the stand-in's build keeps transformers quiet."""

from __future__ import annotations

import logging

from ingest.encoder.models import quiet_transformers


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_quiet_transformers_hides_warnings_and_bars_then_restores_them() -> None:
    from transformers.utils import logging as hf_logging

    seen = _Records()
    library = logging.getLogger("transformers")  # where every transformers logger's records go
    library.addHandler(seen)
    outer = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()  # a known setting to restore (other tests may change it)
    try:
        before = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
        logger = hf_logging.get_logger("transformers.modeling_utils")
        with quiet_transformers():
            logger.warning("BertModel LOAD REPORT (test)")
            logger.error("a real failure (test)")
            assert not hf_logging.is_progress_bar_enabled()
        assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == before
        logger.warning("after the build (test)")
    finally:
        library.removeHandler(seen)
        hf_logging.set_verbosity(outer)
    assert seen.messages == ["a real failure (test)", "after the build (test)"]
