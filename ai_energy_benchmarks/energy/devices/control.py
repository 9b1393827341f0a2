"""Setting a GPU's power limit and SM clock lock, through NVML or AMD SMI (the vendor layer's write side).

NVML (nvidia-ml-py): ``nvmlDeviceGetPowerManagementLimitConstraints`` gives (min, max) and
``nvmlDeviceSetPowerManagementLimit`` takes the limit, all in mW; ``nvmlDeviceGetEnforcedPowerLimit`` (mW) is the limit
the driver enforces after every limiter; ``nvmlDeviceSetGpuLockedClocks(min, max)`` (MHz) locks the graphics/SM clock
and ``nvmlDeviceResetGpuLockedClocks`` unlocks it. NVML has no call that reads a lock back, so restoring a lock means
unlocking. Setting needs root (or CAP_SYS_ADMIN); a refusal is ``NVML_ERROR_NO_PERMISSION``.

AMD SMI: ``amdsmi_get_power_cap_info`` gives ``power_cap``, ``default_power_cap``, ``min_power_cap`` and
``max_power_cap`` in µW (on Linux bare metal) and ``amdsmi_set_power_cap(handle, sensor_ind, cap)`` takes µW (sensor
0). The enforced cap is read back from the same info. Clock locks are not offered for AMD here.
"""

from __future__ import annotations

from typing import Any, Protocol

from ai_energy_benchmarks.energy.devices.base import FAILED, NO_PERMISSION, NOT_SUPPORTED, DeviceError
from ai_energy_benchmarks.energy.devices.nvml import NvmlDevice

#: What to tell a user whose run may not change GPU settings.
CONTROL_PERMISSION_HINT = (
    "setting GPU power limits and clocks needs root or the CAP_SYS_ADMIN capability (run as root, e.g. `sudo -E`, "
    "or start the container with --cap-add SYS_ADMIN)"
)

_NVML_CODES = {3: NOT_SUPPORTED, 4: NO_PERMISSION}
_AMDSMI_CODES = {2: NOT_SUPPORTED, 10: NO_PERMISSION}


def _error(exc: BaseException, codes: dict[int, str]) -> DeviceError:
    code = getattr(exc, "value", None)
    if not isinstance(code, int):
        getter = getattr(exc, "get_error_code", None)
        code = getter() if callable(getter) else None
    kind = codes.get(code, FAILED) if isinstance(code, int) else FAILED
    return DeviceError(str(exc) or type(exc).__name__, kind)


class GpuController(Protocol):
    """The settings of one GPU that a run may change. Power in W, clocks in MHz."""

    index: int
    uuid: str
    name: str
    #: Whether :meth:`lock_sm_clocks` is offered.
    can_lock_clocks: bool

    def power_limit_w(self) -> float:
        """The power limit set now (the management limit, not the enforced one)."""

    def enforced_power_limit_w(self) -> float:
        """The limit the device enforces now, after every limiter."""

    def power_limit_range_w(self) -> tuple[float, float]:
        """(lowest, highest) limit the device accepts."""

    def set_power_limit_w(self, power_w: float) -> None:
        """Set the power limit; :class:`DeviceError` (``NO_PERMISSION`` when refused)."""

    def sm_clock_mhz(self) -> float | None:
        """The SM clock now."""

    def max_sm_clock_mhz(self) -> float | None:
        """The highest SM clock the device runs at."""

    def lock_sm_clocks(self, low_mhz: int, high_mhz: int) -> None:
        """Lock the SM clock to [low, high]."""

    def unlock_sm_clocks(self) -> None:
        """Let the driver choose the SM clock again."""


