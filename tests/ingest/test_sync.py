"""Syncing a changed corpus (`--sync`), per-document records, shard generations and truthful status.

Corpus v1 is the first 600 NFCorpus documents; v2 deletes 16 of them, edits the text of 20, shortens
10 (a quarter of their words: fewer chunks), lengthens 10 (text doubled: more chunks), retitles 5 and
inserts 25 new ones in the middle (so batches shift). Chunks are 64-token windows, so most documents
have several. Every check compares whole collections with a clean ingest of the same corpus: same
point ids, bit-identical vectors, equal payloads, nothing extra.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.kill_resume import (
    KillPlan,
    Snapshot,
    differences,
    plan_kills,
    run_and_kill,
    run_to_end,
    snapshot,
)
from ingest.config import CollectionSpec, IngestConfig
from ingest.errors import InputError
from ingest.pipeline import IngestSummary, run_ingest
from ingest.records import point_id
from ingest.stores import open_store

NFCORPUS = Path(__file__).resolve().parents[3] / "shared" / "beir" / "nfcorpus.zip"
NAME = "nfsync"
COLLECTIONS = ("nfsync-d64-none", "nfsync-d32-binary")
DELETED = [i for i in range(0, 151, 10)]
EDITED = [i for i in range(5, 200, 10)]
SHORTENED = [i for i in range(3, 100, 10)]
LENGTHENED = [i for i in range(7, 100, 10)]
RETITLED = [i for i in range(201, 250, 10)]
ADDED = 25


def _write_corpus(folder: Path, docs: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str], list[str]]:
    """BEIR folders v1 and v2 (see the module docstring), the ids of v2's changed and added documents."""
    with zipfile.ZipFile(NFCORPUS) as zf, zf.open("nfcorpus/corpus.jsonl") as fh:
        docs = [json.loads(next(fh)) for _ in range(600 + ADDED)]
    v1, extra = docs[:600], docs[600:]
    v2: list[dict[str, Any]] = []
    changed: list[str] = []
    for i, doc in enumerate(v1):
        doc = dict(doc)
        if i in DELETED:
            continue
        words = doc["text"].split()
        if i in EDITED:
            doc["text"] += " (revised)"
        elif i in SHORTENED:
            doc["text"] = " ".join(words[: max(1, len(words) // 4)])
        elif i in LENGTHENED:
            doc["text"] = doc["text"] + " " + doc["text"]
        elif i in RETITLED:
            doc["title"] = "Revised: " + doc["title"]
        if i in EDITED + SHORTENED + LENGTHENED + RETITLED:
            changed.append(doc["_id"])
        v2.append(doc)
        if i == 300:
            v2.extend(extra)
    root = tmp_path_factory.mktemp("versions")
    return (
        _write_corpus(root / "v1" / NAME, v1),
        _write_corpus(root / "v2" / NAME, v2),
        changed,
        [d["_id"] for d in extra],
    )


def cfg(data_dir: Path, model: Path, **kw: Any) -> IngestConfig:
    options: dict[str, Any] = {
        "model": str(model),
        "data_dir": data_dir,
        "collections": [
            CollectionSpec(dim=64, quantization="none"),
            CollectionSpec(dim=32, quantization="binary"),
        ],
        "batch_docs": 100,
        "chunk_tokens": 64,
        "chunk_overlap": 8,
        "name": NAME,
    }
    options.update(kw)
    return IngestConfig(**options)


def ingest(target: Path, data_dir: Path, model: Path, **kw: Any) -> IngestSummary:
    return run_ingest(str(target), cfg(data_dir, model, **kw), progress=False)


def manifests(data_dir: Path) -> dict[str, dict[str, Any]]:
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        return {name: store.get_metadata(name) for name in COLLECTIONS}


@pytest.fixture(scope="module")
def clean_v1(
    versions: tuple[Path, Path, list[str], list[str]],
    small_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Snapshot]:
    """A clean ingest of v1 (kept as a template: tests copy it) and its points."""
    data_dir = tmp_path_factory.mktemp("clean-v1") / "data"
    summary = ingest(versions[0], data_dir, small_model_dir)
    assert summary.verified and summary.added == 600
    return data_dir, snapshot(data_dir)


@pytest.fixture(scope="module")
def clean_v2(
    versions: tuple[Path, Path, list[str], list[str]],
    small_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Snapshot:
    """The points of a clean ingest of v2."""
    data_dir = tmp_path_factory.mktemp("clean-v2") / "data"
    assert ingest(versions[1], data_dir, small_model_dir).verified
    return snapshot(data_dir)


def copy_of(template: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(template, data_dir)
    return data_dir


def chunks_of(points: Snapshot, doc_ids: list[str]) -> int:
    wanted = set(doc_ids)
    return sum(1 for _, payload in points[COLLECTIONS[0]].values() if payload["doc_id"] in wanted)


# -- sync v1 -> v2 ------------------------------------------------------------------------------------


def test_sync_of_v2_leaves_exactly_a_clean_ingest_of_v2_and_encodes_only_what_changed(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    clean_v2: Snapshot,
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    _, v2, changed, added = versions
    data_dir = copy_of(clean_v1[0], tmp_path)
    old = Counter(p["doc_id"] for _, p in clean_v1[1][COLLECTIONS[0]].values())
    new = Counter(p["doc_id"] for _, p in clean_v2[COLLECTIONS[0]].values())
    # The corpus really shortens and lengthens documents by whole chunks.
    assert sum(new[d] < old[d] for d in changed) >= 8 and sum(new[d] > old[d] for d in changed) >= 8

    summary = ingest(v2, data_dir, small_model_dir)

    assert (summary.sync, summary.added, summary.changed, summary.deleted) == (
        "full",
        ADDED,
        45,
        len(DELETED),
    )
    assert summary.unchanged == 600 - len(DELETED) - 45
    assert summary.encoded_docs == len(changed) + len(added) == 70
    assert summary.encoded_chunks == chunks_of(clean_v2, changed + added)
    assert summary.verified and summary.docs == 609
    assert summary.points == {name: len(clean_v2[name]) for name in COLLECTIONS}
    assert differences(clean_v2, snapshot(data_dir)) == []
    for manifest in manifests(data_dir).values():
        assert manifest["status"] == "complete" and "reason" not in manifest
        assert manifest["docs"] == 609 and manifest["chunks"] == len(clean_v2[COLLECTIONS[0]])
    text = summary.format()
    assert f"sync        full: {ADDED} added, 45 changed, 539 unchanged, 16 deleted" in text
    assert "encoded     70 docs" in text


def test_a_sync_encoding_in_a_worker_process_is_exact_and_starts_no_worker_for_nothing(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    clean_v2: Snapshot,
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    """The path a sync of a big corpus takes (`choose_workers`): reading and planning here, the changed
    documents (gathered from several source batches) encoded in a worker process."""
    import multiprocessing

    data_dir = copy_of(clean_v1[0], tmp_path)
    summary = ingest(versions[1], data_dir, small_model_dir, workers=1)
    assert (summary.added, summary.changed, summary.deleted, summary.encoded_docs) == (ADDED, 45, 16, 70)
    assert summary.verified and differences(clean_v2, snapshot(data_dir)) == []
    assert multiprocessing.active_children() == []  # the worker is gone once the run returns
    noop = ingest(versions[1], data_dir, small_model_dir, workers=1)
    assert noop.encoded_docs == 0 and noop.verified and differences(clean_v2, snapshot(data_dir)) == []


def test_a_noop_rerun_encodes_nothing_and_says_so(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    data_dir = copy_of(clean_v1[0], tmp_path)
    again = ingest(versions[0], data_dir, small_model_dir)
    assert (again.encoded_docs, again.encoded_chunks, again.unchanged, again.deleted) == (0, 0, 600, 0)
    assert again.resumed_batches == 6 and again.stage_seconds["encode"] == 0.0
    assert "(nothing encoded)" in again.format() and "docs/s" not in again.format()
    # Without the checkpoints (another batch size: they do not apply), the records alone skip every document.
    other = ingest(versions[0], data_dir, small_model_dir, batch_docs=64)
    assert (other.resumed_batches, other.unchanged, other.encoded_docs, other.docs_per_s) == (0, 600, 0, 0.0)
    assert other.verified and differences(clean_v1[1], snapshot(data_dir)) == []
    assert {m["status"] for m in manifests(data_dir).values()} == {"complete"}


def test_limit_on_a_complete_collection_succeeds_and_deletes_nothing(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    data_dir = copy_of(clean_v1[0], tmp_path)
    summary = ingest(versions[0], data_dir, small_model_dir, limit=150)
    assert (summary.sync, summary.docs, summary.unchanged, summary.encoded_docs, summary.deleted) == (
        "incremental",
        150,
        150,
        0,
        0,
    )
    assert summary.verified and differences(clean_v1[1], snapshot(data_dir)) == []
    assert {m["status"] for m in manifests(data_dir).values()} == {"complete"}
    # A subset of v2: its changes are applied, nothing absent from the subset is deleted.
    partial = ingest(versions[1], data_dir, small_model_dir, limit=300)
    assert partial.sync == "incremental" and partial.deleted == 0 and partial.verified
    assert partial.changed > 0 and partial.added > 0
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        # v1's first document (MED-10) is not in v2, and stays.
        assert store.retrieve(COLLECTIONS[0], [point_id(NAME, "MED-10", 0)], with_vectors=False)


def test_sync_full_with_limit_is_refused_before_anything_is_written(
    versions: tuple[Path, Path, list[str], list[str]], small_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=r"--sync full .* --limit .* --sync incremental"):
        ingest(versions[0], tmp_path / "data", small_model_dir, sync="full", limit=10)
    assert not (tmp_path / "data").exists()


def test_sync_none_upserts_only_says_incomplete_and_eval_refuses_then_full_repairs(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    clean_v2: Snapshot,
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    from eval.errors import MissingCollectionError
    from eval.options import EvalOptions
    from eval.plan import plan_collections

    data_dir = copy_of(clean_v1[0], tmp_path)
    old = Counter(p["doc_id"] for _, p in clean_v1[1][COLLECTIONS[0]].values())
    new = Counter(p["doc_id"] for _, p in clean_v2[COLLECTIONS[0]].values())
    fewer = [d for d in versions[2] if new[d] < old[d]]  # the shortened documents that lost chunks
    upserted = ingest(versions[1], data_dir, small_model_dir, sync="none")
    assert upserted.encoded_docs == 609 and upserted.deleted == 0 and not upserted.verified
    for name, manifest in manifests(data_dir).items():
        assert manifest["status"] == "incomplete", name
        assert "may keep chunks of an older version" in manifest["reason"]
        assert manifest["reason"].endswith("rerun with --sync incremental or full")
    opts = EvalOptions(target=NAME, data_dir=data_dir, collections=cfg(data_dir, small_model_dir).collections)
    refused = r"does not hold exactly .*--sync incremental or full"
    with (
        open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store,
        pytest.raises(MissingCollectionError, match=refused),
    ):
        plan_collections(store, NAME, opts)

    repaired = ingest(versions[1], data_dir, small_model_dir)
    # Only the documents that lost chunks (content unknown after the upsert) are encoded again.
    assert repaired.encoded_docs == len(fewer) and repaired.deleted == len(DELETED)
    assert repaired.verified and differences(clean_v2, snapshot(data_dir)) == []
    with open_store(data_dir=data_dir, qdrant_url=None, read_only=True) as store:
        assert [t.name for t in plan_collections(store, NAME, opts).targets] == list(COLLECTIONS)


# -- shards, generations, checkpoints -----------------------------------------------------------------


def test_a_lost_shard_with_its_state_kept_is_rebuilt_exactly(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    data_dir = copy_of(clean_v1[0], tmp_path)
    shutil.rmtree(data_dir / "qdrant" / COLLECTIONS[0] / "shard")  # its manifest and checkpoint stay
    shutil.rmtree(data_dir / "qdrant" / COLLECTIONS[1])  # the whole collection directory
    assert (data_dir / "state" / "edge" / f"{COLLECTIONS[0]}.checkpoint.json").is_file()
    summary = ingest(versions[0], data_dir, small_model_dir)
    assert summary.resumed_batches == 0 and summary.added == 600 and summary.verified
    assert differences(clean_v1[1], snapshot(data_dir)) == []
    generations = {m["generation"] for m in manifests(data_dir).values()}
    assert len(generations) == 2 and all(len(g) == 32 for g in generations)


def test_recreate_killed_after_creating_the_shard_is_rebuilt_by_a_plain_rerun(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    """`--recreate` stopped between its steps: a new, empty shard; the checkpoints are the old ones."""
    from ingest.stores.edge import EdgeStore

    data_dir = copy_of(clean_v1[0], tmp_path)
    before = manifests(data_dir)
    with EdgeStore(data_dir / "qdrant") as store:  # drop + create, as --recreate does, then "killed"
        assert store.ensure_collection(COLLECTIONS[0], CollectionSpec(dim=64), recreate=True)
        assert store.get_metadata(COLLECTIONS[0]) == {}  # the old manifest went with the old shard
    summary = ingest(versions[0], data_dir, small_model_dir)
    assert summary.verified and summary.resumed_batches == 0
    assert differences(clean_v1[1], snapshot(data_dir)) == []
    after = manifests(data_dir)
    assert after[COLLECTIONS[0]]["generation"] != before[COLLECTIONS[0]]["generation"]
    assert after[COLLECTIONS[1]]["generation"] == before[COLLECTIONS[1]]["generation"]
    # The other collection had the whole corpus already: only the recreated one was written.
    assert summary.unchanged == 0 and summary.added == 600


def test_recreate_rebuilds_and_a_checkpoint_of_another_generation_is_void(
    versions: tuple[Path, Path, list[str], list[str]],
    clean_v1: tuple[Path, Snapshot],
    small_model_dir: Path,
    tmp_path: Path,
) -> None:
    data_dir = copy_of(clean_v1[0], tmp_path)
    path = data_dir / "state" / "edge" / f"{COLLECTIONS[0]}.checkpoint.json"
    stale = path.read_text(encoding="utf-8")
    summary = ingest(versions[0], data_dir, small_model_dir, recreate=True)
    assert summary.added == 600 and summary.verified
    path.write_text(stale, encoding="utf-8")  # a checkpoint of the shard --recreate dropped
    again = ingest(versions[0], data_dir, small_model_dir)
    assert again.resumed_batches == 0 and again.unchanged == 600 and again.encoded_docs == 0
    assert differences(clean_v1[1], snapshot(data_dir)) == []


# -- server backend -----------------------------------------------------------------------------------


def test_server_backend_sync_on_qdrant_client_local_mode(
    versions: tuple[Path, Path, list[str], list[str]], small_model_dir: Path, tmp_path: Path
) -> None:
    """API shape only (local mode): the record is rebuilt from the points' payloads on every run."""
    from qdrant_client import QdrantClient

    from ingest.stores.server import ServerStore

    url = "http://memory.invalid:6333"

    def server_points(store: ServerStore) -> dict[str, dict[str, tuple[Any, dict[str, Any]]]]:
        return {
            name: {p.id: (p.vector, p.payload) for p in store.retrieve(name, store.scroll_ids(name))}
            for name in COLLECTIONS
        }

    synced = ServerStore(url, client=QdrantClient(":memory:"))
    clean = ServerStore(url, client=QdrantClient(":memory:"))
    try:
        options = cfg(tmp_path / "data", small_model_dir, qdrant_url=url)
        first = run_ingest(str(versions[0]), options, progress=False, store=synced)
        assert first.added == 600 and first.verified
        summary = run_ingest(str(versions[1]), options, progress=False, store=synced)
        assert (summary.added, summary.changed, summary.deleted, summary.encoded_docs) == (ADDED, 45, 16, 70)
        assert summary.verified and synced.get_metadata(COLLECTIONS[0])["status"] == "complete"
        reference = run_ingest(
            str(versions[1]),
            cfg(tmp_path / "clean", small_model_dir, qdrant_url=url),
            progress=False,
            store=clean,
        )
        assert summary.points == reference.points
        got, want = server_points(synced), server_points(clean)
        for name in COLLECTIONS:
            assert got[name].keys() == want[name].keys()
            assert all(got[name][pid][1] == payload for pid, (_, payload) in want[name].items())
            # Local mode re-normalises an overwritten point's vector in its own arithmetic (1 ulp apart).
            assert all(
                np.allclose(got[name][pid][0], vec, rtol=0, atol=1e-6) for pid, (vec, _) in want[name].items()
            )
        [point] = synced.retrieve(COLLECTIONS[0], [point_id(NAME, versions[3][0], 0)], with_vectors=False)
        assert len(point.payload["doc_hash"]) == 32 and point.payload["chunk_count"] >= 1
        noop = run_ingest(str(versions[1]), options, progress=False, store=synced)
        assert noop.encoded_docs == 0 and noop.verified
        assert not list((tmp_path / "data" / "state").rglob("*.sqlite"))  # scratch records removed
    finally:
        synced.close()
        clean.close()


# -- kill -9 during a sync ----------------------------------------------------------------------------

KILLS = 5
SEED = 11


def cli(target: Path, data_dir: Path, model: Path) -> list[str]:
    """The CLI command equivalent to `cfg` (verbose: the kill harness needs its stage markers)."""
    return [
        sys.executable,
        "-m",
        "ingest",
        str(target),
        "--data-dir",
        str(data_dir),
        "--no-progress",
        "-v",
        "--model",
        str(model),
        "--name",
        NAME,
        "--batch-docs",
        "100",
        "--chunk-tokens",
        "64",
        "--chunk-overlap",
        "8",
        "--dims",
        "64",
        "--quantization",
        "none,binary",
    ]


@pytest.mark.slow
def test_sigkill_during_a_sync_then_rerun_gives_exactly_the_clean_v2(
    versions: tuple[Path, Path, list[str], list[str]],
    small_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1, v2, changed, added = versions
    # The same collections as the CLI's `--dims 64 --quantization none,binary`, written in-process.
    matrix = {"collections": [], "dims": [64], "quantizations": ["none", "binary"]}
    template = tmp_path / "v1"
    assert ingest(v1, template, small_model_dir, **matrix).verified
    reference_dir = tmp_path / "v2-clean"
    assert ingest(v2, reference_dir, small_model_dir, **matrix).verified
    reference = snapshot(reference_dir)
    shutil.copytree(template, tmp_path / "v1-sync")
    timeline, _ = run_to_end([*cli(v2, tmp_path / "v1-sync", small_model_dir), "--json"])
    assert differences(reference, snapshot(tmp_path / "v1-sync")) == []

    plans = plan_kills(timeline, KILLS, random.Random(SEED))
    # And in the middle of deleting the documents v2 dropped.
    plans.append(KillPlan("DEBUG deleting documents absent from the source", 0.0, 0.0))
    lines = []
    for i, plan in enumerate(plans):
        data_dir = tmp_path / f"kill-{i}"
        shutil.copytree(template, data_dir)
        outcome = run_and_kill(cli(v2, data_dir, small_model_dir), plan)
        _, out = run_to_end([*cli(v2, data_dir, small_model_dir), "--json"])
        summary = json.loads(out)
        problems = differences(reference, snapshot(data_dir))
        lines.append(
            f"kill {i}: {outcome.phase if outcome.killed else 'not killed'}; rerun encoded "
            f"{summary['encoded_docs']} docs; {problems or 'exact'}"
        )
        assert problems == [], lines[-1]
        assert summary["verified"] and set(summary["status"].values()) == {"complete"}, lines[-1]
        # Nothing unchanged is encoded again, whatever the kill left behind.
        assert summary["encoded_docs"] <= len(changed) + len(added), lines[-1]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert sum("not killed" not in line for line in lines) >= KILLS - 1
