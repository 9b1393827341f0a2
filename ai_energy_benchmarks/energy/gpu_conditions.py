"""What the GPUs were doing besides drawing power: temperature, power and throttle reasons, sampled by the GPU meter's
poller (:mod:`ai_energy_benchmarks.energy.gpu`) and summarised per interval.

Throttle reasons are the vendor's names (NVML's clocks-event reasons, AMD SMI's independent throttler bits), each of
one kind: ``thermal``, ``power_cap``, ``hw_slowdown``, ``power_brake``, ``current_limit``, ``other`` or
``unspecified`` (AMD's ASIC-dependent flag). NVML's ``gpu_idle``, ``applications_clocks_setting``, ``sync_boost``
and ``display_clocks_setting`` say why clocks are where they are, not that the GPU is held back: they are not
throttling. A sample whose device could not say is unknown, never "not throttled".
Times are seconds on the meter's clock, temperatures °C, power W.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ai_energy_benchmarks.energy.clock import Clock
from ai_energy_benchmarks.energy.devices.base import GpuDevice

THROTTLED, NOT_THROTTLED, UNKNOWN = "throttled", "not-throttled", "unknown"

_NVML_KINDS = {
    "sw_thermal_slowdown": "thermal",
    "hw_thermal_slowdown": "thermal",
    "sw_power_cap": "power_cap",
    "hw_slowdown": "hw_slowdown",
    "hw_power_brake_slowdown": "power_brake",
}
_AMD_PREFIXES = (
    (("temp_", "vrhot"), "thermal"),
    (("ppt", "spl", "fppt", "sppt"), "power_cap"),
    (("tdc_", "edc_", "apcc"), "current_limit"),
    (("prochot",), "hw_slowdown"),
    (("ppm", "fit"), "other"),
)


def throttle_kind(reason: str) -> str | None:
    """The kind of a vendor's throttle reason; None for a reason that is not throttling (NVML's ``gpu_idle``...)."""
    if reason in _NVML_KINDS:
        return _NVML_KINDS[reason]
    if reason == "throttled":
        return "unspecified"
    for prefixes, kind in _AMD_PREFIXES:
        if reason.startswith(prefixes):
            return kind
    return None


@dataclass(frozen=True)
class ConditionSample:
    """One GPU at one instant: temperature (°C), power (W), and its throttling reasons (None: unknown)."""

    time_s: float
    gpu: int
    temperature_c: float | None
    power_w: float | None
    throttle: tuple[str, ...] | None


class ConditionRecord:
    """The samples of a run's GPUs, appended by the meter's poller, read by the steady-hardware wait and the result.

    ``clock`` is the meter's: :meth:`now_s` gives times comparable with the samples'.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._samples: list[ConditionSample] = []
        self._lock = threading.Lock()

    def now_s(self) -> float:
        """The meter's clock now (s)."""
        return self.clock.now_s()

    def add(self, device: GpuDevice, time_s: float, power_w: float | None) -> None:
        """Sample ``device``'s temperature and throttle reasons (its power ``power_w`` was just read)."""
        reasons = device.throttle_reasons()
        sample = ConditionSample(
            time_s, device.index, device.temperature_c(), power_w, None if reasons is None else tuple(reasons)
        )
        with self._lock:
            self._samples.append(sample)

    def samples(
        self, gpu: int | None = None, start_s: float = float("-inf"), end_s: float = float("inf")
    ) -> list[ConditionSample]:
        """The samples (of ``gpu``, or of every GPU) taken between ``start_s`` and ``end_s`` (inclusive)."""
        with self._lock:
            return [s for s in self._samples if (gpu is None or s.gpu == gpu) and start_s <= s.time_s <= end_s]

    def gpus(self) -> list[int]:
        """The GPUs sampled so far."""
        with self._lock:
            return sorted({s.gpu for s in self._samples})


def _spread(values: list[float]) -> tuple[float | None, float | None]:
    return (min(values), max(values)) if values else (None, None)


def summarize(samples: list[ConditionSample]) -> dict[str, Any]:
    """Temperature range, throttle verdict and per-kind fractions of the samples (one GPU's, or several GPUs')."""
    low_c, high_c = _spread([s.temperature_c for s in samples if s.temperature_c is not None])
    known = [s for s in samples if s.throttle is not None]
    kinds: dict[str, int] = {}
    vendor: dict[str, int] = {}
    throttled = 0
    for sample in known:
        mine = {r: kind for r in sample.throttle or () if (kind := throttle_kind(r)) is not None}
        throttled += bool(mine)
        for kind in set(mine.values()):
            kinds[kind] = kinds.get(kind, 0) + 1
        for reason in mine:
            vendor[reason] = vendor.get(reason, 0) + 1
    verdict = UNKNOWN if not known else THROTTLED if throttled else NOT_THROTTLED
    return {
        "samples": len(samples),
        "temperature_min_c": low_c,
        "temperature_max_c": high_c,
        "throttle": verdict,
        "throttled_fraction": round(throttled / len(known), 4) if known else None,
        "reasons": {kind: round(n / len(known), 4) for kind, n in sorted(kinds.items())},
        "vendor_reasons": {reason: round(n / len(known), 4) for reason, n in sorted(vendor.items())},
        "unknown_samples": len(samples) - len(known),
    }


__all__ = ["NOT_THROTTLED", "THROTTLED", "UNKNOWN", "ConditionRecord", "ConditionSample", "summarize", "throttle_kind"]
