"""What the GPUs were doing besides drawing power: temperature, power and throttle reasons, sampled by the GPU meter's
poller (:mod:`ai_energy_benchmarks.energy.gpu`) and summarised per interval.

Throttle reasons are the vendor's names (NVML's clocks-event reasons, AMD SMI's independent throttler bits), each of
one kind: ``thermal``, ``power_cap``, ``hw_slowdown``, ``power_brake``, ``current_limit``, ``other`` or
``unspecified`` (AMD's ASIC-dependent flag). NVML's ``gpu_idle``, ``applications_clocks_setting``, ``sync_boost``
and ``display_clocks_setting`` say why clocks are where they are, not that the GPU is held back: they are not
throttling. A sample whose device could not say is unknown, never "not throttled".
Times are seconds on the meter's clock, temperatures °C, power W. A sample takes 28 bytes (arrays per GPU), so an
hour of 20 Hz polling of eight GPUs keeps about 16 MB.
"""

from __future__ import annotations

import bisect
import math
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
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


def _value(number: float) -> float | None:
    return None if math.isnan(number) else number


class _Series:
    """One GPU's samples, in time order: times, temperatures and powers (NaN: not read), throttle codes (-1:
    unknown, else an index into the record's table of distinct reason sets)."""

    def __init__(self) -> None:
        self.times = array("d")
        self.temperatures = array("d")
        self.powers = array("d")
        self.codes = array("i")


class ConditionRecord:
    """The samples of a run's GPUs, appended by the meter's poller, read by the steady-hardware wait and the result.

    ``clock`` is the meter's: samples are stamped with it and :meth:`now_s` gives times comparable with theirs.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._series: dict[int, _Series] = {}
        self._reasons: list[tuple[str, ...]] = []
        self._codes: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def now_s(self) -> float:
        """The meter's clock now (s)."""
        return self.clock.now_s()

    def add(self, device: GpuDevice, power_w: float | None) -> None:
        """Sample ``device``'s temperature and throttle reasons now (its power ``power_w`` was just read)."""
        reasons = device.throttle_reasons()
        temperature_c = device.temperature_c()
        time_s = self.clock.now_s()
        with self._lock:
            series = self._series.setdefault(device.index, _Series())
            code = -1
            if reasons is not None:
                key = tuple(reasons)
                code = self._codes.setdefault(key, len(self._reasons))
                if code == len(self._reasons):
                    self._reasons.append(key)
            series.times.append(max(time_s, series.times[-1]) if series.times else time_s)
            series.temperatures.append(math.nan if temperature_c is None else float(temperature_c))
            series.powers.append(math.nan if power_w is None else float(power_w))
            series.codes.append(code)

    def samples(
        self, gpu: int | None = None, start_s: float = float("-inf"), end_s: float = float("inf")
    ) -> list[ConditionSample]:
        """The samples (of ``gpu``, or of every GPU) taken between ``start_s`` and ``end_s`` (inclusive)."""
        with self._lock:
            found: list[ConditionSample] = []
            for index in [gpu] if gpu is not None else sorted(self._series):
                series = self._series.get(index)
                if series is None:
                    continue
                first = bisect.bisect_left(series.times, start_s)
                last = bisect.bisect_right(series.times, end_s)
                for i in range(first, last):
                    code = series.codes[i]
                    found.append(
                        ConditionSample(
                            series.times[i],
                            index,
                            _value(series.temperatures[i]),
                            _value(series.powers[i]),
                            None if code < 0 else self._reasons[code],
                        )
                    )
            return found

    def gpus(self) -> list[int]:
        """The GPUs sampled so far."""
        with self._lock:
            return sorted(self._series)

    def tally(self, gpu: int, start_s: float, end_s: float) -> Tally:
        """``gpu``'s samples between ``start_s`` and ``end_s`` (inclusive), counted (fast over long windows)."""
        with self._lock:
            series = self._series.get(gpu)
            if series is None:
                return Tally()
            first = bisect.bisect_left(series.times, start_s)
            last = bisect.bisect_right(series.times, end_s)
            temperatures = [t for t in series.temperatures[first:last] if not math.isnan(t)]
            codes = Counter(series.codes[first:last])
            reasons: Counter[tuple[str, ...] | None] = Counter(
                {(self._reasons[code] if code >= 0 else None): count for code, count in codes.items()}
            )
        low_c, high_c = (min(temperatures), max(temperatures)) if temperatures else (None, None)
        return Tally(last - first, low_c, high_c, reasons)


def describe(tally: Tally) -> dict[str, Any]:
    """A tally as the result gives it: temperature range, throttle verdict, and the share of the known samples with
    any reason (``throttled_fraction``), with each kind and with each vendor reason."""
    known = tally.samples - tally.reasons.get(None, 0)
    kinds: Counter[str] = Counter()
    vendor: Counter[str] = Counter()
    throttled = 0
    for reasons, count in tally.reasons.items():
        mine = {r: kind for r in reasons or () if (kind := throttle_kind(r)) is not None}
        throttled += count if mine else 0
        kinds.update({kind: count for kind in set(mine.values())})
        vendor.update({reason: count for reason in mine})
    return {
        "samples": tally.samples,
        "temperature_min_c": tally.temperature_min_c,
        "temperature_max_c": tally.temperature_max_c,
        "throttle": UNKNOWN if not known else THROTTLED if throttled else NOT_THROTTLED,
        "throttled_fraction": round(throttled / known, 4) if known else None,
        "reasons": {kind: round(n / known, 4) for kind, n in sorted(kinds.items())},
        "vendor_reasons": {reason: round(n / known, 4) for reason, n in sorted(vendor.items())},
        "unknown_samples": tally.samples - known,
    }


@dataclass
class Tally:
    """Counts over one GPU's (or several GPUs') samples in an interval: how many, the temperature range (°C), and
    how many samples had each set of throttle reasons (None: unknown)."""

    samples: int = 0
    temperature_min_c: float | None = None
    temperature_max_c: float | None = None
    reasons: Counter[tuple[str, ...] | None] = field(default_factory=Counter)

    def __add__(self, other: Tally) -> Tally:
        lows = [t for t in (self.temperature_min_c, other.temperature_min_c) if t is not None]
        highs = [t for t in (self.temperature_max_c, other.temperature_max_c) if t is not None]
        return Tally(
            self.samples + other.samples,
            min(lows) if lows else None,
            max(highs) if highs else None,
            self.reasons + other.reasons,
        )


__all__ = [
    "NOT_THROTTLED",
    "THROTTLED",
    "UNKNOWN",
    "ConditionRecord",
    "ConditionSample",
    "Tally",
    "describe",
    "throttle_kind",
]
