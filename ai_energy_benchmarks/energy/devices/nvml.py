"""NVIDIA GPUs through NVML (nvidia-ml-py, module ``pynvml``, imported when the library is opened).

NVML's energy counter (``nvmlDeviceGetTotalEnergyConsumption``) counts millijoules since the driver loaded, as an
unsigned 64-bit number; ``nvmlDeviceGetPowerUsage`` is in mW (an average over about 1 s on Ampere and newer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ai_energy_benchmarks.energy.devices.base import FAILED, NO_PERMISSION, NOT_SUPPORTED, DeviceError
from ai_energy_benchmarks.exceptions import MeterError, MissingDependencyError

logger = logging.getLogger(__name__)

#: NVML's energy counter is an unsigned 64-bit count of millijoules.
NVML_COUNTER_MODULUS_MJ = 2**64

# NVML return codes (stable across driver and binding versions).
_NOT_SUPPORTED = 3
_NO_PERMISSION = 4
_DRIVER_NOT_LOADED = 9
_LIBRARY_NOT_FOUND = 12

PERMISSION_HINT = (
    "the user needs read access to /dev/nvidia* (e.g. membership of the group that owns them), "
    "or the container must be started with GPU access (--gpus)"
)

# nvmlClocksEventReasons bits (nvml.h), named as nvidia-smi names them.
_THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clocks_setting",
}


class MissingBindingsError(MissingDependencyError, MeterError):
    """nvidia-ml-py is not installed: a missing optional dependency (exit code 2) raised by a meter."""


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _device_error(exc: BaseException) -> DeviceError:
    kind = {_NOT_SUPPORTED: NOT_SUPPORTED, _NO_PERMISSION: NO_PERMISSION}.get(_code(exc) or -1, FAILED)
    return DeviceError(str(exc) or type(exc).__name__, kind)


class NvmlDevice:
    """One GPU as NVML lists it."""

    counter_resolution_mj = 1.0

    def __init__(self, nvml: Any, index: int, counter_modulus_mj: int = NVML_COUNTER_MODULUS_MJ) -> None:
        self._nvml = nvml
        self.index = index
        self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
        self.name = _text(nvml.nvmlDeviceGetName(self.handle))
        self.uuid = _text(nvml.nvmlDeviceGetUUID(self.handle))
        pci = self._optional(lambda: nvml.nvmlDeviceGetPciInfo(self.handle))
        self.bus_id = _text(getattr(pci, "busId", "")) if pci is not None else ""
        self.counter_modulus = counter_modulus_mj

    def _optional(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception:
            return None

    def energy_counter(self) -> int:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception as exc:
            raise _device_error(exc) from exc

    def power_w(self) -> float:
        try:
            return float(self._nvml.nvmlDeviceGetPowerUsage(self.handle)) / 1000.0
        except Exception as exc:
            raise _device_error(exc) from exc

    def average_power_w(self) -> float | None:
        return None  # nvmlDeviceGetPowerUsage is itself the ~1 s average on recent GPUs

    def power_limit_w(self) -> float | None:
        try:
            return float(self._nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle)) / 1000.0
        except Exception as exc:
            logger.debug("GPU %d: enforced power limit unavailable: %s", self.index, exc)
            return None

    def clocks_mhz(self) -> tuple[float | None, float | None]:
        nvml = self._nvml
        sm = self._optional(lambda: nvml.nvmlDeviceGetClockInfo(self.handle, getattr(nvml, "NVML_CLOCK_SM", 1)))
        mem = self._optional(lambda: nvml.nvmlDeviceGetClockInfo(self.handle, getattr(nvml, "NVML_CLOCK_MEM", 2)))
        return sm, mem

    def temperature_c(self) -> float | None:
        nvml = self._nvml
        return self._optional(
            lambda: nvml.nvmlDeviceGetTemperature(self.handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0))
        )

    def utilization_pct(self) -> float | None:
        rates = self._optional(lambda: self._nvml.nvmlDeviceGetUtilizationRates(self.handle))
        return getattr(rates, "gpu", None) if rates is not None else None

    def throttle_reasons(self) -> list[str] | None:
        nvml = self._nvml
        function = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        mask = self._optional(lambda: function(self.handle)) if function is not None else None
        if not isinstance(mask, int):
            return None  # not supported (or the read failed): unknown
        return [name for bit, name in _THROTTLE_REASONS.items() if mask & bit]

    def process_ids(self) -> set[int]:
        pids: set[int] = set()
        listed = False
        for name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            function = getattr(self._nvml, name, None)
            if function is None:
                continue
            try:
                processes = function(self.handle)
            except Exception as exc:
                error = _device_error(exc)
                if error.kind != NOT_SUPPORTED:
                    raise error from exc
                continue
            listed = True
            pids.update(int(p.pid) for p in processes if getattr(p, "pid", None) is not None)
        if not listed:
            raise DeviceError("NVML lists no processes for this GPU", NOT_SUPPORTED)
        return pids


class NvmlLibrary:
    """NVML, opened by the meter's ``prepare()``."""

    vendor = "NVML"
    bindings = "nvidia-ml-py (pynvml)"
    power_note = (
        "NVML documents this power reading as an average over about 1 s on Ampere and newer GPUs (except "
        "GA100), which also blurs the window's edges by up to about 1 s"
    )
    permission_hint = PERMISSION_HINT
    visible_devices_variables: tuple[str, ...] = ("CUDA_VISIBLE_DEVICES",)

    def __init__(self, counter_modulus_mj: int = NVML_COUNTER_MODULUS_MJ) -> None:
        self._counter_modulus_mj = counter_modulus_mj
        self._nvml: Any = None

    def open(self) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise MissingBindingsError(
                f"the nvml meter needs NVIDIA's NVML bindings, which are not installed ({exc}): "
                "pip install nvidia-ml-py"
            ) from exc
        try:
            pynvml.nvmlInit()
        except Exception as exc:
            raise MeterError(self._init_message(exc)) from exc
        self._nvml = pynvml

    @staticmethod
    def _init_message(exc: BaseException) -> str:
        code = _code(exc)
        if code == _NO_PERMISSION:
            return f"NVML: permission denied when initialising ({exc}); {PERMISSION_HINT}"
        if code in (_LIBRARY_NOT_FOUND, _DRIVER_NOT_LOADED):
            return (
                f"NVML is unavailable ({exc}): no NVIDIA driver is loaded on this machine, or it is not visible "
                "in this container; use metrics.type: codecarbon or rapl here"
            )
        return f"NVML could not be initialised: {exc}"

    def close(self) -> None:
        if self._nvml is None:
            return
        nvml, self._nvml = self._nvml, None
        try:
            nvml.nvmlShutdown()
        except Exception as exc:
            logger.debug("nvmlShutdown failed: %s", exc)

    def driver_version(self) -> str:
        try:
            return _text(self._nvml.nvmlSystemGetDriverVersion())
        except Exception as exc:
            logger.debug("NVML driver version unavailable: %s", exc)
            return "unknown"

    def count(self) -> int:
        return int(self._nvml.nvmlDeviceGetCount())

    def device(self, index: int) -> NvmlDevice:
        return NvmlDevice(self._nvml, index, self._counter_modulus_mj)
