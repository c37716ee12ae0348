"""Crash-and-resume check: SIGKILL a real ingest at seeded random moments, rerun it, compare with a clean run.

Usage:
    python -m eval.bench.kill_resume [--target ../shared/beir/nfcorpus.zip] [--kills 10] [--seed 0]
        [--model standin] [--dims 64] [--quantization none,binary] [--work DIR]

Prints one line per kill and finally `N/N exact`: the number of runs whose collections hold exactly
the point set of the clean run (same ids, equal vectors, equal payloads, nothing extra). Exits 1 if
any run differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TARGET = Path(__file__).resolve().parents[3] / "shared" / "beir" / "nfcorpus.zip"

Snapshot = dict[str, dict[str, tuple[np.ndarray, dict[str, Any]]]]


def ingest_command(target: str, data_dir: Path, args: argparse.Namespace) -> list[str]:
    """The CLI command of one ingest run."""
    cmd = [sys.executable, "-m", "ingest", target, "--data-dir", str(data_dir), "--no-progress"]
    cmd += ["--model", args.model, "--batch-docs", str(args.batch_docs)]
    if args.dims:
        cmd += ["--dims", args.dims]
    if args.quantization:
        cmd += ["--quantization", args.quantization]
    return cmd


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, failing loudly with its output."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


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
    """What differs between two snapshots (empty when identical)."""
    problems: list[str] = []
    if set(clean) != set(got):
        problems.append(f"collections differ: {sorted(clean)} vs {sorted(got)}")
    for name in sorted(set(clean) & set(got)):
        a, b = clean[name], got[name]
        if set(a) != set(b):
            problems.append(f"{name}: {len(set(b) - set(a))} extra ids, {len(set(a) - set(b))} missing ids")
            continue
        bad_vec = sum(1 for pid in a if not np.allclose(a[pid][0], b[pid][0], rtol=0, atol=1e-6))
        bad_payload = sum(1 for pid in a if a[pid][1] != b[pid][1])
        if bad_vec or bad_payload:
            problems.append(f"{name}: {bad_vec} vectors and {bad_payload} payloads differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns 0 when every run is exact."""
    p = argparse.ArgumentParser(
        prog="python -m eval.bench.kill_resume",
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
    p.add_argument("--work", type=Path, default=None, help="working directory (default: a temp dir, removed)")
    args = p.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    rng = random.Random(args.seed)
    try:
        clean_dir = work / "clean"
        t0 = time.perf_counter()
        run(ingest_command(args.target, clean_dir, args))
        clean_seconds = time.perf_counter() - t0
        clean = snapshot(clean_dir)
        points = sum(len(v) for v in clean.values())
        print(f"clean run: {clean_seconds:.1f} s, {len(clean)} collections, {points} points")
        exact = 0
        for i in range(args.kills):
            data_dir = work / f"kill-{i}"
            at = rng.uniform(0.1, 1.0) * clean_seconds
            proc = subprocess.Popen(
                ingest_command(args.target, data_dir, args),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                proc.wait(timeout=at)
                killed = False
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = True
            checkpoints = sorted((data_dir / "state").rglob("*.checkpoint.json")) if killed else []
            resumed = run([*ingest_command(args.target, data_dir, args), "--json"])
            summary = json.loads(resumed.stdout)
            problems = differences(clean, snapshot(data_dir))
            exact += not problems
            state = f"killed at {at:.2f} s" if killed else f"finished before {at:.2f} s"
            print(
                f"run {i + 1:2d}: {state}; {len(checkpoints)} checkpoint files; rerun resumed "
                f"{summary['resumed_batches']} batches, {summary['seconds']:.1f} s -> "
                + ("exact" if not problems else "DIFFERS: " + "; ".join(problems))
            )
        print(f"{exact}/{args.kills} exact")
        return 0 if exact == args.kills else 1
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
