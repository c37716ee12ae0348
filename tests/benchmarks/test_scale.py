"""The scale benchmark's modes: what `--modes` accepts and the `run_batches` worker count each runs."""

from __future__ import annotations

import re

import pytest

from benchmarks.scale import mode_workers, parse_modes


def test_modes_map_to_run_batches_workers() -> None:
    assert parse_modes("inprocess, 1,auto,") == ["inprocess", "1", "auto"]
    assert parse_modes("") == ["auto"]
    # None lets the pipeline choose (`workers_for`), 0 is in-process threads, N worker processes.
    assert [mode_workers(m) for m in ("auto", "inprocess", "1", "3")] == [None, 0, 1, 3]


@pytest.mark.parametrize("bad", ["0", "threads", "-1", "1.5"])
def test_a_mode_that_is_not_auto_inprocess_or_a_count_is_refused(bad: str) -> None:
    with pytest.raises(
        SystemExit, match=re.escape(f"--modes: {bad!r} is not auto, inprocess or a worker count >= 1")
    ):
        parse_modes(bad)
