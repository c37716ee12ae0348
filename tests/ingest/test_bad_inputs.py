"""The bad-input suite at the CLI level: exit code, the message on stderr, what is (not) stored, the counts.

What "nothing half-written" means here:
- an error found before any point is written (bad target, column, zip, checksum, duplicate id,
  collection mismatch) leaves no collection directory behind, and existing collections untouched;
- a bad record found mid-stream with `--on-error fail` leaves the batches before it stored and
  checkpointed, and nothing of the batch that holds it.

Source-level details (every rejection code, Parquet/HF policies, streaming memory) are unit-tested in
tests/ingest/sources/; the inputs are built with `tests/support/bad_inputs.py`, whose builders
`python -m benchmarks.bad_inputs` uses too to print the same cases as a person sees them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import ingest.sources.registry as registry
from ingest.__main__ import main
from ingest.records import point_id
from ingest.stores import open_store
from ingest.stores.server import ServerStore
from tests.support.bad_inputs import (
    NFCORPUS_MD5,
    doc,
    free_port,
    serve_bytes,
    write_collections_config,
    write_corpus,
    write_escaping_zip,
    write_huge_corpus,
    write_parquet,
)

CORPUS = "toy/corpus.jsonl"
COLLECTION = "toy-d64-none"


@dataclass
class Result:
    """One CLI run."""

    code: int
    out: str
    err: str

    @property
    def summary(self) -> dict[str, Any]:
        """The `--json` summary on stdout."""
        data: dict[str, Any] = json.loads(self.out)
        return data


Cli = Callable[..., Result]


@pytest.fixture
def cli(
    tmp_path: Path, small_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """Run `python -m ingest` in-process in `tmp_path` (`--data-dir data`, the small model, 64-d, none)."""
    monkeypatch.chdir(tmp_path)
    for var in ("STATIC_INGEST_BEIR_DIR", "STATIC_INGEST_DATA_DIR", "QDRANT_URL", "QDRANT_API_KEY"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str, matrix: bool = True) -> Result:
        options = ["--data-dir", "data", "--model", str(small_model_dir), "--no-progress"]
        if matrix:
            options += ["--dims", "64", "--quantization", "none"]
        capsys.readouterr()
        code = main([*args, *options])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def stored_ids(data_dir: Path, name: str = COLLECTION) -> set[str]:
    """Every point id of a collection."""
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        return set(store.scroll_ids(name))


def ids_of(*doc_ids: str, dataset: str = "toy") -> set[str]:
    """Point ids of single-chunk documents."""
    return {point_id(dataset, d, 0) for d in doc_ids}


def checkpointed(data_dir: Path, name: str = COLLECTION) -> set[int]:
    """Batch numbers in a collection's checkpoint."""
    raw = json.loads((data_dir / "state" / "edge" / f"{name}.checkpoint.json").read_text(encoding="utf-8"))
    return {int(k) for k in raw["done"]}


