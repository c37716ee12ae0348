"""Crash-and-resume check: SIGKILL a real ingest at seeded random moments, rerun it, compare with a clean run.

Usage:
    python -m benchmarks.kill_resume [--target ../shared/beir/nfcorpus.zip] [--kills 10] [--seed 0]
        [--model standin] [--dims 64] [--quantization none,binary] [--batch-docs 256] [--limit N]
        [--workers N] [--work DIR]

A clean run (`-v`, so the CLI logs `stored batch N`, `indexing <collection>`, `verifying point counts`)
gives the reference point set and a timeline of those stage markers, which splits it into four phases:
start-up (imports, model, source passes), loading (read/encode/upsert/flush/checkpoint, overlapped),
indexing and finalize. Kill moments are drawn in every phase (stratified within it; at least two while
indexing), each expressed as a marker line plus a delay, so it lands in the same place when the
machine runs slower or faster. A kill run waits for its marker line, sleeps the delay and sends
SIGKILL; the checkpoint files are read; the same command is run again to the end, and the check is:

- the collections hold exactly the clean run's points (same ids, bit-identical vectors, equal
  payloads, nothing extra);
- the rerun's `resumed_batches` equals the number of batches every checkpoint held at the kill, and
  the batches it stored are exactly the others (nothing durably stored is encoded again).

Prints one line per kill and finally `N/N exact`. Exits 1 if any run fails a check.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TARGET = Path(__file__).resolve().parents[2] / "shared" / "beir" / "nfcorpus.zip"
# The pipeline's debug lines (format `LEVEL message`) that mark its stages.
STORED_RE = re.compile(r"^DEBUG stored batch (\d+) ")
INDEX_MARK = "DEBUG indexing "
VERIFY_MARK = "DEBUG verifying point counts"
# Kills drawn inside the indexing phase, at least.
MIN_INDEX_KILLS = 2

Snapshot = dict[str, dict[str, tuple[np.ndarray, dict[str, Any]]]]


@dataclass
class IngestRun:
    """How to run the ingest under test.

    Attributes:
        target: What `python -m ingest` ingests.
        model: `--model`.
        dims: `--dims`.
        quantization: `--quantization`.
        batch_docs: `--batch-docs` (the checkpoint unit).
        limit: `--limit`, or None for the whole corpus.
        workers: `--workers` (encoder processes; 0 threads only), or None for the CLI's choice.
    """

    target: str
    model: str
    dims: str = "64"
    quantization: str = "none,binary"
    batch_docs: int = 256
    limit: int | None = None
    workers: int | None = None

    def command(self, data_dir: Path) -> list[str]:
        """The CLI command writing into `data_dir` (verbose, so stage markers are logged)."""
        cmd = [
            sys.executable,
            "-m",
            "ingest",
            self.target,
            "--data-dir",
            str(data_dir),
            "--no-progress",
            "-v",
        ]
        cmd += ["--model", self.model, "--batch-docs", str(self.batch_docs)]
        cmd += ["--dims", self.dims, "--quantization", self.quantization]
        if self.limit is not None:
            cmd += ["--limit", str(self.limit)]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        return cmd


@dataclass
class Timeline:
    """The stderr lines of one run, each with its time in seconds since the process started."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    end: float = 0.0

    def first(self, needle: str) -> float | None:
        """Time of the first line starting with `needle`, or None."""
        return next((t for t, line in self.lines if line.startswith(needle)), None)

    def markers(self) -> list[tuple[float, str]]:
        """The stage-marker lines (`stored batch`, `indexing`, `verifying`) with their times."""
        return [(t, line) for t, line in self.lines if is_marker(line)]


def is_marker(line: str) -> bool:
    """Whether a log line is one of the pipeline's stage markers."""
    return bool(STORED_RE.match(line)) or line.startswith((INDEX_MARK, VERIFY_MARK))


def phase_of(line: str | None) -> str:
    """The phase a process was in, given the last marker line it printed (None: none yet)."""
    if line is None:
        return "start-up (no batch stored yet)"
    if line.startswith(VERIFY_MARK):
        return "finalize"
    if line.startswith(INDEX_MARK):
        return f"indexing {line.removeprefix(INDEX_MARK)}"
    match = STORED_RE.match(line)
    return f"loading (batch {match.group(1)} stored)" if match else "unknown"


