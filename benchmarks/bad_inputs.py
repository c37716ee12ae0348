"""The bad-input suite as a person meets it: build each bad input, run the real CLI, print what it says.

Usage:
    python -m benchmarks.bad_inputs [--work DIR] [--only SUBSTRING] [--huge-timeout SECONDS]

Each case runs `python -m ingest ...` in a fresh process (working directory = the case folder, so
paths print short) and prints its exit code and the lines it wrote to stderr that are not debug
output: the `error:` line, warnings, and for cases that succeed the summary's counts and run dir. The
inputs are built by `tests/support/bad_inputs.py`, the builders `tests/ingest/test_bad_inputs.py` uses
too, so run this from the project root (where `tests` is importable).

Some cases need an outside party, played on this machine: a loopback HTTP server serving a corrupt
archive (the BEIR download URL is pointed at it in the child process); a free loopback port with
nothing listening (an unreachable Qdrant server); a loopback fake Qdrant (REST) that answers 503, drops
the connection or answers too late on every request (`tests/support/faulty_qdrant.py`; the child is
told to talk REST, since the fake has no gRPC); a read-only bind mount of the data dir and an 8 MB
tmpfs as the data dir (both need root: mount rights); a held collection lock (a running ingest).
The eval cases run `python -m eval` on a small BEIR folder ingested first.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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
    MountError,
    broken_stream_zip,
    crc_damaged_zip,
    damage_row_group,
    damaged_copy,
    doc,
    empty_parquet,
    free_port,
    good_parquet,
    hold_collection_lock,
    hold_writer_lock,
    read_only,
    resize_tmpfs,
    saved_dataset,
    serve_bytes,
    small_tmpfs,
    truncated_member_zip,
    write_beir_with_qrels,
    write_big_corpus,
    write_collections_config,
    write_corpus,
    write_escaping_zip,
    write_huge_corpus,
    write_parquet,
    write_toy_beir,
)
from tests.support.faulty_qdrant import FaultyQdrant

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def with_beir_base_url(url: str) -> str:
    """Python code that runs the CLI with the BEIR download URL pointed at `url` (for `python -c`)."""
    return (
        "import sys, ingest.sources.registry as r; "
        f"r.BEIR_BASE_URL = {url!r}; "
        "from ingest.__main__ import run; sys.exit(run(sys.argv[1:]))"
    )


# The ingest CLI talking REST to the Qdrant server (the fake server speaks no gRPC).
OVER_REST = (
    "import sys, ingest.stores as s; s.open_store.__kwdefaults__['prefer_grpc'] = False; "
    "from ingest.__main__ import run; sys.exit(run(sys.argv[1:]))"
)
EVAL_OPTIONS = [
    *("--dims", "64", "--quantization", "none,binary", "--out", "reports", "--run-id", "bad-inputs"),
    *("--permutations", "200", "--hnsw-ef", "64", "--oversampling", "1", "--clients", "1", "--warmup", "0"),
]


class FullDisk:
    """An 8 MB tmpfs as a case's data dir across three cases: mounted by the first, grown to 400 MB
    before the third, unmounted after it (and by `close` whatever happens)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._mount: contextlib.ExitStack | None = None

    @contextlib.contextmanager
    def mounted(self) -> Any:
        """Mount the 8 MB tmpfs (it stays mounted for the next cases)."""
        self._mount = contextlib.ExitStack()
        self._mount.enter_context(small_tmpfs(self.data_dir, "8m"))
        yield None

    @contextlib.contextmanager
    def grown(self) -> Any:
        """Grow the tmpfs to 400 MB for the run, then unmount it."""
        resize_tmpfs(self.data_dir, "400m")
        try:
            yield None
        finally:
            self.close()

    def close(self) -> None:
        """Unmount (no-op when not mounted)."""
        if self._mount is not None:
            self._mount.close()
            self._mount = None


