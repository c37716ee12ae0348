"""The bad-input suite as a person meets it: build each bad input, run the real CLI, print what it says.

Usage:
    python -m benchmarks.bad_inputs [--work DIR] [--only SUBSTRING] [--huge-timeout SECONDS]

Each case runs `python -m ingest ...` in a fresh process (working directory = the case folder, so
paths print short) and prints its exit code and the lines it wrote to stderr that are not debug
output: the `error:` line, warnings, and for cases that succeed the summary's counts and run dir. The
inputs are built by `tests/support/bad_inputs.py`, the builders `tests/ingest/test_bad_inputs.py` uses
too, so run this from the project root (where `tests` is importable).

Two cases need an outside party, played on this machine: a loopback HTTP server serving a corrupt
archive (the BEIR download URL is pointed at it in the child process), and a free loopback port
with nothing listening (an unreachable Qdrant server; the client's retries take about 16 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.bad_inputs import (
    doc,
    free_port,
    hold_collection_lock,
    serve_bytes,
    write_beir_with_qrels,
    write_collections_config,
    write_corpus,
    write_escaping_zip,
    write_huge_corpus,
    write_parquet,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def with_beir_base_url(url: str) -> str:
    """Python code that runs the CLI with the BEIR download URL pointed at `url` (for `python -c`)."""
    return (
        "import sys, ingest.sources.registry as r; "
        f"r.BEIR_BASE_URL = {url!r}; "
        "from ingest.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )


# -- the cases ----------------------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input: where it is and how to run the CLI on it.

    Attributes:
        name: The issue's wording of the case.
        folder: The case's folder (the CLI runs there, with `--data-dir data`).
        args: CLI arguments, target first.
        code: Python to run instead of `-m ingest` (then `args` go to it); `SERVER` in it is
            replaced by the URL the context yields.
        context: Entered around the run (a server, a held lock), or None.
        before: CLI arguments of a successful run made first (an existing collection), or None.
        timeout: Seconds before the run is given up.
        note: Printed under the case.
        env: Extra environment variables.
    """

    name: str
    folder: Path
    args: list[str]
    code: str | None = None
    context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None
    before: list[str] | None = None
    timeout: float = 120.0
    note: str = ""
    env: dict[str, str] = field(default_factory=dict)


def build_cases(work: Path, model: Path, *, huge_timeout: float = 180.0) -> list[Case]:
    """Write every bad input under `work` (one folder per case) and return the cases."""
    common = ["--model", str(model), "--dims", "64", "--quantization", "none", "--no-progress"]
    cases: list[Case] = []

    def add(name: str, folder: str, args: list[str], **kw: Any) -> Path:
        (work / folder).mkdir(parents=True, exist_ok=True)
        cases.append(Case(name, work / folder, [*args, *common], **kw))
        return work / folder

    corpus = "toy/corpus.jsonl"
    d = add("malformed JSON line in corpus.jsonl", "malformed", [corpus, "--batch-docs", "5"])
    write_corpus(d / "toy", [doc(i) for i in range(1, 18)] + ['{"_id": "d18", "text": oops}', doc(19)])
    d = add("malformed JSON line, --on-error skip", "malformed-skip", [corpus, "--on-error", "skip"])
    write_corpus(d / "toy", [doc(1), '{"_id": "d2", "text": oops}', doc(3)])
    d = add("missing _id", "missing-id", [corpus])
    write_corpus(d / "toy", [doc(1), doc(2), {"title": "no id", "text": "orphan"}])
    d = add("duplicate _id (default: error)", "duplicate", [corpus])
    write_corpus(d / "toy", [doc(1), doc(2), doc(3), doc(1, text="second copy")])
    for policy in ("first", "last"):
        d = add(
            f"duplicate _id, --on-duplicate {policy}",
            f"duplicate-{policy}",
            [corpus, "--on-duplicate", policy],
        )
        write_corpus(d / "toy", [doc(1), doc(2), doc(1, text="second copy")])
    d = add("empty title and text (skipped, counted)", "empty", [corpus])
    write_corpus(d / "toy", [doc(1), doc(2, title="", text=""), doc(3, title=" ", text="\n")])
    latin1 = json.dumps(doc(2, text="caf\u00e9")).encode().replace(b"caf\\u00e9", b"caf\xe9")
    d = add("invalid UTF-8 bytes", "utf8", [corpus])
    write_corpus(d / "toy", [doc(1), latin1, doc(3)])
    d = add("invalid UTF-8 bytes, --on-error skip", "utf8-skip", [corpus, "--on-error", "skip"])
    write_corpus(d / "toy", [doc(1), latin1, doc(3)])
    d = add("a 10 MB document (chunked, memory bounded)", "huge", [corpus], timeout=huge_timeout)
    write_huge_corpus(d / "toy")
    d = add("Parquet with a missing column", "parquet-missing", ["corpus.parquet"])
    write_parquet(d / "corpus.parquet", {"doc_id": ["a"], "body": ["text"]})
    d = add("Parquet with a wrong column type", "parquet-type", ["corpus.parquet"])
    write_parquet(d / "corpus.parquet", {"id": ["a"], "text": [["not", "a", "string"]]})
    d = add("zip with an entry that escapes the target directory", "zip-slip", ["toy.zip"])
    write_escaping_zip(d / "toy.zip")
    add(
        "checksum mismatch on a downloaded archive",
        "checksum",
        ["nfcorpus"],
        code=with_beir_base_url("SERVER"),
        context=lambda: serve_bytes(b"this is not the nfcorpus archive"),
        note="the BEIR download URL is pointed at a loopback server that serves the wrong bytes",
    )
    add(
        "download impossible (offline)",
        "offline",
        ["nfcorpus"],
        code=with_beir_base_url(f"http://127.0.0.1:{free_port()}"),
        note="the BEIR download URL is pointed at a loopback port where nothing listens",
    )
    for folder, name, dim, quantization in (
        ("quant-mismatch", "quantization mismatch against an existing collection", 64, "binary"),
        ("dim-mismatch", "dimension mismatch against an existing collection", 32, "none"),
    ):
        d = work / folder
        write_corpus(d / "toy", [doc(i) for i in range(3)])
        write_collections_config(d / "first.toml", [{"dim": 64, "name_template": "toy-main"}])
        write_collections_config(
            d / "second.toml", [{"dim": dim, "quantization": quantization, "name_template": "toy-main"}]
        )
        options = ["--model", str(model), "--no-progress"]
        cases.append(
            Case(
                name,
                d,
                [corpus, "--config", "second.toml", *options],
                before=[corpus, "--config", "first.toml", *options],
                note="after a first ingest with --config first.toml (collection toy-main: 64-d, none)",
            )
        )
    add("an unknown dataset name", "unknown-name", ["nfcorpsu"])
    add("a dataset name containing path separators", "path-name", ["beir/../nfcorpus"])
    d = add(
        "a second writer into the same collection",
        "locked",
        [corpus],
        context=lambda: hold_collection_lock(work / "locked" / "data", "toy-d64-none"),
        note="another process holds the collection (this script, through the real EdgeStore lock)",
    )
    write_corpus(d / "toy", [doc(i) for i in range(3)])
    d = add(
        "unreachable --qdrant-url (server fault)",
        "server",
        [corpus, "--qdrant-url", f"http://127.0.0.1:{free_port()}"],
        env={"QDRANT_API_KEY": "s3cret-never-printed"},
        note="QDRANT_API_KEY is set to a secret; the message must not show it",
    )
    write_corpus(d / "toy", [doc(1)])
    return cases


