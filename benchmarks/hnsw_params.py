"""HNSW graph parameters at TREC-COVID scale: build cost against recall, side by side in one run.

Usage:
    python -m benchmarks.hnsw_params [--model auto] [--dims 256,64] [--quantizations scalar,binary]
        [--ef-construct 100,64,40] [--hnsw-ef 64,128,256] [--queries 400] [--beir-dir ../shared/beir]
        [--out bench-out/] [--data-dir data]

The default matrix's time goes mostly to HNSW builds (issue 14): each quantized collection's graph
costs about the same CPU whatever its dim. The one lever that cuts build work is the graph's
parameters, and a cheaper graph answers with lower recall. This harness measures both on real text
at TREC-COVID's size, which SciFact and NFCorpus alone (5K and 3.6K documents, where HNSW is
nearly exact) cannot show:

- vectors: every SciFact and NFCorpus document cut into 24-word windows with a stride of 12 (about
  167,000 vectors, the size of TREC-COVID's 184,499 chunks), encoded with `--model` (the offline
  stand-in by default: real embeddings; the random-1024 model's vectors have no neighbourhood
  structure worth measuring); queries: `--queries` of the two datasets' queries, drawn with seed 0;
- per dim × quantization, one collection per `--ef-construct` value (m = 16) and one without a graph
  (m = 0: the engine scans the quantized vectors), each written and indexed through the project's
  own `EdgeStore` (`build_index`), with the eval's `full_scan_threshold` so HNSW really answers;
- per collection: the build's wall and CPU seconds (the engine's build threads included) and the
  ratio of its CPU to the first `--ef-construct` value's; recall@10 against an exact search of the
  float vectors of the same dim, and milliseconds per query, at each `--hnsw-ef` (the engine's
  default rescoring: on for binary, off for scalar).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import cpu_seconds, machine_info
from benchmarks.synth_corpus import BEIR_DIR, SENTENCE_SOURCES

WINDOW_WORDS = 24
STRIDE_WORDS = 12
LIMIT = 10
# The eval's threshold (KB): every segment of these collections is answered by HNSW, not by full scan.
FULL_SCAN_THRESHOLD_KB = 10


def windows_and_queries(beir_dir: Path, queries: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Every SciFact and NFCorpus document (title + text) cut into overlapping word windows, and a
    sample of the two datasets' queries.

    Raises:
        SystemExit: neither zip is in `beir_dir`.
    """
    texts: list[str] = []
    pool: list[str] = []
    for name in SENTENCE_SOURCES:
        path = beir_dir / f"{name}.zip"
        if not path.is_file():
            continue
        with zipfile.ZipFile(path) as zf:
            for line in zf.read(f"{name}/corpus.jsonl").decode().splitlines():
                doc = json.loads(line)
                words = f"{doc.get('title') or ''}. {doc.get('text') or ''}".split()
                texts.extend(
                    " ".join(words[s : s + WINDOW_WORDS])
                    for s in range(0, max(len(words) - STRIDE_WORDS, 1), STRIDE_WORDS)
                )
            lines = zf.read(f"{name}/queries.jsonl").decode().splitlines()
            pool += [json.loads(q)["text"] for q in lines if q]
    if not texts:
        raise SystemExit(f"no scifact.zip or nfcorpus.zip in {beir_dir}: pass --beir-dir")
    picked = np.random.default_rng(seed).choice(len(pool), min(queries, len(pool)), replace=False)
    return texts, [pool[i] for i in picked]


def _ids(store: Any, name: str, queries: np.ndarray, params: Any) -> tuple[list[set[str]], float]:
    start = time.perf_counter()
    hits = store.search(name, queries, LIMIT, params)
    ms = (time.perf_counter() - start) * 1000 / max(len(queries), 1)
    return [{h.id for h in row} for row in hits], ms


