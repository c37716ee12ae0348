"""The supervised run: a child that dies of SIGBUS (a full disk under qdrant-edge's memory maps) or
raises ENOSPC ends in one line and exit code 75; other ends keep their codes.

`test_real_full_tmpfs_*` fills a real 20 MB tmpfs with qdrant-edge upserts when this process may mount
(root with CAP_SYS_ADMIN, as in the project's container); where it may not, the same script kills
itself with SIGBUS instead (the message and code are asserted either way, and the test says which ran).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.supervise import EXIT_DISK_FULL, disk_full_message, human_bytes, is_disk_full

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_script(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `body` (which defines `work()`) under `run_supervised` in a fresh interpreter."""
    script = textwrap.dedent(body) + textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from ingest.supervise import run_supervised
        sys.exit(run_supervised(work, data_dir=Path(sys.argv[1]), need_bytes=NEED))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300
    )


def test_sigbus_in_the_child_becomes_one_line_and_exit_75(tmp_path: Path) -> None:
    done = run_script(
        """
        import os, signal
        from ingest.supervise import set_activity
        NEED = 123_000_000
        def work():
            set_activity("collection 'toy-d64-none'")
            os.kill(os.getpid(), signal.SIGBUS)
            return 0
        """,
        str(tmp_path),
    )
    assert done.returncode == EXIT_DISK_FULL
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    # Plenty of space is free here, so the message names the other causes of a SIGBUS too.
    assert lines[0].startswith(
        f"error: the ingest died of SIGBUS while writing collection 'toy-d64-none' under {tmp_path}: "
        "a memory-mapped write failed (a full disk, or a file truncated or removed under it)"
    )
    assert lines[0].endswith("then rerun the same command; stored batches are kept")
    assert "Bus error" not in done.stderr


def test_activity_and_estimate_recorded_by_the_child_reach_the_message(tmp_path: Path) -> None:
    done = run_script(
        """
        import os, signal
        import ingest.supervise
        from ingest.supervise import set_activity
        NEED = None
        ingest.supervise.FULL_MARGIN_BYTES = 1 << 62  # as if this disk were full
        def work():
            set_activity("collection 'a'", need_bytes=250_000_000)
            set_activity("the index of collection 'b'")  # keeps the estimate
            os.kill(os.getpid(), signal.SIGBUS)
            return 0
        """,
        str(tmp_path),
    )
    assert done.returncode == EXIT_DISK_FULL
    assert done.stderr.startswith(
        f"error: the disk under {tmp_path} ran out of space while writing the index of collection 'b': "
        "free space (need ~250.0 MB, free "
    )


