"""The README's Prefect section, run by `benchmarks/prefect_smoke.py` on loopback: server, work pool,
`prefect deploy --all`, worker, a run of the nightly deployment, its artifacts; every process stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import TinyCorpus

ROOT = Path(__file__).resolve().parents[2]


def _processes_of(api_url: str, pids: list[int]) -> list[str]:
    """Live processes started by the smoke run: its own pids, or any process whose environment points
    at its Prefect server (the flow runs the worker started)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            mine = proc.info["pid"] in pids or proc.environ().get("PREFECT_API_URL") == api_url
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if mine:
            found.append(" ".join(proc.info.get("cmdline") or []))
    return found


@pytest.mark.slow
def test_readme_prefect_steps_pass_on_loopback_and_stop_every_process(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    corpus = tiny_corpus
    options = {"model": "random-64", "data_dir": str(tmp_path / "data"), "limit": 100, "batch_docs": 50}
    smoke = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.prefect_smoke",
            "--target",
            str(corpus.path),
            "--options",
            json.dumps(options),
            "--eval-options",
            json.dumps({"out": str(tmp_path / "reports")}),
            "--timeout",
            "600",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert smoke.returncode == 0, smoke.stdout[-4000:] + smoke.stderr[-4000:]
    result = json.loads(smoke.stdout[: smoke.stdout.rindex("}") + 1])
    assert result["state"] == "COMPLETED"
    assert result["subflows"] == {"ingest-corpus": "COMPLETED", "evaluate-corpus": "COMPLETED"}
    assert result["artifacts"]["nightly-tinybeir"] == "nightly-pipeline"
    assert result["artifacts"]["ingest-tinybeir"] == "ingest-corpus"
    assert result["artifacts"]["ingest-tinybeir-collections"] == "ingest-corpus"
    assert result["artifacts"]["eval-tinybeir-report"] == "evaluate-corpus"
    assert set(result["timings"]) == {"server start", "work-pool create", "deploy", "deployment run"}
    # The run wrote where its options said, and reports went to the eval's `out`.
    assert list((tmp_path / "data" / "runs" / "tinybeir").glob("*/summary.json"))
    assert list((tmp_path / "reports" / "tinybeir").glob("*/report.md"))
    # Nothing it started is left running.
    assert len(result["pids"]) == 2
    assert _processes_of(result["api_url"], result["pids"]) == []
