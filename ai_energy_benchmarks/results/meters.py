"""Which meter's figures are reported for each device class, and the energy of a class over windows.

A meter that read a class (every device of it) in every window is preferred; then measured before estimated, an
estimate with bounds before one without, a direct meter before CodeCarbon's view of the same counter. A class whose
reported meter missed a window or a device is null (never a sum over fewer windows or devices than were measured),
and so is a window with a negative reading.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from ai_energy_benchmarks.energy.base import EnergyReading, WindowMeasurement

_J_PER_WH = 3600.0
_J_PER_KWH = 3.6e6
_DEVICES = ("gpu", "cpu", "ram")
NEGATIVE_ENERGY_FLAG = "negative-energy"


def _wh(joules: float | None) -> float | None:
    return None if joules is None else joules / _J_PER_WH


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _device_class(reading: EnergyReading) -> str:
    return reading.device.split(":", 1)[0]


def _weighted_mean(pairs: Sequence[tuple[float, int]]) -> float | None:
    weight = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weight if weight else None


def refuse_negative(
    energy_j: float | None, flags: list[str], warnings: list[str], warning: Callable[[float], str]
) -> float | None:
    """``energy_j``, or None where it is negative: a negative energy is never reported. The first time, the
    ``negative-energy`` flag is added to ``flags``; each time, ``warning(energy_j)`` is added to ``warnings``."""
    if energy_j is None or energy_j >= 0:
        return energy_j
    if NEGATIVE_ENERGY_FLAG not in flags:
        flags.append(NEGATIVE_ENERGY_FLAG)
    warnings.append(warning(energy_j))
    return None


def _bounded(reading: EnergyReading) -> bool:
    """Whether the reading's error is known: it gives bounds, or it is a counter difference (exact at its reads)."""
    return reading.lower_j is not None or reading.is_measured


def _meter_rank(readings: Sequence[EnergyReading]) -> tuple[int, int, int]:
    """Lower is better: measured before estimated, an estimate with bounds that cover its error before one without
    (the label alone never decides between two estimates), then a direct meter before CodeCarbon's view of the same
    sensor."""
    measured = all(r.is_measured for r in readings)
    bounded = all(_bounded(r) for r in readings)
    direct = all(r.meter != "codecarbon" for r in readings)
    return (0 if measured else 1, 0 if bounded else 1, 0 if direct else 1)


#: (device class, meter) -> every device (``gpu:0``, ``gpu``...) that meter read for the class in any window.
Expected = dict[tuple[str, str], frozenset[str]]


def expected_devices(windows: Sequence[WindowMeasurement]) -> Expected:
    """What each meter read for each class over all ``windows``: a window missing one of them is incomplete."""
    seen: dict[tuple[str, str], set[str]] = {}
    for window in windows:
        for reading in window.readings:
            seen.setdefault((_device_class(reading), reading.meter), set()).add(reading.device)
    return {key: frozenset(devices) for key, devices in seen.items()}


def _meters_by_window(windows: Sequence[WindowMeasurement]) -> dict[str, dict[str, set[str]]]:
    """Device class -> meter -> names of the windows that meter read the class in."""
    read: dict[str, dict[str, set[str]]] = {}
    for window in windows:
        for reading in window.readings:
            read.setdefault(_device_class(reading), {}).setdefault(reading.meter, set()).add(window.name)
    return read


def choose_meters(windows: Sequence[WindowMeasurement], expected: Expected | None = None) -> dict[str, str]:
    """For each device class read in ``windows``, the meter whose readings are reported.

    A meter that read the class (every device of it, see :func:`expected_devices`) in every window is preferred to
    one that missed a window or a device there (it failed), then measured before estimated, then an estimate with
    bounds before one without, then a direct meter before CodeCarbon's view of the same counter.
    """
    expected = expected if expected is not None else expected_devices(windows)
    by_class: dict[str, dict[str, list[EnergyReading]]] = {}
    for window in windows:
        for reading in window.readings:
            by_class.setdefault(_device_class(reading), {}).setdefault(reading.meter, []).append(reading)

    def key(device: str, meter: str) -> tuple[bool, tuple[int, int, int]]:
        complete = all(_class_readings(w, device, meter, expected) is not None for w in windows)
        return (not complete, _meter_rank(by_class[device][meter]))

    chosen: dict[str, str] = {}
    for device, meters in by_class.items():
        chosen[device] = min(sorted(meters), key=functools.partial(key, device))
    return chosen


def _class_readings(
    window: WindowMeasurement, device: str, meter: str | None, expected: Expected | None
) -> list[EnergyReading] | None:
    """The readings of ``device``'s class by ``meter`` in ``window``; None unless every device the meter reads for
    the class elsewhere is there (one GPU of two missing is not "the GPUs' energy") and none is negative."""
    if meter is None:
        return None
    readings = [r for r in window.readings if _device_class(r) == device and r.meter == meter]
    if not readings:
        return None
    if expected is not None and {r.device for r in readings} != expected.get((device, meter), frozenset()):
        return None
    if any(r.energy_j < 0 for r in readings):
        return None
    return readings


