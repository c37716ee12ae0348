"""The partitioned ingest flow on a Dask LocalCluster of 1 vs 2 worker processes, side by side.

For each input the same flow (`flows.ingest_flow.ingest_corpus`, `--task-runner dask`) runs into a
fresh data directory on a LocalCluster of N single-threaded worker processes on loopback, started
before the flow and passed as `dask_address` (so cluster start-up is not timed); the flow process
plans, and stores every partition (one writer). Printed per input: wall seconds and docs/s for each
N, and the ratio time(1) / time(2).

    python -m benchmarks.flow_workers                                   # nfcorpus + scifact + 20K synthetic
    python -m benchmarks.flow_workers --inputs synth --synth-docs 171332

Inputs: `nfcorpus` and `scifact` (BEIR zips in ../shared/beir) and `synth` (the scale corpus of
`benchmarks.synth_corpus`, written once under the work directory). The model defaults to the offline
stand-in (256-d) at one collection (d256, no quantization), so the figure is about encoding and
partitioning rather than index building.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BEIR_DIR = PROJECT_ROOT.parent / "shared" / "beir"
DEFAULT_MODEL = PROJECT_ROOT / "data" / "models" / "standin-all-minilm-l6-v2-m2v256"


def run_once(target: str, workers: int, args: argparse.Namespace, api_url: str) -> dict[str, Any]:
    """One flow run on a fresh LocalCluster of `workers` processes into a fresh data dir."""
    from distributed import Client, LocalCluster

    from flows.ingest_flow import ingest_corpus
    from ingest.options import IngestConfig

    data_dir = Path(tempfile.mkdtemp(prefix="flow-workers-", dir=args.work_dir))
    try:
        cfg = IngestConfig(
            model=str(args.model),
            data_dir=data_dir,
            beir_dirs=[BEIR_DIR],
            dims=[args.dim],
            quantizations=["none"],
            batch_docs=args.batch_docs,
            workers=workers,
        )
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
                env={"PREFECT_API_URL": api_url},
            ) as cluster,
            Client(cluster) as client,
        ):
            client.wait_for_workers(workers)
            t0 = time.perf_counter()
            state = ingest_corpus(
                target=target,
                options=cfg,
                task_runner="dask",
                dask_address=cluster.scheduler_address,
                return_state=True,
            )
            wall = time.perf_counter() - t0
        summary = state.result()
        return {
            "workers": workers,
            "wall_s": round(wall, 2),
            "docs": summary["docs"],
            "chunks": summary["chunks"],
            "docs_per_s": round(summary["docs"] / wall, 1),
            "verified": summary["verified"],
            "worker_encode_s": summary["stage_seconds"].get("encode"),
            "upsert_s": summary["stage_seconds"].get("upsert"),
        }
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def synth_target(args: argparse.Namespace) -> str:
    """The synthetic scale corpus of `args.synth_docs` documents (written once)."""
    from benchmarks.synth_corpus import write_corpus

    path = args.work_dir / f"synth-{args.synth_docs}.parquet"
    if not path.exists():
        write_corpus(path, docs=args.synth_docs)
    return str(path)


def main(argv: list[str] | None = None) -> None:
    """Run every input at each worker count and print the table and ratios (and JSON with --json)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.flow_workers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--inputs", nargs="+", default=["nfcorpus", "scifact", "synth"])
    parser.add_argument("--synth-docs", type=int, default=20_000)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch-docs", type=int, default=2048)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "flow-workers-bench")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)

    from flows.ingest_flow import current_api_url

    api_url = current_api_url()  # starts the temporary Prefect server once, for every run
    rows: list[dict[str, Any]] = []
    for name in args.inputs:
        target = synth_target(args) if name == "synth" else name
        runs = [run_once(target, n, args, api_url) for n in args.workers]
        for r in runs:
            r["input"] = name
            print(
                f"{name:10s} workers={r['workers']}  {r['wall_s']:8.1f} s  {r['docs_per_s']:8.1f} docs/s  "
                f"docs={r['docs']} chunks={r['chunks']} verified={r['verified']}",
                flush=True,
            )
        if len(runs) >= 2:
            ratio = runs[0]["wall_s"] / runs[-1]["wall_s"]
            print(
                f"{name:10s} time({runs[0]['workers']}) / time({runs[-1]['workers']}) = {ratio:.2f}",
                flush=True,
            )
        rows.extend(runs)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
