"""Power limits and clock locks on the simulated GPUs (:mod:`.fake_nvml`, :mod:`.fake_amdsmi`), kept in a module of
their own: :func:`attach_nvml_control` / :func:`attach_amdsmi_control` add the setters to a fake's module.

Once attached, a GPU's power follows its limit: ``power = min(demand, enforced limit)``, where the demand is the
GPU's own trace and the limit may change at any time (the energy counter integrates the capped power exactly for
piecewise-linear traces, numerically otherwise). Its SM clock follows a lock: ``min(max(default, low), high)``.
Setting requires ``allowed`` (else ``NVML_ERROR_NO_PERMISSION`` / ``AMDSMI_STATUS_NO_PERM``, as for a user who is
not root); a value outside ``limits_w`` is ``NVML_ERROR_INVALID_ARGUMENT`` / ``AMDSMI_STATUS_INVAL``.
``other_limit_w`` plays another limiter (an out-of-band cap): the enforced limit is the lower of the two.

Like a real GPU's, the settings outlive the process: with ``state_file`` they are read when attached and written at
every change (JSON, by UUID), so a test can kill the process that set them and read what the device was left with.
Units: W and MHz here; NVML's functions take and return mW, AMD SMI's µW.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.testing.traces import PiecewiseLinearTrace, PowerTrace

__all__ = ["CappedTrace", "GpuControlSim", "attach_amdsmi_control", "attach_nvml_control", "read_state_file"]

_STEP_S = 1e-3


def _capped_linear(w0: float, w1: float, limit_w: float, dt_s: float) -> float:
    """Energy (J) of min(linear w0 -> w1, limit) over ``dt_s`` seconds."""
    if w0 <= limit_w and w1 <= limit_w:
        return (w0 + w1) / 2.0 * dt_s
    if w0 >= limit_w and w1 >= limit_w:
        return limit_w * dt_s
    crossing = (limit_w - w0) / (w1 - w0) * dt_s
    if w0 < limit_w:  # rising through the limit
        return (w0 + limit_w) / 2.0 * crossing + limit_w * (dt_s - crossing)
    return limit_w * crossing + (limit_w + w1) / 2.0 * (dt_s - crossing)


class CappedTrace:
    """A demand trace held under a limit that changes over time (W; times in elapsed seconds)."""

    def __init__(self, demand: PowerTrace, limit_w: float) -> None:
        self.demand = demand
        self._starts: list[float] = [-math.inf]
        self._limits: list[float] = [limit_w]

    def set_limit(self, at_s: float, limit_w: float) -> None:
        """The limit is ``limit_w`` from ``at_s`` on (a time not before the last change)."""
        at_s = max(at_s, self._starts[-1])
        if at_s == self._starts[-1]:
            self._limits[-1] = limit_w
        else:
            self._starts.append(at_s)
            self._limits.append(limit_w)

    def limit_w(self, t_s: float) -> float:
        return self._limits[bisect.bisect_right(self._starts, t_s) - 1]

    def power_w(self, t_s: float) -> float:
        return min(self.demand.power_w(t_s), self.limit_w(t_s))

    def _segment_j(self, a_s: float, b_s: float, limit_w: float) -> float:
        demand = self.demand
        if b_s <= a_s:
            return 0.0
        if isinstance(demand, PiecewiseLinearTrace):
            cuts = [a_s, *(t for t in demand._times if a_s < t < b_s), b_s]
            total = 0.0
            for x0, x1 in itertools.pairwise(cuts):
                if x1 <= x0:
                    continue
                quarter = (x1 - x0) / 4.0
                w_a, w_b = demand.power_w(x0 + quarter), demand.power_w(x1 - quarter)
                slope = (w_b - w_a) / (2.0 * quarter)
                mid = (w_a + w_b) / 2.0
                total += _capped_linear(mid - slope * 2 * quarter, mid + slope * 2 * quarter, limit_w, x1 - x0)
            return total
        n = max(2, math.ceil((b_s - a_s) / _STEP_S))
        n += n % 2
        h = (b_s - a_s) / n
        values = [min(demand.power_w(a_s + k * h), limit_w) for k in range(n + 1)]
        return h / 3.0 * (values[0] + values[-1] + 4 * sum(values[1:-1:2]) + 2 * sum(values[2:-1:2]))

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        if t1_s < t0_s:
            return -self.energy_j(t1_s, t0_s)
        total = 0.0
        for i, limit_w in enumerate(self._limits):
            start = max(t0_s, self._starts[i])
            stop = min(t1_s, self._starts[i + 1] if i + 1 < len(self._starts) else math.inf)
            total += self._segment_j(start, stop, limit_w)
        return total


@dataclass
class GpuControlSim:
    """The settable state of one simulated GPU (W, MHz)."""

    default_limit_w: float
    limits_w: tuple[float, float]
    default_sm_clock_mhz: int
    trace: CappedTrace
    limit_w: float = 0.0
    lock_mhz: tuple[int, int] | None = None
    other_limit_w: float | None = None

    @property
    def enforced_w(self) -> float:
        return self.limit_w if self.other_limit_w is None else min(self.limit_w, self.other_limit_w)

    @property
    def sm_clock_mhz(self) -> int:
        if self.lock_mhz is None:
            return self.default_sm_clock_mhz
        return min(max(self.default_sm_clock_mhz, self.lock_mhz[0]), self.lock_mhz[1])


def read_state_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The settings each simulated GPU (by UUID) was left with: ``power_limit_w`` and ``sm_clock_lock_mhz``."""
    file = Path(path)
    if not file.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(file.read_text(encoding="utf-8"))
    return data


