"""The per-document record: lookups, intents that survive a crash, generations, payload rebuilds."""

from __future__ import annotations

from pathlib import Path

from ingest.record import DocRecord, Entry
from ingest.sync import SeenIds


def test_commit_lookup_totals_and_forget(tmp_path: Path) -> None:
    record = DocRecord(tmp_path / "r.sqlite", generation="g1")
    intent = record.begin([("a", 2), ("b", 1)])
    record.commit(intent, [("a", "h-a", 2), ("b", "h-b", 1)])
    assert record.lookup(["a", "b", "c"]) == {"a": Entry("h-a", 2), "b": Entry("h-b", 1)}
    assert (record.total_chunks(), record.doc_count(), record.unknown_count()) == (3, 2, 0)
    record.forget(["a"])
    assert (record.total_chunks(), record.doc_count()) == (1, 1)
    record.close()


def test_changed_returns_only_the_documents_held_at_another_or_no_content(tmp_path: Path) -> None:
    record = DocRecord(tmp_path / "r.sqlite", generation="g1")
    record.commit(None, [("same", "h1", 2), ("edited", "h2", 3), ("unknown", None, 4), ("7", "h7", 1)])
    now = {"same": "h1", "edited": "h2-new", "unknown": "h3", "added": "h4", "7": "h7", "é\u2028id": "h5"}
    assert record.changed(now) == {
        "edited": Entry("h2", 3),
        "unknown": Entry(None, 4),
        "added": None,
        "é\u2028id": None,
    }
    assert record.changed({"same": "h1", "7": "h7"}) == {} and record.changed({}) == {}
    record.close()


def test_an_intent_left_by_a_killed_run_marks_its_documents_unknown_with_the_larger_count(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite"
    record = DocRecord(path, generation="g1")
    record.commit(record.begin([("a", 5)]), [("a", "old", 5)])
    record.begin([("a", 5), ("new", 3)])  # a shortened and an added document; the run dies here
    record.close()
    reopened = DocRecord(path, generation="g1")
    assert reopened.lookup(["a", "new"]) == {"a": Entry(None, 5), "new": Entry(None, 3)}
    assert reopened.unknown_count() == 2 and reopened.total_chunks() == 8
    reopened.close()


def test_a_record_of_another_generation_forgets_every_hash(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    record = DocRecord(path, generation="g1")
    record.commit(None, [("a", "h", 2)])
    record.close()
    other = DocRecord(path, generation="g2")
    assert other.lookup(["a"]) == {"a": Entry(None, 2)}
    other.close()


def test_rebuild_from_payloads_keeps_only_consistent_documents(tmp_path: Path) -> None:
    def point(doc: str, no: int, h: str | None, count: int | None) -> dict[str, object]:
        return {"doc_id": doc, "chunk_no": no, "doc_hash": h, "chunk_count": count}

    pages = [
        [point("whole", 0, "h1", 2), point("whole", 1, "h1", 2), point("mixed", 0, "new", 1)],
        [point("mixed", 1, "old", 3), point("mixed", 2, "old", 3), point("gap", 0, "h", 3)],
        [point("gap", 2, "h", 3), point("legacy", 0, None, None)],
    ]
    record = DocRecord.rebuild_from_payloads(tmp_path / "r.sqlite", pages, generation="g")
    assert record.lookup(["whole", "mixed", "gap", "legacy"]) == {
        "whole": Entry("h1", 2),
        "mixed": Entry(None, 3),  # cut short between the upsert and the surplus deletion
        "gap": Entry(None, 3),
        "legacy": Entry(None, 1),  # written before records existed
    }
    record.close()


def test_absent_pages_through_what_the_run_did_not_see(tmp_path: Path) -> None:
    record = DocRecord(tmp_path / "r.sqlite", generation="g")
    record.commit(None, [(f"d{i}", "h", 1) for i in range(10)])
    seen = SeenIds.open(tmp_path / "state", "ds")
    seen.add([f"d{i}" for i in range(0, 10, 2)])
    gone: list[str] = []
    while page := record.absent(seen.path, 2):
        gone += [doc for doc, _ in page]
        record.forget([doc for doc, _ in page])
    assert sorted(gone) == ["d1", "d3", "d5", "d7", "d9"] and record.doc_count() == 5
    seen.close()
    assert not seen.path.exists()
    record.close()


def test_seen_files_of_dead_runs_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / "ds-999999-0.seen.sqlite"
    stale.write_bytes(b"")
    live = SeenIds.open(tmp_path, "ds")
    assert not stale.exists()
    other = SeenIds.open(tmp_path, "ds")
    assert live.path.exists() and other.path != live.path
    other.close()
    live.close()
