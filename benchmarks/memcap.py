"""Run a benchmark child under a memory cap: a Linux memory cgroup (v2 `memory.max`, or v1
`memory.limit_in_bytes`) that the child joins before it starts, so its encoder workers inherit it.

What a cap shows that a peak RSS does not: RSS counts the engine's memory-mapped shard files, which the
kernel may drop and re-read when memory is short (they are flushed to disk), so a process can show 7 GB of
RSS on a 24 GB machine and still run in 3 GB. Under the cap the cgroup's memory (process memory plus the
page cache it touches) never exceeds the limit: the kernel reclaims file pages, and only memory that cannot
be reclaimed (heap, dirty pages not yet written) can make it fail, with an OOM kill that this reports.

Needs permission to create a cgroup (root, or a delegated cgroup v2 subtree); `MemoryCap.create` says
what to do otherwise.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class MemoryCap:
    """A memory cgroup with a limit, for one child process (and its descendants).

    Attributes:
        path: The cgroup's directory.
        limit_mb: The cap in MiB.
        v2: Whether it is a cgroup v2 group (else v1's memory controller).
    """

    path: Path
    limit_mb: int
    v2: bool

    @classmethod
    def create(cls, limit_mb: int, name: str) -> MemoryCap:
        """Create the cgroup `name` with a cap of `limit_mb` MiB (swap included, where v1 accounts it).

        Raises:
            SystemExit: no writable cgroup hierarchy (names what was tried and what to do).
        """
        limit = str(limit_mb * 1024 * 1024)
        v1 = CGROUP_ROOT / "memory"
        tried: list[str] = []
        if (CGROUP_ROOT / "cgroup.controllers").is_file():
            path = CGROUP_ROOT / name
            try:
                path.mkdir(exist_ok=True)
                (path / "memory.max").write_text(limit)
                (path / "memory.swap.max").write_text("0")
                return cls(path, limit_mb, v2=True)
            except OSError as exc:
                tried.append(f"{path}: {exc.strerror}")
        if v1.is_dir():
            path = v1 / name
            try:
                path.mkdir(exist_ok=True)
                (path / "memory.limit_in_bytes").write_text(limit)
                memsw = path / "memory.memsw.limit_in_bytes"
                if memsw.exists():
                    memsw.write_text(limit)
                return cls(path, limit_mb, v2=False)
            except OSError as exc:
                tried.append(f"{path}: {exc.strerror}")
        raise SystemExit(
            "--memory-limit-mb needs a writable memory cgroup (tried "
            + ("; ".join(tried) or f"{CGROUP_ROOT}: no memory controller")
            + "): run as root, or inside a delegated cgroup v2 subtree, or leave the option out"
        )

    def join(self) -> None:
        """Move the calling process into the cgroup (a `subprocess.Popen` `preexec_fn`)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mb(self) -> int | None:
        """The cgroup's peak memory (MiB), as the kernel counted it; None when not reported."""
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return round(int((self.path / name).read_text()) / 2**20)
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        """Processes of the cgroup the kernel killed for want of memory."""
        name = "memory.events" if self.v2 else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        """Remove the cgroup (once its processes have ended)."""
        with contextlib.suppress(OSError):
            self.path.rmdir()
