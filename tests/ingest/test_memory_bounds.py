"""Memory that must not grow with the corpus: Parquet reader, C heap, and how the scale bench counts it."""

from __future__ import annotations

import ctypes
import mmap
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.rss_watch import mapped_mb, own_mb, proc_status
from benchmarks.scale import add_engine_heap, ratio_line
from ingest.memory import peak_rss_mb, release_freed_memory
from ingest.sources import ParquetSource
from ingest.sources.parquet import iter_record_batches


def test_record_batches_are_read_one_row_group_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "groups.parquet"
    ids = [f"d{i}" for i in range(13)]
    pq.write_table(pa.table({"id": ids, "text": [f"text {i}" for i in range(13)]}), path, row_group_size=5)
    batches = list(iter_record_batches(path, ["id", "text"], 4))
    # Row groups of 5, 5 and 3 rows: a batch never spans two groups.
    assert [b.num_rows for b in batches] == [4, 1, 4, 1, 3]
    assert [v for b in batches for v in b.column(0).to_pylist()] == ids
    assert all(b.schema.names == ["id", "text"] for b in batches)
    source = ParquetSource([path])
    docs = [d for batch in source.iter_batches(6) for d in batch]
    assert [d.id for d in docs] == ids
    assert docs[12].location == f"{path}#12"


def _anon_mb() -> int:
    """This process's resident anonymous memory (heap) in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        line = next(line for line in fh if line.startswith("RssAnon:"))
    return int(line.split()[1]) // 1024


def test_release_freed_memory_returns_free_heap_pages() -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block = 64 * 1024  # below glibc's mmap threshold: served from the heap, kept there once freed
    blocks = [libc.malloc(block) for _ in range(1600)]
    assert all(blocks)
    for address in blocks:
        ctypes.memset(address, 1, block)
    for address in blocks[:-1]:  # the last block pins the heap's top, so free() itself cannot trim it
        libc.free(address)
    before = _anon_mb()
    release_freed_memory()
    after = _anon_mb()
    libc.free(blocks[-1])
    assert before - after >= 50, (before, after)


def test_peak_rss_is_this_process_own_not_the_exec_parent_peak() -> None:
    resident = np.ones(200 * 1024 * 1024 // 8)  # 200 MB, every page touched
    parent_peak = peak_rss_mb()
    assert parent_peak >= 200
    code = (
        "import resource; from ingest.memory import peak_rss_mb; "
        "print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    child_peak, child_maxrss = (float(v) for v in out.split())
    del resident
    # Linux carries the parent's high-water mark into an exec'd child's ru_maxrss; VmHWM starts afresh.
    assert child_maxrss >= 200
    assert child_peak < 150, (child_peak, child_maxrss)
    # ru_maxrss is this process's peak or an inherited bigger one, never less (the kernel updates both
    # lazily: a little slack).
    assert parent_peak <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + 50


def test_mapped_mb_tells_shard_files_from_other_files(tmp_path: Path) -> None:
    shard = tmp_path / "qdrant" / "c" / "segment.dat"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"\1" * (8 << 20))
    with shard.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        assert sum(view[i] for i in range(0, len(view), 4096)) == 2048  # touch every page
        shard_mb, other_mb = mapped_mb(os.getpid(), str(tmp_path / "qdrant"))
        st = proc_status(os.getpid())
    assert shard_mb == 8
    assert other_mb > 0  # the interpreter and its libraries
    assert own_mb(st, other_mb) == st["RssAnon"] + st.get("RssShmem", 0) + other_mb


def _run(docs: int, workers: int, main: int, worker_peak: int) -> dict[str, Any]:
    return {
        "docs": docs,
        "workers_used": workers,
        "pipeline_peak_rss_mb": main + worker_peak,
        "rss_mb": {"pipeline_main": main, "encoder_workers_peak": worker_peak, "main_peak_vmhwm": main + 100},
    }


def test_ratio_excludes_the_measured_engine_heap_and_flags_mixed_architectures() -> None:
    small, big = _run(17_133, 1, 250, 450), _run(171_332, 1, 290, 460)
    add_engine_heap(small, {"points": 18_436, "batch_points": 2_049, "end_of_load": 10, "peak": 26})
    add_engine_heap(big, {"points": 184_492, "batch_points": 2_197, "end_of_load": 40, "peak": 60})
    assert small["pipeline_peak_rss_mb_excl_engine_heap"] == 240 + 450
    assert big["pipeline_peak_rss_mb_excl_engine_heap"] == 250 + 460
    results: dict[str, Any] = {}
    line = ratio_line("1", small, big, results)
    assert results["pipeline_rss_ratio"]["1"] == round(710 / 690, 2)
    assert results["pipeline_rss_ratio_incl_engine_heap"]["1"] == round(750 / 700, 2)
    assert "excl. engine heap" in line and "NOT like for like" not in line
    mixed = ratio_line("auto", _run(17_133, 0, 600, 0), _run(171_332, 1, 300, 460), results)
    assert "incl. engine heap" in mixed
    assert "NOT like for like: mode auto ran in-process (three threads) at 17,133 docs" in mixed
    assert results["pipeline_rss_ratio"]["auto"] == round(760 / 600, 2)
