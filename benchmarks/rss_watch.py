"""Watching a process's memory from outside through `/proc`: resident pages by kind, per phase.

The scale benchmark samples its ingest process (and its worker processes: encoder, writer) with a
`Watcher` instead of a sampler inside it, which would stall while the engine holds the GIL.
`mapped_mb` tells the pages of the engine's memory-mapped shard files from those of other files
(libraries, the model), so `own_mb` can count a process's memory without the engine's files. Linux only.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

SAMPLE_S = 0.2
TIMELINE_EVERY = 10  # samples between two timeline entries (about every 2 s)
# Samples between two reads of /proc/<pid>/smaps (about once a second): parsing it is not free (a third
# of a core at every sample with ten collections open). The shard's pages only grow while loading, so
# subtracting the latest reading overstates the pipeline's share slightly, never understates it.
SMAPS_EVERY = 5
MAPPING_LINE = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak), RssAnon, RssFile, RssShmem of a process in MB ({} once it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(value.split()[0]) // 1024
    except OSError:
        return {}
    return out


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (all its threads' children)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="utf-8") as fh:
                out.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def is_encoder_worker(pid: int) -> bool:
    """Whether a process is a `multiprocessing` worker (an encoder or writer process), not its resource
    tracker."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ")
    except OSError:
        return False
    return b"multiprocessing" in cmd and b"resource_tracker" not in cmd


def mapped_mb(pid: int, under: str) -> tuple[int, int]:
    """Resident MB of the file mappings of `pid`: those whose path starts with `under`, and the others.

    The others are libraries and the model's files (the pipeline's); `under` holds the engine's shard files.
    """
    shard = other = 0
    path = ""
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if MAPPING_LINE.match(line):
                    parts = line.split(None, 5)
                    path = parts[5].strip() if len(parts) > 5 else ""
                elif line.startswith("Rss:") and path.startswith("/"):
                    if path.startswith(under):
                        shard += int(line.split()[1])
                    else:
                        other += int(line.split()[1])
    except OSError:
        return 0, 0
    return shard // 1024, other // 1024


def own_mb(st: dict[str, int], other_files_mb: int) -> int:
    """A process's resident MB without the engine's shard-file pages.

    Anonymous and shared-memory pages (read at every sample) plus the resident pages of files other
    than the shard's (libraries, the model; read with smaps about once a second, and nearly constant).
    Subtracting a once-a-second shard reading from VmRSS instead would count the shard pages mapped
    since that reading (about 15 MB a second while loading) as the pipeline's.
    """
    return st.get("RssAnon", 0) + st.get("RssShmem", 0) + other_files_mb


class Watcher:
    """Samples the ingest process and its worker processes (encoder, writer) from outside, per phase."""

    def __init__(self, pid: int, shard_root: Path) -> None:
        self.pid = pid
        self.shard_root = str(shard_root)
        self.phase = "open"
        self.peaks: dict[str, dict[str, int]] = {}
        self.worker_peak_mb = 0
        self.workers_seen: set[int] = set()
        self.worker_other_files: dict[int, int] = {}
        self.last_shard_mb = 0
        self.last_other_files_mb = 0
        self.phase_end_shard_mb: dict[str, int] = {}
        self.timeline: list[dict[str, Any]] = []
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-watcher", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def set_phase(self, phase: str) -> None:
        """Attribute the following samples to `phase` (noting the shard pages at the previous one's end)."""
        self.phase_end_shard_mb[self.phase] = mapped_mb(self.pid, self.shard_root)[0]
        self.phase = phase

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _peak(self, key: str, value: int) -> None:
        phase = self.peaks.setdefault(self.phase, {})
        phase[key] = max(phase.get(key, 0), value)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            st = proc_status(self.pid)
            if st:
                if n % SMAPS_EVERY == 0:
                    self.last_shard_mb, self.last_other_files_mb = mapped_mb(self.pid, self.shard_root)
                    self._peak("shard_files", self.last_shard_mb)
                self._peak("rss", st.get("VmRSS", 0))
                self._peak("anon", st.get("RssAnon", 0))
                self._peak("rss_minus_shard_files", own_mb(st, self.last_other_files_mb))
                workers = 0
                for child_pid in child_pids(self.pid):
                    if child_pid in self.workers_seen or is_encoder_worker(child_pid):
                        self.workers_seen.add(child_pid)
                        # Like the main process: without the shard-file pages a writer process maps.
                        if n % SMAPS_EVERY == 0 or child_pid not in self.worker_other_files:
                            self.worker_other_files[child_pid] = mapped_mb(child_pid, self.shard_root)[1]
                        workers += own_mb(proc_status(child_pid), self.worker_other_files[child_pid])
                self.worker_peak_mb = max(self.worker_peak_mb, workers)
                if n % TIMELINE_EVERY == 0:
                    self.timeline.append(
                        {
                            "t": round(time.perf_counter() - self._started, 1),
                            "phase": self.phase,
                            "rss": st.get("VmRSS", 0),
                            "anon": st.get("RssAnon", 0),
                            "shard_files": self.last_shard_mb,
                            "without_shard_files": own_mb(st, self.last_other_files_mb),
                            "worker_hwm": workers,
                        }
                    )
            n += 1
            self._stop.wait(SAMPLE_S)