class NvmlController:
    """An NVIDIA GPU's settings through NVML."""

    can_lock_clocks = True

    def __init__(self, device: NvmlDevice) -> None:
        self._nvml: Any = device._nvml
        self._handle = device.handle
        self.index = device.index
        self.uuid = device.uuid
        self.name = device.name

    def _call(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, function)(self._handle, *args)
        except Exception as exc:
            raise _error(exc, _NVML_CODES) from exc

    def power_limit_w(self) -> float:
        return float(self._call("nvmlDeviceGetPowerManagementLimit")) / 1000.0

    def enforced_power_limit_w(self) -> float:
        return float(self._call("nvmlDeviceGetEnforcedPowerLimit")) / 1000.0

    def power_limit_range_w(self) -> tuple[float, float]:
        low_mw, high_mw = self._call("nvmlDeviceGetPowerManagementLimitConstraints")
        return float(low_mw) / 1000.0, float(high_mw) / 1000.0

    def set_power_limit_w(self, power_w: float) -> None:
        self._call("nvmlDeviceSetPowerManagementLimit", round(power_w * 1000.0))

    def sm_clock_mhz(self) -> float | None:
        try:
            return float(self._call("nvmlDeviceGetClockInfo", getattr(self._nvml, "NVML_CLOCK_SM", 1)))
        except DeviceError:
            return None

    def max_sm_clock_mhz(self) -> float | None:
        try:
            return float(self._call("nvmlDeviceGetMaxClockInfo", getattr(self._nvml, "NVML_CLOCK_SM", 1)))
        except DeviceError:
            return None

    def lock_sm_clocks(self, low_mhz: int, high_mhz: int) -> None:
        self._call("nvmlDeviceSetGpuLockedClocks", int(low_mhz), int(high_mhz))

    def unlock_sm_clocks(self) -> None:
        self._call("nvmlDeviceResetGpuLockedClocks")


class AmdSmiController:
    """An AMD GPU's power cap through AMD SMI (µW); no clock lock."""

    can_lock_clocks = False

    def __init__(self, amdsmi: Any, index: int, handle: Any, uuid: str, name: str) -> None:
        self._amdsmi = amdsmi
        self._handle = handle
        self.index = index
        self.uuid = uuid
        self.name = name

    def _info(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self._amdsmi.amdsmi_get_power_cap_info(self._handle)
        except Exception as exc:
            raise _error(exc, _AMDSMI_CODES) from exc
        return info

    def _w(self, key: str) -> float:
        value = self._info().get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise DeviceError(f"AMD SMI reports no {key} ({value!r})", NOT_SUPPORTED)
        return float(value) / 1e6

    def power_limit_w(self) -> float:
        return self._w("power_cap")

    def enforced_power_limit_w(self) -> float:
        return self._w("power_cap")

    def power_limit_range_w(self) -> tuple[float, float]:
        return self._w("min_power_cap"), self._w("max_power_cap")

    def set_power_limit_w(self, power_w: float) -> None:
        try:
            self._amdsmi.amdsmi_set_power_cap(self._handle, 0, round(power_w * 1e6))
        except Exception as exc:
            raise _error(exc, _AMDSMI_CODES) from exc

    def sm_clock_mhz(self) -> float | None:
        return None

    def max_sm_clock_mhz(self) -> float | None:
        return None

    def lock_sm_clocks(self, low_mhz: int, high_mhz: int) -> None:
        raise DeviceError("SM clock locks are not offered for AMD GPUs here", NOT_SUPPORTED)

    def unlock_sm_clocks(self) -> None:
        raise DeviceError("SM clock locks are not offered for AMD GPUs here", NOT_SUPPORTED)


def controller(library: Any, index: int) -> GpuController:
    """The controller of GPU ``index`` of an opened :class:`NvmlLibrary` or :class:`AmdSmiLibrary`."""
    device = library.device(index)
    if isinstance(device, NvmlDevice):
        return NvmlController(device)
    return AmdSmiController(device._amdsmi, index, device.handle, device.uuid, device.name)


__all__ = ["CONTROL_PERMISSION_HINT", "AmdSmiController", "GpuController", "NvmlController", "controller"]
