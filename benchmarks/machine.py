"""What machine a benchmark ran on: CPU, cores, load, Python and library versions; CPU time used."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def machine_info(distributions: tuple[str, ...] = ()) -> dict[str, Any]:
    """CPU model, cores (all and usable), load average, Python, and the versions of `distributions`.

    Versions are read from package metadata, so nothing heavy is imported.
    """
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
    }
    for dist in distributions:
        try:
            info[dist] = version(dist)
        except PackageNotFoundError:
            info[dist] = None
    return info


def cpu_seconds(who: int | None = None) -> float:
    """User + system CPU seconds of this process (its threads included), or of `who`
    (`resource.RUSAGE_CHILDREN`: its waited-for children)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF if who is None else who)
    return usage.ru_utime + usage.ru_stime
