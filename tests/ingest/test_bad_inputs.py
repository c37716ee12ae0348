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
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
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
    MountError,
    broken_stream_zip,
    crc_damaged_zip,
    damage_row_group,
    damaged_copy,
    doc,
    empty_parquet,
    free_port,
    good_parquet,
    hold_writer_lock,
    read_only,
    resize_tmpfs,
    saved_dataset,
    serve_bytes,
    small_tmpfs,
    truncated_member_zip,
    write_big_corpus,
    write_collections_config,
    write_corpus,
    write_escaping_zip,
    write_huge_corpus,
    write_parquet,
    write_toy_beir,
)
from tests.support.faulty_qdrant import FaultyQdrant

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
    # The real client and retry loop, with 2 attempts (--retries 1) 10 ms apart instead of 6 over 15.5 s.
    monkeypatch.setitem(ServerStore.__init__.__kwdefaults__, "backoff_s", 0.01)
    write_corpus(tmp_path / "toy", [doc(1)])
    url = f"http://127.0.0.1:{free_port()}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cli(CORPUS, "--qdrant-url", url, "--retries", "1")
    assert [str(w.message) for w in caught if "insecure" in str(w.message)] == []  # ours is a log line
    assert result.code == 2
    assert (
        f"error: Qdrant server {url} is unreachable: checking collection 'toy-d64-none' failed" in result.err
    )
    assert "after 2 attempts" in result.err and "Is the server running? Check --qdrant-url" in result.err
    assert secret not in result.err + result.out
    assert not (tmp_path / "data" / "state").exists()


# -- reliability: damaged and empty inputs, read-only and full disks, server faults -----------------------

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ZIP_FIX = (
    "the zip is corrupt or truncated (an interrupted download or copy); download or copy it again "
    "(`unzip -t toy.zip` lists the damaged members)"
)
EMPTY_FIX = (
    "check that this is the right file (a complete export, the right split), or pass --allow-empty to "
    "create empty collections anyway"
)


def last_line(result: Result) -> str:
    """The last line the run wrote to stderr (its error or warning)."""
    return result.err.strip().splitlines()[-1]


def manifest_of(data_dir: Path, name: str) -> dict[str, Any]:
    """A collection's manifest ({} when it has none)."""
    path = data_dir / "qdrant" / name / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def manifest_status(data_dir: Path, name: str) -> str | None:
    """The status in a collection's manifest (None when it has none)."""
    return manifest_of(data_dir, name).get("status")


@pytest.mark.parametrize(
    ("build", "cause"),
    [
        (crc_damaged_zip, "BadZipFile: Bad CRC-32 for file 'toy/corpus.jsonl'"),
        (truncated_member_zip, "BadZipFile: Bad CRC-32 for file 'toy/corpus.jsonl'"),
        (broken_stream_zip, "error: Error -3 while decompressing data: invalid block type"),
    ],
    ids=["crc", "truncated-member", "broken-stream"],
)
def test_damaged_zip_is_one_line(tmp_path: Path, cli: Cli, build: Callable[[Path], Path], cause: str) -> None:
    build(tmp_path)
    result = cli("toy.zip")
    assert result.code == 2
    assert (
        last_line(result)
        == f"error: toy.zip: toy/corpus.jsonl is damaged inside the archive ({cause}): {ZIP_FIX}"
    )
    assert "Traceback" not in result.err


def test_unreadable_parquet_row_group_is_one_line(tmp_path: Path, cli: Cli) -> None:
    damage_row_group(good_parquet(tmp_path / "corpus.parquet", rows=3000), 1)
    result = cli("corpus.parquet", "--title-col", "", "--batch-docs", "500")
    assert result.code == 2
    # pyarrow's own text in the middle (the thrift error) varies with the damaged bytes.
    assert last_line(result).startswith("error: corpus.parquet: row group 1 (of 3) cannot be read (OSError: ")
    assert last_line(result).endswith("the file is damaged (a corrupt page); re-export it or copy it again")


