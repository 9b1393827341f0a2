"""The ``pynvml`` stand-in module of a :class:`~ai_energy_benchmarks.testing.fake_nvml.FakeNvml`: the NVML
functions, constants, error classes and structures that our NVML meter and CodeCarbon call, each function reading
the simulated GPUs and counting its call (``FakeNvml.calls``).

Units follow NVML: power in mW (integers), energy in mJ (integers), clocks in MHz, temperatures in °C.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from ai_energy_benchmarks.testing.nvml_api import (
    _CONSTANTS,
    _ERROR_CLASSES,
    _ERROR_STRINGS,
    NVML_ERROR_INVALID_ARGUMENT,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    NVMLError_InvalidArgument,
    NVMLError_LibraryNotFound,
    NVMLError_NoPermission,
    NVMLError_NotSupported,
    c_nvmlMemory_t,
    c_nvmlPciInfo_t,
    c_nvmlProcessInfo_t,
    c_nvmlUtilization_t,
)

if TYPE_CHECKING:
    from ai_energy_benchmarks.testing.fake_nvml import FakeNvml

__all__ = ["FakeHandle", "build_module"]


class FakeHandle:
    """Opaque device handle (NVML's is a C pointer)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<simulated nvmlDevice {self.index}>"


def build_module(fake: FakeNvml) -> types.ModuleType:
    """The ``pynvml`` stand-in module of ``fake``: its functions read ``fake``'s GPUs and count each call."""
    module = types.ModuleType("pynvml", "Simulated NVML (ai_energy_benchmarks.testing.fake_nvml).")

    def nvmlInit() -> None:
        fake._record("nvmlInit")
        if fake.driver_missing:
            raise NVMLError_LibraryNotFound(NVML_ERROR_LIBRARY_NOT_FOUND)
        if fake.permission_denied:
            raise NVMLError_NoPermission(NVML_ERROR_NO_PERMISSION)
        with fake._lock:
            fake.init_count += 1

    def nvmlInitWithFlags(flags: int) -> None:
        nvmlInit()

    def nvmlShutdown() -> None:
        fake._record("nvmlShutdown")
        fake._require_init()
        with fake._lock:
            fake.init_count -= 1

    def nvmlErrorString(code: int) -> str:
        return _ERROR_STRINGS.get(code, f"NVML Error with code {code}")

    def nvmlSystemGetDriverVersion() -> str:
        fake._record("nvmlSystemGetDriverVersion")
        fake._require_init()
        return fake.driver_version

    def nvmlSystemGetNVMLVersion() -> str:
        fake._record("nvmlSystemGetNVMLVersion")
        fake._require_init()
        return "12." + fake.driver_version

    def nvmlSystemGetCudaDriverVersion() -> int:
        fake._record("nvmlSystemGetCudaDriverVersion")
        fake._require_init()
        return fake.cuda_driver_version

    def nvmlDeviceGetCount() -> int:
        fake._record("nvmlDeviceGetCount")
        fake._require_init()
        return len(fake.gpus)

    def nvmlDeviceGetHandleByIndex(index: int) -> FakeHandle:
        fake._record("nvmlDeviceGetHandleByIndex", index)
        fake._require_init()
        if not 0 <= index < len(fake.gpus):
            raise NVMLError_InvalidArgument(NVML_ERROR_INVALID_ARGUMENT)
        return FakeHandle(index)

    def nvmlDeviceGetIndex(handle: Any) -> int:
        index, _ = fake._gpu("nvmlDeviceGetIndex", handle)
        return index

    def nvmlDeviceGetName(handle: Any) -> str:
        return fake._gpu("nvmlDeviceGetName", handle)[1].name

    def nvmlDeviceGetUUID(handle: Any) -> str:
        return fake._gpu("nvmlDeviceGetUUID", handle)[1].uuid

    def nvmlDeviceGetPciInfo(handle: Any) -> c_nvmlPciInfo_t:
        gpu = fake._gpu("nvmlDeviceGetPciInfo", handle)[1]
        return c_nvmlPciInfo_t(gpu.bus_id.encode(), 0, int(gpu.bus_id.split(":")[1], 16), 0)

    def nvmlDeviceGetCurrentClocksEventReasons(handle: Any) -> int:
        now = fake.clock.now_s()
        index, gpu = fake._gpu("nvmlDeviceGetCurrentClocksEventReasons", handle)
        if gpu.conditions is not None and not gpu.conditions.throttle_supported:
            raise NVMLError_NotSupported(NVML_ERROR_NOT_SUPPORTED)
        return fake.throttle_mask(index, now)

    def nvmlDeviceGetTotalEnergyConsumption(handle: Any) -> int:
        now = fake.clock.now_s()
        index, gpu = fake._gpu("nvmlDeviceGetTotalEnergyConsumption", handle)
        if gpu.permission_denied:
            raise NVMLError_NoPermission(NVML_ERROR_NO_PERMISSION)
        if not gpu.has_energy_counter:
            raise NVMLError_NotSupported(NVML_ERROR_NOT_SUPPORTED)
        return fake.counter_mj(index, now)

    def nvmlDeviceGetPowerUsage(handle: Any) -> int:
        now = fake.clock.now_s()
        index, gpu = fake._gpu("nvmlDeviceGetPowerUsage", handle)
        if gpu.permission_denied:
            raise NVMLError_NoPermission(NVML_ERROR_NO_PERMISSION)
        return round(fake.power_w(index, now) * 1000.0)

    def nvmlDeviceGetEnforcedPowerLimit(handle: Any) -> int:
        return round(fake._gpu("nvmlDeviceGetEnforcedPowerLimit", handle)[1].power_limit_w * 1000.0)

    def nvmlDeviceGetPowerManagementLimit(handle: Any) -> int:
        return round(fake._gpu("nvmlDeviceGetPowerManagementLimit", handle)[1].power_limit_w * 1000.0)

    def nvmlDeviceGetPowerManagementDefaultLimit(handle: Any) -> int:
        return round(fake._gpu("nvmlDeviceGetPowerManagementDefaultLimit", handle)[1].power_limit_w * 1000.0)

    def nvmlDeviceGetMemoryInfo(handle: Any, version: int | None = None) -> c_nvmlMemory_t:
        gpu = fake._gpu("nvmlDeviceGetMemoryInfo", handle)[1]
        used = gpu.memory_used_bytes
        return c_nvmlMemory_t(gpu.memory_total_bytes, gpu.memory_total_bytes - used, used)

    def nvmlDeviceGetTemperature(handle: Any, sensor: int) -> int:
        now = fake.clock.now_s()
        index, _ = fake._gpu("nvmlDeviceGetTemperature", handle)
        if sensor != 0:
            raise NVMLError_InvalidArgument(NVML_ERROR_INVALID_ARGUMENT)
        return fake.temperature_c(index, now)

    def nvmlDeviceGetUtilizationRates(handle: Any) -> c_nvmlUtilization_t:
        gpu = fake._gpu("nvmlDeviceGetUtilizationRates", handle)[1]
        return c_nvmlUtilization_t(gpu.utilization_pct, gpu.utilization_pct // 2)

    def nvmlDeviceGetComputeMode(handle: Any) -> int:
        fake._gpu("nvmlDeviceGetComputeMode", handle)
        return 0

    def nvmlDeviceGetComputeRunningProcesses(handle: Any) -> list[c_nvmlProcessInfo_t]:
        gpu = fake._gpu("nvmlDeviceGetComputeRunningProcesses", handle)[1]
        return [c_nvmlProcessInfo_t(pid, 2**30, 0xFFFFFFFF, 0xFFFFFFFF) for pid in gpu.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(handle: Any) -> list[c_nvmlProcessInfo_t]:
        fake._gpu("nvmlDeviceGetGraphicsRunningProcesses", handle)
        return []

    def nvmlDeviceGetClockInfo(handle: Any, clock_type: int) -> int:
        gpu = fake._gpu("nvmlDeviceGetClockInfo", handle)[1]
        if clock_type in (0, 1):  # graphics, SM
            return gpu.sm_clock_mhz
        if clock_type == 2:  # memory
            return gpu.mem_clock_mhz
        raise NVMLError_NotSupported(NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetMaxClockInfo(handle: Any, clock_type: int) -> int:
        gpu = fake._gpu("nvmlDeviceGetMaxClockInfo", handle)[1]
        return gpu.mem_clock_mhz if clock_type == 2 else gpu.sm_clock_mhz

    for function in (
        nvmlInit,
        nvmlInitWithFlags,
        nvmlShutdown,
        nvmlErrorString,
        nvmlSystemGetDriverVersion,
        nvmlSystemGetNVMLVersion,
        nvmlSystemGetCudaDriverVersion,
        nvmlDeviceGetCount,
        nvmlDeviceGetHandleByIndex,
        nvmlDeviceGetIndex,
        nvmlDeviceGetName,
        nvmlDeviceGetUUID,
        nvmlDeviceGetPciInfo,
        nvmlDeviceGetCurrentClocksEventReasons,
        nvmlDeviceGetTotalEnergyConsumption,
        nvmlDeviceGetPowerUsage,
        nvmlDeviceGetEnforcedPowerLimit,
        nvmlDeviceGetPowerManagementLimit,
        nvmlDeviceGetPowerManagementDefaultLimit,
        nvmlDeviceGetMemoryInfo,
        nvmlDeviceGetTemperature,
        nvmlDeviceGetUtilizationRates,
        nvmlDeviceGetComputeMode,
        nvmlDeviceGetComputeRunningProcesses,
        nvmlDeviceGetGraphicsRunningProcesses,
        nvmlDeviceGetClockInfo,
        nvmlDeviceGetMaxClockInfo,
    ):
        setattr(module, function.__name__, function)
    for name, value in _CONSTANTS.items():
        setattr(module, name, value)
    for error_class in _ERROR_CLASSES:
        setattr(module, error_class.__name__, error_class)
    module.c_nvmlMemory_t = c_nvmlMemory_t  # type: ignore[attr-defined]
    module.c_nvmlUtilization_t = c_nvmlUtilization_t  # type: ignore[attr-defined]
    module.c_nvmlProcessInfo_t = c_nvmlProcessInfo_t  # type: ignore[attr-defined]
    module.c_nvmlPciInfo_t = c_nvmlPciInfo_t  # type: ignore[attr-defined]
    module.fake = fake  # type: ignore[attr-defined]
    return module
