"""Advisory per-collection locks: one writer per embedded collection, readers never beside a writer."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ingest.errors import StoreError

LOCK_FILE_NAME = "ingest.lock"


class CollectionLock:
    """An `flock` on a lock file, taken without blocking.

    Shared mode is for reading, exclusive mode for writing; a shared lock can be upgraded in place.
    The kernel drops the lock when the process exits, so a crashed ingest never leaves a stale lock.
    Two opens in the same process conflict too (each open file description locks on its own).
    """

    def __init__(self, path: Path, collection: str) -> None:
        """Prepare a lock on `path` (created on first acquire) guarding `collection`."""
        self.path = path
        self.collection = collection
        self._fd: int | None = None
        self.exclusive = False

    @property
    def held(self) -> bool:
        """Whether any lock (shared or exclusive) is held."""
        return self._fd is not None

    def acquire(self, *, exclusive: bool) -> None:
        """Take (or upgrade to) the lock without waiting.

        Args:
            exclusive: True for writing, False for reading.

        Raises:
            StoreError: another process (or another store in this process) holds a conflicting lock.
        """
        if self._fd is not None and (self.exclusive or not exclusive):
            return
        fresh = self._fd is None
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            if fresh:
                self._close()
            else:
                # A failed upgrade may drop the shared lock (flock conversions are not atomic).
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._close()
            raise StoreError(self._busy_message(exclusive)) from None
        self.exclusive = exclusive

    def release(self) -> None:
        """Drop the lock (no-op when not held)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self.exclusive = False

    def _busy_message(self, exclusive: bool) -> str:
        if exclusive:
            return (
                f"collection {self.collection!r} is in use by another process (lock file {self.path}): "
                "another ingest is running, or an eval is reading it. Wait for it to finish (or stop it), "
                "or write to another collection name. The lock is released as soon as that process exits."
            )
        return (
            f"collection {self.collection!r} is being written by another process (lock file {self.path}): "
            "another ingest is running. Wait for it to finish (or stop it) before reading this collection."
        )