# -- the cases ----------------------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input: where it is and how to run the CLI on it.

    Attributes:
        name: The issue's wording of the case.
        folder: The case's folder (the CLI runs there, with `--data-dir data`).
        args: CLI arguments, target first.
        code: Python to run instead of `-m ingest` (then `args` go to it); `SERVER` in it and in
            `args` is replaced by the URL the context yields.
        context: Entered around the run (a server, a held lock, a read-only mount), or None.
        before: Ingest CLI arguments of a run made first, before the context is entered (an
            existing collection), or None.
        before_codes: Exit codes `before` may end with (a stopped ingest ends with 2).
        module: The CLI to run: `ingest` or `eval`.
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
    before_codes: tuple[int, ...] = (0,)
    module: str = "ingest"
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
        "unreachable --qdrant-url, QDRANT_API_KEY with an http:// URL (server fault)",
        "server",
        [corpus, "--qdrant-url", f"http://127.0.0.1:{free_port()}", "--retries", "1"],
        env={"QDRANT_API_KEY": "s3cret-never-printed"},
        note="QDRANT_API_KEY is set to a secret; the message must not show it",
    )
    write_corpus(d / "toy", [doc(1)])
    cases += reliability_cases(work, model, common)
    return cases


def reliability_cases(work: Path, model: Path, common: list[str]) -> list[Case]:
    """The faults validation cannot catch: damaged and empty inputs, read-only and full disks, an eval
    beside an ingest, server faults (each builds its inputs under `work`)."""
    cases: list[Case] = []
    corpus = "toy/corpus.jsonl"

    def add(name: str, folder: str, args: list[str], **kw: Any) -> Path:
        (work / folder).mkdir(parents=True, exist_ok=True)
        cases.append(Case(name, work / folder, [*args, *common], **kw))
        return work / folder

    for label, build in (
        ("CRC error", crc_damaged_zip),
        ("truncated member", truncated_member_zip),
        ("broken deflate stream", broken_stream_zip),
    ):
        d = add(f"corrupt zip: {label}", f"zip-{label.split()[0].lower()}", ["toy.zip"])
        build(d)
    d = add(
        "Parquet with an unreadable row group", "parquet-row-group", ["corpus.parquet", "--title-col", ""]
    )
    damage_row_group(good_parquet(d / "corpus.parquet", rows=3000), 1)
    d = add("saved HF dataset that fails to load (truncated arrow file)", "hf-broken", ["saved"])
    damaged_copy(saved_dataset(work / "hf-original"), d / "saved", "truncated")
    d = add("empty Parquet file", "empty-parquet", ["corpus.parquet"])
    empty_parquet(d / "corpus.parquet")
    d = add("empty corpus (blank lines only)", "empty-corpus", [corpus])
    write_corpus(d / "toy", ["", "  "])
    d = add("empty Parquet file, --allow-empty", "empty-allowed", ["corpus.parquet", "--allow-empty"])
    empty_parquet(d / "corpus.parquet")

    d = work / "read-only"
    write_corpus(d / "toy", [doc(1)])
    (d / "data").mkdir(parents=True, exist_ok=True)
    add(
        "read-only data dir (ingest)",
        "read-only",
        [corpus],
        context=lambda: read_only(work / "read-only" / "data"),
        note="the data dir is a read-only bind mount of itself",
    )
    ingest_first = [
        "toy",
        "--model",
        str(model),
        "--dims",
        "64",
        "--quantization",
        "none,binary",
        "--no-progress",
    ]
    d = work / "eval-read-only"
    write_toy_beir(d / "toy")
    cases.append(
        Case(
            "eval of a complete dataset stored read-only",
            d,
            ["toy", *EVAL_OPTIONS],
            module="eval",
            before=ingest_first,
            context=lambda: read_only(work / "eval-read-only" / "data"),
            timeout=600,
            note="`python -m eval` after a complete ingest, the data dir a read-only bind mount of itself",
        )
    )
    for folder, name, context in (
        ("eval-running", "eval during an ingest (the ingest holds the collection's lock)", True),
        ("eval-stopped", "eval after an ingest that stopped before the end", False),
    ):
        d = work / folder
        write_toy_beir(d / "toy", docs=20)
        with (d / "toy" / "corpus.jsonl").open("a", encoding="utf-8") as f:
            f.write('{"_id": "d99", "text": oops}\n')
        cases.append(
            Case(
                name,
                d,
                ["toy", *EVAL_OPTIONS, "--quantization", "none"],
                module="eval",
                before=[*ingest_first, "--quantization", "none", "--batch-docs", "5"],
                before_codes=(2,),
                context=functools.partial(hold_writer_lock, d / "data", "toy-d64-none") if context else None,
                timeout=600,
                note="a first ingest stopped at a malformed line after 4 batches (status 'loading')"
                + ("; this script holds its writer lock as the running ingest would" if context else ""),
            )
        )

    for fault, what in (
        (503, "HTTP 503 on every request"),
        ("drop", "connection dropped"),
        ("slow", "too slow"),
    ):
        d = add(
            f"Qdrant server fault: {what}, --retries 1 --timeout 0.5",
            f"server-{fault}",
            [corpus, "--qdrant-url", "SERVER", "--retries", "1", "--timeout", "0.5"],
            code=OVER_REST,
            context=lambda fault=fault: _faulty_url(fault),
            note="a loopback fake Qdrant (REST); the child talks REST to it",
        )
        write_corpus(d / "toy", [doc(1)])

    d = work / "full-disk"
    write_big_corpus(d / "big", docs=3000, text_chars=3000)
    disk = FullDisk(d / "data")
    big = ["big/corpus.jsonl", *common, "--json"]
    cases += [
        Case(
            "full disk: the free-space check before loading",
            d,
            big,
            context=disk.mounted,
            note="an 8 MB tmpfs as the data dir; a corpus of 3,000 documents of 3,000 random characters",
        ),
        Case("full disk: --force (the disk fills)", d, [*big, "--force"], timeout=300),
        Case(
            "full disk: the same command once the tmpfs is grown to 400 MB",
            d,
            big,
            context=disk.grown,
            timeout=300,
            note="resumes after the stored batches; the summary's points equal its chunks (verified)",
        ),
    ]
    return cases


