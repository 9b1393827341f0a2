"""The ``energy`` block: per-class energy from the chosen meters, totals, emissions, normalised figures,
cross-checks between meters and the idle baseline, with every figure's source and the flags and warnings."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.energy.base import EnergyReading, WindowMeasurement
from ai_energy_benchmarks.results.meters import (
    _DEVICES,
    _J_PER_KWH,
    _J_PER_WH,
    Expected,
    _bounded,
    _bounds_j,
    _bounds_wh,
    _class_readings,
    _device_class,
    _joules,
    _meters_by_window,
    _ratio,
    _sources,
    _total,
    _wh,
    _window_joules,
    choose_meters,
    refuse_negative,
)

NO_GPU_SOURCE = "none:no-gpu-metered"
#: Meters that read a serving fleet's GPUs wherever the server runs (not this host's devices).
FLEET_METERS = frozenset({"dcgm"})
REMOTE_SERVER_SOURCE = "not-measured:remote-server"


def _cross_checks(windows: Sequence[WindowMeasurement], tolerance: float) -> tuple[list[dict[str, Any]], list[str]]:
    per_meter: dict[str, dict[str, float]] = {}
    bounds: dict[tuple[str, str], list[float] | None] = {}
    sources: dict[tuple[str, str], set[str]] = {}
    read_in = _meters_by_window(windows)
    for window in windows:
        for reading in window.readings:
            device = _device_class(reading)
            common = set.intersection(*read_in[device].values())
            if window.name not in common:  # compare meters only over the windows every one of them read
                continue
            per_meter.setdefault(device, {}).setdefault(reading.meter, 0.0)
            per_meter[device][reading.meter] += reading.energy_j
            known = bounds.setdefault((device, reading.meter), [0.0, 0.0])
            if known is not None and _bounded(reading):
                known[0] += reading.energy_j if reading.lower_j is None else reading.lower_j
                known[1] += reading.energy_j if reading.upper_j is None else reading.upper_j
            else:
                bounds[(device, reading.meter)] = None
            sources.setdefault((device, reading.meter), set()).add(reading.source)
    checks, warnings = [], []
    for device, meters in sorted(per_meter.items()):
        if len(meters) < 2:
            continue
        values = list(meters.values())
        high, low = max(values), min(values)
        difference = (high - low) / high if high > 0 else 0.0
        flagged = difference > tolerance
        checks.append(
            {
                "device": device,
                "energy_wh": {meter: joules / _J_PER_WH for meter, joules in sorted(meters.items())},
                "sources": {meter: "+".join(sorted(sources[(device, meter)])) for meter in sorted(meters)},
                # Bounds (Wh) where a meter gives them (a counter's are its figure); None for a model estimate.
                "bounds_wh": {
                    meter: None if (b := bounds[(device, meter)]) is None else [b[0] / _J_PER_WH, b[1] / _J_PER_WH]
                    for meter in sorted(meters)
                },
                "relative_difference": difference,
                "tolerance": tolerance,
                "flagged": flagged,
            }
        )
        if flagged:
            readings = ", ".join(f"{m} {j / _J_PER_WH:.6g} Wh" for m, j in sorted(meters.items()))
            warnings.append(
                f"meters disagree on {device} energy by {difference:.1%} (over {tolerance:.0%}): {readings}"
            )
    return checks, warnings


def _fleet_meter(windows: Sequence[WindowMeasurement]) -> str | None:
    """The fleet meter that read GPU energy in ``windows``, if any."""
    meters = {r.meter for w in windows for r in w.readings if _device_class(r) == "gpu" and r.meter in FLEET_METERS}
    return min(meters) if meters else None


def _meter_seconds(window: WindowMeasurement, readings: Sequence[EnergyReading]) -> float:
    """The meter's own interval for ``readings`` (s): the mean of their read-to-read spans where they give them,
    else the window's duration as the harness timed it."""
    spans = [r.meter_duration_s for r in readings]
    known = [s for s in spans if s is not None]
    return sum(known) / len(known) if known and len(known) == len(spans) else window.duration_s


def _power_w(
    window: WindowMeasurement, device: str, meter: str | None, expected: Expected | None
) -> tuple[float, tuple[float, float] | None] | None:
    """Mean power (W) of the class in ``window``, each device's energy divided by its meter's own interval (the
    energy was read between the meter's edges, not the harness's timer), with bounds (W) where known."""
    readings = _class_readings(window, device, meter, expected)
    if readings is None:
        return None
    seconds = [_meter_seconds(window, [r]) for r in readings]
    if any(s <= 0 for s in seconds):
        return None
    power = sum(r.energy_j / s for r, s in zip(readings, seconds, strict=True))
    if not all(_bounded(r) for r in readings):
        return power, None
    lower = sum((r.energy_j if r.lower_j is None else r.lower_j) / s for r, s in zip(readings, seconds, strict=True))
    upper = sum((r.energy_j if r.upper_j is None else r.upper_j) / s for r, s in zip(readings, seconds, strict=True))
    return power, (lower, upper)


