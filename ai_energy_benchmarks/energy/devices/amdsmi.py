"""AMD GPUs through AMD SMI (the ``amdsmi`` Python package that ships with ROCm; imported when the library is opened).

``amdsmi_get_energy_count`` gives an energy accumulator in ticks of ``counter_resolution`` µJ (the key is
``energy_accumulator``; ROCm 6.0-6.1 called it ``power``). ``amdsmi_get_processor_handles`` lists every device the
driver exposes: on multi-die parts (MI250X's two GCDs, MI300X in a CPX/DPX partition mode) each die or partition is
a device of its own, and is metered as one. Power comes from ``amdsmi_get_power_info`` in W (``socket_power`` on
ROCm 7, ``current_socket_power`` on MI300-class parts, otherwise ``average_socket_power``); "N/A" means not reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ai_energy_benchmarks.energy.devices.base import FAILED, NO_PERMISSION, NOT_SUPPORTED, DeviceError
from ai_energy_benchmarks.exceptions import MeterError, MissingDependencyError

logger = logging.getLogger(__name__)

#: The accumulator is read as an unsigned 64-bit number of ticks.
AMDSMI_COUNTER_MODULUS = 2**64

# amdsmi_status_t (amdsmi.h).
_NOT_SUPPORTED = 2
_NO_PERMISSION = 10

PERMISSION_HINT = (
    "the user needs read and write access to /dev/kfd and /dev/dri/* (membership of the video and render groups), "
    "or the container must be started with those devices"
)

_NA = "N/A"

# amdgpu's ASIC-independent throttler bits (drivers/gpu/drm/amd/include/kgd_pp_interface.h), as AMD SMI passes them
# in gpu_metrics' indep_throttle_status: power (0-7), current (16-23), temperature (32-45), PROCHOT (46-47), other.
_INDEPENDENT_THROTTLERS = {
    **{bit: name for bit, name in enumerate(("ppt0", "ppt1", "ppt2", "ppt3", "spl", "fppt", "sppt", "sppt_apu"))},
    **{16 + i: name for i, name in enumerate(("tdc_gfx", "tdc_soc", "tdc_mem", "tdc_vdd", "tdc_cvip", "edc_cpu"))},
    22: "edc_gfx",
    23: "apcc",
    **{32 + i: f"temp_{name}" for i, name in enumerate(("gpu", "core", "mem", "edge", "hotspot", "soc", "vr_gfx"))},
    **{39 + i: f"temp_{name}" for i, name in enumerate(("vr_soc", "vr_mem0", "vr_mem1", "liquid0", "liquid1"))},
    44: "vrhot0",
    45: "vrhot1",
    46: "prochot_cpu",
    47: "prochot_gfx",
    56: "ppm",
    57: "fit",
}


class MissingAmdSmiError(MissingDependencyError, MeterError):
    """The ``amdsmi`` package is not installed (exit code 2)."""


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "err_code", None)
    return value if isinstance(value, int) else None


def _device_error(exc: BaseException) -> DeviceError:
    kind = {_NOT_SUPPORTED: NOT_SUPPORTED, _NO_PERMISSION: NO_PERMISSION}.get(_code(exc) or -1, FAILED)
    return DeviceError(str(exc) or type(exc).__name__, kind)


def _number(value: Any) -> float | None:
    """A reading as a float; None for "N/A" and other non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class AmdSmiDevice:
    """One AMD GPU die or partition as AMD SMI lists it."""

    def __init__(self, amdsmi: Any, index: int, handle: Any, counter_modulus: int = AMDSMI_COUNTER_MODULUS) -> None:
        self._amdsmi = amdsmi
        self.index = index
        self.handle = handle
        asic = self._optional(lambda: amdsmi.amdsmi_get_gpu_asic_info(handle)) or {}
        self.name = str(asic.get("market_name") or "AMD GPU")
        self.uuid = str(self._optional(lambda: amdsmi.amdsmi_get_gpu_device_uuid(handle)) or "")
        self.bus_id = str(self._optional(lambda: amdsmi.amdsmi_get_gpu_device_bdf(handle)) or "")
        self.counter_modulus = counter_modulus
        count = self._optional(lambda: amdsmi.amdsmi_get_energy_count(handle)) or {}
        resolution_uj = _number(count.get("counter_resolution"))
        #: µJ per tick / 1000; 15.3 µJ is AMD's usual resolution when the library does not answer yet.
        self.counter_resolution_mj = (resolution_uj if resolution_uj else 15.3) / 1000.0

    @staticmethod
    def _optional(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception:
            return None

    def energy_counter(self) -> int:
        try:
            count = self._amdsmi.amdsmi_get_energy_count(self.handle)
        except Exception as exc:
            raise _device_error(exc) from exc
        ticks = count.get("energy_accumulator", count.get("power"))
        if not isinstance(ticks, int) or isinstance(ticks, bool):
            raise DeviceError(f"no energy accumulator ({ticks!r})", NOT_SUPPORTED)
        return ticks

    def _power_info(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self._amdsmi.amdsmi_get_power_info(self.handle)
        except Exception as exc:
            raise _device_error(exc) from exc
        return info

    def power_w(self) -> float:
        info = self._power_info()
        for key in ("socket_power", "current_socket_power", "average_socket_power"):
            value = _number(info.get(key))
            if value is not None:
                return value
        raise DeviceError("power not reported (N/A)", NOT_SUPPORTED)

    def average_power_w(self) -> float | None:
        return _number(self._power_info().get("average_socket_power"))

    def power_limit_w(self) -> float | None:
        cap = self._optional(lambda: self._amdsmi.amdsmi_get_power_cap_info(self.handle)) or {}
        power_cap_uw = _number(cap.get("power_cap"))
        return power_cap_uw / 1e6 if power_cap_uw else None

    def clocks_mhz(self) -> tuple[float | None, float | None]:
        amdsmi = self._amdsmi
        kinds = getattr(amdsmi, "AmdSmiClkType", None)
        if kinds is None:
            return None, None
        gfx = self._optional(lambda: amdsmi.amdsmi_get_clock_info(self.handle, kinds.GFX)) or {}
        mem = self._optional(lambda: amdsmi.amdsmi_get_clock_info(self.handle, kinds.MEM)) or {}
        return _number(gfx.get("clk")), _number(mem.get("clk"))

    def temperature_c(self) -> float | None:
        amdsmi = self._amdsmi
        sensors = getattr(amdsmi, "AmdSmiTemperatureType", None)
        metrics = getattr(amdsmi, "AmdSmiTemperatureMetric", None)
        if sensors is None or metrics is None:
            return None
        for sensor in ("HOTSPOT", "EDGE"):  # MI300-class parts report no edge temperature

            def read(name: str = sensor) -> Any:
                return amdsmi.amdsmi_get_temp_metric(self.handle, getattr(sensors, name), metrics.CURRENT)

            value = _number(self._optional(read))
            if value is not None:
                return value
        return None

    def utilization_pct(self) -> float | None:
        activity = self._optional(lambda: self._amdsmi.amdsmi_get_gpu_activity(self.handle)) or {}
        return _number(activity.get("gfx_activity"))

    def throttle_reasons(self) -> list[str] | None:
        metrics = self._optional(lambda: self._amdsmi.amdsmi_get_gpu_metrics_info(self.handle))
        if not isinstance(metrics, dict):
            return None
        # indep_throttle_status: the driver's ASIC-independent bits (amdgpu's SMU_THROTTLER_*_BIT); throttle_status
        # holds the ASIC's own bits, so from it only "throttled or not" is portable. "N/A" means not reported.
        independent = metrics.get("indep_throttle_status")
        if isinstance(independent, int) and not isinstance(independent, bool):
            return [name for bit, name in _INDEPENDENT_THROTTLERS.items() if independent >> bit & 1]
        status = metrics.get("throttle_status")
        if isinstance(status, int):
            return ["throttled"] if status else []
        return None

    def process_ids(self) -> set[int]:
        function = getattr(self._amdsmi, "amdsmi_get_gpu_process_list", None)
        if function is None:
            raise DeviceError("this AMD SMI has no process list", NOT_SUPPORTED)
        try:
            processes = function(self.handle)
        except Exception as exc:
            raise _device_error(exc) from exc
        # ROCm 6.1+ lists dicts with the pid; older releases gave opaque handles (not read here).
        if any(not isinstance(process, dict) for process in processes):
            raise DeviceError("this AMD SMI lists process handles, not PIDs", NOT_SUPPORTED)
        return {int(process["pid"]) for process in processes if isinstance(process.get("pid"), int)}


class AmdSmiLibrary:
    """AMD SMI, opened by the meter's ``prepare()``."""

    vendor = "AMD SMI"
    bindings = "amdsmi (ROCm)"
    power_note = (
        "AMD SMI reports socket power (instantaneous on MI300-class parts, averaged over about 1 s on older ones)"
    )
    permission_hint = PERMISSION_HINT
    # ROCm applies ROCR_VISIBLE_DEVICES, then HIP_VISIBLE_DEVICES (torch's ROCm build also honours
    # CUDA_VISIBLE_DEVICES in HIP's place; set one of the two).
    visible_devices_variables: tuple[str, ...] = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")

    def __init__(self, counter_modulus: int = AMDSMI_COUNTER_MODULUS) -> None:
        self._counter_modulus = counter_modulus
        self._amdsmi: Any = None
        self._handles: list[Any] = []

    def open(self) -> None:
        try:
            import amdsmi
        except ImportError as exc:
            raise MissingAmdSmiError(
                f"the amdsmi meter needs AMD SMI's Python package, which is not installed ({exc}): pip install "
                "'ai-energy-benchmarks[amd]' (its amdsmi must match the ROCm installed; ROCm also ships it in "
                "/opt/rocm/share/amd_smi)"
            ) from exc
        try:
            flags = getattr(getattr(amdsmi, "AmdSmiInitFlags", None), "INIT_AMD_GPUS", None)
            amdsmi.amdsmi_init(flags) if flags is not None else amdsmi.amdsmi_init()
            self._handles = list(amdsmi.amdsmi_get_processor_handles())
        except Exception as exc:
            if _code(exc) == _NO_PERMISSION:
                raise MeterError(f"AMD SMI: permission denied when initialising ({exc}); {PERMISSION_HINT}") from exc
            raise MeterError(
                f"AMD SMI could not be initialised ({exc}): no amdgpu driver is loaded on this machine, or it is not "
                "visible in this container; use metrics.type: codecarbon or rapl here"
            ) from exc
        self._amdsmi = amdsmi

    def close(self) -> None:
        if self._amdsmi is None:
            return
        amdsmi, self._amdsmi = self._amdsmi, None
        try:
            amdsmi.amdsmi_shut_down()
        except Exception as exc:
            logger.debug("amdsmi_shut_down failed: %s", exc)

    def driver_version(self) -> str:
        if not self._handles:
            return "unknown"
        try:
            return str(self._amdsmi.amdsmi_get_gpu_driver_info(self._handles[0])["driver_version"])
        except Exception as exc:
            logger.debug("AMD SMI driver version unavailable: %s", exc)
            return "unknown"

    def count(self) -> int:
        return len(self._handles)

    def device(self, index: int) -> AmdSmiDevice:
        return AmdSmiDevice(self._amdsmi, index, self._handles[index], self._counter_modulus)
