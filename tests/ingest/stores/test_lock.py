"""Collection locks in read-only directories: readers lock without writing (or read unlocked, with a
note), writers are refused in one line; `check_writable_dir` refuses before anything is created.

A read-only directory is made for real: a read-only bind mount when this process may mount (root with
CAP_SYS_ADMIN, as in the project's container), else `chmod 0555` when not root (the kernel then refuses
writes); as root without mount rights, chmod stops nothing, so the file system's answer (EROFS) is
simulated by patching `os.open`, `os.statvfs` and `Path.mkdir` for paths under the directory.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import StoreError
from ingest.stores.lock import LOCK_FILE_NAME, CollectionLock, check_writable_dir, read_only_reason


@dataclass
class ReadOnlyView:
    """A writable directory and a read-only view of the same files."""

    writable: Path
    view: Path
    how: str  # "mount", "chmod" or "simulated"


def _try_ro_bind(src: Path, dst: Path) -> bool:
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True)
    if done.returncode != 0:
        return False
    done = subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], capture_output=True)
    if done.returncode != 0:
        subprocess.run(["umount", str(dst)], check=False)
        return False
    return True


def _simulate_read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    root_s = str(root.absolute())
    real_open, real_statvfs, real_mkdir = os.open, os.statvfs, Path.mkdir
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def under(path: Any) -> bool:
        return str(Path(os.fspath(path)).absolute()).startswith(root_s)

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if under(path) and flags & write_flags:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    class _Stat:
        def __init__(self, base: os.statvfs_result) -> None:
            self.f_flag = base.f_flag | os.ST_RDONLY

    def fake_statvfs(path: Any) -> Any:
        base = real_statvfs(path)
        return _Stat(base) if under(path) else base

    def fake_mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if under(self) and not self.is_dir():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "statvfs", fake_statvfs)
    monkeypatch.setattr(Path, "mkdir", fake_mkdir)


@pytest.fixture
def ro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReadOnlyView]:
    writable = tmp_path / "rw"
    (writable / "coll").mkdir(parents=True)
    (writable / "bare").mkdir()
    view = tmp_path / "ro"
    view.mkdir()
    if _try_ro_bind(writable, view):
        try:
            yield ReadOnlyView(writable, view, "mount")
        finally:
            subprocess.run(["umount", str(view)], check=False)
        return
    if os.geteuid() != 0:
        view.rmdir()
        view.symlink_to(writable)
        # The lock file must exist before the directories turn read-only (a writer made it earlier).
        (writable / "coll" / LOCK_FILE_NAME).touch()
        for d in (writable / "coll", writable / "bare", writable):
            d.chmod(0o555)
        try:
            yield ReadOnlyView(writable, view, "chmod")
        finally:
            for d in (writable, writable / "coll", writable / "bare"):
                d.chmod(0o755)
        return
    view.rmdir()
    view.symlink_to(writable)
    (writable / "coll" / LOCK_FILE_NAME).touch()
    _simulate_read_only(monkeypatch, view)
    yield ReadOnlyView(writable, view, "simulated")


def test_reader_locks_an_existing_lock_file_without_writing(ro: ReadOnlyView) -> None:
    (ro.writable / "coll" / LOCK_FILE_NAME).touch()
    before = sorted(p.name for p in (ro.writable / "coll").iterdir())
    reader = CollectionLock(ro.view / "coll" / LOCK_FILE_NAME, "coll")
    reader.acquire(exclusive=False)
    assert reader.held and not reader.unlocked_read
    # A writer going through a writable path to the same files is kept out while the reader reads.
    if ro.how != "chmod":
        writer = CollectionLock(ro.writable / "coll" / LOCK_FILE_NAME, "coll")
        with pytest.raises(StoreError, match=r"collection 'coll' is in use by another process"):
            writer.acquire(exclusive=True)
    reader.release()
    assert not reader.held
    assert sorted(p.name for p in (ro.writable / "coll").iterdir()) == before


def test_reader_without_lock_file_reads_unlocked_with_a_note(
    ro: ReadOnlyView, caplog: pytest.LogCaptureFixture
) -> None:
    reader = CollectionLock(ro.view / "bare" / LOCK_FILE_NAME, "bare")
    with caplog.at_level(logging.INFO, logger="ingest.stores"):
        reader.acquire(exclusive=False)
    assert reader.held and reader.unlocked_read
    assert (
        f"{ro.view / 'bare'} is read-only and has no lock file: reading collection 'bare' without a lock"
        in (caplog.text)
    )
    assert not (ro.writable / "bare" / LOCK_FILE_NAME).exists()
    reader.acquire(exclusive=False)  # re-acquiring a read is a no-op
    with pytest.raises(StoreError) as info:
        reader.acquire(exclusive=True)  # an upgrade to writing is refused in one line
    assert str(info.value).endswith("cannot write collection 'bare': choose a writable --data-dir")
    reader.release()
    assert not reader.held


def test_writer_is_refused_in_one_line(ro: ReadOnlyView) -> None:
    reason = "no write permission|permission denied" if ro.how == "chmod" else "read-only file system"
    for sub in ("coll", "bare", "new"):
        lock = CollectionLock(ro.view / sub / LOCK_FILE_NAME, sub)
        with pytest.raises(StoreError) as info:
            lock.acquire(exclusive=True)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"{ro.view / sub} is read-only (")
        assert any(r in message for r in reason.split("|"))
        assert message.endswith(f"cannot write collection {sub!r}: choose a writable --data-dir")
        assert not lock.held
    assert not (ro.writable / "new").exists()


def test_check_writable_dir_refuses_before_creating_anything(ro: ReadOnlyView, tmp_path: Path) -> None:
    target = ro.view / "data" / "qdrant"
    with pytest.raises(StoreError) as info:
        check_writable_dir(target, "store collections")
    reason = "no write permission" if ro.how == "chmod" else "read-only file system"
    assert str(info.value) == (
        f"{target} is read-only ({reason}): cannot store collections: choose a writable --data-dir"
    )
    assert not (ro.writable / "data").exists()
    assert read_only_reason(tmp_path / "fresh" / "dir") is None
    check_writable_dir(tmp_path / "fresh" / "dir")  # writable: no error, nothing created
    assert not (tmp_path / "fresh").exists()


def test_permission_error_from_a_real_open_is_a_one_line_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EACCES path (an unwritable directory owned by someone else), as the kernel reports it."""
    real_open = os.open

    def denied(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    lock = CollectionLock(tmp_path / "c" / LOCK_FILE_NAME, "c")
    with pytest.raises(StoreError) as info:
        lock.acquire(exclusive=True)
    assert str(info.value) == (
        f"{tmp_path / 'c'} is read-only (permission denied): cannot write collection 'c': "
        "choose a writable --data-dir"
    )
    reader = CollectionLock(tmp_path / "c" / LOCK_FILE_NAME, "c")
    reader.acquire(exclusive=False)  # no lock file to open read-only: an unlocked read
    assert reader.unlocked_read


def test_a_read_only_shard_is_read_through_a_sparse_private_copy(ro: ReadOnlyView, tmp_path: Path) -> None:
    """qdrant-edge cannot load a shard on a read-only mount; `writable_copy` of it can be loaded."""
    import numpy as np
    import qdrant_edge as qe

    from ingest.options import CollectionSpec
    from ingest.stores.edge import EdgeStore
    from ingest.stores.lock import writable_copy

    store = EdgeStore(ro.writable / "qdrant")
    store.ensure_collection("k", CollectionSpec(dim=8, quantization="none"))
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(50)]
    store.upsert("k", ids, np.random.default_rng(0).standard_normal((50, 8)).astype("float32"), [{}] * 50)
    store.close()
    shard = ro.view / "qdrant" / "k" / "shard"
    if ro.how == "mount":
        with pytest.raises(Exception, match=r"Read-only file system \(os error 30\)"):
            qe.EdgeShard.load(str(shard), None)
    copy = writable_copy(shard, tmp_path)
    try:
        if shutil.which("cp") is not None:  # cp --sparse=always: the 32 MiB pages stay sparse
            assert sum(f.stat().st_blocks for f in copy.rglob("*") if f.is_file()) * 512 < 8 << 20
        loaded = qe.EdgeShard.load(str(copy), None)
        assert loaded.count(qe.CountRequest(exact=True)) == 50
        loaded.close()
    finally:
        shutil.rmtree(copy.parent)
    with pytest.raises(StoreError, match=r"cannot copy .* to read it"):
        writable_copy(ro.view / "missing", tmp_path)
