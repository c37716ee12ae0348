"""eval.runner: the run id every eval step writes under, and a whole run that has nothing to evaluate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eval.options import EvalOptions
from eval.runner import report_dir, with_run_id

BEIR_DIR = Path(__file__).resolve().parents[3] / "shared" / "beir"


def test_run_ids_follow_the_ingest_scheme(tmp_path: Path) -> None:
    opts = EvalOptions(target="x", out=tmp_path)
    fixed = with_run_id(opts)
    assert opts.run_id is None  # a copy
    assert fixed.run_id and re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", fixed.run_id)
    assert with_run_id(fixed).run_id == fixed.run_id
    assert with_run_id(fixed, "mine").run_id == "mine"
    assert report_dir(fixed, "ds") == tmp_path / "ds" / fixed.run_id
    report_dir(opts, "ds")  # fixes a run id into options that have none
    assert opts.run_id and re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", opts.run_id)


def test_cli_without_collections_says_to_ingest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from eval.__main__ import main

    code = main(
        [
            "nfcorpus",
            "--data-dir",
            str(tmp_path / "data"),
            "--beir-dir",
            str(BEIR_DIR),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "no collection of dataset 'nfcorpus'" in err and "python -m ingest nfcorpus" in err
    assert not (tmp_path / "nfcorpus").exists()
