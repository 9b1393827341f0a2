"""CPU threads for a local PyTorch run (``backend.num_threads``): the cores usable and free, and torch's choice.

Read by :class:`~ai_energy_benchmarks.backends.pytorch.PyTorchBackend` before it loads the model.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask, capped by a cgroup CPU quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota_files = (
        ("/sys/fs/cgroup/cpu.max",),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )
    for files in quota_files:  # cgroup v2, v1
        try:
            quota, period = " ".join(Path(f).read_text(encoding="utf-8") for f in files).split()[:2]
            if quota not in ("max", "-1"):
                cores = min(cores, int(quota) // int(period))
        except (OSError, ValueError):
            continue
    return max(1, cores)


def choose_num_threads(requested: int | None, torch_default: int, on_cpu: bool) -> tuple[int, str]:
    """torch intra-op threads for a run, and how they were chosen (a sentence for the report and the log).

    ``requested`` (``backend.num_threads``) wins. Otherwise a CPU run takes the cores actually free: the usable
    cores minus the busy ones (the 1-minute load average or the tasks runnable now, whichever is higher, rounded),
    at least 1 and at most ``torch_default`` (torch's own choice, which ``OMP_NUM_THREADS`` sets). On a machine
    whose other work keeps the cores busy, torch's default of one thread per core makes every thread wait for the
    others; fewer threads then finish sooner. A GPU run keeps the default.
    """
    if requested is not None:
        return requested, "backend.num_threads"
    if not on_cpu:
        return torch_default, "torch default (not a CPU run)"
    cores = usable_cores()
    try:
        load_1min = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load_1min = 0.0
    running = _other_runnable_tasks()
    busy = max(load_1min, running or 0.0)
    free = max(1, cores - int(busy + 0.5))
    threads = min(torch_default, free)
    now = "" if running is None else f", {running:g} other tasks runnable now"
    return threads, (
        f"auto: {cores} usable cores, 1-minute load {load_1min:.2f}{now}, so {free} free; torch default {torch_default}"
    )


def _other_runnable_tasks(samples: int = 5, interval_s: float = 0.01) -> float | None:
    """Tasks runnable besides this one right now (median of a few reads of /proc/stat's procs_running; Linux only).

    The 1-minute load average lags work that started seconds ago; this catches it.
    """
    counts = []
    for _ in range(samples):
        try:
            text = Path("/proc/stat").read_text(encoding="utf-8")
        except OSError:
            return None
        counts += [int(line.split()[1]) - 1 for line in text.splitlines() if line.startswith("procs_running ")]
        time.sleep(interval_s)
    return float(statistics.median(counts)) if counts else None
