"""Energy of the backend's steady-state intervals (all load slots busy), read back or estimated by time share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.energy.base import IntervalReading, WindowMeasurement
from ai_energy_benchmarks.results.meters import (
    _DEVICES,
    _J_PER_WH,
    Expected,
    _class_readings,
    _device_class,
    _ratio,
    _wh,
)

TIME_SHARE_SOURCE = "estimated:time-share-of-window"


def _steady_device(
    window: WindowMeasurement,
    device: str,
    meter: str | None,
    share: float,
    interval: Sequence[IntervalReading],
) -> dict[str, Any] | None:
    """One device class's steady-state energy: read back over the interval where its meter keeps a record of every
    device it read in the window, else the window's energy times the interval's share of the window."""
    window_readings = [r for r in window.readings if _device_class(r) == device and r.meter == meter]
    if not window_readings:
        return None
    read_back = [r for r in interval if _device_class(r) == device and r.meter == meter]
    if read_back and {r.device for r in read_back} == {r.device for r in window_readings}:
        return {
            "energy_wh": _wh(sum(r.energy_j for r in read_back)),
            "lower_wh": _wh(sum(r.lower_j for r in read_back)),
            "upper_wh": _wh(sum(r.upper_j for r in read_back)),
            "source": "+".join(sorted({r.source for r in read_back})),
            "method": "read back from the meter's counter record over the interval (edges interpolated)",
        }
    return {
        "energy_wh": _wh(sum(r.energy_j for r in window_readings) * share),
        "lower_wh": None,
        "upper_wh": None,
        "source": TIME_SHARE_SOURCE,
        "method": "window energy x steady-state duration / window duration (assumes constant power in the window)",
    }


def _steady_state(
    model_info: dict[str, Any],
    generate: Sequence[WindowMeasurement],
    chosen: dict[str, str],
    readings_by_window: dict[str, list[IntervalReading]],
    expected: Expected | None = None,
) -> dict[str, Any] | None:
    """Energy of the backend's steady-state intervals (all load slots busy), where the backend reports them.

    Per device class: read back over the interval itself where the chosen meter keeps a counter record (NVML, RAPL),
    otherwise estimated as the window's energy times the interval's share of the window. A window in which a
    reported class was not fully read gives no steady-state energy (``incomplete`` names the classes).
    """
    entries = ((model_info.get("http") or {}).get("steady_state")) or []
    if not entries:
        return None
    by_name = {w.name: w for w in generate}
    rows: list[dict[str, Any]] = []
    for entry in entries:
        label = str(entry.get("label"))
        window = by_name.get(label)
        if not entry.get("reached") or window is None or window.duration_s <= 0:
            rows.append({"label": entry.get("label"), "reached": bool(entry.get("reached")), "energy_wh": None})
            continue
        share = float(entry["duration_s"]) / window.duration_s
        interval = readings_by_window.get(label, [])
        incomplete = [
            d for d in _DEVICES if (meter := chosen.get(d)) and _class_readings(window, d, meter, expected) is None
        ]
        devices = {
            device: block
            for device in _DEVICES
            if (block := _steady_device(window, device, chosen.get(device), share, interval)) is not None
        }
        energy_j = sum(b["energy_wh"] for b in devices.values()) * _J_PER_WH if devices and not incomplete else None
        tokens = float(entry.get("output_tokens") or 0)
        rows.append(
            {
                "label": entry.get("label"),
                "reached": True,
                "duration_s": entry["duration_s"],
                "share_of_window": share,
                "output_tokens": tokens,
                "energy_wh": _wh(energy_j),
                "joules_per_output_token": _ratio(energy_j, tokens),
                "devices": devices,
                "incomplete": incomplete,
            }
        )
    reached = [r for r in rows if r["reached"] and r["energy_wh"] is not None]
    total_j = sum(r["energy_wh"] for r in reached) * _J_PER_WH if reached else None
    tokens = sum(r["output_tokens"] for r in reached)
    sources = sorted({b["source"] for r in reached for b in r["devices"].values()})
    return {
        "source": "+".join(sources) or None,
        "is_measured": bool(sources) and all(src.startswith("measured:") for src in sources),
        "windows": rows,
        "energy_wh": _wh(total_j),
        "output_tokens": tokens,
        "joules_per_output_token": _ratio(total_j, tokens),
        "output_tokens_per_joule": _ratio(tokens, total_j),
    }
