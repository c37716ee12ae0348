"""Command line: `python -m ingest <dataset|path> [options]` and `python -m ingest build-model ...`."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from pathlib import Path

from ingest.config import IngestConfig, build_config
from ingest.errors import IngestError
from ingest.optionmodel import options_from_args, options_parser

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


def build_parser(prog: str = "python -m ingest") -> argparse.ArgumentParser:
    """The ingest argument parser: the target, `--config`, one flag per `IngestConfig` field
    (generated, see `ingest.optionmodel.add_option_arguments`) and the CLI's own switches."""
    p = options_parser(
        IngestConfig,
        prog=prog,
        description="Chunk a corpus, encode it with a static embedding model and upsert it into Qdrant "
        "collections (every Matryoshka dim × quantization configured) in one pass.",
        epilog=EPILOG,
        target_help="BEIR dataset name, BEIR folder/zip, Parquet file/dir/glob, or hf:NAME",
        config_help="TOML file with options and [[collections]] tables",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def config_from_args(args: argparse.Namespace) -> IngestConfig:
    """The run options of parsed arguments: the `--config` file, then the flags given.

    Raises:
        InputError: one line naming the bad flag or TOML key, the value and what is accepted.
    """
    return build_config(args.config, **options_from_args(args, IngestConfig))


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
    p.add_argument("--data-dir", type=Path, help="default $STATIC_INGEST_DATA_DIR, else data/")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "build-model":
        margs = build_model_parser().parse_args(argv[1:])
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        from ingest.encoder.models import build_random_static_model, build_standin, random_model_path

        data_dir = IngestConfig(data_dir=margs.data_dir).data_dir  # the environment's default if not given
        if margs.kind == "standin":
            path = build_standin(data_dir)
        else:
            path = build_random_static_model(random_model_path(data_dir), dim=1024)
        print(path)
        return 0
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    from ingest.pipeline import run_ingest
    from ingest.sources.base import EmptySourceError
    from ingest.supervise import EXIT_DISK_FULL, current_activity, disk_full_message, is_disk_full

    target_dir: Path | None = None  # the data dir, once the options are valid
    try:
        cfg = config_from_args(args)
        target_dir = cfg.data_dir
        summary = run_ingest(args.target, cfg, progress=not args.no_progress)
    except EmptySourceError as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the engine's, SQLite's and the OS's out-of-space errors have no common type
        if target_dir is not None and is_disk_full(exc):
            print(disk_full_message(target_dir, *current_activity()), file=sys.stderr)
            return EXIT_DISK_FULL
        if not isinstance(exc, IngestError | OSError):
            raise
        if isinstance(exc, OSError):
            from ingest.stores.lock import NOT_WRITABLE_ERRNOS

            if exc.errno not in NOT_WRITABLE_ERRNOS:
                raise
            print(
                f"error: {exc.filename or target_dir}: {(exc.strerror or str(exc)).lower()}: check the "
                f"permissions of that path (an ingest writes under --data-dir {target_dir})",
                file=sys.stderr,
            )
            return 2
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


def run(argv: list[str] | None = None) -> int:
    """The `python -m ingest` entry point: `main` in a supervised child process (`ingest.supervise`), so
    that a disk filling under the engine's memory-mapped writes ends in one line and exit code 75
    (`EXIT_DISK_FULL`) instead of a bare "Bus error". `build-model`, help, and arguments that do not
    parse run unsupervised (they write no collection; `main` prints their message).

    Args:
        argv: The arguments (default `sys.argv[1:]`).

    Returns:
        The process exit code.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] == "build-model" or "-h" in argv or "--help" in argv:
        return main(argv)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            cfg = config_from_args(build_parser().parse_args(argv))
    except (IngestError, SystemExit):
        return main(argv)  # says what is wrong with the arguments
    from ingest.supervise import run_supervised

    return run_supervised(lambda: main(argv), data_dir=cfg.data_dir)


if __name__ == "__main__":
    sys.exit(run())