def test_enospc_raised_in_the_child_becomes_the_disk_full_line(tmp_path: Path) -> None:
    done = run_script(
        """
        import errno, os
        from ingest.supervise import set_activity
        NEED = None
        def work():
            set_activity("collection 'c1'")
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "manifest.json")
            except OSError as exc:
                raise RuntimeError("flush failed: No space left on device (os error 28)") from exc
        """,
        str(tmp_path),
    )
    assert done.returncode == EXIT_DISK_FULL
    assert done.stderr.strip().startswith(
        f"error: the disk under {tmp_path} ran out of space while writing collection 'c1': free space (free "
    )
    assert done.stderr.strip().endswith("and rerun the same command; stored batches are kept")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("body", "code", "stderr"),
    [
        ("return 0", 0, ""),
        ("return 2", 2, ""),
        ("raise SystemExit(1)", 1, ""),
        ("raise KeyboardInterrupt", 130, ""),
        (
            "os.kill(os.getpid(), signal.SIGKILL)",
            137,
            "error: the ingest was killed by SIGKILL (out of memory? ",
        ),
    ],
)
def test_other_ends_keep_their_code(tmp_path: Path, body: str, code: int, stderr: str) -> None:
    done = run_script(f"import os, signal\nNEED = None\ndef work():\n    {body}\n", str(tmp_path))
    assert done.returncode == code
    assert done.stderr.startswith(stderr) if stderr else done.stderr == ""


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A killed supervisor (kill -9 of the ingest's pid) leaves no writer running behind it."""
    pidfile = tmp_path / "child.pid"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import os, sys, time
            from pathlib import Path
            from ingest.supervise import run_supervised
            def work():
                Path({str(pidfile)!r}).write_text(str(os.getpid()))
                time.sleep(60)
                return 0
            sys.exit(run_supervised(work, data_dir=Path({str(tmp_path)!r})))
        """),
        ],
        cwd=PROJECT_ROOT,
    )
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pidfile.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """A 20 MB tmpfs (True) when mounting works, else a plain directory (False)."""
    where = tmp_path / "full"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(where)], capture_output=True
    )
    mounted = done.returncode == 0
    try:
        yield where, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


FILL = """
import os, signal, uuid
import numpy as np
import ingest.supervise
from ingest.config import CollectionSpec
from ingest.stores.edge import EdgeStore
from ingest.supervise import set_activity
NEED = 40_000_000
MOUNTED = {mounted}
if not MOUNTED:
    ingest.supervise.FULL_MARGIN_BYTES = 1 << 62  # stands in for "this disk is full"
def work():
    store = EdgeStore(Path(sys.argv[1]) / "qdrant")
    store.ensure_collection("fill", CollectionSpec(dim=64, quantization="none"))
    set_activity("collection 'fill'")
    rng = np.random.default_rng(0)
    text = "x" * 4000
    for batch in range(200):
        if not MOUNTED and batch == 3:
            os.kill(os.getpid(), signal.SIGBUS)
        ids = [str(uuid.uuid5(uuid.NAMESPACE_OID, f"{{batch}}-{{i}}")) for i in range(256)]
        store.upsert("fill", ids, rng.standard_normal((256, 64)).astype("float32"), [{{"text": text}}] * 256)
        store.flush("fill")
    return 0
"""


def test_real_full_tmpfs_ends_with_the_disk_full_line(small_tmpfs: tuple[Path, bool]) -> None:
    where, mounted = small_tmpfs
    done = run_script("from pathlib import Path\nimport sys\n" + FILL.format(mounted=mounted), str(where))
    print("real 20 MB tmpfs" if mounted else "mount not permitted: simulated with os.kill(SIGBUS)")
    assert done.returncode == EXIT_DISK_FULL, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"error: the disk under {where} ran out of space while writing collection 'fill': "
        "free space (need ~40.0 MB, free "
    ), done.stderr
    assert lines[-1].endswith("and rerun the same command; stored batches are kept")
    assert "Bus error" not in done.stderr and "Traceback" not in done.stderr


def test_messages_and_detection() -> None:
    assert human_bytes(999) == "999 B" and human_bytes(40_000_000) == "40.0 MB"
    assert human_bytes(2.5e12) == "2.5 TB"
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EIO, "Input/output error"))
    wrapped = RuntimeError("store failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "x")
    assert is_disk_full(wrapped)
    assert is_disk_full(Exception("Service error: No space left on device (os error 28)"))
    assert is_disk_full(
        Exception(
            "collection 'nfcorpus-d64-binary': building the HNSW index failed: Service runtime error: "
            "Not enough space available for optimization, needed: 139.94 MiB, available: 122.99 MiB"
        )
    )
    assert disk_full_message(Path("/nonexistent/data"), need_bytes=5_000_000).startswith(
        "error: the disk under /nonexistent/data ran out of space while writing the collections: "
        "free space (need ~5.0 MB, free "
    )


CLI = """
import sys
from pathlib import Path
from ingest.__main__ import main
from ingest.supervise import run_supervised
data_dir = Path(sys.argv[1])
argv = ["nfcorpus", "--beir-dir", sys.argv[2], "--data-dir", str(data_dir), "--model", sys.argv[3],
        "--dims", "64", "--quantization", "none,binary", "--no-progress", "--json", "--batch-docs", "512",
        "--force"]  # past the free-space check, to fill the disk for real
sys.exit(run_supervised(lambda: main(argv), data_dir=data_dir, need_bytes=30_000_000))
"""


SCENARIO = """
import json, subprocess, sys
where, beir, model, cli = sys.argv[1:5]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", where], check=True)
try:
    runs = []
    for size in (None, "400m"):
        if size:
            subprocess.run(["mount", "-o", f"remount,size={size}", where], check=True)
        cmd = [sys.executable, "-c", cli, where + "/data", beir, model]
        done = subprocess.run(cmd, capture_output=True, text=True)
        runs.append({"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr})
    print(json.dumps(runs))
finally:
    subprocess.run(["umount", "-l", where])
"""


def _mount_prefix(where: Path) -> list[str] | None:
    """How to run a script that mounts a tmpfs: directly (root with CAP_SYS_ADMIN), in a user and mount
    namespace (`unshare -rm`, for other users where unprivileged namespaces are on), else None.
    `STATIC_INGEST_TEST_USERNS=1` skips the direct mount, to exercise the namespace path as root."""
    probe = ["sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {where} && umount {where}"]
    for prefix in ([], ["unshare", "-rm"])[int(os.environ.get("STATIC_INGEST_TEST_USERNS", "0")) :]:
        if prefix and shutil.which(prefix[0]) is None:
            continue
        if subprocess.run([*prefix, *probe], capture_output=True).returncode == 0:
            return prefix
    return None


def test_full_disk_ingest_then_rerun_with_space_is_exact(tmp_path: Path, small_model_dir: Path) -> None:
    """A real NFCorpus ingest on an 8 MB tmpfs stops with the one-line message and exit 75; the same
    command after the tmpfs grows to 400 MB resumes after the stored batches and ends with every chunk
    stored once (the point counts equal the chunks of a clean run)."""
    where = tmp_path / "small"
    where.mkdir()
    prefix = _mount_prefix(where)
    if prefix is None:
        pytest.fail("neither `mount` nor `unshare -rm` may mount a tmpfs here: run the tests as root")
    beir = PROJECT_ROOT.parent / "shared" / "beir"
    done = subprocess.run(
        [*prefix, sys.executable, "-c", SCENARIO, str(where), str(beir), str(small_model_dir), CLI],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    full, again = json.loads(done.stdout)
    assert full["code"] == EXIT_DISK_FULL, full["stderr"][-2000:]
    last = full["stderr"].strip().splitlines()[-1]
    assert last.startswith(f"error: the disk under {where / 'data'} ran out of space while writing ")
    # The need is the run's own estimate (recorded by the pipeline) or, after a SIGBUS, the supervisor's.
    assert "free space (need ~" in last and " MB, free " in last
    assert last.endswith("and rerun the same command; stored batches are kept")
    assert "Bus error" not in full["stderr"] and "Traceback" not in full["stderr"]
    assert again["code"] == 0, again["stderr"][-2000:]
    summary = json.loads(again["stdout"])
    assert summary["verified"] is True
    assert summary["docs"] == 3633 and summary["chunks"] == 3974
    assert summary["resumed_batches"] >= 0
    assert summary["points"] == {"nfcorpus-d64-none": 3974, "nfcorpus-d64-binary": 3974}
