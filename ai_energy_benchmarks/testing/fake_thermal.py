"""Temperature and throttling of a simulated GPU (:mod:`.fake_nvml`, :mod:`.fake_amdsmi`): a first-order thermal
model driven by the GPU's power trace, thermal throttling above a limit, and scripted throttle intervals.

The temperature follows ``dT/dt = (ambient_c + c_per_w * P(t) - T) / time_constant_s``, integrated in steps of at
most ``step_s`` with the exact exponential update for the power at each step's middle (exact for constant power:
``T(t) = T_eq + (T_0 - T_eq) * exp(-t / time_constant_s)``). It starts at ``initial_c`` (default: steady at the
trace's power at time 0). Times are the simulation's elapsed seconds; temperatures °C; power W. The libraries
report whole degrees, so the fakes round it::

    FakeGpu(power=100.0, conditions=FakeConditions(initial_c=60.0))   # cools from 60 °C towards 40 °C

Throttle masks are the vendor's bits: NVML's clocks-event reasons (``NVML_THERMAL_BITS``: SW thermal slowdown) or
AMD SMI's ``indep_throttle_status`` (``AMD_THERMAL_BITS``: hotspot temperature).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.testing.traces import PowerTrace

__all__ = [
    "AMD_POWER_CAP_BITS",
    "AMD_THERMAL_BITS",
    "NVML_POWER_CAP_BITS",
    "NVML_THERMAL_BITS",
    "FakeConditions",
    "ThrottleInterval",
    "amd_metrics",
    "reported_c",
]

#: NVML clocks-event reason bits: SW thermal slowdown (0x20), SW power cap (0x4).
NVML_THERMAL_BITS = 0x20
NVML_POWER_CAP_BITS = 0x4
#: amdgpu independent throttler bits: TEMP_HOTSPOT (bit 36), PPT0 (bit 0).
AMD_THERMAL_BITS = 1 << 36
AMD_POWER_CAP_BITS = 1 << 0
_NA = "N/A"


@dataclass(frozen=True)
class ThrottleInterval:
    """The GPU reports ``bits`` (the vendor's mask) from ``start_s`` to ``end_s`` (elapsed s, end excluded)."""

    start_s: float
    end_s: float
    bits: int


@dataclass
class FakeConditions:
    """The thermal and throttle model of one simulated GPU (see the module docstring).

    ``thermal_limit_c``: at or above it, the GPU reports thermal throttling (the vendor's thermal bits).
    ``throttle_supported`` False makes the throttle query fail as not supported (unknown, not "not throttled").
    """

    ambient_c: float = 30.0
    c_per_w: float = 0.1
    time_constant_s: float = 20.0
    initial_c: float | None = None
    thermal_limit_c: float | None = None
    intervals: tuple[ThrottleInterval, ...] = ()
    throttle_supported: bool = True
    step_s: float = 0.05
    _grid: list[float] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.time_constant_s <= 0 or self.step_s <= 0:
            raise ValueError("time_constant_s and step_s must be positive")

    def _steady_c(self, trace: PowerTrace, elapsed_s: float) -> float:
        return self.ambient_c + self.c_per_w * max(0.0, trace.power_w(elapsed_s))

    def _step(self, trace: PowerTrace, temperature_c: float, start_s: float, step_s: float) -> float:
        target_c = self._steady_c(trace, start_s + step_s / 2.0)
        return target_c + (temperature_c - target_c) * math.exp(-step_s / self.time_constant_s)

    def temperature_c(self, trace: PowerTrace, elapsed_s: float) -> float:
        """The true temperature (°C) ``elapsed_s`` seconds in."""
        elapsed_s = max(0.0, elapsed_s)
        with self._lock:
            if not self._grid:
                self._grid.append(self._steady_c(trace, 0.0) if self.initial_c is None else self.initial_c)
            steps = int(elapsed_s / self.step_s)
            while len(self._grid) <= steps:  # the temperature at each whole step, computed once
                k = len(self._grid) - 1
                self._grid.append(self._step(trace, self._grid[k], k * self.step_s, self.step_s))
            rest_s = elapsed_s - steps * self.step_s
            start_c = self._grid[steps]
        return self._step(trace, start_c, steps * self.step_s, rest_s) if rest_s > 0 else start_c

    def throttle_bits(self, trace: PowerTrace, elapsed_s: float, thermal_bits: int) -> int:
        """The throttle mask ``elapsed_s`` seconds in: the scripted intervals', plus ``thermal_bits`` when hot."""
        bits = 0
        for interval in self.intervals:
            if interval.start_s <= elapsed_s < interval.end_s:
                bits |= interval.bits
        if self.thermal_limit_c is not None and self.temperature_c(trace, elapsed_s) >= self.thermal_limit_c:
            bits |= thermal_bits
        return bits


def reported_c(conditions: FakeConditions | None, trace: PowerTrace, elapsed_s: float, fixed_c: int) -> int:
    """The whole-degree temperature a library reports: the model's, or ``fixed_c`` without one."""
    return fixed_c if conditions is None else round(conditions.temperature_c(trace, elapsed_s))


def amd_metrics(gpu: Any, elapsed_s: float) -> dict[str, Any]:
    """``amdsmi_get_gpu_metrics_info``'s throttle keys for a ``FakeAmdGpu`` ``elapsed_s`` in: ``throttle_status``
    (the ASIC's bits: 1 when throttled) and ``indep_throttle_status`` ("N/A" where not reported)."""
    conditions: FakeConditions | None = gpu.conditions
    if conditions is not None and not conditions.throttle_supported:
        return {"throttle_status": _NA, "indep_throttle_status": _NA}
    independent = gpu.indep_throttle_status
    if conditions is not None:
        independent = (independent or 0) | conditions.throttle_bits(gpu.trace, elapsed_s, AMD_THERMAL_BITS)
    status = gpu.throttle_status | (1 if independent else 0)
    return {"throttle_status": status, "indep_throttle_status": _NA if independent is None else independent}