def _idle_baseline(
    idle: WindowMeasurement | None,
    chosen: dict[str, str],
    joules: dict[str, float | None],
    generate: Sequence[WindowMeasurement],
    expected: Expected | None,
) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    if idle is None or idle.duration_s <= 0:
        return None, [], []
    warnings: list[str] = []
    flags: list[str] = []
    power_w: dict[str, float | None] = {}
    power_bounds_w: dict[str, list[float] | None] = {}
    idle_j: dict[str, float | None] = {}
    active_j: dict[str, float | None] = {}
    for device in _DEVICES:
        meter = chosen.get(device)
        measured_power = _power_w(idle, device, meter, expected)
        power = None if measured_power is None else measured_power[0]
        power_w[device] = power
        power_bounds_w[device] = None if measured_power is None or not measured_power[1] else list(measured_power[1])
        total = joules[device]
        # The workload's energy was read between the meter's edges too: multiply by the meter's measured seconds.
        seconds = sum(
            _meter_seconds(w, _class_readings(w, device, meter, expected) or []) if meter else w.duration_s
            for w in generate
        )
        idle_j[device] = None if power is None else power * seconds
        active_j[device] = None if total is None or power is None else total - power * seconds
        active = active_j[device]
        if active is not None and total is not None and -0.01 * abs(total) <= active < 0:
            # Constant-power estimates (RAM) give an active energy of ~0 that rounding can push a hair below zero.
            active_j[device] = 0.0
        else:
            # Never a negative energy: the baseline drew more than the workload (or one of them is wrong).
            def warning(value: float, device: str = device) -> str:
                return (
                    f"{device} active energy would be negative ({value:.3g} J): the idle baseline drew more power "
                    "than the workload; the baseline or the measurement is unreliable, so the active energy is null"
                )

            active_j[device] = refuse_negative(active, flags, warnings, warning)
    total_j = _total(joules)
    total_idle_j = _total(idle_j)
    return (
        {
            "duration_s": idle.duration_s,
            "power_w": power_w,
            "power_bounds_w": power_bounds_w,
            "idle_energy_wh_over_measured_duration": {d: _wh(v) for d, v in idle_j.items()},
            "active_energy_wh": {d: _wh(v) for d, v in active_j.items()},
            "total_active_energy_wh": _wh(_total(active_j, [d for d in _DEVICES if power_w[d] is not None])),
            "idle_share": _ratio(total_idle_j, total_j),
            "method": "active = total - idle power x measured duration, per device (0 when within 1% below "
            "zero, null further below); idle power = idle energy / the meter's own interval between its reads",
        },
        warnings,
        flags,
    )