def measure(
    store: Any,
    vectors: np.ndarray,
    queries: np.ndarray,
    quantization: str,
    ef_construct: int | None,
    efs: list[int],
) -> dict[str, Any]:
    """Write `vectors` into a fresh collection, build its index and measure it.

    Args:
        store: An open `EdgeStore`.
        vectors: The document vectors at this dim (normalised).
        queries: The query vectors at this dim.
        quantization: `scalar` or `binary`.
        ef_construct: The graph's ef_construct; None for no graph (m = 0).
        efs: Search-time ef values.

    Returns:
        Build wall and CPU seconds, and per ef recall@10 against exact float search and ms per query.
    """
    from ingest.config import CollectionSpec
    from ingest.stores.base import SearchParams

    dim = vectors.shape[1]
    name = f"d{dim}-{quantization}-efc{ef_construct or 0}"
    spec = CollectionSpec(
        dim=dim,
        quantization=quantization,  # type: ignore[arg-type]
        hnsw_m=16 if ef_construct else 0,
        hnsw_ef_construct=ef_construct or 100,
        full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
    )
    store.ensure_collection(name, spec, recreate=True)
    ids = [str(uuid.UUID(int=i)) for i in range(len(vectors))]
    for start in range(0, len(vectors), 4096):
        end = start + 4096
        store.upsert(name, ids[start:end], vectors[start:end], [{} for _ in ids[start:end]])
    store.flush(name)
    wall, cpu = time.perf_counter(), cpu_seconds()
    store.build_index(name)
    row: dict[str, Any] = {
        "dim": dim,
        "quantization": quantization,
        "graph": f"m 16, ef_construct {ef_construct}" if ef_construct else "no graph (m 0): full scan",
        "build_wall_s": round(time.perf_counter() - wall, 1),
        "build_cpu_s": round(cpu_seconds() - cpu, 1),
    }
    truth, _ = _ids(store, name, queries, SearchParams(exact=True))
    for ef in efs:
        got, ms = _ids(store, name, queries, SearchParams(hnsw_ef=ef))
        recall = np.mean([len(g & t) / LIMIT for g, t in zip(got, truth, strict=True)])
        row[f"recall@10 ef{ef}"] = round(float(recall), 4)
        row[f"ms/query ef{ef}"] = round(ms, 2)
    store.delete_collection(name)
    return row


def _csv(text: str, kind: type = int) -> list[Any]:
    return [kind(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    """Run the harness and print one table per dim × quantization."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="auto")
    parser.add_argument("--dims", default="256,64")
    parser.add_argument("--quantizations", default="scalar,binary")
    parser.add_argument("--ef-construct", default="100,64,40")
    parser.add_argument("--hnsw-ef", default="64,128,256")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--beir-dir", type=Path, default=BEIR_DIR)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)

    from ingest.encoder.static import load_encoder, slice_normalise
    from ingest.stores.edge import EdgeStore

    print("machine:", json.dumps(machine_info(("qdrant-edge-py", "numpy"))))
    texts, query_texts = windows_and_queries(args.beir_dir, args.queries)
    encoder = load_encoder(args.model, data_dir=args.data_dir)
    full, full_queries = encoder.encode(texts), encoder.encode_queries(query_texts)
    print(
        f"vectors: {len(texts):,} windows of {WINDOW_WORDS} words (stride {STRIDE_WORDS}) of "
        f"{' + '.join(SENTENCE_SOURCES)}, {len(query_texts)} of their queries; model {encoder.model_id} "
        f"({encoder.kind}, {encoder.dim}-d)"
    )
    efcs, efs = _csv(args.ef_construct), _csv(args.hnsw_ef)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp, EdgeStore(Path(tmp)) as store:
        for dim in _csv(args.dims):
            vectors, queries = slice_normalise(full, dim), slice_normalise(full_queries, dim)
            for quantization in _csv(args.quantizations, str):
                print(f"\n== d{dim} {quantization}: {len(vectors):,} vectors")
                group = [measure(store, vectors, queries, quantization, efc, efs) for efc in [*efcs, None]]
                base_cpu = group[0]["build_cpu_s"]
                for row in group:
                    row["build_cpu_vs_first"] = round(row["build_cpu_s"] / base_cpu, 2) if base_cpu else None
                    recalls = "  ".join(
                        f"ef{ef} r@10 {row[f'recall@10 ef{ef}']:.3f} {row[f'ms/query ef{ef}']:.2f} ms"
                        for ef in efs
                    )
                    print(
                        f"   {row['graph']:28s} build {row['build_wall_s']:5.1f} s wall, "
                        f"{row['build_cpu_s']:5.1f} CPU s ({row['build_cpu_vs_first']:.2f}x)   {recalls}"
                    )
                rows.extend(group)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "hnsw-params.json"
    out.write_text(json.dumps({"vectors": len(texts), "queries": len(query_texts), "rows": rows}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