def test_broken_saved_hf_dataset_is_one_line(tmp_path: Path, cli: Cli) -> None:
    saved = saved_dataset(tmp_path / "original")
    damaged_copy(saved, tmp_path / "saved", "truncated")
    result = cli("saved")
    assert result.code == 2
    line = last_line(result)
    assert line.startswith(
        "error: saved: cannot read the saved dataset (OSError: Expected to be able to read "
    )
    assert line.endswith(
        "a data file (data-00000-of-00001.arrow) is damaged or truncated; copy the folder again, or re-run "
        "`save_to_disk`"
    )
    assert_nothing_created(tmp_path)


@pytest.mark.parametrize("kind", ["parquet", "corpus"])
def test_empty_source_warns_and_exits_1_with_no_complete_collection(
    tmp_path: Path, cli: Cli, kind: str
) -> None:
    if kind == "parquet":
        empty_parquet(tmp_path / "corpus.parquet")
        target, name = "corpus.parquet", "corpus-d64-none"
    else:
        write_corpus(tmp_path / "toy", ["", "  "])
        target, name = CORPUS, COLLECTION
    result = cli(target)
    assert (result.code, result.err.strip()) == (
        1,
        f"warning: {target}: no documents to ingest: it holds no records: {EMPTY_FIX}",
    )
    assert manifest_status(tmp_path / "data", name) == "incomplete"  # not `loading`: no ingest is running
    assert "--allow-empty" in manifest_of(tmp_path / "data", name)["reason"]
    assert not (tmp_path / "data" / "runs").exists()


def test_an_empty_source_leaves_a_filled_collection_as_it_was(tmp_path: Path, cli: Cli) -> None:
    """A source emptied since the last run: nothing is deleted (even with --sync full) and the
    collection keeps its complete manifest; the warning and exit 1 as for any empty source."""
    write_corpus(tmp_path / "toy", [doc(1), doc(2)])
    assert cli(CORPUS).code == 0
    before = stored_ids(tmp_path / "data", COLLECTION)
    write_corpus(tmp_path / "toy", ["", "  "])
    result = cli(CORPUS, "--sync", "full")
    assert result.code == 1 and result.err.startswith("warning: ")
    assert manifest_status(tmp_path / "data", COLLECTION) == "complete"
    assert stored_ids(tmp_path / "data", COLLECTION) == before and len(before) == 2


def test_allow_empty_makes_complete_empty_collections(tmp_path: Path, cli: Cli) -> None:
    empty_parquet(tmp_path / "corpus.parquet")
    result = cli("corpus.parquet", "--allow-empty", "--json")
    assert result.code == 0, result.err
    assert (result.summary["docs"], result.summary["chunks"], result.summary["verified"]) == (0, 0, True)
    assert manifest_status(tmp_path / "data", "corpus-d64-none") == "complete"
    assert stored_ids(tmp_path / "data", "corpus-d64-none") == set()


def test_ingest_into_a_read_only_data_dir_is_one_line(tmp_path: Path, cli: Cli) -> None:
    write_corpus(tmp_path / "toy", [doc(1)])
    (tmp_path / "data").mkdir()
    with read_only(tmp_path / "data") as how:
        result = cli(CORPUS)
    reason = {"mount": "read-only file system", "chmod": "no write permission"}[how]
    assert (result.code, result.err.strip()) == (
        2,
        f"error: data is read-only ({reason}): cannot write checkpoints, run records and collections: "
        "choose a writable --data-dir",
    )
    assert list((tmp_path / "data").iterdir()) == []


EVAL_OPTIONS = [
    *("--data-dir", "data", "--dims", "64", "--quantization", "none,binary", "--out", "reports"),
    *("--permutations", "200", "--hnsw-ef", "64", "--oversampling", "1", "--clients", "1", "--warmup", "0"),
]