def _window_joules(
    window: WindowMeasurement, device: str, meter: str | None, expected: Expected | None = None
) -> float | None:
    readings = _class_readings(window, device, meter, expected)
    return None if readings is None else sum(r.energy_j for r in readings)


def _window_bounds(
    window: WindowMeasurement, device: str, meter: str | None, expected: Expected | None
) -> tuple[float, float] | None:
    """Bounds (J) of the class's energy in ``window``: a counter difference counts as exact, an estimate without
    bounds makes them unknown (None)."""
    readings = _class_readings(window, device, meter, expected)
    if readings is None or not all(_bounded(r) for r in readings):
        return None
    lower = sum(r.energy_j if r.lower_j is None else r.lower_j for r in readings)
    upper = sum(r.energy_j if r.upper_j is None else r.upper_j for r in readings)
    return lower, upper


def _bounds_j(
    windows: Sequence[WindowMeasurement], chosen: dict[str, str], expected: Expected | None
) -> dict[str, tuple[float, float] | None]:
    """Per device class, bounds (J) of its energy over ``windows`` (the windows' bounds added: conservative)."""
    result: dict[str, tuple[float, float] | None] = {}
    for device in _DEVICES:
        parts = [_window_bounds(w, device, chosen.get(device), expected) for w in windows]
        known = [p for p in parts if p is not None]
        result[device] = (
            (sum(p[0] for p in known), sum(p[1] for p in known)) if known and len(known) == len(parts) else None
        )
    return result


def _bounds_wh(bounds: dict[str, tuple[float, float] | None]) -> dict[str, list[float] | None]:
    return {d: None if b is None else [b[0] / _J_PER_WH, b[1] / _J_PER_WH] for d, b in bounds.items()}


def _joules(
    windows: Sequence[WindowMeasurement], chosen: dict[str, str], expected: Expected | None = None
) -> dict[str, float | None]:
    """Energy per device class over ``windows`` (J); None when the chosen meter missed any of them, or a device in
    any of them (a sum over fewer windows or devices than were measured would understate the energy)."""
    totals: dict[str, float | None] = {}
    for device in _DEVICES:
        values = [_window_joules(w, device, chosen.get(device), expected) for w in windows]
        present = [v for v in values if v is not None]
        totals[device] = sum(present) if present and len(present) == len(values) else None
    return totals


def _total(joules: dict[str, float | None], required: Sequence[str] = ()) -> float | None:
    """The sum of the classes' energies; None when one of the ``required`` classes is unknown (a total that
    silently leaves a class out would look smaller, not missing)."""
    if any(joules.get(d) is None for d in required):
        return None
    present = [v for v in joules.values() if v is not None]
    return sum(present) if present else None


def _required(chosen: dict[str, str]) -> list[str]:
    return [d for d in _DEVICES if chosen.get(d)]


def _sources(windows: Sequence[WindowMeasurement], chosen: dict[str, str]) -> dict[str, str | None]:
    sources: dict[str, str | None] = {}
    for device in _DEVICES:
        labels = sorted(
            {
                r.source
                for w in windows
                for r in w.readings
                if _device_class(r) == device and r.meter == chosen.get(device)
            }
        )
        sources[device] = "+".join(labels) if labels else None
    return sources


#: The keys of one metered GPU's identity in ``energy.gpus`` (as the GPU meters describe their GPUs).
_GPU_IDENTITY_KEYS = ("index", "uuid", "name", "bus_id", "matched_by", "source")


def metered_gpus(meters_info: dict[str, Any], gpu_meter: str | None) -> list[dict[str, Any]]:
    """The identity of each GPU whose energy is in the reported GPU figure (``energy.gpus``): the GPUs the meter
    chosen for the ``gpu`` class describes (``meters.<name>.gpus``), as ``{device, index, uuid, name, bus_id,
    matched_by, meter, source}``; a key the meter does not know is null. Empty when no meter's GPU figure is
    reported or the meter lists no GPUs."""
    if gpu_meter is None:
        return []
    gpus = (meters_info.get(gpu_meter) or {}).get("gpus") or []
    listed: list[dict[str, Any]] = []
    for gpu in gpus:
        if not isinstance(gpu, dict) or not isinstance(gpu.get("index"), int):
            continue
        entry: dict[str, Any] = {"device": f"gpu:{gpu['index']}"}
        entry.update({key: gpu.get(key) for key in _GPU_IDENTITY_KEYS})
        entry["meter"] = gpu_meter
        listed.append(entry)
    return listed
