"""One temporary Prefect server (SQLite in a temp dir) for the whole flows test session.

The environment is set when this module is imported, i.e. before any test module imports
`flows` or `prefect`: Prefect reads its settings when it is first imported.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="static-ingest-prefect-home-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
# A busy 2-core machine can take far longer than Prefect's default to start the server.
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Never talk to a developer's own server or Prefect Cloud from the tests.
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)


@pytest.fixture(scope="session")
def prefect_api_url() -> Iterator[str]:
    """Start a temporary Prefect server for the session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    # None: wait up to PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (set above).
    with prefect_test_harness(server_startup_timeout=None):
        url = PREFECT_API_URL.value()
        assert url, "the Prefect test harness did not set PREFECT_API_URL"
        yield url


class TinyCorpus(NamedTuple):
    """A BEIR folder written by the tests."""

    path: Path
    docs: int
    queries: int


WORDS = [
    "protein",
    "cell",
    "gene",
    "tumor",
    "virus",
    "immune",
    "dose",
    "trial",
    "patient",
    "brain",
    "heart",
    "lung",
    "liver",
    "blood",
    "insulin",
    "vitamin",
    "bacteria",
    "therapy",
    "receptor",
    "enzyme",
    "membrane",
    "neuron",
    "muscle",
    "bone",
    "skin",
    "diet",
]


def write_tiny_beir(root: Path, name: str = "tinybeir", docs: int = 120, queries: int = 12) -> TinyCorpus:
    """A BEIR folder: `docs` documents of a few words each, `queries` queries with 2 judged docs each."""
    folder = root / name
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(docs):
            words = [WORDS[(i * k + k) % len(WORDS)] for k in range(1, 4 + i % 9)]
            fh.write(json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": " ".join(words)}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for q in range(queries):
            fh.write(json.dumps({"_id": f"q{q}", "text": f"{WORDS[q]} {WORDS[(q * 5) % len(WORDS)]}"}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"q{q}\td{(q * 7 + j) % docs}\t1" for q in range(queries) for j in range(2)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return TinyCorpus(folder, docs, queries)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> TinyCorpus:
    """The tiny BEIR corpus `tinybeir` (120 docs, 12 queries), written once per session."""
    return write_tiny_beir(tmp_path_factory.mktemp("beir"))
