"""The reader's queue of document batches, bounded by documents."""

from __future__ import annotations

import queue
import threading

import pytest

from ingest.records import Document
from ingest.run_modes import DocQueue


def docs(n: int) -> list[Document]:
    return [Document(id=str(i), title="", text="t") for i in range(n)]


def test_doc_queue_holds_at_most_max_docs_and_always_one_item() -> None:
    q = DocQueue(100)
    for no in range(4):
        q.put((no, docs(25)), timeout=0.1)  # four small batches fit where a count bound of 2 would not
    with pytest.raises(queue.Full):
        q.put((4, docs(1)), timeout=0.05)
    q.put("end", timeout=0.05)  # the end marker counts as no document
    assert [q.get(timeout=0.1)[0] for _ in range(4)] == [0, 1, 2, 3] and q.get(timeout=0.1) == "end"
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    q.put((5, docs(500)), timeout=0.05)  # bigger than the bound: fits an empty queue
    with pytest.raises(queue.Full):
        q.put((6, docs(1)), timeout=0.05)


def test_doc_queue_wakes_a_waiting_writer_when_room_is_made() -> None:
    q = DocQueue(10)
    q.put((0, docs(10)))
    done = threading.Event()

    def writer() -> None:
        q.put((1, docs(10)), timeout=5)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert not done.wait(0.1)
    assert q.get(timeout=1)[0] == 0
    assert done.wait(5) and q.get(timeout=1)[0] == 1
    thread.join()