def run_eval(*args: str) -> Result:
    """`python -m eval` in a child process in the current directory (what a person sees)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "eval", *EVAL_OPTIONS, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def test_eval_reads_a_complete_read_only_dataset(tmp_path: Path, cli: Cli) -> None:
    write_toy_beir(tmp_path / "toy")
    assert cli("toy", "--dims", "64", "--quantization", "none,binary", matrix=False).code == 0
    copies_before = set(Path(tempfile.gettempdir()).glob("static-ingest-ro-*"))
    with read_only(tmp_path / "data") as how:
        result = run_eval("toy", "--run-id", "ro")
    assert result.code == 0, result.err
    if how == "mount":  # the engine cannot load these shards in place: each is read from a private copy
        notes = [line for line in result.err.splitlines() if "reading a private copy" in line]
        assert len(notes) == 2, result.err
        assert notes[0].startswith(
            "WARNING collection 'toy-d64-none': data/qdrant/toy-d64-none/shard is read-only "
            "(read-only file system) and qdrant-edge cannot load a shard read-only: reading a private "
            "copy in "
        )
    results = json.loads((tmp_path / "reports" / "toy" / "ro" / "results.json").read_text(encoding="utf-8"))
    assert results  # the report was written, from both collections
    assert "toy-d64-binary" in json.dumps(results) and "toy-d64-none" in json.dumps(results)
    assert set(Path(tempfile.gettempdir()).glob("static-ingest-ro-*")) == copies_before  # copies removed


def test_eval_during_or_after_a_stopped_ingest_says_which(tmp_path: Path, cli: Cli) -> None:
    write_toy_beir(tmp_path / "toy", docs=20)
    with (tmp_path / "toy" / "corpus.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"_id": "d99", "text": oops}\n')  # the ingest stops at this line: status stays 'loading'
    assert cli("toy", "--dims", "64", "--quantization", "none", "--batch-docs", "5", matrix=False).code == 2
    assert manifest_status(tmp_path / "data", COLLECTION) == "loading"
    where = "none of the configured collections of 'toy' is ready in data (embedded): toy-d64-none: "
    unfinished = "ingest not finished (status 'loading'): "
    with hold_writer_lock(tmp_path / "data", COLLECTION):  # as the running ingest holds it
        running = run_eval("toy", "--quantization", "none")
    assert running.code == 2
    assert last_line(running) == (
        f"error: {where}{unfinished}an ingest is writing it now (it holds the collection's lock): wait for "
        "it to end, then rerun this eval"
    )
    stopped = run_eval("toy", "--quantization", "none")
    assert stopped.code == 2
    assert last_line(stopped) == (
        f"error: {where}{unfinished}no ingest is running, so the last one stopped before the end: rerun "
        "`python -m ingest toy` with the same options to complete it"
    )


def ingest_process(folder: Path, model: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`python -m ingest` (the supervised entry point) in a child process in `folder`."""
    full_env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    for var in ("STATIC_INGEST_BEIR_DIR", "STATIC_INGEST_DATA_DIR", "QDRANT_URL"):
        full_env.pop(var, None)
    cmd = [
        sys.executable,
        "-m",
        "ingest",
        *args,
        "--data-dir",
        "data",
        "--model",
        str(model),
        "--no-progress",
    ]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=full_env, timeout=600)
    return Result(done.returncode, done.stdout, done.stderr)


def shown(result: Result) -> list[str]:
    """stderr without log lines below WARNING."""
    return [line for line in result.err.splitlines() if not line.startswith(("DEBUG", "INFO"))]


def test_api_key_with_http_is_our_one_line_warning(tmp_path: Path, small_model_dir: Path) -> None:
    write_corpus(tmp_path / "toy", [doc(1)])
    secret = "s3cret-key-never-printed"
    url = f"http://127.0.0.1:{free_port()}"
    options = ["--qdrant-url", url, "--retries", "0", "--dims", "64", "--quantization", "none"]
    result = ingest_process(tmp_path, small_model_dir, CORPUS, *options, env={"QDRANT_API_KEY": secret})
    assert result.code == 2
    lines = shown(result)
    assert lines[0] == (
        f"WARNING QDRANT_API_KEY is sent unencrypted to {url} (an http:// URL): anyone on the network path "
        "can read it; use https:// (or no key for a server without authentication)"
    )
    assert len(lines) == 2 and lines[1].startswith(f"error: Qdrant server {url} is unreachable: ")
    assert "UserWarning" not in result.err and "insecure connection" not in result.err
    assert secret not in result.err + result.out


