"""Simulated AMD GPUs: a stand-in for the ``amdsmi`` module (AMD SMI's Python package, shipped with ROCm).

A :class:`FakeAmdSmi` holds :class:`FakeAmdGpu` devices, one per die or partition as AMD SMI lists them, and builds a
module with the functions, enums and exception the AMD SMI adapter reads. Installed into ``sys.modules["amdsmi"]``
(explicitly or as a context manager), ``import amdsmi`` returns the simulation, so the AMD meter can be checked
against an exact ground truth, through the same meter code as NVML::

    clock = SimulatedClock()
    with FakeAmdSmi(mi250x_gcds(power=(300.0, 250.0)), clock=clock) as fake:
        ...  # AmdSmiMeter(..., clock=clock); truth: fake.energy_j(0, t0, t1)

Each device draws power following a trace (:mod:`ai_energy_benchmarks.testing.traces`) of elapsed seconds on
``clock`` since :meth:`FakeAmdSmi.install`. Its energy accumulator counts whole ticks of ``counter_resolution_uj``
µJ (AMD's usual 15.3 µJ unless set), may start at an offset, and wraps at ``counter_modulus`` ticks (2^64 unless a
test sets a narrower counter, which the meter under test must then be told). The accumulator's key is
``energy_accumulator`` (``power`` on ROCm 6.0-6.1 with ``rocm6_0_keys``); power is reported in W under the key the
part uses (``current_socket_power`` on MI300-class parts, ``average_socket_power`` on MI200-class ones, where
``current_socket_power`` reads "N/A"). A device may lack the accumulator (``AMDSMI_STATUS_NOT_SUPPORTED``) or deny
reads (``AMDSMI_STATUS_NO_PERM``); ``lost_after_s`` makes every call fail from then on, as a GPU that fell off the bus.
"""

from __future__ import annotations

import math
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.energy.clock import SYSTEM_CLOCK, Clock
from ai_energy_benchmarks.testing.fake_thermal import FakeConditions, amd_metrics, reported_c
from ai_energy_benchmarks.testing.traces import PowerSpec, PowerTrace, as_trace

__all__ = ["AmdSmiLibraryException", "FakeAmdGpu", "FakeAmdSmi", "mi250x_gcds", "mi300x_partitions"]

# amdsmi_status_t (amdsmi.h).
AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_INIT_ERROR = 18
AMDSMI_STATUS_NOT_INIT = 32
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34  # the simulation's code for a lost device / missing driver
_NA = "N/A"


class AmdSmiException(Exception):
    """AMD SMI's base exception."""


class AmdSmiLibraryException(AmdSmiException):
    """An error of the library; ``err_code`` is its ``amdsmi_status_t``."""

    def __init__(self, err_code: int) -> None:
        super().__init__(err_code)
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code

    def __str__(self) -> str:
        names = {
            AMDSMI_STATUS_INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
            AMDSMI_STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
            AMDSMI_STATUS_NO_PERM: "AMDSMI_STATUS_NO_PERM - Permission Denied",
            AMDSMI_STATUS_INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
            AMDSMI_STATUS_NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
            AMDSMI_STATUS_DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
        }
        return f"Error code: {self.err_code} | {names.get(self.err_code, 'unknown error')}"


class AmdSmiInitFlags:
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1 << 0
    INIT_AMD_GPUS = 1 << 1


class AmdSmiClkType:
    SYS = GFX = 0
    DF = 1
    DCEF = 2
    SOC = 3
    MEM = 4


class AmdSmiTemperatureType:
    EDGE = 0
    HOTSPOT = JUNCTION = 1
    VRAM = 2


class AmdSmiTemperatureMetric:
    CURRENT = 0


