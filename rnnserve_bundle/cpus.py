"""How many CPU cores this process may use: shared by the service (session threads, workers) and
training (torch threads)."""

from __future__ import annotations

import os
from pathlib import Path


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, within a cgroup v2 CPU quota (a container's
    CPU limit), at least one. `os.cpu_count()` would count every core of the host."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return max(1, cores)
