"""Handing items between threads through a bounded queue without blocking past a stop signal."""

from __future__ import annotations

import queue
import threading
from typing import Protocol, TypeVar

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)

# How long a blocked `put` waits before it looks at the stop signal again (seconds).
POLL_S = 0.1


class BoundedQueue(Protocol[T_contra]):
    """A queue whose `put` raises `queue.Full` after `timeout` seconds without room (as `queue.Queue`)."""

    def put(self, item: T_contra, block: bool = True, timeout: float | None = None) -> None:
        """Add `item`, waiting at most `timeout` seconds for room."""
        ...


def put_unless_stopped(q: BoundedQueue[T], item: T, stop: threading.Event) -> bool:
    """Put `item` into `q`, waiting for room until `stop` is set.

    Args:
        q: The queue (`queue.Queue`, `ingest.run_modes.DocQueue`).
        item: What to put.
        stop: Set by the consumer when it will take nothing more.

    Returns:
        True once the item is in the queue; False if `stop` was set first.
    """
    while not stop.is_set():
        try:
            q.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            continue
    return False
