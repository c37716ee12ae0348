"""Command line: `python -m ingest <dataset|path> [options]` and `python -m ingest build-model ...`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ingest.config import build_config, env_beir_dirs, parse_csv
from ingest.errors import IngestError

EPILOG = """\
targets:
  a BEIR dataset name   scifact, nfcorpus, trec-covid, arguana, ... (local copy first, else the official
                        download with md5 check, cached in <data dir>/beir/)
  a path                a BEIR folder or zip (corpus.jsonl, queries.jsonl, qrels/), or Parquet
                        (a file, a directory or a glob such as 'corpus/*.parquet')
  hf:NAME[:CONFIG][:SPLIT] or a directory written by datasets' save_to_disk

examples:
  python -m ingest scifact --beir-dir ../shared/beir
  python -m ingest trec-covid --dims 1024 --quantization binary
  python -m ingest corpus/*.parquet --id-col doc_id --text-col body --title-col ''
  python -m ingest scifact --qdrant-url http://localhost:6333      (gRPC on 6334; key from QDRANT_API_KEY)
  python -m ingest build-model standin                             (the offline stand-in model)

environment:
  STATIC_INGEST_DATA_DIR  default --data-dir (default: data)
  STATIC_INGEST_BEIR_DIR  extra directories holding BEIR zips/folders (separated by ':')
  QDRANT_URL, QDRANT_API_KEY  server backend (the key is never logged)
"""


def build_parser() -> argparse.ArgumentParser:
    """The ingest argument parser (every option documented)."""
    p = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Chunk a corpus, encode it with a static embedding model and upsert it into Qdrant "
        "collections (every Matryoshka dim × quantization configured) in one pass.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", help="BEIR dataset name, BEIR folder/zip, Parquet file/dir/glob, or hf:NAME")
    p.add_argument("--config", type=Path, help="TOML file with options and [[collections]] tables")
    p.add_argument(
        "--model",
        help="model: 'auto' (default: the hub model if cached/reachable, else the offline stand-in), "
        "'standin', a hub id or a local path of a static sentence-transformers or model2vec model",
    )
    p.add_argument(
        "--qdrant-url",
        default=os.environ.get("QDRANT_URL"),
        help="Qdrant server URL (gRPC preferred); "
        "default: the embedded engine (qdrant-edge) under <data dir>/qdrant/",
    )
    p.add_argument(
        "--data-dir", type=Path, help="where datasets, models, shards, checkpoints live (default data/)"
    )
    p.add_argument(
        "--beir-dir",
        type=Path,
        action="append",
        default=None,
        help="a directory holding BEIR zips or folders, searched before <data dir>/beir (repeatable)",
    )
    p.add_argument(
        "--dims", help="Matryoshka dims, comma-separated (default: 1024,512,256,128,64 capped at the model's)"
    )
    p.add_argument(
        "--quantization", help="quantizations, comma-separated from none,binary,scalar (default none,binary)"
    )
    p.add_argument("--limit", type=int, help="ingest only the first N documents")
    p.add_argument(
        "--recreate", action="store_true", help="drop and recreate the collections (and checkpoints)"
    )
    p.add_argument("--chunk-tokens", type=int, help="chunk window in tokens, title included (default 512)")
    p.add_argument("--chunk-overlap", type=int, help="tokens shared by consecutive windows (default 64)")
    p.add_argument(
        "--batch-docs",
        type=int,
        help="documents per batch: the unit of encoding, checkpoints and flow tasks (default 2048)",
    )
    p.add_argument("--no-text", action="store_true", help="do not store the chunk text in the payload")
    p.add_argument(
        "--workers",
        type=int,
        help="processes that chunk and encode while this one reads and upserts; 0 (default) = automatic: "
        "one for corpora of 20,000 documents or more (or of unknown size) loaded into 3+ collections "
        "on 2+ cores, else none (threads)",
    )
    p.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        help="bad records: stop (default) or skip them into rejected.jsonl in the run directory",
    )
    p.add_argument(
        "--on-duplicate",
        choices=["fail", "first", "last"],
        help="duplicate document ids: stop (default), keep the first or keep the last",
    )
    p.add_argument("--id-col", help="id column for Parquet / HF datasets (default id)")
    p.add_argument("--text-col", help="text column for Parquet / HF datasets (default text)")
    p.add_argument("--title-col", help="title column for Parquet / HF datasets (default title; '' for none)")
    p.add_argument(
        "--name",
        help="dataset name used in collection names and point ids (default: the BEIR "
        "name, or the file/folder stem)",
    )
    p.add_argument("--timeout", type=float, help="server request timeout in seconds (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def build_model_parser() -> argparse.ArgumentParser:
    """Parser of `python -m ingest build-model`."""
    p = argparse.ArgumentParser(
        prog="python -m ingest build-model",
        description="Build an offline model into <data dir>/models/: 'standin' distils a Model2Vec "
        "model from the packaged all-MiniLM-L6-v2 teacher (about 2 minutes on 2 cores); "
        "'random-1024' builds the exact architecture of static-retrieval-mrl-en-v1 with random "
        "weights (for speed work only).",
    )
    p.add_argument("kind", choices=["standin", "random-1024"])
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("STATIC_INGEST_DATA_DIR", "data")))
    return p


def _beir_dirs(args: argparse.Namespace) -> list[Path] | None:
    return [*args.beir_dir, *env_beir_dirs()] if args.beir_dir else None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "build-model":
        margs = build_model_parser().parse_args(argv[1:])
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        from ingest.encoder.models import build_random_static_model, build_standin, random_model_path

        if margs.kind == "standin":
            path = build_standin(margs.data_dir)
        else:
            path = build_random_static_model(random_model_path(margs.data_dir), dim=1024)
        print(path)
        return 0
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    from ingest.pipeline import run_ingest

    try:
        cfg = build_config(
            args.config,
            model=args.model,
            qdrant_url=args.qdrant_url,
            data_dir=args.data_dir,
            beir_dirs=_beir_dirs(args),
            dims=parse_csv(args.dims, cast=int, what="--dims"),
            quantizations=parse_csv(args.quantization, what="--quantization"),
            limit=args.limit,
            recreate=args.recreate or None,
            chunk_tokens=args.chunk_tokens,
            chunk_overlap=args.chunk_overlap,
            batch_docs=args.batch_docs,
            store_text=False if args.no_text else None,
            on_error=args.on_error,
            on_duplicate=args.on_duplicate,
            id_col=args.id_col,
            text_col=args.text_col,
            title_col=args.title_col,
            timeout_s=args.timeout,
            workers=args.workers,
            name=args.name,
        )
        summary = run_ingest(args.target, cfg, progress=not args.no_progress)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: every batch stored so far is kept; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    print(json.dumps(summary.to_dict(), indent=2, default=str) if args.json else summary.format())
    return 0 if summary.verified else 1


if __name__ == "__main__":
    sys.exit(main())
