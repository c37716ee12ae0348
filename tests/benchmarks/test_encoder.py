"""The encoder harness's fresh-interpreter timings (benchmarks/encoder.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.encoder import cold_processes, load_beir_texts
from tests.conftest import BEIR_DIR


def test_each_encoder_is_timed_in_its_own_fresh_interpreter(small_model_dir: Path, tmp_path: Path) -> None:
    texts = load_beir_texts("scifact", 40, BEIR_DIR)
    args = argparse.Namespace(cold_processes=1, data_dir=tmp_path)
    got = cold_processes(texts, str(small_model_dir), small_model_dir, 32, args)
    assert set(got) == {"fast", "st"}
    for timings in got.values():
        assert set(timings) == {"load_s", "first_s", "second_s"}
        assert all(t > 0 for t in timings.values())
    # Each child imported its own library: sentence-transformers (torch) takes far longer to import
    # than nothing, so a child that found it already imported would show up here.
    assert got["st"]["load_s"] > 0.5