@contextlib.contextmanager
def _faulty_url(fault: Any) -> Any:
    """A fake Qdrant applying `fault` to every request; yields its URL."""
    with FaultyQdrant(every=fault, slow_s=2.0) as fake:
        yield fake.url


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
    if case.before is not None:
        first = subprocess.run(
            [sys.executable, "-m", "ingest", *case.before, "--data-dir", "data"],
            cwd=case.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=case.timeout,
        )
        if first.returncode not in case.before_codes:
            raise RuntimeError(
                f"{case.name}: the run before it ended with {first.returncode}: {first.stderr}"
            )
    with case.context() if case.context is not None else contextlib.nullcontext() as served:
        head = [sys.executable, "-m", case.module]
        if case.code is not None:
            head = [sys.executable, "-c", case.code.replace("SERVER", str(served))]
        args = [a.replace("SERVER", str(served)) for a in case.args]
        try:
            done = subprocess.run(
                [*head, *args, "--data-dir", "data"],
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


def shown_lines(outcome: Outcome, module: str = "ingest") -> list[str]:
    """The lines worth pasting: errors and warnings, and on success the summary's counts (of the text
    summary, the `--json` one, or an eval's report path; an eval's progress lines are left out)."""
    lines = [line for line in outcome.stderr if not line.startswith(("DEBUG", "INFO", "skipping "))]
    if module == "eval":
        lines = [line for line in lines if line.startswith(("WARNING", "warning:", "error:", "Traceback"))]
    lines += [
        line
        for line in outcome.stdout
        if line.startswith(("docs ", "chunks ", "peak RSS ", "run dir ", "report: ", "verified "))
    ]
    if outcome.stdout[:1] == ["{"]:
        summary = json.loads("\n".join(outcome.stdout))
        keys = ("docs", "chunks", "points", "verified", "resumed_batches")
        lines.append("summary: " + json.dumps({k: summary.get(k) for k in keys}))
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
            try:
                outcome = run_case(case)
            except MountError as exc:  # not root: no tmpfs, no read-only bind mount
                outcome = Outcome(None, [f"(not run: {exc})"], [])
            print(f"### {case.name}  (exit {outcome.exit_code})")
            if case.note:
                print(f"    [{case.note}]")
            for line in shown_lines(outcome, case.module):
                print(f"    {line}")
            print(flush=True)
        if not args.only or "qrels" in args.only:
            print("### qrels that reference documents missing from the corpus  (eval-time check)")
            print(f"    WARNING {qrels_warning(work)}\n")
        return 0
    finally:
        for mount in (
            work / "full-disk" / "data",
            work / "read-only" / "data",
            work / "eval-read-only" / "data",
        ):
            if os.path.ismount(mount):  # a case that failed half-way
                subprocess.run(["umount", "-l", str(mount)], check=False)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
