"""CodeCarbon's releases, as the CodeCarbon meter (:mod:`ai_energy_benchmarks.energy.codecarbon`) sees them.

What differs between CodeCarbon releases, read in one place: the form of its CSV output argument, and which path it
took for an NVIDIA GPU, which shows only in private attributes of its device objects. Nothing here imports
CodeCarbon at module level (it is a heavy import); :func:`codecarbon_version` and :func:`csv_output_kwargs` import
it when called.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "COUNTER_SOURCE",
    "GPU_NOTES",
    "NO_COUNTER_SOURCE",
    "POWER_AVERAGE_SOURCE",
    "codecarbon_version",
    "counter_kwh",
    "counter_readable",
    "csv_output_kwargs",
    "nvidia_devices",
    "nvidia_gpu_source",
    "unreadable_gpus",
]


def csv_output_kwargs() -> dict[str, Any]:
    """Ask CodeCarbon for its emissions.csv in the form its version understands."""
    try:
        from codecarbon.output_methods.base_output import OutputMethod
    except ImportError:  # older CodeCarbon
        return {"save_to_file": True}
    return {"output_methods": [OutputMethod.CSV]}


# -- CodeCarbon releases ------------------------------------------------------------------------------------------
# Supported: codecarbon>=3.0.4,<4 (pyproject.toml), tested in CI with 3.0.4 (AIEnergyScore's pin) and the latest 3.x
# (.ci/compat-matrix). Which path CodeCarbon took for an NVIDIA GPU shows only in private attributes of its device
# objects (``tracker._hardware[GPU].devices.devices``), and they differ between releases:
# - every 3.x: ``handle``, ``gpu_index`` and ``last_energy`` (the last counter reading, kWh) on each device;
# - 3.3.2 and later: a GPU without the NVML energy counter (or whose counter fails or jumps back) is read by averaging
#   its ~1 s power samples, and ``_use_power_fallback`` / ``_has_counter`` say so;
# - 3.0.x to 3.3.1: such a GPU reads 0 kWh (CodeCarbon issue #1316) and nothing on the device says so, so the counter
#   is read here through the pynvml module that CodeCarbon bound (the module of its device class).
COUNTER_SOURCE = "measured:codecarbon-nvml-energy-counter"
POWER_AVERAGE_SOURCE = "estimated:codecarbon-nvml-power-average"
# Not an EnergyReading label: no GPU reading is given, so the result says the GPU energy is missing, not 0.
NO_COUNTER_SOURCE = "not-measured:codecarbon-gpu-without-energy-counter"
GPU_NOTES = {
    POWER_AVERAGE_SOURCE: "the GPU's energy counter is missing or went backwards: CodeCarbon averaged its ~1 s "
    "power samples, which misjudges bursts (use metrics.type=[codecarbon, nvml] for 20 Hz integration)",
}


def nvidia_devices(tracker: Any, gpu_ids: list[int] | None) -> list[Any]:
    """CodeCarbon's NVIDIA device objects for the selected GPUs (all of them when ``gpu_ids`` is None)."""
    gpu_item = next((h for h in getattr(tracker, "_hardware", None) or [] if type(h).__name__ == "GPU"), None)
    devices = list(getattr(getattr(gpu_item, "devices", None), "devices", None) or [])
    if gpu_ids:
        devices = [d for d in devices if getattr(d, "gpu_index", None) in gpu_ids]
    return devices


def counter_readable(device: Any) -> bool:
    """Whether the NVML energy counter of CodeCarbon's ``device`` answers now, asked through CodeCarbon's pynvml."""
    pynvml = getattr(sys.modules.get(type(device).__module__), "pynvml", None)
    if pynvml is None:
        return False
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(device.handle)
    except Exception:
        return False
    return True


def nvidia_gpu_source(devices: list[Any]) -> str:
    """The label of CodeCarbon's figure for ``devices``: the counter, averaged power samples (3.3.2+), or nothing
    (3.0.x-3.3.1 report 0 kWh for a GPU whose counter does not answer)."""
    if any(hasattr(d, "_use_power_fallback") for d in devices):  # 3.3.2 and later
        fallback = any(
            getattr(d, "_use_power_fallback", False) or getattr(d, "_has_counter", True) is False for d in devices
        )
        return POWER_AVERAGE_SOURCE if fallback else COUNTER_SOURCE
    return COUNTER_SOURCE if devices and all(counter_readable(d) for d in devices) else NO_COUNTER_SOURCE


def counter_kwh(devices: list[Any]) -> float | None:
    """The selected GPUs' last counter readings added up (kWh), None unless every one is read by its counter."""
    if not devices:
        return None
    total = 0.0
    for device in devices:
        last = getattr(device, "last_energy", None)
        if last is None or getattr(device, "_use_power_fallback", False):
            return None
        if not hasattr(device, "_use_power_fallback") and not counter_readable(device):
            return None  # before 3.3.2 a failed read keeps the previous reading: ``last_energy`` is stale
        total += float(last.kWh)
    return total


def codecarbon_version() -> str:
    import codecarbon

    return str(getattr(codecarbon, "__version__", "unknown"))


def unreadable_gpus(gpu_item: Any, gpu_ids: list[int] | None) -> list[str]:
    """The selected GPUs CodeCarbon cannot read now (neither its energy counter nor its power), as "GPU i (error)".

    CodeCarbon counts a GPU whose reads fail as 0 W (after falling back from the counter to power samples), so a
    GPU that stopped answering would read 0 Wh: probing it at the window's end tells a dead GPU from an idle one.
    """
    devices = getattr(getattr(gpu_item, "devices", None), "devices", None) or []
    failed: list[str] = []
    for device in devices:
        index = getattr(device, "gpu_index", None)
        counter = getattr(device, "_get_total_energy_consumption", None)
        power = getattr(device, "_get_power_usage", None)
        if (gpu_ids and index not in gpu_ids) or not callable(power):
            continue
        try:
            if callable(counter) and counter() is not None:  # CodeCarbon returns None when the read fails
                continue
            power()
        except Exception as exc:
            failed.append(f"GPU {index} ({exc or type(exc).__name__})")
    return failed
