"""Command line: `python -m eval <dataset|path> [options]` and `python -m eval compare <report dirs>`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.errors import EvalError
from eval.options import EvalOptions, EvalSettings
from ingest.errors import IngestError
from ingest.optionmodel import options_from_args, options_parser

if TYPE_CHECKING:
    from eval.runner import EvalRun

EPILOG = """\
what it does:
  loads the judged queries and qrels of the split, encodes the queries with the model recorded in the
  collections' manifest, searches every configured collection in every mode (exact, hnsw, and for
  quantized collections no-rescore and rescore with each oversampling), aggregates chunk hits to
  documents (max score), computes NDCG@10 / Recall@100 / MRR@10 / MAP@100 (BEIR conventions), compares
  each configuration with the full-dim float collection searched exactly, and writes
  <out>/<dataset>/<run id>/{report.md,results.json,*.png}. Prints the published-form table and the
  recommendation (or, with --json, the results as JSON) on stdout; progress goes to stderr.

examples:
  python -m eval nfcorpus --beir-dir ../shared/beir
  python -m eval scifact --config matrix.toml --oversampling 1,2,4,8 --baseline-model all-MiniLM-L6-v2
  python -m eval corpus.parquet --queries queries.jsonl --qrels qrels/test.tsv
  python -m eval scifact --json > scifact.json
  python -m eval compare reports/scifact reports/nfcorpus/20250101T120000Z --output table.md

environment:
  STATIC_INGEST_DATA_DIR  default --data-dir (default: data)
  STATIC_INGEST_BEIR_DIR  extra directories holding BEIR zips/folders (separated by ':')
  QDRANT_URL              default --qdrant-url
"""


def build_parser(prog: str = "python -m eval") -> argparse.ArgumentParser:
    """The eval argument parser: the target, `--config`, one flag per `EvalSettings` field
    (generated, see `ingest.optionmodel.add_option_arguments`) and `-v`."""
    p = options_parser(
        EvalSettings,
        prog=prog,
        description="Evaluate every collection configuration of an ingested dataset against its qrels "
        "and recommend the cheapest one at acceptable quality.",
        epilog=EPILOG,
        target_help="the dataset as given to the ingest: BEIR name, BEIR folder/zip, Parquet path",
        config_help="the ingest TOML file ([[collections]], data_dir, qdrant_url)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """CLI-only output switches (not options of the eval itself, so not in `EvalSettings`)."""
    p.add_argument(
        "--json",
        action="store_true",
        help="print the results (results.json content, the recommendation's evidence and the files "
        "written) as JSON on stdout instead of the tables",
    )


def options_from_cli(args: argparse.Namespace) -> EvalOptions:
    """The eval options of parsed arguments: the `--config` file, then the flags given.

    Raises:
        InputError: one line naming the bad flag or TOML key, the value and what is accepted.
    """
    return EvalOptions.build(args.target, args.config, **options_from_args(args, EvalSettings))


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


def json_output(run: EvalRun) -> dict[str, Any]:
    """What `--json` prints: results.json's content, `decision` (rule, intervals, alternatives), `files`."""
    from eval.recommend import decide

    files = run.files
    return {
        **run.results.to_dict(),
        "decision": decide(run.results).to_dict(),
        "files": {
            "directory": str(files.directory),
            "report_md": str(files.report_md),
            "results_json": str(files.results_json),
            "plots": [str(p) for p in files.plots],
        },
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "compare":
        return run_compare(argv[1:])
    parser = build_parser()
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    from eval.runner import run_eval

    try:
        opts = options_from_cli(args)
        outcome = run_eval(opts, echo=lambda line: print(line, file=sys.stderr, flush=True))
    except (IngestError, EvalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(json_output(outcome), indent=1, default=_json_default) + "\n")
    else:
        from eval.report import summary_markdown

        sys.stdout.write(summary_markdown(outcome.results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