def _energy(
    generate: Sequence[WindowMeasurement],
    idle: WindowMeasurement | None,
    summary: dict[str, Any],
    metered: bool,
    gpu_ids_used: list[int] | None,
    tolerance: float,
    model_info: dict[str, Any],
    expected: Expected,
) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = [] if metered else ["energy measurement disabled (metrics.enabled=false)"]
    warnings: list[str] = []
    chosen = choose_meters(generate, expected)
    scope = model_info.get("energy_scope") or {}
    fleet = _fleet_meter(generate)
    remote = scope.get("server_on_this_host") is False
    if metered and remote and fleet is not None:
        # The server is elsewhere: only a fleet meter reads its GPUs (this host's GPU meters read the client's).
        chosen["gpu"] = fleet
    joules = _joules(generate, chosen, expected)
    sources = _sources(generate, chosen)
    flags: list[str] = []
    incomplete = [d for d in _DEVICES if joules[d] is None and chosen.get(d)]
    for device in incomplete:  # read in some windows only: a total over fewer windows would understate it
        sources[device] = None
        missed = [w.name for w in generate if _window_joules(w, device, chosen[device], expected) is None]
        flags.append(f"{device}-incomplete")
        warnings.append(
            f"{device} energy is unknown (null, not zero): no meter read all of it in every measured window "
            f"({', '.join(missed)} not fully read by {chosen[device]}); totals and figures per token, request or "
            "phase that need it are null too"
        )
    if metered and chosen.get("gpu") in FLEET_METERS:
        notes.append(
            f"GPU energy is the serving fleet's, read by the {chosen['gpu']} meter from the DCGM exporters of "
            f"the selected nodes (the result's meters.{chosen['gpu']} section lists nodes, GPUs and what was not "
            "counted); CPU and RAM figures, if any, are this client's only"
        )
    elif metered and remote:
        joules["gpu"] = None
        sources["gpu"] = REMOTE_SERVER_SOURCE
        warnings.append(str(scope.get("note") or "the server is not on this host: its GPU energy is not measured"))
        notes.append("GPU energy of a remote server is not measured here; CPU and RAM are this client's only")
    elif metered and joules["gpu"] is None and "gpu" not in incomplete:
        if gpu_ids_used:
            flags.append("gpu-not-metered")
            warnings.append(
                f"GPUs {gpu_ids_used} ran the model but no meter read them: GPU energy is missing, not zero"
            )
        else:
            joules["gpu"] = 0.0
            sources["gpu"] = NO_GPU_SOURCE
            notes.append("no GPU was used or metered: GPU energy is 0 by absence, not a measurement")
    elif metered and gpu_ids_used and joules["gpu"] == 0.0:
        flags.append("gpu-zero-while-used")
        warnings.append(
            "GPU energy reads 0 J although GPUs ran the model: the GPU probably has no energy counter "
            "(CodeCarbon then reports 0); use metrics.type=[codecarbon, nvml] for the polling fallback"
        )
    if metered and gpu_ids_used and sources["gpu"] and not sources["gpu"].startswith("measured:"):
        flags.append("gpu-estimated")
        warnings.append(f"GPU energy is not measured but {sources['gpu']}")
    total_j = _total(joules, incomplete) if metered else None
    # Emissions: the grid intensity of the meter that knows it (CodeCarbon: emissions over its own energy) applied
    # to the energy reported here, which may come from other meters. Always an estimate.
    emitting = [w for w in generate if w.emissions_kg is not None]
    emitted_kg = sum(w.emissions_kg or 0.0 for w in emitting)
    emitted_j = sum(w.emissions_energy_j for w in emitting)
    intensity_kg_per_j = emitted_kg / emitted_j if emitting and emitted_j > 0 else None
    emissions_kg = None if intensity_kg_per_j is None or total_j is None else intensity_kg_per_j * total_j
    measured_j = sum(v for d, v in joules.items() if v is not None and (sources.get(d) or "").startswith("measured:"))
    successful = summary["successful_prompts"]
    completion = summary["total_completion_tokens"]
    compared = generate
    if metered and remote and fleet is not None:
        # This host's GPU meters read the client's GPUs, not the server's: nothing to compare the fleet's with.
        compared = [
            dataclasses.replace(w, readings=[r for r in w.readings if _device_class(r) != "gpu" or r.meter == fleet])
            for w in generate
        ]
    checks, check_warnings = _cross_checks(compared, tolerance)
    warnings += check_warnings
    if any(c["flagged"] for c in checks):
        flags.append("meter-disagreement")
    baseline, idle_warnings, idle_flags = _idle_baseline(idle, chosen, joules, generate, expected)
    warnings += idle_warnings
    flags += idle_flags
    energy: dict[str, Any] = {
        "gpu_energy_wh": _wh(joules["gpu"]),
        "cpu_energy_wh": _wh(joules["cpu"]),
        "ram_energy_wh": _wh(joules["ram"]),
        "total_energy_wh": _wh(total_j),
        "energy_wh": _wh(joules["gpu"]),
        "emissions_g_co2eq": None if emissions_kg is None else emissions_kg * 1000.0,
        "emissions_kg_co2eq": emissions_kg,
        "carbon_intensity_g_per_kwh": None if intensity_kg_per_j is None else intensity_kg_per_j * 1000.0 * _J_PER_KWH,
        "emissions_source": None if emissions_kg is None else "estimated:grid-intensity-x-energy",
        "gpu_energy_j": joules["gpu"],
        "cpu_energy_j": joules["cpu"],
        "ram_energy_j": joules["ram"],
        "total_energy_j": total_j,
        # Per class [lower, upper] Wh covering the meters' own errors (polled power's sampling error); a counter
        # difference counts as exact; null where a model estimate gives no bound, or the figure is null.
        "energy_bounds_wh": _bounds_wh(_bounds_j(generate, chosen, expected))
        if metered
        else {d: None for d in _DEVICES},
        "sources": sources,
        "meters_used": chosen,
        "measured_energy_wh": _wh(measured_j) if metered else None,
        "estimated_energy_wh": _wh(total_j - measured_j) if total_j is not None else None,
        "all_measured": bool(metered and total_j and abs(total_j - measured_j) <= 1e-9 * total_j),
        "total_wh_per_1000_queries": None if total_j is None or not successful else _wh(total_j) / successful * 1000,
        "gpu_wh_per_1000_queries": None
        if joules["gpu"] is None or not successful
        else joules["gpu"] / _J_PER_WH / successful * 1000,
        "total_wh_per_request": None if total_j is None or not successful else total_j / _J_PER_WH / successful,
        "joules_per_output_token": _ratio(total_j, completion),
        "joules_per_total_token": _ratio(total_j, summary["total_tokens"]),
        "joules_per_request": None if total_j is None or not successful else total_j / successful,
        "output_tokens_per_joule": _ratio(completion, total_j),
        "tokens_per_joule": _ratio(summary["total_tokens"], total_j),
        "gpu_tokens_per_joule": _ratio(summary["total_tokens"], joules["gpu"]),
        "idle_baseline": baseline,
        "cross_checks": checks,
        "flags": flags,
        "readings": [r.to_dict() | {"window": w.name} for w in generate for r in w.readings],
        "notes": notes,
    }
    if metered and not energy["all_measured"]:
        estimated = [f"{d} ({s})" for d, s in sources.items() if s and not s.startswith("measured:")]
        if estimated:
            notes.append("not measured (estimated or absent): " + ", ".join(estimated))
    return energy, warnings
