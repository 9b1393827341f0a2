"""CPU threads for a local PyTorch run (``backend.num_threads``): the cores usable and free, and torch's choice.

Read by :class:`~ai_energy_benchmarks.backends.pytorch.PyTorchBackend` before it loads the model (the free cores),
and after (a CPU run's threads calibrated on the loaded model: :func:`calibrate_num_threads`).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


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


#: A calibration step slower than this (s) with every free thread: the model is big enough to use them all, and
#: calibrating would cost more than it could save, so the free cores are kept.
CALIBRATION_STEP_LIMIT_S = 0.05
#: More threads are kept only when they make a step at least this fraction faster than fewer threads do (extra
#: threads spin on their cores and draw power even when they barely help).
MORE_THREADS_MIN_GAIN = 0.10
#: Timed steps per candidate (after one untimed step that starts the thread pool); the fastest one counts.
CALIBRATION_REPEATS = 5


def thread_candidates(most: int) -> list[int]:
    """Thread counts tried by :func:`calibrate_num_threads`: 1, the powers of two below ``most``, and ``most``."""
    candidates = {1, most}
    power = 2
    while power < most:
        candidates.add(power)
        power *= 2
    return sorted(candidates)


def calibrate_num_threads(
    step: Callable[[], object], set_threads: Callable[[int], None], most: int, clock: Callable[[], float] | None = None
) -> tuple[int, str]:
    """The fewest intra-op threads that run ``step`` (one forward pass of the loaded model) about as fast as any
    other count up to ``most``, and a sentence saying what was measured.

    On a small model, torch's threads cost more in synchronisation than they save: the packaged tiny-llama runs
    its quickstart faster on one thread than on two, on a quiet 2-core machine. Each candidate
    (:func:`thread_candidates`) runs one untimed step, then :data:`CALIBRATION_REPEATS` timed ones; its fastest
    step (s) counts. The fewest threads within :data:`MORE_THREADS_MIN_GAIN` of the fastest candidate win. When a
    step with ``most`` threads takes longer than :data:`CALIBRATION_STEP_LIMIT_S`, nothing else is tried and
    ``most`` is kept. Runs after loading, before warm-up: outside every measured window.
    """
    now = clock or time.perf_counter
    best_s: dict[int, float] = {}
    for threads in sorted(thread_candidates(most), reverse=True):
        set_threads(threads)
        step()  # starts this count's thread pool; not timed
        times = []
        for _ in range(CALIBRATION_REPEATS):
            start = now()
            step()
            times.append(now() - start)
        best_s[threads] = min(times)
        if threads == most and best_s[threads] > CALIBRATION_STEP_LIMIT_S:
            set_threads(most)
            return most, (
                f"kept {most}: a forward step took {best_s[most] * 1e3:.1f} ms with {most} threads "
                f"(> {CALIBRATION_STEP_LIMIT_S * 1e3:.0f} ms: not calibrated)"
            )
    fastest_s = min(best_s.values())
    chosen = min(t for t, s in best_s.items() if s <= fastest_s * (1.0 + MORE_THREADS_MIN_GAIN))
    set_threads(chosen)
    measured = ", ".join(f"{t}: {s * 1e3:.2f} ms" for t, s in sorted(best_s.items()))
    return chosen, f"calibrated to {chosen} (fastest forward step by threads: {measured})"


def forward_step(torch: Any, model: Any, batch_size: int) -> Callable[[], object]:
    """One forward pass of ``model`` over ``batch_size`` one-token inputs without a cache: a decode step's matrix
    shapes, for :func:`calibrate_num_threads`."""
    ids = torch.zeros((batch_size, 1), dtype=torch.long, device=model.device)

    def step() -> object:
        with torch.inference_mode():
            return model(input_ids=ids, use_cache=False)

    return step


class TorchThreads:
    """A run's torch intra-op threads: chosen before loading (:func:`choose_num_threads`), calibrated on the loaded
    model when the choice was automatic (:func:`calibrate_num_threads`), and torch's own setting restored at the end.

    ``threads`` and ``how`` (a sentence for the report) are None until :meth:`choose` runs.
    """

    def __init__(self, requested: int | None) -> None:
        self.requested = requested
        self.threads: int | None = None
        self.how: str | None = None
        self._torch: Any = None
        self._previous: int | None = None
        self._on_cpu = False

    def choose(self, torch: Any, on_cpu: bool) -> None:
        """Choose and apply the threads before the model loads."""
        self._torch, self._on_cpu = torch, on_cpu
        self._previous = int(torch.get_num_threads())
        self.threads, self.how = choose_num_threads(self.requested, self._previous, on_cpu)
        torch.set_num_threads(self.threads)
        logger.info("torch intra-op threads: %d (%s)", self.threads, self.how)

    def calibrate(self, torch: Any, model: Any, batch_size: int) -> None:
        """After loading, before warm-up: an automatic CPU choice of more than one thread is calibrated on ``model``."""
        if self.requested is not None or not self._on_cpu or self.threads is None or self.threads < 2:
            return
        step = forward_step(torch, model, batch_size)
        self.threads, measured = calibrate_num_threads(step, torch.set_num_threads, self.threads)
        self.how = f"{self.how}; {measured}"
        logger.info("torch intra-op threads: %d (%s)", self.threads, measured)

    def restore(self) -> None:
        """Put torch's own setting back (it is process-wide)."""
        if self._torch is not None and self._previous is not None:
            self._torch.set_num_threads(self._previous)
            self._previous = None
