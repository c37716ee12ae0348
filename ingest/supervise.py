"""Run the ingest in a child process so a full disk ends with a message, never a bare "Bus error".

Why a child: qdrant-edge writes its segments through memory maps (payload pages, vectors, id tracker).
When the file system cannot back a dirty page (a full disk or tmpfs: the payload's `page_0.dat` is a
32 MiB sparse file filled page by page), the kernel sends SIGBUS to the thread touching the page.
Measured: NFCorpus into a 20 MB tmpfs dies in `EdgeStore.upsert` -> `EdgeShard.update` with exit 135
(`Bus error`) and no message. Python cannot turn that into an exception: its signal handlers run later,
in the main thread, while the faulting instruction is retried at once and faults again. So the work runs
in a forked child; the parent only waits, and when the child dies of SIGBUS (or raises ENOSPC/EDQUOT)
it prints one line and returns `EXIT_DISK_FULL`. Checkpoints stay consistent: a batch is checkpointed
only after the engine flushed it, so a rerun with space resumes after the stored batches.

Usage (the CLI, before heavy imports so the fork is cheap and no thread exists yet):

    from ingest.supervise import run_supervised
    return run_supervised(lambda: main(argv), data_dir=cfg.data_dir)

Inside the work, `set_activity("collection 'scifact-d256-binary'", need_bytes=estimate)` names what is
being written and the run's estimated size, so the parent's message can say them (a few bytes in a
shared anonymous map; a no-op outside a supervised run).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import signal
import struct
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from ingest.diskspace import free_bytes as _free_bytes
from ingest.diskspace import human_bytes

# sysexits' EX_TEMPFAIL: "a temporary failure; the user is invited to retry" (free space, rerun).
EXIT_DISK_FULL = 75
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How out-of-space errors read in engine messages (qdrant-edge's include the OS error text; its
# optimizer refuses to build an index without twice the segments' size free).
DISK_FULL_MARKERS = (
    "No space left on device",
    "Disk quota exceeded",
    "os error 28",
    "Not enough space available for optimization",
    "database or disk is full",  # SQLite's SQLITE_FULL (the ingest's per-document record)
)
# Below this much free space after a SIGBUS, the disk is taken to be full.
FULL_MARGIN_BYTES = 64 << 20
_ACTIVITY_BYTES = 512
_NEED_BYTES = 8  # the first 8 bytes of the shared map: the estimate, little-endian
_PR_SET_PDEATHSIG = 1

_activity: mmap.mmap | None = None


def set_activity(text: str, need_bytes: int | None = None) -> None:
    """Record what the work is writing now (e.g. `collection 'x'`) and, once known, the run's estimated
    size on disk, for the parent's message. A no-op outside `run_supervised`; cheap enough per batch.

    Args:
        text: What is being written.
        need_bytes: The estimate (`ingest.diskspace.need_for_run`); None keeps the one recorded before.
    """
    if _activity is None:
        return
    if need_bytes is not None:
        _activity[:_NEED_BYTES] = struct.pack("<Q", max(0, int(need_bytes)))
    data = text.encode("utf-8", "replace")[: _ACTIVITY_BYTES - _NEED_BYTES - 1]
    _activity[_NEED_BYTES:_ACTIVITY_BYTES] = data + b"\0" * (_ACTIVITY_BYTES - _NEED_BYTES - len(data))


def current_activity() -> tuple[str, int | None]:
    """What `set_activity` last recorded in this supervised run, and the estimate: ("", None) outside one."""
    return _read_activity(_activity) if _activity is not None else ("", None)


def _read_activity(buf: mmap.mmap) -> tuple[str, int | None]:
    """The recorded activity and estimate (None when none was recorded)."""
    need = struct.unpack("<Q", bytes(buf[:_NEED_BYTES]))[0]
    raw = bytes(buf[_NEED_BYTES:_ACTIVITY_BYTES]).split(b"\0", 1)[0]
    return raw.decode("utf-8", "replace"), (need or None)


def free_bytes(path: Path) -> int | None:
    """Free bytes under `path` (or its nearest existing ancestor), or None when they cannot be read."""
    try:
        return _free_bytes(path)
    except OSError:
        return None


def disk_full_message(data_dir: Path, activity: str = "", need_bytes: int | None = None) -> str:
    """The one-line message for a run that ran out of disk space.

    Args:
        data_dir: The data directory the run writes to.
        activity: What was being written (`collection 'x'`), if known.
        need_bytes: The run's estimated size on disk, if known.

    Returns:
        `error: the disk under <dir> ran out of space while writing <what>: free space (need ~X,
        free Y) and rerun the same command; stored batches are kept`.
    """
    what = activity or "the collections"
    free = free_bytes(data_dir)
    amounts = []
    if need_bytes is not None:
        amounts.append(f"need ~{human_bytes(need_bytes)}")
    if free is not None:
        amounts.append(f"free {human_bytes(free)}")
    detail = f" ({', '.join(amounts)})" if amounts else ""
    return (
        f"error: the disk under {data_dir} ran out of space while writing {what}: free space{detail} "
        "and rerun the same command; stored batches are kept"
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception (or one in its cause/context chain) is an out-of-space error: an OSError
    with ENOSPC/EDQUOT, or an engine error whose text says so (`No space left on device (os error 28)`,
    `Not enough space available for optimization, needed: …`).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        text = str(current)
        if any(marker in text for marker in DISK_FULL_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this child when the parent dies (Linux), so a killed ingest never
    leaves a writer holding the collection locks behind it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(128 + signal.SIGKILL)


def _child(work: Callable[[], int], data_dir: Path, need_bytes: int | None, parent: int) -> int:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = work()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException as exc:
        if is_disk_full(exc):
            activity, need = _read_activity(_activity) if _activity is not None else ("", None)
            print(disk_full_message(data_dir, activity, need_bytes or need), file=sys.stderr)
            code = EXIT_DISK_FULL
        else:
            traceback.print_exc()
            code = 1
    return code


def run_supervised(
    work: Callable[[], int],
    *,
    data_dir: Path,
    need_bytes: int | None = None,
    describe: str = "the ingest",
) -> int:
    """Run `work` in a forked child and turn a death by SIGBUS (or an ENOSPC error) into one line.

    The child runs `work()` and exits with its return code (SystemExit and KeyboardInterrupt become
    their codes; an escaping out-of-space OSError becomes the disk-full message). The parent ignores
    SIGINT while waiting (Ctrl-C reaches the child through the process group, which prints its own
    message), forwards SIGTERM/SIGHUP to it, and maps its end:

    - exit code n -> n;
    - SIGBUS -> the disk-full message (`disk_full_message`) when less than `FULL_MARGIN_BYTES` are free
      under `data_dir` (or `need_bytes` exceeds the free space), else a message about a memory-mapped
      write that failed; both return `EXIT_DISK_FULL`;
    - another signal s -> a one-line message, 128 + s.

    Args:
        work: The run; returns the exit code. Must not have started threads before the call.
        data_dir: The data directory the run writes to (named in the message; its free space is read).
        need_bytes: The run's estimated size on disk (`ingest.diskspace.estimate_bytes`), for the message.
        describe: How to call the work in messages.

    Returns:
        The exit code to end the process with.
    """
    global _activity
    buf = mmap.mmap(-1, _ACTIVITY_BYTES)  # anonymous and shared: the child writes, the parent reads
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        _activity = buf
        code = 1
        try:
            code = _child(work, data_dir, need_bytes, parent)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    return _wait(pid, buf, data_dir, need_bytes, describe)


def _wait(pid: int, buf: mmap.mmap, data_dir: Path, need_bytes: int | None, describe: str) -> int:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {
        s: signal.signal(s, h)
        for s, h in (
            (signal.SIGINT, signal.SIG_IGN),
            (signal.SIGTERM, forward),
            (signal.SIGHUP, forward),
        )
    }
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    sig = os.WTERMSIG(status)
    activity, recorded_need = _read_activity(buf)
    need_bytes = need_bytes or recorded_need
    if sig == signal.SIGBUS:
        free = free_bytes(data_dir)
        full = free is None or free < FULL_MARGIN_BYTES or (need_bytes is not None and free < need_bytes)
        if full:
            print(disk_full_message(data_dir, activity, need_bytes), file=sys.stderr)
        else:
            print(
                f"error: {describe} died of SIGBUS while writing {activity or 'the collections'} under "
                f"{data_dir}: a memory-mapped write failed (a full disk, or a file truncated or removed "
                "under it); check free space and that nothing else changes the data dir, then rerun the "
                "same command; stored batches are kept",
                file=sys.stderr,
            )
        return EXIT_DISK_FULL
    if sig == signal.SIGINT:
        return 130
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    hint = " (out of memory? see `dmesg`)" if sig == signal.SIGKILL else ""
    print(
        f"error: {describe} was killed by {name}{hint} while writing {activity or 'the collections'}: "
        "rerun the same command to resume; stored batches are kept",
        file=sys.stderr,
    )
    return 128 + sig
