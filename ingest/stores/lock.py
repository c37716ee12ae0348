"""Advisory per-collection locks: one writer per embedded collection, readers never beside a writer.

Read-only directories (a shared snapshot, a volume mounted read-only): a reader opens an existing lock
file read-only (`flock` needs no write access) and, when there is none to open, reads without a lock
and says so once in the log (nobody can write there either, so no writer can be beside it). A writer
there fails at once with one line naming the directory.

qdrant-edge itself cannot open a shard on a read-only file system (0.9.0 maps its payload storage
read-write: `Failed to open mmap payload storage: Read-only file system (os error 30)`), so a reader
of a read-only snapshot loads a private copy made by `writable_copy` (sparse files stay sparse).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ingest.errors import StoreError

LOCK_FILE_NAME = "ingest.lock"
# What open/mkdir report when a directory cannot be written: a read-only mount, or no permission.
NOT_WRITABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

log = logging.getLogger("ingest.stores")


def existing_ancestor(path: Path) -> Path:
    """Return `path` or its nearest existing ancestor (what a later `mkdir -p` would write into)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def read_only_reason(path: Path) -> str | None:
    """Say why nothing can be created under `path`, or return None when it looks writable.

    Checks the nearest existing ancestor: a file system mounted read-only (`statvfs` flag, which holds
    for root too), or no write and search permission (`os.access`, which root always passes).

    Args:
        path: A directory, existing or to be created.

    Returns:
        `"read-only file system"`, `"no write permission"`, or None.
    """
    where = existing_ancestor(path)
    try:
        if os.statvfs(where).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        return None
    if not os.access(where, os.W_OK | os.X_OK):
        return "no write permission"
    return None


def read_only_message(path: Path, reason: str, what: str = "write there") -> str:
    """The one-line refusal for writing under a read-only or unwritable directory."""
    return f"{path} is read-only ({reason}): cannot {what}: choose a writable --data-dir"


def check_writable_dir(path: Path, what: str = "write there") -> None:
    """Refuse early (before anything is created) when `path` cannot be written.

    Args:
        path: The directory (it may not exist yet: its nearest existing ancestor is checked).
        what: What the caller was about to do, for the message (`store collections`, ...).

    Raises:
        StoreError: `<path> is read-only (<reason>): cannot <what>: choose a writable --data-dir`.
    """
    reason = read_only_reason(path)
    if reason is not None:
        raise StoreError(read_only_message(path, reason, what))


def writable_copy(src: Path, parent: Path | None = None) -> Path:
    """Copy a directory tree (a shard of a read-only snapshot) to a new temporary directory.

    `cp -a --sparse=always --reflink=auto` keeps the engine's pre-sized files (32 MiB payload pages,
    vector chunks) as sparse as they were, so the copy takes the blocks the shard really uses; without
    `cp`, `shutil.copytree` is used (the copy is then fully allocated). The caller removes the copy
    (`shutil.rmtree(copy.parent)`) when done.

    Args:
        src: The directory to copy.
        parent: Where to create the temporary directory (default: the system's temp dir).

    Returns:
        `<new temp dir>/<src name>`.

    Raises:
        StoreError: the copy failed (e.g. no space in the temp dir), naming both paths.
    """
    tmp = Path(tempfile.mkdtemp(prefix="static-ingest-ro-", dir=parent))
    dest = tmp / Path(src).name
    try:
        if shutil.which("cp") is not None:
            done = subprocess.run(
                ["cp", "-a", "--sparse=always", "--reflink=auto", str(src), str(dest)],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise OSError(done.stderr.strip() or f"cp exited with {done.returncode}")
        else:
            shutil.copytree(src, dest, symlinks=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(
            f"cannot copy {src} to {tmp} to read it ({exc}): free space there (set TMPDIR), or make "
            f"{src.parent} writable"
        ) from exc
    return dest


class CollectionLock:
    """An `flock` on a lock file, taken without blocking.

    Shared mode is for reading, exclusive mode for writing; a shared lock can be upgraded in place.
    The kernel drops the lock when the process exits, so a crashed ingest never leaves a stale lock.
    Two opens in the same process conflict too (each open file description locks on its own).

    Attributes:
        unlocked_read: True while a read goes on without a lock because the directory is read-only
            and holds no lock file (see the module docstring).
    """

    def __init__(self, path: Path, collection: str) -> None:
        """Prepare a lock on `path` (created on first acquire) guarding `collection`."""
        self.path = path
        self.collection = collection
        self._fd: int | None = None
        self.exclusive = False
        self.unlocked_read = False

    @property
    def held(self) -> bool:
        """Whether any lock (shared or exclusive) is held, or an unlocked read of a read-only directory."""
        return self._fd is not None or self.unlocked_read

    def acquire(self, *, exclusive: bool) -> None:
        """Take (or upgrade to) the lock without waiting.

        Args:
            exclusive: True for writing, False for reading.

        Raises:
            StoreError: another process (or another store in this process) holds a conflicting lock;
                or, for writing, the directory is read-only or not writable (one line naming it).
        """
        if self.held and (self.exclusive or not exclusive):
            return
        if self.unlocked_read:  # an upgrade from an unlocked read: the directory is read-only
            raise StoreError(self._read_only_message(self._not_writable_reason()))
        fresh = self._fd is None
        if self._fd is None:
            self._fd = self._open(exclusive)
            if self._fd is None:
                self.unlocked_read = True
                return
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

    def _open(self, exclusive: bool) -> int | None:
        """Open (creating it if needed) the lock file; for a reader in a read-only directory, open it
        read-only, or return None when there is no lock file to open."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in NOT_WRITABLE_ERRNOS:
                raise
            if exclusive:
                raise StoreError(self._read_only_message(exc.strerror or str(exc))) from None
        try:
            # flock needs no write access: readers of a shared snapshot still exclude a writer that
            # may have the directory mounted read-write elsewhere on this machine.
            return os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            log.info(
                "%s is read-only and has no lock file: reading collection %r without a lock "
                "(no ingest can write there)",
                self.path.parent,
                self.collection,
            )
            return None
        except OSError as exc:
            if exc.errno not in NOT_WRITABLE_ERRNOS:
                raise
            log.info(
                "cannot open %s (%s): reading collection %r without a lock", self.path, exc, self.collection
            )
            return None

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
        self.unlocked_read = False

    def _not_writable_reason(self) -> str:
        return read_only_reason(self.path.parent) or "not writable"

    def _read_only_message(self, reason: str) -> str:
        return read_only_message(
            self.path.parent,
            reason.lower() if reason else "not writable",
            f"write collection {self.collection!r}",
        )

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