@dataclass
class _Control:
    fake: Any
    gpus: list[GpuControlSim]
    allowed: bool
    state_file: Path | None
    uuids: list[str] = field(default_factory=list)

    def save(self) -> None:
        if self.state_file is None:
            return
        state = {
            uuid: {"power_limit_w": sim.limit_w, "sm_clock_lock_mhz": list(sim.lock_mhz) if sim.lock_mhz else None}
            for uuid, sim in zip(self.uuids, self.gpus, strict=True)
        }
        temporary = self.state_file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(state, indent=2), encoding="utf-8")
        os.replace(temporary, self.state_file)

    def set_limit(self, index: int, limit_w: float) -> None:
        sim = self.gpus[index]
        sim.limit_w = limit_w
        sim.trace.set_limit(self.fake.elapsed_s(), sim.enforced_w)
        self.save()


def _attach(
    fake: Any,
    gpus: Sequence[Any],
    limit_attr: str,
    clock_attr: str,
    limits_w: tuple[float, float] | Sequence[tuple[float, float]],
    allowed: bool,
    state_file: str | os.PathLike[str] | None,
    other_limit_w: float | None,
) -> _Control:
    ranges: list[Any] = [limits_w] * len(gpus) if isinstance(limits_w[0], int | float) else list(limits_w)
    sims: list[GpuControlSim] = []
    for gpu, limits in zip(gpus, ranges, strict=True):
        default_w = float(getattr(gpu, limit_attr))
        trace = CappedTrace(gpu.trace, default_w)
        gpu.trace = trace  # the fake's power and counter now follow the limit
        sim = GpuControlSim(default_w, (float(limits[0]), float(limits[1])), int(getattr(gpu, clock_attr)), trace)
        sim.limit_w, sim.other_limit_w = default_w, other_limit_w
        trace.set_limit(-math.inf, sim.enforced_w)
        sims.append(sim)
    control = _Control(fake, sims, allowed, Path(state_file) if state_file is not None else None)
    control.uuids = [gpu.uuid for gpu in gpus]
    saved = read_state_file(state_file) if state_file is not None else {}
    for index, uuid in enumerate(control.uuids):
        if uuid in saved:  # what an earlier process left the device with
            sim = sims[index]
            sim.limit_w = float(saved[uuid]["power_limit_w"])
            lock = saved[uuid].get("sm_clock_lock_mhz")
            sim.lock_mhz = (int(lock[0]), int(lock[1])) if lock else None
            sim.trace.set_limit(-math.inf, sim.enforced_w)
    for gpu, sim in zip(gpus, sims, strict=True):
        setattr(gpu, limit_attr, sim.limit_w)
        setattr(gpu, clock_attr, sim.sm_clock_mhz)
    control.save()
    return control


