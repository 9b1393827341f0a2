"""Simulated NVIDIA GPUs: a stand-in for the ``pynvml`` module (package nvidia-ml-py).

A :class:`FakeNvml` holds one or more :class:`FakeGpu` and builds a module object with the NVML functions, constants
and error classes that our NVML meter and CodeCarbon use. Installed into ``sys.modules["pynvml"]`` (explicitly or as
a context manager), it makes ``import pynvml`` return the simulation, so both meters can be checked against an
exact ground truth::

    with FakeNvml([FakeGpu(power=150.0)]) as fake:
        t0 = time.perf_counter()
        ...  # measure with any meter that reads pynvml
        truth_j = fake.energy_j(0, t0, time.perf_counter())

Each GPU draws power following a trace of elapsed seconds since :meth:`FakeNvml.install`, on ``clock``:
``time.perf_counter()`` by default, or a :class:`~ai_energy_benchmarks.testing.clock.SimulatedClock` shared with the
meter under test, so that reads happen at times the test chose and no verdict depends on the machine's load.
Its cumulative energy counter (mJ, what ``nvmlDeviceGetTotalEnergyConsumption`` returns) is computed from
the trace exactly for piecewise-linear traces (constants, steps, ramps) and by composite Simpson integration with
steps of at most 1 ms for arbitrary callables. Counters may start at an offset and wrap at a modulus (NVML's real
2^64 mJ unless a test sets a shorter one, which the meter under test must then be told: nothing in the module
advertises it); a GPU may lack the counter (``NVMLError_NotSupported``, as on pre-Volta GPUs and many vGPUs) or deny
reads (``NVMLError_NoPermission``). :attr:`FakeNvml.lost_after_s` makes every NVML call fail from a given elapsed
time on (``NVMLError_GpuIsLost``), as when a GPU falls off the bus mid-run.

Units follow NVML: power in mW (integers), energy in mJ (integers), clocks in MHz, temperatures in °C. The module's
functions are in :mod:`.fake_nvml_module`; NVML's errors, constants and structures in :mod:`.nvml_api`.
"""

from __future__ import annotations

import math
import sys
import threading
import types
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.energy.clock import SYSTEM_CLOCK, Clock
from ai_energy_benchmarks.testing.fake_nvml_module import FakeHandle, build_module
from ai_energy_benchmarks.testing.fake_thermal import NVML_THERMAL_BITS, FakeConditions, reported_c
from ai_energy_benchmarks.testing.nvidia_smi import write_fake_nvidia_smi
from ai_energy_benchmarks.testing.nvml_api import (
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_INVALID_ARGUMENT,
    NVML_ERROR_UNINITIALIZED,
    NVMLError_GpuIsLost,
    NVMLError_InvalidArgument,
    NVMLError_Uninitialized,
)
from ai_energy_benchmarks.testing.traces import (
    PiecewiseLinearTrace,
    PowerSpec,
    PowerTrace,
    as_trace,
    constant_trace,
    ramp_trace,
    step_trace,
)

__all__ = [
    "FakeGpu",
    "FakeNvml",
    "PiecewiseLinearTrace",
    "PowerTrace",
    "constant_trace",
    "ramp_trace",
    "step_trace",
    "write_fake_nvidia_smi",
]

#: NVML's energy counter is an unsigned 64-bit count of millijoules.
NVML_ENERGY_COUNTER_MODULUS_MJ = 2**64

# --------------------------------------------------------------------------------------------------------------------
# The simulation
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class FakeGpu:
    """One simulated GPU. Power is a constant in W, a callable of elapsed seconds -> W, or a :class:`PowerTrace`."""

    power: PowerSpec = 150.0
    name: str = "NVIDIA H100 80GB HBM3 (simulated)"
    uuid: str = ""  # filled in from the index when empty
    power_limit_w: float = 700.0
    memory_total_bytes: int = 80 * 1024**3
    memory_used_bytes: int = 1024**3
    has_energy_counter: bool = True
    counter_offset_mj: int = 0
    counter_modulus_mj: int = NVML_ENERGY_COUNTER_MODULUS_MJ
    permission_denied: bool = False  # energy and power reads raise NVMLError_NoPermission
    bus_id: str = ""  # filled in from the index when empty
    #: nvmlClocksEventReasons bits the GPU reports (0: clocks not held down).
    throttle_reasons_mask: int = 0
    sm_clock_mhz: int = 1980
    mem_clock_mhz: int = 2619
    temperature_c: int = 45
    utilization_pct: int = 87
    #: PIDs of the processes with a compute context on the GPU (nvmlDeviceGetComputeRunningProcesses).
    processes: tuple[int, ...] = ()
    # -- temperature and throttle models (steady hardware; testing/fake_thermal.py) --
    #: With a model, the temperature follows the power and throttle intervals add to ``throttle_reasons_mask``.
    conditions: FakeConditions | None = None
    trace: PowerTrace = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.trace = as_trace(self.power)
        if self.counter_modulus_mj <= 0:
            raise ValueError("counter_modulus_mj must be positive")


_MISSING = object()