def rejected_lines(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of the run's rejected.jsonl."""
    path = Path(summary["run_dir"]) / "rejected.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_nothing_created(tmp_path: Path) -> None:
    """No collection, checkpoint or run directory exists under `tmp_path/data`."""
    for sub in ("qdrant", "state", "runs"):
        assert not (tmp_path / "data" / sub).exists(), f"data/{sub} was created"


# -- records ------------------------------------------------------------------------------------------


def test_malformed_line_mid_stream_keeps_the_batches_before_it(tmp_path: Path, cli: Cli) -> None:
    good = [f"d{i}" for i in [*range(1, 18), 19]]
    write_corpus(tmp_path / "toy", [doc(i) for i in range(1, 18)] + ['{"_id": "d18", "text": oops}', doc(19)])
    failed = cli(CORPUS, "--batch-docs", "5")
    assert failed.code == 2
    assert failed.err.startswith("error: toy/corpus.jsonl:18: malformed JSON (Expecting value at column 24)")
    assert "fix or remove that line" in failed.err and "--on-error skip" in failed.err
    # Lines 1-15 made batches 0-2, stored and checkpointed; batch 3 (lines 16-17, then 18) is not stored.
    assert stored_ids(tmp_path / "data") == ids_of(*good[:15])
    assert checkpointed(tmp_path / "data") == {0, 1, 2}
    assert not (tmp_path / "data" / "runs").exists()

    skipped = cli(CORPUS, "--batch-docs", "5", "--on-error", "skip", "--json")
    assert skipped.code == 0
    assert (skipped.summary["docs"], skipped.summary["rejected"]) == (18, 1)
    assert stored_ids(tmp_path / "data") == ids_of(*good)
    [rejection] = rejected_lines(skipped.summary)
    assert rejection["reason"] == "malformed_json" and rejection["location"] == "toy/corpus.jsonl:18"


def test_missing_id_names_the_line(tmp_path: Path, cli: Cli) -> None:
    write_corpus(tmp_path / "toy", [doc(1), doc(2), {"title": "no id", "text": "orphan"}])
    result = cli(CORPUS)
    assert result.code == 2
    assert 'toy/corpus.jsonl:3: record has no "_id" field' in result.err
    assert 'give every line a "_id"' in result.err and "--on-error skip" in result.err
    assert stored_ids(tmp_path / "data") == set()  # the first batch held the bad line


def test_every_rejection_is_written_past_the_counter_cap_and_runs_get_their_own_dir(
    tmp_path: Path, cli: Cli
) -> None:
    bad = 1200  # SourceCounters keeps the first 1000; rejected.jsonl must hold every one
    lines: list[dict[str, Any]] = [{"title": f"no id {i}", "text": "x"} for i in range(bad)]
    write_corpus(tmp_path / "toy", [*lines, *(doc(i) for i in range(5))])
    first = cli(CORPUS, "--on-error", "skip", "--json")
    second = cli(CORPUS, "--on-error", "skip", "--json")  # same second, most likely: still its own dir
    for result in (first, second):
        assert result.code == 0
        assert (result.summary["rejected"], result.summary["docs"]) == (bad, 5)
        records = rejected_lines(result.summary)
        assert len(records) == bad
        assert {r["reason"] for r in records} == {"missing_id"}
        assert [r["location"] for r in records] == [f"toy/corpus.jsonl:{n}" for n in range(1, bad + 1)]
    assert first.summary["run_dir"] != second.summary["run_dir"]
    assert len(list((tmp_path / "data" / "runs" / "toy").iterdir())) == 2
    assert stored_ids(tmp_path / "data") == ids_of(*(f"d{i}" for i in range(5)))


def test_duplicate_id_fails_before_any_collection_exists(tmp_path: Path, cli: Cli) -> None:
    write_corpus(tmp_path / "toy", [doc(1), doc(2), doc(3), doc(1, text="second copy")])
    result = cli(CORPUS)
    assert result.code == 2
    assert "1 duplicate id(s): 'd1' at toy/corpus.jsonl:1, toy/corpus.jsonl:4" in result.err
    assert "--on-duplicate first" in result.err and "--on-duplicate last" in result.err
    assert_nothing_created(tmp_path)


@pytest.mark.parametrize(
    ("policy", "kept"), [("first", "document number 1 about cells"), ("last", "second copy")]
)
def test_on_duplicate_keeps_that_copy(tmp_path: Path, cli: Cli, policy: str, kept: str) -> None:
    write_corpus(tmp_path / "toy", [doc(1), doc(2), doc(1, text="second copy")])
    result = cli(CORPUS, "--on-duplicate", policy, "--json")
    assert result.code == 0 and result.summary["docs"] == 2
    assert result.summary["source"]["counters"]["duplicates_dropped"] == 1
    with open_store(data_dir=tmp_path / "data", qdrant_url=None, read_only=True) as store:
        assert set(store.scroll_ids(COLLECTION)) == ids_of("d1", "d2")
        [point] = store.retrieve(COLLECTION, [point_id("toy", "d1", 0)], with_vectors=False)
    assert point.payload["text"] == f"Title 1 {kept}"


def test_empty_title_and_text_are_skipped_and_counted(tmp_path: Path, cli: Cli) -> None:
    write_corpus(tmp_path / "toy", [doc(1), doc(2, title="", text=""), doc(3, title=" ", text="\n")])
    result = cli(CORPUS, "--json")
    assert result.code == 0
    assert (result.summary["docs"], result.summary["skipped_empty"], result.summary["rejected"]) == (1, 2, 0)
    assert stored_ids(tmp_path / "data") == ids_of("d1")


def test_invalid_utf8_names_the_line_or_is_rejected(tmp_path: Path, cli: Cli) -> None:
    latin1 = json.dumps(doc(2, text="caf\u00e9")).encode().replace(b"caf\\u00e9", b"caf\xe9")
    write_corpus(tmp_path / "toy", [doc(1), latin1, doc(3)])
    failed = cli(CORPUS)
    assert failed.code == 2
    assert "toy/corpus.jsonl:2: invalid UTF-8 at byte 46 of the line" in failed.err
    assert "iconv -f latin1 -t utf-8" in failed.err
    skipped = cli(CORPUS, "--on-error", "skip", "--json")
    assert skipped.code == 0 and (skipped.summary["docs"], skipped.summary["rejected"]) == (2, 1)
    [rejection] = rejected_lines(skipped.summary)
    assert (rejection["reason"], rejection["location"]) == ("invalid_utf8", "toy/corpus.jsonl:2")
    assert stored_ids(tmp_path / "data") == ids_of("d1", "d3")


# -- a 10 MB document ---------------------------------------------------------------------------------

HUGE_TIMEOUT_S = 90
# Peak RSS a 10 MB document may add over a run of small documents: 40 times its size.
HUGE_EXTRA_RSS_MB = 400


def _ingest_process(folder: Path, model: Path, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "ingest", CORPUS, "--data-dir", "data", "--model", str(model)]
    cmd += ["--dims", "64", "--quantization", "none", "--no-progress", "--json"]
    try:
        done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ingest of {folder / CORPUS} did not finish within {timeout:.0f} s")
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def test_ten_megabyte_document_is_chunked_in_bounded_memory(tmp_path: Path, small_model_dir: Path) -> None:
    write_corpus(tmp_path / "small" / "toy", [doc(i) for i in range(3)])
    baseline = _ingest_process(tmp_path / "small", small_model_dir, HUGE_TIMEOUT_S)
    corpus = write_huge_corpus(tmp_path / "huge" / "toy")
    text = json.loads(corpus.read_text(encoding="utf-8").splitlines()[1])["text"]
    summary = _ingest_process(tmp_path / "huge", small_model_dir, HUGE_TIMEOUT_S)
    assert summary["docs"] == 3 and summary["verified"]
    extra = summary["peak_rss_mb"] - baseline["peak_rss_mb"]
    assert extra < HUGE_EXTRA_RSS_MB, f"a 10 MB document added {extra:.0f} MB of peak RSS"
    from ingest.encoder.static import load_encoder

    encoder = load_encoder(str(small_model_dir), data_dir=tmp_path)
    n = summary["chunks"] - 2
    ids = [point_id("toy", "huge", k) for k in range(n)]
    with open_store(data_dir=tmp_path / "huge" / "data", qdrant_url=None, read_only=True) as store:
        chunks = [p.payload for p in store.retrieve(COLLECTION, ids, with_vectors=False)]
    assert len(chunks) == n > len(text) // (512 * 8)
    assert max(encoder.count_tokens([c["text"] for c in chunks])) <= 512
    assert chunks[0]["char_start"] == 0 and chunks[-1]["char_end"] == len(text)
    # Consecutive windows overlap (64 tokens) and never leave a gap.
    assert all(b["char_start"] < a["char_end"] for a, b in pairwise(chunks))


# -- targets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            {"doc_id": ["a"], "body": ["text"]},
            "error: corpus.parquet: no id column 'id'; the file has columns ['doc_id', 'body']: "
            "name the right one with --id-col",
        ),
        (
            {"id": ["a"], "text": [["not", "a", "string"]]},
            "error: corpus.parquet: column 'text' (text) has type list<element: string>, expected a string: "
            "convert the column, or pick another one with --text-col",
        ),
    ],
    ids=["missing-column", "wrong-type"],
)
def test_parquet_schema_errors(
    tmp_path: Path, cli: Cli, columns: dict[str, list[Any]], expected: str
) -> None:
    write_parquet(tmp_path / "corpus.parquet", columns)
    result = cli("corpus.parquet")
    assert (result.code, result.err.strip()) == (2, expected)
    assert_nothing_created(tmp_path)


