"""Crash and resume, and one writer per collection, with real `python -m ingest` processes on NFCorpus.

The NFCorpus ingest is cut to its first 500 documents in batches of 50 (10 checkpointed batches, two
collections: 64-d none and binary) so that 10 kills and their reruns fit in about a minute; the full
corpus is run by `python -m benchmarks.kill_resume`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from benchmarks.kill_resume import (
    CleanRun,
    IngestRun,
    KillResult,
    clean_run,
    differences,
    kill_and_resume,
    kills_per_phase,
    plan_kills,
    snapshot,
)

NFCORPUS = Path(__file__).resolve().parents[3] / "shared" / "beir" / "nfcorpus.zip"
KILLS = 10
SEED = 0


@pytest.fixture(scope="module")
def nfcorpus_ingest(small_model_dir: Path) -> IngestRun:
    """The ingest under test: NFCorpus, first 500 documents, batches of 50, 64-d none + binary."""
    return IngestRun(str(NFCORPUS), str(small_model_dir), "64", "none,binary", batch_docs=50, limit=500)


@pytest.fixture(scope="module")
def clean(nfcorpus_ingest: IngestRun, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """One uninterrupted run: the reference point set and the timeline kill moments are drawn on."""
    return clean_run(nfcorpus_ingest, tmp_path_factory.mktemp("clean") / "data")


@pytest.mark.slow
def test_sigkill_at_ten_moments_then_rerun_gives_exactly_the_clean_points(
    nfcorpus_ingest: IngestRun, clean: CleanRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clean.summary["docs"] == 500 and clean.summary["verified"]
    assert clean.batches == set(range(10))
    assert set(clean.points) == {"nfcorpus-d64-none", "nfcorpus-d64-binary"}
    assert {len(points) for points in clean.points.values()} == {clean.summary["chunks"]}

    plans = plan_kills(clean.timeline, KILLS, random.Random(SEED))
    assert len(plans) == KILLS
    results: list[KillResult] = []
    for i, plan in enumerate(plans, start=1):
        results.append(kill_and_resume(nfcorpus_ingest, clean, plan, tmp_path / f"kill-{i}"))
    report = "\n".join(r.line(i) for i, r in enumerate(results, start=1))
    exact = sum(r.exact for r in results)
    with capsys.disabled():
        print(f"\n{report}\n{exact}/{KILLS} exact")

    # Every rerun: the clean point set, bit for bit; resumed == batches checkpointed at the kill;
    # stored exactly the other batches (nothing durably stored was encoded again).
    assert exact == KILLS, report
    killed = [r for r in results if r.outcome.killed]
    assert len(killed) >= KILLS - 2, report
    phases = [r.outcome.phase for r in killed]
    assert sum(p.startswith("indexing") for p in phases) >= 2, report
    assert any(p.startswith("start-up") for p in phases), report
    assert any(p.startswith("loading") for p in phases), report
    assert any(0 < r.checkpointed < len(clean.batches) for r in killed), report
    assert kills_per_phase(KILLS) == {"start-up": 2, "loading": 4, "indexing": 3, "finalize": 1}


@pytest.mark.slow
def test_a_second_writer_is_refused_and_the_first_finishes_exact(
    nfcorpus_ingest: IngestRun, clean: CleanRun, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = subprocess.Popen(
        [*nfcorpus_ingest.command(data_dir), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert first.stderr is not None
    # The first holds both collections once it has stored a batch; freeze it there (SIGSTOP) so the
    # second surely meets it, whatever the machine's speed. The CLI runs the ingest in a supervised
    # child process: stop the whole process group.
    for line in first.stderr:
        if "stored batch 0 " in line:
            break
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = subprocess.run(
            nfcorpus_ingest.command(data_dir), capture_output=True, text=True, timeout=300, check=False
        )
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    out, _ = first.communicate(timeout=300)

    assert second.returncode == 2
    error = second.stderr.strip().splitlines()[-1]
    assert error.startswith("error: collection 'nfcorpus-d64-none' is in use by another process (lock file ")
    assert "another ingest is running" in error and "Wait for it to finish (or stop it)" in error
    assert first.returncode == 0
    summary = json.loads(out)
    assert summary["verified"] and summary["points"] == clean.summary["points"]
    assert differences(clean.points, snapshot(data_dir)) == []
    assert len(list((data_dir / "runs" / "nfcorpus").iterdir())) == 1  # the refused run wrote nothing