@dataclass
class Outcome:
    """What the CLI did on one case."""

    exit_code: int | None
    stderr: list[str]
    stdout: list[str]


def run_case(case: Case) -> Outcome:
    """Run one case's CLI process in its folder; exit code None means it did not finish in time."""
    env = {**os.environ, **case.env, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("STATIC_INGEST_BEIR_DIR", None)
    env.pop("STATIC_INGEST_DATA_DIR", None)
    if "--qdrant-url" not in case.args:
        env.pop("QDRANT_URL", None)
    with case.context() if case.context is not None else contextlib.nullcontext() as served:
        head = [sys.executable, "-m", "ingest"]
        if case.code is not None:
            head = [sys.executable, "-c", case.code.replace("SERVER", str(served))]
        if case.before is not None:
            subprocess.run(
                [sys.executable, "-m", "ingest", *case.before, "--data-dir", "data"],
                cwd=case.folder,
                env=env,
                capture_output=True,
                timeout=case.timeout,
                check=True,
            )
        try:
            done = subprocess.run(
                [*head, *case.args, "--data-dir", "data"],
                cwd=case.folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=case.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(None, [f"(did not finish within {case.timeout:.0f} s; stopped)"], [])
    return Outcome(done.returncode, done.stderr.splitlines(), done.stdout.splitlines())


def shown_lines(outcome: Outcome) -> list[str]:
    """The lines worth pasting: errors and warnings, and on success the summary's counts."""
    lines = [line for line in outcome.stderr if not line.startswith(("DEBUG", "INFO"))]
    lines += [
        line for line in outcome.stdout if line.startswith(("docs ", "chunks ", "peak RSS ", "run dir "))
    ]
    return lines


def qrels_warning(work: Path) -> str:
    """The warning `BeirSource.check_qrels` gives for qrels naming documents missing from the corpus."""
    from ingest.sources import BeirSource

    source = BeirSource(write_beir_with_qrels(work / "qrels" / "toy"))
    check = source.check_qrels("test")
    return f"{source.warnings[-1]}  [missing_doc_pairs={check.missing_doc_pairs}]"


def main(argv: list[str] | None = None) -> int:
    """Build and run every case; print name, exit code and message. Returns 0."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bad_inputs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--work", type=Path, help="where to build the inputs (default: a temp dir, removed)")
    p.add_argument("--only", help="run only the cases whose name contains this")
    p.add_argument("--huge-timeout", type=float, default=180.0, help="seconds allowed for the 10 MB document")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # qrels_warning prints the warning itself
    work = args.work or Path(tempfile.mkdtemp(prefix="bad-inputs-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        from ingest.encoder.models import build_random_static_model

        model = build_random_static_model(work / "model", dim=64, seed=1)
        for case in build_cases(work, model, huge_timeout=args.huge_timeout):
            if args.only and args.only not in case.name:
                continue
            outcome = run_case(case)
            print(f"### {case.name}  (exit {outcome.exit_code})")
            if case.note:
                print(f"    [{case.note}]")
            for line in shown_lines(outcome):
                print(f"    {line}")
            print(flush=True)
        if not args.only or "qrels" in args.only:
            print("### qrels that reference documents missing from the corpus  (eval-time check)")
            print(f"    WARNING {qrels_warning(work)}\n")
        return 0
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