def test_zip_entry_escaping_the_folder_is_refused(tmp_path: Path, cli: Cli) -> None:
    write_escaping_zip(tmp_path / "toy.zip")
    result = cli("toy.zip")
    assert result.code == 2
    assert "toy.zip: refusing unsafe zip entry '../escape.txt'" in result.err
    assert "download it again from the official source" in result.err
    assert not list(tmp_path.parent.rglob("escape.txt"))
    assert_nothing_created(tmp_path)


@pytest.mark.parametrize("server", ["corrupt", "offline"])
def test_download_checksum_mismatch_or_failure_leaves_no_file(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    # The real download code runs against a loopback URL: a server serving the wrong bytes, or nothing.
    with serve_bytes(b"not the nfcorpus archive") as url:
        base = url if server == "corrupt" else f"http://127.0.0.1:{free_port()}"
        monkeypatch.setattr(registry, "BEIR_BASE_URL", base)
        result = cli("nfcorpus")
    assert result.code == 2
    target = tmp_path / "data" / "beir" / "nfcorpus.zip"
    if server == "corrupt":
        assert f"downloaded {base}/nfcorpus.zip has md5 " in result.err
        assert f"expected {NFCORPUS_MD5}: the file was deleted" in result.err and "md5sum" in result.err
    else:
        assert f"could not download {base}/nfcorpus.zip" in result.err
        assert f"(md5 {NFCORPUS_MD5}) on a connected machine and copy it to {target}" in result.err
    assert list((tmp_path / "data" / "beir").iterdir()) == []  # no archive, no partial download
    assert not (tmp_path / "data" / "qdrant").exists()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "nfcorpsu",
            "unknown dataset 'nfcorpsu': not a BEIR name and no nfcorpsu.zip or nfcorpsu/ in data/beir. "
            "did you mean 'nfcorpus'?",
        ),
        (
            "beir/../nfcorpus",
            "'beir/../nfcorpus' is not an existing path, and a dataset name cannot contain "
            "path separators: check the path, or give a plain BEIR name such as `scifact`",
        ),
    ],
    ids=["unknown-name", "path-separators"],
)
def test_bad_dataset_names(tmp_path: Path, cli: Cli, target: str, expected: str) -> None:
    result = cli(target)
    assert result.code == 2 and result.err.startswith(f"error: {expected}")
    assert_nothing_created(tmp_path)