def attach_nvml_control(
    fake: Any,
    *,
    limits_w: tuple[float, float] | Sequence[tuple[float, float]] = (200.0, 700.0),
    allowed: bool = True,
    state_file: str | os.PathLike[str] | None = None,
    other_limit_w: float | None = None,
) -> list[GpuControlSim]:
    """Give a :class:`~.fake_nvml.FakeNvml` settable power limits (``limits_w``: (min, max) W, one pair or one per
    GPU) and SM clock locks; returns each GPU's settable state."""
    from ai_energy_benchmarks.testing.nvml_api import (
        NVML_ERROR_INVALID_ARGUMENT,
        NVML_ERROR_NO_PERMISSION,
        NVMLError_InvalidArgument,
        NVMLError_NoPermission,
    )

    control = _attach(fake, fake.gpus, "power_limit_w", "sm_clock_mhz", limits_w, allowed, state_file, other_limit_w)
    module = fake.module

    def sim(function: str, handle: Any) -> tuple[int, GpuControlSim]:
        index, _ = fake._gpu(function, handle)
        return index, control.gpus[index]

    def writable() -> None:
        if not control.allowed:
            raise NVMLError_NoPermission(NVML_ERROR_NO_PERMISSION)

    def nvmlDeviceGetPowerManagementLimitConstraints(handle: Any) -> list[int]:
        state = sim("nvmlDeviceGetPowerManagementLimitConstraints", handle)[1]
        return [round(state.limits_w[0] * 1000.0), round(state.limits_w[1] * 1000.0)]

    def nvmlDeviceGetPowerManagementLimit(handle: Any) -> int:
        return round(sim("nvmlDeviceGetPowerManagementLimit", handle)[1].limit_w * 1000.0)

    def nvmlDeviceGetEnforcedPowerLimit(handle: Any) -> int:
        return round(sim("nvmlDeviceGetEnforcedPowerLimit", handle)[1].enforced_w * 1000.0)

    def nvmlDeviceGetPowerManagementDefaultLimit(handle: Any) -> int:
        return round(sim("nvmlDeviceGetPowerManagementDefaultLimit", handle)[1].default_limit_w * 1000.0)

    def nvmlDeviceSetPowerManagementLimit(handle: Any, limit_mw: int) -> None:
        index, state = sim("nvmlDeviceSetPowerManagementLimit", handle)
        writable()
        if not state.limits_w[0] * 1000.0 <= limit_mw <= state.limits_w[1] * 1000.0:
            raise NVMLError_InvalidArgument(NVML_ERROR_INVALID_ARGUMENT)
        control.set_limit(index, limit_mw / 1000.0)
        fake.gpus[index].power_limit_w = limit_mw / 1000.0

    def nvmlDeviceGetMaxClockInfo(handle: Any, clock_type: int) -> int:
        index, state = sim("nvmlDeviceGetMaxClockInfo", handle)
        return fake.gpus[index].mem_clock_mhz if clock_type == 2 else state.default_sm_clock_mhz

    def nvmlDeviceSetGpuLockedClocks(handle: Any, low_mhz: int, high_mhz: int) -> None:
        index, state = sim("nvmlDeviceSetGpuLockedClocks", handle)
        writable()
        if not 0 < low_mhz <= high_mhz:
            raise NVMLError_InvalidArgument(NVML_ERROR_INVALID_ARGUMENT)
        state.lock_mhz = (int(low_mhz), int(high_mhz))
        fake.gpus[index].sm_clock_mhz = state.sm_clock_mhz
        control.save()

    def nvmlDeviceResetGpuLockedClocks(handle: Any) -> None:
        index, state = sim("nvmlDeviceResetGpuLockedClocks", handle)
        writable()
        state.lock_mhz = None
        fake.gpus[index].sm_clock_mhz = state.sm_clock_mhz
        control.save()

    for function in (
        nvmlDeviceGetPowerManagementLimitConstraints,
        nvmlDeviceGetPowerManagementLimit,
        nvmlDeviceGetEnforcedPowerLimit,
        nvmlDeviceGetPowerManagementDefaultLimit,
        nvmlDeviceSetPowerManagementLimit,
        nvmlDeviceGetMaxClockInfo,
        nvmlDeviceSetGpuLockedClocks,
        nvmlDeviceResetGpuLockedClocks,
    ):
        setattr(module, function.__name__, function)
    return control.gpus


def attach_amdsmi_control(
    fake: Any,
    *,
    limits_w: tuple[float, float] | Sequence[tuple[float, float]] = (300.0, 750.0),
    allowed: bool = True,
    state_file: str | os.PathLike[str] | None = None,
    other_limit_w: float | None = None,
) -> list[GpuControlSim]:
    """Give a :class:`~.fake_amdsmi.FakeAmdSmi` settable power caps (``amdsmi_set_power_cap``, µW)."""
    from ai_energy_benchmarks.testing.fake_amdsmi import (
        AMDSMI_STATUS_INVAL,
        AMDSMI_STATUS_NO_PERM,
        AmdSmiLibraryException,
    )

    control = _attach(fake, fake.gpus, "power_cap_w", "gfx_clock_mhz", limits_w, allowed, state_file, other_limit_w)
    module = fake.module

    def amdsmi_get_power_cap_info(handle: Any) -> dict[str, Any]:
        index, _ = fake._gpu("amdsmi_get_power_cap_info", handle)
        state = control.gpus[index]
        return {
            "power_cap": round(state.enforced_w * 1e6),
            "default_power_cap": round(state.default_limit_w * 1e6),
            "dpm_cap": 0,
            "min_power_cap": round(state.limits_w[0] * 1e6),
            "max_power_cap": round(state.limits_w[1] * 1e6),
        }

    def amdsmi_set_power_cap(handle: Any, sensor_ind: int, cap_uw: int) -> None:
        index, _ = fake._gpu("amdsmi_set_power_cap", handle)
        state = control.gpus[index]
        if not control.allowed:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NO_PERM)
        if sensor_ind != 0 or not state.limits_w[0] * 1e6 <= cap_uw <= state.limits_w[1] * 1e6:
            raise AmdSmiLibraryException(AMDSMI_STATUS_INVAL)
        control.set_limit(index, cap_uw / 1e6)
        fake.gpus[index].power_cap_w = cap_uw / 1e6

    module.amdsmi_get_power_cap_info = amdsmi_get_power_cap_info
    module.amdsmi_set_power_cap = amdsmi_set_power_cap
    return control.gpus