@dataclass
class FakeAmdGpu:
    """One simulated AMD GPU die or partition. Power is W, a callable of elapsed seconds -> W, or a trace."""

    power: PowerSpec = 550.0
    market_name: str = "AMD Instinct MI300X (simulated)"
    uuid: str = ""  # filled in from the index when empty
    bdf: str = ""  # filled in from the index when empty
    power_cap_w: float = 750.0
    counter_resolution_uj: float = 15.3
    counter_modulus: int = 2**64
    counter_offset_ticks: int = 0
    has_energy_counter: bool = True
    rocm6_0_keys: bool = False  # the accumulator under the key "power", as ROCm 6.0-6.1 named it
    power_key: str = "current_socket_power"  # where the power is reported ("average_socket_power" on MI200)
    permission_denied: bool = False
    gfx_clock_mhz: int = 2100
    mem_clock_mhz: int = 1300
    hotspot_c: int = 55
    gfx_activity_pct: int = 90
    throttle_status: int = 0
    #: PIDs of the processes running on the device (amdsmi_get_gpu_process_list).
    processes: tuple[int, ...] = ()
    # -- temperature and throttle models (testing/fake_thermal.py): indep_throttle_status None reads "N/A" --
    indep_throttle_status: int | None = None
    conditions: FakeConditions | None = None
    trace: PowerTrace = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.trace = as_trace(self.power)
        if self.counter_modulus <= 0 or self.counter_resolution_uj <= 0:
            raise ValueError("counter_modulus and counter_resolution_uj must be positive")


def mi250x_gcds(cards: int = 1, power: Sequence[PowerSpec] = (300.0, 250.0)) -> list[FakeAmdGpu]:
    """MI250X-style parts: two GCDs per card, each its own AMD SMI device with its own counter; power averaged."""
    gpus = []
    for card in range(cards):
        for die in range(2):
            gpus.append(
                FakeAmdGpu(
                    power=power[(2 * card + die) % len(power)],
                    market_name="AMD Instinct MI250X (simulated)",
                    bdf=f"0000:{0x29 + 0x20 * card + die:02x}:00.0",
                    power_cap_w=560.0,
                    power_key="average_socket_power",
                    mem_clock_mhz=1600,
                    gfx_clock_mhz=1700,
                )
            )
    return gpus


def mi300x_partitions(partitions: int = 4, power: Sequence[PowerSpec] = (180.0,)) -> list[FakeAmdGpu]:
    """An MI300X-style GPU in a partition mode (CPX: 8, QPX: 4, DPX: 2): each partition an AMD SMI device."""
    return [
        FakeAmdGpu(
            power=power[i % len(power)],
            market_name="AMD Instinct MI300X (simulated partition)",
            bdf=f"0000:{0x0C:02x}:00.{i}",
            power_cap_w=750.0 / partitions,
        )
        for i in range(partitions)
    ]