@dataclass(frozen=True)
class KillPlan:
    """When to kill: `delay` seconds after the line `marker` appears (None: after the process starts)."""

    marker: str | None
    delay: float
    moment: float


def _stream_lines(proc: subprocess.Popen[str], started: float, timeline: Timeline, seen: Any) -> None:
    assert proc.stderr is not None
    for raw in proc.stderr:
        line = raw.rstrip("\n")
        timeline.lines.append((time.perf_counter() - started, line))
        seen(line)


def run_to_end(cmd: list[str], *, timeout: float = 600) -> tuple[Timeline, str]:
    """Run a command to completion, timing its stderr lines.

    Returns:
        The timeline and stdout.

    Raises:
        RuntimeError: a non-zero exit, with the output.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timeline = Timeline()
    reader = threading.Thread(target=_stream_lines, args=(proc, started, timeline, lambda _: None))
    reader.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(timeout=timeout)
    reader.join()
    timeline.end = time.perf_counter() - started
    if proc.returncode != 0:
        err = "\n".join(line for _, line in timeline.lines[-20:])
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{out}\n{err}")
    return timeline, out


@dataclass
class KillOutcome:
    """What happened to one run meant to be killed."""

    killed: bool
    at: float
    last_marker: str | None

    @property
    def phase(self) -> str:
        """The phase the kill landed in."""
        return phase_of(self.last_marker) if self.killed else "finished before the kill"


def run_and_kill(cmd: list[str], plan: KillPlan, *, timeout: float = 600) -> KillOutcome:
    """Start `cmd`, wait for `plan.marker` (or the start), sleep `plan.delay`, then SIGKILL it.

    Returns:
        Whether it was killed (False if it exited first), when, and the last marker line before.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    timeline = Timeline()
    armed = threading.Event()
    if plan.marker is None:
        armed.set()

    def seen(line: str) -> None:
        if plan.marker is not None and line == plan.marker:
            armed.set()

    reader = threading.Thread(target=_stream_lines, args=(proc, started, timeline, seen), daemon=True)
    reader.start()
    deadline = started + timeout
    while not armed.wait(0.01):
        if proc.poll() is not None or time.perf_counter() > deadline:
            break
    killed = False
    if armed.is_set():
        try:
            proc.wait(timeout=plan.delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
    at = time.perf_counter() - started
    proc.wait(timeout=timeout)
    reader.join(timeout=10)
    markers = [line for t, line in list(timeline.lines) if t <= at and is_marker(line)]
    return KillOutcome(killed, at, markers[-1] if markers else None)


PHASES = ("start-up", "loading", "indexing", "finalize")


def phase_windows(clean: Timeline) -> dict[str, tuple[float, float]]:
    """The phases of a clean run as time windows (seconds since its start).

    start-up (imports, model, source passes, collections) runs until the first batch is stored;
    loading (read, encode, upsert, flush, checkpoint; overlapped) until the first `indexing` line;
    indexing until `verifying point counts`; finalize (verify, manifests, summary, exit) to the end.

    Raises:
        ValueError: the timeline lacks the markers (not a verbose run of this pipeline).
    """
    first_stored = next((t for t, line in clean.lines if STORED_RE.match(line)), None)
    index_start = clean.first(INDEX_MARK)
    verify = clean.first(VERIFY_MARK)
    if first_stored is None or index_start is None or verify is None:
        raise ValueError("the clean run did not log stored/indexing/verifying lines: run it with -v")
    return {
        "start-up": (0.0, first_stored),
        "loading": (first_stored, index_start),
        "indexing": (index_start, verify),
        "finalize": (verify, clean.end),
    }


def kills_per_phase(kills: int) -> dict[str, int]:
    """How many kills each phase gets: a fifth (at least one) start-up, 30% (at least
    `MIN_INDEX_KILLS`) indexing, one finalize if five or more are left, the rest loading."""
    index = min(kills, max(MIN_INDEX_KILLS, round(kills * 0.3)))
    startup = min(kills - index, max(1, round(kills * 0.2)))
    final = 1 if kills - index - startup >= 5 else 0
    return {
        "start-up": startup,
        "loading": kills - index - startup - final,
        "indexing": index,
        "finalize": final,
    }


def plan_kills(clean: Timeline, kills: int, rng: random.Random) -> list[KillPlan]:
    """Draw kill moments over a clean run's phases, each as (last marker line before it, delay).

    Each phase gets its share of kills (`kills_per_phase`), stratified: one uniform draw in each of
    equal slices of the phase. Inside indexing (and finalize), a kill lands in the first 60% of one
    collection's index build (of the finalize step), so it still falls inside it when the killed run
    is faster than the clean one.
    """
    windows = phase_windows(clean)
    markers = clean.markers()
    index_steps = [(t, line) for t, line in markers if line.startswith((INDEX_MARK, VERIFY_MARK))]
    plans = []
    for phase, count in kills_per_phase(kills).items():
        lo, hi = windows[phase]
        for i in range(count):
            if phase == "indexing":
                step = i % (len(index_steps) - 1)
                (t, line), (t_next, _) = index_steps[step], index_steps[step + 1]
                delay = rng.uniform(0.0, 0.6) * (t_next - t)
                plans.append(KillPlan(line, delay, t + delay))
                continue
            share = 0.6 if phase == "finalize" else 1.0
            moment = lo + (hi - lo) * share * (i + rng.random()) / count
            before = [(t, line) for t, line in markers if t <= moment]
            if before:
                t, line = before[-1]
                plans.append(KillPlan(line, moment - t, moment))
            else:
                plans.append(KillPlan(None, moment, moment))
    rng.shuffle(plans)
    return plans


def checkpoint_sets(data_dir: Path, collections: list[str]) -> dict[str, set[int]]:
    """The batch numbers in each collection's checkpoint under `data_dir/state/edge` (none if no file)."""
    out: dict[str, set[int]] = {}
    for name in collections:
        path = data_dir / "state" / "edge" / f"{name}.checkpoint.json"
        done = json.loads(path.read_text(encoding="utf-8"))["done"] if path.is_file() else {}
        out[name] = {int(k) for k in done}
    return out


def stored_batches(timeline: Timeline) -> set[int]:
    """Batch numbers a run stored, from its `stored batch N` lines."""
    return {int(m.group(1)) for _, line in timeline.lines if (m := STORED_RE.match(line))}


def snapshot(data_dir: Path) -> Snapshot:
    """Every point of every collection under `data_dir`: id → (vector, payload)."""
    from ingest.stores import open_store

    store = open_store(data_dir=data_dir, qdrant_url=None, read_only=True)
    try:
        out: Snapshot = {}
        for name in sorted(store.list_collections()):
            ids = store.scroll_ids(name)
            points = store.retrieve(name, ids, with_vectors=True)
            out[name] = {p.id: (np.asarray(p.vector), p.payload) for p in points}
        return out
    finally:
        store.close()


def differences(clean: Snapshot, got: Snapshot) -> list[str]:
    """What differs between two snapshots (empty when identical; vectors must be bit-identical)."""
    problems: list[str] = []
    if set(clean) != set(got):
        problems.append(f"collections differ: {sorted(clean)} vs {sorted(got)}")
    for name in sorted(set(clean) & set(got)):
        a, b = clean[name], got[name]
        if set(a) != set(b):
            problems.append(f"{name}: {len(set(b) - set(a))} extra ids, {len(set(a) - set(b))} missing ids")
            continue
        bad_vec = sum(1 for pid in a if not np.array_equal(a[pid][0], b[pid][0]))
        bad_payload = sum(1 for pid in a if a[pid][1] != b[pid][1])
        if bad_vec or bad_payload:
            problems.append(f"{name}: {bad_vec} vectors and {bad_payload} payloads differ")
    return problems


@dataclass
class KillResult:
    """One kill, its rerun and the checks."""

    plan: KillPlan
    outcome: KillOutcome
    checkpoint_files: int
    checkpointed: int
    partial: list[int]
    resumed: int
    restored: int
    rerun_seconds: float
    problems: list[str]

    @property
    def exact(self) -> bool:
        """Whether every check passed."""
        return not self.problems

    def line(self, i: int) -> str:
        """One report line."""
        o = self.outcome
        state = f"killed at {o.at:5.2f} s, {o.phase}" if o.killed else o.phase
        partial = f" (+ batch {self.partial} in some only)" if self.partial else ""
        return (
            f"run {i:2d}: {state}; checkpoints ({self.checkpoint_files} files): {self.checkpointed} batches "
            f"in all{partial}; rerun resumed {self.resumed}, stored {self.restored}, "
            f"{self.rerun_seconds:.1f} s -> "
            + ("exact" if self.exact else "FAILED: " + "; ".join(self.problems))
        )


@dataclass
class CleanRun:
    """The reference: its timeline, point set and summary."""

    timeline: Timeline
    points: Snapshot
    summary: dict[str, Any]

    @property
    def batches(self) -> set[int]:
        """Every batch number of the run."""
        return stored_batches(self.timeline)


def clean_run(ingest: IngestRun, data_dir: Path) -> CleanRun:
    """Run the ingest once, uninterrupted, into `data_dir`."""
    timeline, out = run_to_end([*ingest.command(data_dir), "--json"])
    return CleanRun(timeline, snapshot(data_dir), json.loads(out))


def kill_and_resume(ingest: IngestRun, clean: CleanRun, plan: KillPlan, data_dir: Path) -> KillResult:
    """Kill one run as planned, read its checkpoints, resume it to the end and check the result."""
    outcome = run_and_kill(ingest.command(data_dir), plan)
    sets = list(checkpoint_sets(data_dir, sorted(clean.points)).values())
    files = len(list((data_dir / "state").rglob("*.checkpoint.json")))
    durable = set.intersection(*sets)
    partial = set.union(*sets) - durable
    timeline, out = run_to_end([*ingest.command(data_dir), "--json"])
    summary = json.loads(out)
    restored = stored_batches(timeline)
    problems = differences(clean.points, snapshot(data_dir))
    if summary["resumed_batches"] != len(durable):
        problems.append(
            f"rerun resumed {summary['resumed_batches']} batches, but {len(durable)} were checkpointed"
        )
    if restored != clean.batches - durable:
        problems.append(
            f"rerun stored batches {sorted(restored)}, expected {sorted(clean.batches - durable)}"
        )
    if not summary["verified"] or summary["points"] != clean.summary["points"]:
        problems.append(f"rerun summary points {summary['points']} (verified {summary['verified']})")
    return KillResult(
        plan,
        outcome,
        files,
        len(durable),
        sorted(partial),
        summary["resumed_batches"],
        len(restored),
        timeline.end,
        problems,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns 0 when every run is exact."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.kill_resume",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--target", default=str(DEFAULT_TARGET))
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="standin")
    p.add_argument("--dims", default="64")
    p.add_argument("--quantization", default="none,binary")
    p.add_argument("--batch-docs", type=int, default=256)
    p.add_argument("--limit", type=int, default=None, help="ingest only the first N documents")
    p.add_argument("--workers", type=int, default=None, help="encoder processes (default: the CLI's choice)")
    p.add_argument("--work", type=Path, default=None, help="working directory (default: a temp dir, removed)")
    args = p.parse_args(argv)

    ingest = IngestRun(
        args.target, args.model, args.dims, args.quantization, args.batch_docs, args.limit, args.workers
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    try:
        clean = clean_run(ingest, work / "clean")
        points = sum(len(v) for v in clean.points.values())
        print(
            f"clean run: {clean.timeline.end:.1f} s, {len(clean.batches)} batches, "
            f"{len(clean.points)} collections, {points} points; indexing from "
            f"{clean.timeline.first(INDEX_MARK):.2f} s"
        )
        results = []
        for i, plan in enumerate(plan_kills(clean.timeline, args.kills, rng), start=1):
            result = kill_and_resume(ingest, clean, plan, work / f"kill-{i}")
            results.append(result)
            print(result.line(i), flush=True)
        exact = sum(r.exact for r in results)
        killed = sum(r.outcome.killed for r in results)
        in_index = sum(r.outcome.killed and r.outcome.phase.startswith("indexing") for r in results)
        print(f"{killed} killed ({in_index} while indexing), {time.perf_counter() - t0:.0f} s in all")
        print(f"{exact}/{len(results)} exact")
        return 0 if exact == len(results) else 1
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