class FakeNvml:
    """A set of simulated GPUs and the ``pynvml`` stand-in module that reads them.

    ``calls`` counts every NVML call as ``(function name, gpu index or None)``, so a test can check which GPUs a
    meter touched. ``permission_denied`` makes ``nvmlInit`` raise ``NVMLError_NoPermission``; ``driver_missing``
    makes it raise ``NVMLError_LibraryNotFound``. With ``lost_after_s`` (elapsed seconds since installation; may be
    set at any time), every NVML call from then on raises ``NVMLError_GpuIsLost``.
    """

    def __init__(
        self,
        gpus: Sequence[FakeGpu] | None = None,
        *,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
        permission_denied: bool = False,
        driver_missing: bool = False,
        lost_after_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.gpus: list[FakeGpu] = list(gpus) if gpus is not None else [FakeGpu()]
        for index, gpu in enumerate(self.gpus):
            if not gpu.uuid:
                gpu.uuid = f"GPU-00000000-0000-4000-8000-{index:012d}"
            if not gpu.bus_id:
                gpu.bus_id = f"00000000:{0x17 + index:02X}:00.0"
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.permission_denied = permission_denied
        self.driver_missing = driver_missing
        self.lost_after_s = lost_after_s
        self.calls: Counter[tuple[str, int | None]] = Counter()
        self.init_count = 0
        self._lock = threading.Lock()
        self._t0 = clock.now_s()
        self._previous_module: Any = _MISSING
        self.module = build_module(self)

    # -- time and ground truth ---------------------------------------------------------------------------------------

    @property
    def start_s(self) -> float:
        """The clock's time at installation (``time.perf_counter()`` by default): elapsed time 0 of every trace."""
        return self._t0

    def elapsed_s(self, at_s: float | None = None) -> float:
        """Seconds since installation at the instant ``at_s`` on the clock (now when None)."""
        return (self.clock.now_s() if at_s is None else at_s) - self._t0

    def power_w(self, index: int, at_s: float | None = None) -> float:
        """True power of GPU ``index`` in W at the instant ``at_s`` on the clock (now when None)."""
        return max(0.0, self.gpus[index].trace.power_w(self.elapsed_s(at_s)))

    def energy_j(self, index: int, start_s: float, stop_s: float) -> float:
        """Ground truth: the exact energy in J GPU ``index`` drew between two instants on the clock."""
        trace = self.gpus[index].trace
        return trace.energy_j(self.elapsed_s(start_s), self.elapsed_s(stop_s))

    def counter_mj(self, index: int, at_s: float | None = None) -> int:
        """The value GPU ``index``'s energy counter shows at ``at_s`` (the clock's s; now when None), in mJ."""
        gpu = self.gpus[index]
        energy_mj = gpu.trace.energy_j(0.0, self.elapsed_s(at_s)) * 1000.0
        return (gpu.counter_offset_mj + math.floor(energy_mj)) % gpu.counter_modulus_mj

    def temperature_c(self, index: int, at_s: float | None = None) -> int:
        """GPU ``index``'s temperature (whole °C, as NVML reports it) at ``at_s`` on the clock (now when None)."""
        gpu = self.gpus[index]
        return reported_c(gpu.conditions, gpu.trace, self.elapsed_s(at_s), gpu.temperature_c)

    def throttle_mask(self, index: int, at_s: float | None = None) -> int:
        """GPU ``index``'s clocks-event reasons at ``at_s`` (fixed mask, scripted intervals, thermal limit)."""
        gpu = self.gpus[index]
        if gpu.conditions is None:
            return gpu.throttle_reasons_mask
        elapsed_s = self.elapsed_s(at_s)
        return gpu.throttle_reasons_mask | gpu.conditions.throttle_bits(gpu.trace, elapsed_s, NVML_THERMAL_BITS)

    def device_calls(self, index: int) -> int:
        """How many NVML calls named GPU ``index``."""
        return sum(n for (_, gpu), n in self.calls.items() if gpu == index)

    # -- installation ------------------------------------------------------------------------------------------------

    def install(self) -> types.ModuleType:
        """Make ``import pynvml`` return the simulation; restarts the traces' clock. Returns the module."""
        if self._previous_module is _MISSING:
            self._previous_module = sys.modules.get("pynvml", None)
        self._t0 = self.clock.now_s()
        sys.modules["pynvml"] = self.module
        return self.module

    def uninstall(self) -> None:
        """Put back whatever ``sys.modules["pynvml"]`` held before :meth:`install`."""
        if self._previous_module is _MISSING:
            return
        if self._previous_module is None:
            sys.modules.pop("pynvml", None)
        else:
            sys.modules["pynvml"] = self._previous_module
        self._previous_module = _MISSING

    def __enter__(self) -> FakeNvml:
        self.install()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # -- the module --------------------------------------------------------------------------------------------------

    def _record(self, function: str, index: int | None = None) -> None:
        with self._lock:
            self.calls[(function, index)] += 1
        if self.lost_after_s is not None and self.elapsed_s() >= self.lost_after_s:
            raise NVMLError_GpuIsLost(NVML_ERROR_GPU_IS_LOST)

    def _require_init(self) -> None:
        if self.init_count <= 0:
            raise NVMLError_Uninitialized(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, function: str, handle: Any) -> tuple[int, FakeGpu]:
        self._require_init()
        if not isinstance(handle, FakeHandle) or not 0 <= handle.index < len(self.gpus):
            raise NVMLError_InvalidArgument(NVML_ERROR_INVALID_ARGUMENT)
        self._record(function, handle.index)
        return handle.index, self.gpus[handle.index]