@pytest.mark.parametrize(
    ("dim", "quantization", "difference"),
    [
        (64, "binary", "quantization: stored 'none', requested 'binary'"),
        (32, "none", "dim: stored 64, requested 32"),
    ],
    ids=["quantization", "dimension"],
)
def test_mismatch_with_an_existing_collection_touches_nothing(
    tmp_path: Path, cli: Cli, dim: int, quantization: str, difference: str
) -> None:
    write_corpus(tmp_path / "toy", [doc(i) for i in range(3)])
    write_collections_config(tmp_path / "first.toml", [{"dim": 64, "name_template": "toy-main"}])
    assert cli(CORPUS, "--config", "first.toml", matrix=False).code == 0
    data = tmp_path / "data"
    manifest = (data / "qdrant" / "toy-main" / "manifest.json").read_bytes()
    checkpoint = (data / "state" / "edge" / "toy-main.checkpoint.json").read_bytes()
    # A new collection listed first must not be created when a later one does not match.
    write_collections_config(
        tmp_path / "second.toml",
        [
            {"dim": 64, "name_template": "toy-extra"},
            {"dim": dim, "quantization": quantization, "name_template": "toy-main"},
        ],
    )
    result = cli(CORPUS, "--config", "second.toml", matrix=False)
    assert result.code == 2
    assert (
        "collection 'toy-main' (data/qdrant/toy-main) already exists with a different configuration"
        in result.err
    )
    assert difference in result.err and "Nothing was changed. Pass --recreate" in result.err
    assert not (data / "qdrant" / "toy-extra").exists()
    assert (data / "qdrant" / "toy-main" / "manifest.json").read_bytes() == manifest
    assert (data / "state" / "edge" / "toy-main.checkpoint.json").read_bytes() == checkpoint
    assert stored_ids(data, "toy-main") == ids_of("d0", "d1", "d2")


def test_unreachable_server_names_the_url_and_never_the_key(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-key-never-printed"
    monkeypatch.setenv("QDRANT_API_KEY", secret)
    # The real client and retry loop, with 2 attempts 10 ms apart instead of 6 over 15.5 s.
    defaults = {**(ServerStore.__init__.__kwdefaults__ or {}), "max_retries": 1, "backoff_s": 0.01}
    monkeypatch.setattr(ServerStore.__init__, "__kwdefaults__", defaults)
    write_corpus(tmp_path / "toy", [doc(1)])
    url = f"http://127.0.0.1:{free_port()}"
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # qdrant-client: "Api key is used with an insecure connection"
        result = cli(CORPUS, "--qdrant-url", url)
    assert result.code == 2
    assert (
        f"error: Qdrant server {url} is unreachable: checking collection 'toy-d64-none' failed" in result.err
    )
    assert "after 2 attempts" in result.err and "Is the server running? Check --qdrant-url" in result.err
    assert secret not in result.err + result.out
    assert not (tmp_path / "data" / "state").exists()
