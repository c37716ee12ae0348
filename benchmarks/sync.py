"""Sync benchmark: a full ingest of the scale corpus, then a sync after 1 % of its documents changed.

Usage:
    python -m benchmarks.sync [--docs 171332] [--change 0.01] [--model PATH] [--dims 1024]
        [--quantization binary] [--out bench-out/sync] [--seed 0]

It writes the synthetic TREC-COVID-sized corpus (`benchmarks.synth_corpus`) as v1, and v2 = v1 with
`--change` of its documents changed, in four equal parts: edited (a sentence appended), shortened
(text cut to a quarter: fewer chunks for long documents), deleted, and added (new ids, text drawn from
other documents). Then, each as its own `python -m ingest` process on the same data directory:

1. a full ingest of v1 (`--sync full`, the default);
2. a sync of v2 (`--sync full`): unchanged documents are skipped without being encoded, changed ones
   re-encoded and their surplus chunks deleted, deleted ones removed.

Printed side by side: both processes' wall times (start to exit: imports, model load, reading, the
work, HNSW, verification) and the pipeline's own seconds, the ratio sync / full (target ≤ 0.1),
and the sync's counts (added / changed / unchanged / deleted, docs and chunks encoded). The model is
`random-1024` (static-retrieval-mrl-en-v1's architecture, random weights; speed does not depend on
the weights); it is built under `data/models/` if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info
from benchmarks.synth_corpus import TREC_COVID_DOCS, write_corpus

NAME = "synth"
PARTS = ("edited", "shortened", "deleted", "added")


def write_changed(v1: Path, v2: Path, change: float, *, seed: int = 0) -> dict[str, int]:
    """Write v2: v1 with `change` of its documents edited, shortened, deleted or added (a quarter each).

    Streams v1 one row group at a time (bounded memory); additions are written at the end.

    Returns:
        How many documents of each kind.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(v1)
    total = source.metadata.num_rows
    per_part = max(1, round(total * change / len(PARTS)))
    rng = np.random.default_rng(seed)
    picked = rng.choice(total, size=3 * per_part, replace=False)
    kind = {int(i): PARTS[k // per_part] for k, i in enumerate(picked)}
    donors: list[str] = []
    counts = dict.fromkeys(PARTS, 0)
    row = 0
    with pq.ParquetWriter(v2, source.schema_arrow, compression="zstd") as writer:
        for group in range(source.num_row_groups):
            block = source.read_row_group(group).to_pydict()
            out: dict[str, list[str]] = {"id": [], "title": [], "text": []}
            for doc_id, title, text in zip(block["id"], block["title"], block["text"], strict=True):
                what = kind.get(row)
                row += 1
                if what == "deleted":
                    counts["deleted"] += 1
                    continue
                if what == "edited":
                    text = (text + " This sentence was added in the new version of the corpus.").strip()
                    counts["edited"] += 1
                elif what == "shortened":
                    words = text.split()
                    text = " ".join(words[: len(words) // 4])
                    counts["shortened"] += 1
                if len(donors) < per_part and text and rng.random() < 0.01:
                    donors.append(text)
                out["id"].append(doc_id)
                out["title"].append(title)
                out["text"].append(text)
            writer.write_table(pa.table(out, schema=source.schema_arrow))
        added: dict[str, list[str]] = {"id": [], "title": [], "text": []}
        for i in range(per_part):
            added["id"].append(f"new-{i:07d}")
            added["title"].append(f"An added document, number {i}")
            added["text"].append(donors[i % len(donors)] if donors else f"added text {i}")
        writer.write_table(pa.table(added, schema=source.schema_arrow))
        counts["added"] = per_part
    return counts


def run_ingest_cli(target: Path, data_dir: Path, args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    """Run `python -m ingest` to the end; return its wall time and its JSON summary."""
    flags = {
        "--data-dir": data_dir,
        "--model": args.model,
        "--name": NAME,
        "--dims": args.dims,
        "--quantization": args.quantization,
    }
    cmd = [sys.executable, "-m", "ingest", str(target), *(str(x) for kv in flags.items() for x in kv)]
    cmd += ["--no-progress", "--json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return seconds, json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--docs", type=int, default=TREC_COVID_DOCS)
    p.add_argument("--change", type=float, default=0.01, help="share of documents changed (default 0.01)")
    p.add_argument("--model", type=Path, default=None, help="model path (default: data/models/random-1024)")
    p.add_argument("--dims", default="1024")
    p.add_argument("--quantization", default="binary")
    p.add_argument("--out", type=Path, default=Path("bench-out") / "sync")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.model is None:
        from ingest.encoder.models import build_random_static_model, random_model_path

        args.model = random_model_path(Path("data"))
        if not args.model.exists():
            build_random_static_model(args.model, dim=1024)

    out: Path = args.out
    shutil.rmtree(out / "data", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    v1, v2 = out / f"v1-{args.docs}.parquet", out / f"v2-{args.docs}.parquet"
    if not v1.exists():
        write_corpus(v1, args.docs, seed=args.seed)
    counts = write_changed(v1, v2, args.change, seed=args.seed)
    print(f"machine: {json.dumps(machine_info())}")
    print(f"load average before: {os.getloadavg()}")
    print(f"v2 = v1 ({args.docs} docs) with {counts}")

    full_s, full = run_ingest_cli(v1, out / "data", args)
    sync_s, sync = run_ingest_cli(v2, out / "data", args)
    print(f"load average after: {os.getloadavg()}")
    rows = [
        ("", "full ingest (v1)", "sync (v2)"),
        ("process wall time (s)", f"{full_s:.1f}", f"{sync_s:.1f}"),
        ("pipeline seconds", f"{full['seconds']:.1f}", f"{sync['seconds']:.1f}"),
        ("docs read", str(full["docs"]), str(sync["docs"])),
        ("docs encoded", str(full["encoded_docs"]), str(sync["encoded_docs"])),
        ("chunks encoded", str(full["encoded_chunks"]), str(sync["encoded_chunks"])),
        (
            "added / changed / unchanged / deleted",
            f"{full['added']} / {full['changed']} / {full['unchanged']} / {full['deleted']}",
            f"{sync['added']} / {sync['changed']} / {sync['unchanged']} / {sync['deleted']}",
        ),
        ("stages (s)", _stages(full), _stages(sync)),
        ("points", str(sum(full["points"].values())), str(sum(sync["points"].values()))),
        ("verified", str(full["verified"]), str(sync["verified"])),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(r)))
    print(
        f"ratio sync / full: {sync_s / full_s:.3f} (process wall time), "
        f"{sync['seconds'] / full['seconds']:.3f} (pipeline seconds); target <= 0.1"
    )
    return 0 if full["verified"] and sync["verified"] else 1


def _stages(summary: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_seconds"].items())


if __name__ == "__main__":
    sys.exit(main())
