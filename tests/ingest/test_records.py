"""The records that cross process boundaries: pickled exactly, without the slow dataclass path."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from ingest.records import Chunk, Document


def test_documents_and_chunks_round_trip_through_pickle_without_dataclasses_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = Document("d1", "A title", "Some text.", {"year": 2020, "tags": ["a"]}, "corpus.jsonl:7")
    chunk = Chunk("d1", 2, "A title Some", 0, 4)

    def no_fields(_: object) -> None:
        raise AssertionError("pickling went through dataclasses.fields")

    # The default pickling of a frozen slots dataclass reads `dataclasses.fields` for every object.
    monkeypatch.setattr(dataclasses, "fields", no_fields)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back_doc, back_chunk = pickle.loads(pickle.dumps((doc, chunk), protocol=protocol))
        assert back_doc == doc and back_doc.metadata == {"year": 2020, "tags": ["a"]}
        assert back_doc.location == "corpus.jsonl:7" and back_chunk == chunk