@pytest.mark.parametrize(
    ("fault", "state", "cause", "advice"),
    [
        (
            503,
            "kept failing",
            "UnexpectedResponse: Unexpected Response: 503 (Service Unavailable)",
            "Check the server's logs, load and disk; --retries allows more attempts (now 1).",
        ),
        (
            "drop",
            "kept dropping the connection",
            "ResponseHandlingException: Server disconnected without sending a response.",
            "Check the server's logs (a crash or restart) and any proxy in between; --retries allows more "
            "attempts (now 1).",
        ),
        (
            "slow",
            "kept timing out",
            "ResponseHandlingException: timed out",
            "The server is overloaded or the request too big: raise --timeout, or check the server's load; "
            "--retries allows more attempts (now 1).",
        ),
    ],
    ids=["5xx", "drop", "slow"],
)
def test_server_faults_end_in_one_line_after_the_retries(
    tmp_path: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    fault: object,
    state: str,
    cause: str,
    advice: str,
) -> None:
    # The fake speaks REST only: the store is told not to prefer gRPC (the CLI's default).
    monkeypatch.setitem(open_store.__kwdefaults__, "prefer_grpc", False)
    monkeypatch.setitem(ServerStore.__init__.__kwdefaults__, "backoff_s", 0.01)
    write_corpus(tmp_path / "toy", [doc(1)])
    with FaultyQdrant(every=fault, slow_s=1.5) as fake:  # type: ignore[arg-type]
        started = time.monotonic()
        result = cli(CORPUS, "--qdrant-url", fake.url, "--retries", "1", "--timeout", "0.3")
        elapsed = time.monotonic() - started
        requests = fake.requests
    assert result.code == 2
    line = last_line(result)
    assert line.startswith(
        f"error: Qdrant server {fake.url} {state}: checking collection 'toy-d64-none' failed after 2 "
        "attempts over "
    )
    assert f"(timeout 0.3s per request; last error: {cause}" in line and line.endswith(advice)
    assert requests == 2  # --retries 1 reached the store
    if fault == "slow":
        assert elapsed < 1.5 + 10, "the sub-second timeout was not kept"
    assert not (tmp_path / "data" / "state").exists()


@pytest.fixture
def tmpfs_8m(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs at `tmp_path/data` (the data dir of a run in `tmp_path`)."""
    try:
        with small_tmpfs(tmp_path / "data", "8m") as where:
            yield where
    except MountError as exc:
        pytest.fail(f"a full disk needs a tmpfs and this process may not mount one ({exc}): run as root")


def test_full_disk_is_refused_then_stops_with_exit_75_then_a_rerun_with_space_is_exact(
    tmp_path: Path, small_model_dir: Path, tmpfs_8m: Path
) -> None:
    write_big_corpus(tmp_path / "big", docs=3000, text_chars=3000)
    args = ["big/corpus.jsonl", "--dims", "64", "--quantization", "none", "--json"]
    refused = ingest_process(tmp_path, small_model_dir, *args)
    assert refused.code == 2
    assert re.fullmatch(
        r"error: not enough disk space for this ingest: need [\d.]+ MB, free [\d.]+ MB at data: free space "
        r"or pass --force \(an estimate; a run that fills the disk stops with a message and keeps its stored "
        r"batches\)",
        last_line(refused),
    ), last_line(refused)
    full = ingest_process(tmp_path, small_model_dir, *args, "--force")
    assert full.code == 75
    assert re.fullmatch(
        r"error: the disk under data ran out of space while writing (the index of )?collection "
        r"'big-d64-none': free space "
        r"\(need ~[\d.]+ MB, free [\d.]+ k?B\) and rerun the same command; stored batches are kept",
        last_line(full),
    ), full.err
    assert "Bus error" not in full.err and "Traceback" not in full.err
    resize_tmpfs(tmpfs_8m, "400m")
    again = ingest_process(tmp_path, small_model_dir, *args)
    assert again.code == 0, again.err
    summary = json.loads(again.out)
    assert (summary["docs"], summary["verified"]) == (3000, True)
    assert summary["points"] == {"big-d64-none": summary["chunks"]}
    # Exactly the point set of a clean run: every chunk's id once.
    chunk_ids = {point_id("big", f"d{i}", k) for i in range(3000) for k in range(summary["chunks"] // 3000)}
    assert stored_ids(tmpfs_8m, "big-d64-none") == chunk_ids