class _Handle:
    """Opaque processor handle (AMD SMI's is a C pointer)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<simulated amdsmi processor {self.index}>"


_MISSING = object()


class FakeAmdSmi:
    """Simulated AMD GPUs and the ``amdsmi`` stand-in module that reads them (see the module docstring)."""

    def __init__(
        self,
        gpus: Sequence[FakeAmdGpu] | None = None,
        *,
        driver_version: str = "6.8.5",
        permission_denied: bool = False,
        driver_missing: bool = False,
        lost_after_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.gpus = list(gpus) if gpus is not None else [FakeAmdGpu()]
        for index, gpu in enumerate(self.gpus):
            gpu.uuid = gpu.uuid or f"{index:02x}ff74a1-0000-1000-80b9-{index:012x}"
            gpu.bdf = gpu.bdf or f"0000:{0x0C + 0x10 * index:02x}:00.0"
        self.driver_version = driver_version
        self.permission_denied = permission_denied
        self.driver_missing = driver_missing
        self.lost_after_s = lost_after_s
        self.calls: dict[tuple[str, int | None], int] = {}
        self.initialized = 0
        self._lock = threading.Lock()
        self._t0 = clock.now_s()
        self._previous: Any = _MISSING
        self.module = self._build_module()

    # -- time and ground truth ---------------------------------------------------------------------------------------

    @property
    def start_s(self) -> float:
        """The clock's time at installation: elapsed time 0 of every trace."""
        return self._t0

    def elapsed_s(self, at_s: float | None = None) -> float:
        return (self.clock.now_s() if at_s is None else at_s) - self._t0

    def power_w(self, index: int, at_s: float | None = None) -> float:
        """True power of device ``index`` (W) at ``at_s`` on the clock (now when None)."""
        return max(0.0, self.gpus[index].trace.power_w(self.elapsed_s(at_s)))

    def energy_j(self, index: int, start_s: float, stop_s: float) -> float:
        """Ground truth: the exact energy (J) device ``index`` drew between two instants on the clock."""
        return self.gpus[index].trace.energy_j(self.elapsed_s(start_s), self.elapsed_s(stop_s))

    def counter_ticks(self, index: int, at_s: float | None = None) -> int:
        """Device ``index``'s accumulator (ticks) at ``at_s`` on the clock (now when None)."""
        gpu = self.gpus[index]
        energy_uj = gpu.trace.energy_j(0.0, self.elapsed_s(at_s)) * 1e6
        return (gpu.counter_offset_ticks + math.floor(energy_uj / gpu.counter_resolution_uj)) % gpu.counter_modulus

    def device_calls(self, index: int) -> int:
        """How many calls named device ``index``."""
        return sum(n for (_, gpu), n in self.calls.items() if gpu == index)

    # -- installation ------------------------------------------------------------------------------------------------

    def install(self) -> types.ModuleType:
        """Make ``import amdsmi`` return the simulation; restarts the traces' clock."""
        if self._previous is _MISSING:
            self._previous = sys.modules.get("amdsmi")
        self._t0 = self.clock.now_s()
        sys.modules["amdsmi"] = self.module
        return self.module

    def uninstall(self) -> None:
        """Put back whatever ``sys.modules["amdsmi"]`` held before :meth:`install`."""
        if self._previous is _MISSING:
            return
        if self._previous is None:
            sys.modules.pop("amdsmi", None)
        else:
            sys.modules["amdsmi"] = self._previous
        self._previous = _MISSING

    def __enter__(self) -> FakeAmdSmi:
        self.install()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # -- the module --------------------------------------------------------------------------------------------------

    def _record(self, function: str, index: int | None = None) -> None:
        with self._lock:
            self.calls[(function, index)] = self.calls.get((function, index), 0) + 1
        if self.lost_after_s is not None and self.elapsed_s() >= self.lost_after_s:
            raise AmdSmiLibraryException(AMDSMI_STATUS_DRIVER_NOT_LOADED)

    def _gpu(self, function: str, handle: Any) -> tuple[int, FakeAmdGpu]:
        if self.initialized <= 0:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        if not isinstance(handle, _Handle) or not 0 <= handle.index < len(self.gpus):
            raise AmdSmiLibraryException(AMDSMI_STATUS_INVAL)
        self._record(function, handle.index)
        return handle.index, self.gpus[handle.index]

    def _build_module(self) -> types.ModuleType:
        module = types.ModuleType("amdsmi", "Simulated AMD SMI (ai_energy_benchmarks.testing.fake_amdsmi).")
        fake = self

        def amdsmi_init(flags: int = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
            fake._record("amdsmi_init")
            if fake.driver_missing:
                raise AmdSmiLibraryException(AMDSMI_STATUS_DRIVER_NOT_LOADED)
            if fake.permission_denied:
                raise AmdSmiLibraryException(AMDSMI_STATUS_NO_PERM)
            with fake._lock:
                fake.initialized += 1

        def amdsmi_shut_down() -> None:
            fake._record("amdsmi_shut_down")
            with fake._lock:
                fake.initialized -= 1

        def amdsmi_get_processor_handles() -> list[_Handle]:
            fake._record("amdsmi_get_processor_handles")
            return [_Handle(i) for i in range(len(fake.gpus))]

        def amdsmi_get_gpu_device_uuid(handle: Any) -> str:
            return fake._gpu("amdsmi_get_gpu_device_uuid", handle)[1].uuid

        def amdsmi_get_gpu_device_bdf(handle: Any) -> str:
            return fake._gpu("amdsmi_get_gpu_device_bdf", handle)[1].bdf

        def amdsmi_get_gpu_asic_info(handle: Any) -> dict[str, Any]:
            gpu = fake._gpu("amdsmi_get_gpu_asic_info", handle)[1]
            return {"market_name": gpu.market_name, "vendor_id": "0x1002", "vendor_name": "Advanced Micro Devices Inc."}

        def amdsmi_get_gpu_driver_info(handle: Any) -> dict[str, Any]:
            fake._gpu("amdsmi_get_gpu_driver_info", handle)
            return {"driver_name": "amdgpu", "driver_version": fake.driver_version, "driver_date": "2025/01/01"}

        def amdsmi_get_energy_count(handle: Any) -> dict[str, Any]:
            now = fake.clock.now_s()
            index, gpu = fake._gpu("amdsmi_get_energy_count", handle)
            if gpu.permission_denied:
                raise AmdSmiLibraryException(AMDSMI_STATUS_NO_PERM)
            if not gpu.has_energy_counter:
                raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
            key = "power" if gpu.rocm6_0_keys else "energy_accumulator"
            return {
                key: fake.counter_ticks(index, now),
                "counter_resolution": gpu.counter_resolution_uj,
                "timestamp": round(now * 1e9),
            }

        def amdsmi_get_power_info(handle: Any) -> dict[str, Any]:
            now = fake.clock.now_s()
            index, gpu = fake._gpu("amdsmi_get_power_info", handle)
            if gpu.permission_denied:
                raise AmdSmiLibraryException(AMDSMI_STATUS_NO_PERM)
            info: dict[str, Any] = {"current_socket_power": _NA, "average_socket_power": _NA, "gfx_voltage": 800}
            info[gpu.power_key] = round(fake.power_w(index, now))  # AMD SMI reports whole watts
            info["power_limit"] = round(gpu.power_cap_w)
            return info

        def amdsmi_get_power_cap_info(handle: Any) -> dict[str, Any]:
            gpu = fake._gpu("amdsmi_get_power_cap_info", handle)[1]
            cap_uw = round(gpu.power_cap_w * 1e6)
            return {"power_cap": cap_uw, "default_power_cap": cap_uw, "min_power_cap": 0, "max_power_cap": cap_uw}

        def amdsmi_get_clock_info(handle: Any, clk_type: int) -> dict[str, Any]:
            gpu = fake._gpu("amdsmi_get_clock_info", handle)[1]
            if clk_type == AmdSmiClkType.GFX:
                return {"clk": gpu.gfx_clock_mhz, "min_clk": 500, "max_clk": gpu.gfx_clock_mhz, "clk_locked": False}
            if clk_type == AmdSmiClkType.MEM:
                return {"clk": gpu.mem_clock_mhz, "min_clk": 900, "max_clk": gpu.mem_clock_mhz, "clk_locked": False}
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)

        def amdsmi_get_temp_metric(handle: Any, sensor: int, metric: int) -> int:
            now = fake.clock.now_s()
            gpu = fake._gpu("amdsmi_get_temp_metric", handle)[1]
            if sensor != AmdSmiTemperatureType.HOTSPOT or metric != AmdSmiTemperatureMetric.CURRENT:
                raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)  # MI300-class: no edge sensor
            return reported_c(gpu.conditions, gpu.trace, fake.elapsed_s(now), gpu.hotspot_c)

        def amdsmi_get_gpu_activity(handle: Any) -> dict[str, Any]:
            gpu = fake._gpu("amdsmi_get_gpu_activity", handle)[1]
            return {"gfx_activity": gpu.gfx_activity_pct, "umc_activity": gpu.gfx_activity_pct // 2, "mm_activity": _NA}

        def amdsmi_get_gpu_metrics_info(handle: Any) -> dict[str, Any]:
            now = fake.clock.now_s()
            gpu = fake._gpu("amdsmi_get_gpu_metrics_info", handle)[1]
            return amd_metrics(gpu, fake.elapsed_s(now))

        def amdsmi_get_gpu_process_list(handle: Any) -> list[dict[str, Any]]:
            gpu = fake._gpu("amdsmi_get_gpu_process_list", handle)[1]
            return [{"name": f"process {pid}", "pid": pid, "mem": 2**30} for pid in gpu.processes]

        for function in (
            amdsmi_get_gpu_process_list,
            amdsmi_init,
            amdsmi_shut_down,
            amdsmi_get_processor_handles,
            amdsmi_get_gpu_device_uuid,
            amdsmi_get_gpu_device_bdf,
            amdsmi_get_gpu_asic_info,
            amdsmi_get_gpu_driver_info,
            amdsmi_get_energy_count,
            amdsmi_get_power_info,
            amdsmi_get_power_cap_info,
            amdsmi_get_clock_info,
            amdsmi_get_temp_metric,
            amdsmi_get_gpu_activity,
            amdsmi_get_gpu_metrics_info,
        ):
            setattr(module, function.__name__, function)
        for name, value in {
            "AmdSmiException": AmdSmiException,
            "AmdSmiLibraryException": AmdSmiLibraryException,
            "AmdSmiInitFlags": AmdSmiInitFlags,
            "AmdSmiClkType": AmdSmiClkType,
            "AmdSmiTemperatureType": AmdSmiTemperatureType,
            "AmdSmiTemperatureMetric": AmdSmiTemperatureMetric,
            "fake": fake,
        }.items():
            setattr(module, name, value)
        return module
