"""Combine per-request records and per-window energy readings into the versioned, JSON-safe result.

Only this module combines the two streams: backends produce records, meters produce readings.

Windows have a kind: ``idle`` (baseline), ``prefill`` (one new token per prompt) and ``generate`` (the full
workload). The headline figures (``summary``, ``energy``) come from the generate windows; the prefill windows give
the per-phase split (decode = generate - prefill) and the idle window the baseline power.

Honesty rules: a device class whose reported meter did not read every device it reads elsewhere in every window
is null (flag ``<class>-incomplete``), and so is every figure derived from it (totals, J/token, per-1000-queries,
per-phase splits); a negative energy is never reported (null and flag ``negative-energy``); bounds are given where
the meters give them (``energy_bounds_wh``); an estimate is never ranked above a measurement.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.energy.base import EnergyReading, IntervalReading, WindowMeasurement
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.results import stats
from ai_energy_benchmarks.results.contract import apply_0_0_4_types
from ai_energy_benchmarks.results.model import BenchmarkResult

#: 1.1: 0.0.4's keys are never null (``zero_filled``), ``summary.throughput_tokens_per_second`` is prompt + output
#: tokens per second again (``throughput_output_tokens_per_second``: output only), repetitions'
#: ``output_tokens_per_second`` (was ``throughput_tokens_per_second``), ``mean_latency_s``, ``mean_ttft_s``.
SCHEMA_VERSION = "1.1"
_J_PER_WH = 3600.0
_J_PER_KWH = 3.6e6
_DEVICES = ("gpu", "cpu", "ram")
NO_GPU_SOURCE = "none:no-gpu-metered"
REMOTE_SERVER_SOURCE = "not-measured:remote-server"


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


# -- speed ------------------------------------------------------------------------------------------------------
def _summary(records: Sequence[RequestRecord], duration_s: float) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    prompt_tokens = sum(r.prompt_tokens for r in ok)
    completion_tokens = sum(r.completion_tokens for r in ok)
    ttft = [(r.ttft_s, r.num_prompts) for r in ok if r.ttft_s is not None]
    mean_latency_s = _weighted_mean([(r.latency_s, r.num_prompts) for r in ok])
    mean_ttft_s = _weighted_mean([(v, w) for v, w in ttft if v is not None])
    return {
        "total_prompts": sum(r.num_prompts for r in records),
        "successful_prompts": sum(r.num_prompts for r in ok),
        "failed_prompts": sum(r.num_prompts for r in records if not r.ok),
        "total_duration_seconds": duration_s,
        "avg_latency_seconds": mean_latency_s,
        "avg_time_to_first_token": mean_ttft_s,
        "total_tokens": prompt_tokens + completion_tokens,
        "total_prompt_tokens": prompt_tokens,
        "total_completion_tokens": completion_tokens,
        # 0.0.4's meaning: prompt + output tokens per second (results/contract.py)
        "throughput_tokens_per_second": _ratio(prompt_tokens + completion_tokens, duration_s),
        "throughput_total_tokens_per_second": _ratio(prompt_tokens + completion_tokens, duration_s),
        "throughput_output_tokens_per_second": _ratio(completion_tokens, duration_s),
        "mean_latency_s": mean_latency_s,
        "mean_ttft_s": mean_ttft_s,
        **_reasoning_split(ok, completion_tokens),
        "requests_per_second": _ratio(len(ok), duration_s),
    }


def _reasoning_split(ok: Sequence[RequestRecord], completion_tokens: int) -> dict[str, Any]:
    """Reasoning and answer tokens apart, where the server said which is which (None otherwise)."""
    marked = [r for r in ok if r.reasoning_tokens is not None]
    if not marked:
        return {"total_reasoning_tokens": None, "total_answer_tokens": None, "reasoning_tokens_from": None}
    reasoning = sum(r.reasoning_tokens or 0 for r in marked)
    sources = sorted({r.reasoning_tokens_from for r in marked if r.reasoning_tokens_from})
    return {
        "total_reasoning_tokens": reasoning,
        "total_answer_tokens": completion_tokens - reasoning,
        "reasoning_tokens_from": "+".join(sources) or None,
    }


def _latency(records: Sequence[RequestRecord]) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    return {
        "unit": "s",
        "per": "request (a batch counts once)",
        "latency_s": stats.describe([r.latency_s for r in ok]),
        "ttft_s": stats.describe([r.ttft_s for r in ok if r.ttft_s is not None]),
    }


# -- choosing one meter per device class ----------------------------------------------------------------------
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


# -- energy -------------------------------------------------------------------------------------------------------
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
        elif active is not None and active < 0:
            # Never a negative energy: the baseline drew more than the workload (or one of them is wrong).
            active_j[device] = None
            if "negative-energy" not in flags:
                flags.append("negative-energy")
            warnings.append(
                f"{device} active energy would be negative ({active:.3g} J): the idle baseline drew more power than "
                "the workload; the baseline or the measurement is unreliable, so the active energy is null"
            )
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
    scope = model_info.get("energy_scope") or {}
    if metered and scope.get("server_on_this_host") is False:
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
    checks, check_warnings = _cross_checks(generate, tolerance)
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


# -- phases and repetitions ----------------------------------------------------------------------------------------
def _phase_block(
    windows: Sequence[WindowMeasurement],
    records: Sequence[RequestRecord],
    chosen: dict[str, str],
    expected: Expected,
) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    joules = _joules(windows, chosen, expected)
    total_j = _total(joules, _required(chosen))
    duration_s = sum(w.duration_s for w in windows)
    return {
        "duration_s": duration_s,
        "energy_wh": _wh(total_j),
        "gpu_energy_wh": _wh(joules["gpu"]),
        "cpu_energy_wh": _wh(joules["cpu"]),
        "ram_energy_wh": _wh(joules["ram"]),
        "prompts": sum(r.num_prompts for r in ok),
        "prompt_tokens": sum(r.prompt_tokens for r in ok),
        "output_tokens": sum(r.completion_tokens for r in ok),
        "_joules": joules,
    }


def _phases(
    prefill: Sequence[WindowMeasurement],
    generate: Sequence[WindowMeasurement],
    records: Sequence[RequestRecord],
    chosen: dict[str, str],
    expected: Expected,
    flags: list[str],
    warnings: list[str],
) -> dict[str, Any] | None:
    """Prefill, generate and decode (= generate - prefill); a negative decode energy is null, flagged and warned of
    (appended to ``flags`` and ``warnings``)."""
    if not prefill:
        return None
    pre = _phase_block(prefill, [r for r in records if r.phase == "prefill"], chosen, expected)
    gen = _phase_block(generate, [r for r in records if r.phase == "generate"], chosen, expected)
    pre_j, gen_j = pre.pop("_joules"), gen.pop("_joules")
    decode_j: dict[str, float | None] = {}
    for d in _DEVICES:
        pre_d, gen_d = pre_j[d], gen_j[d]
        decode_j[d] = None if gen_d is None or pre_d is None else gen_d - pre_d
        if pre_d is not None and gen_d is not None and gen_d - pre_d < 0:
            decode_j[d] = None
            if "negative-energy" not in flags:
                flags.append("negative-energy")
            warnings.append(
                f"decode {d} energy would be negative (generate {gen_d:.4g} J < prefill {pre_d:.4g} J): it is null; "
                "the two windows' measurements are not consistent"
            )
    decode_total = _total(decode_j, [d for d in _required(chosen) if pre_j[d] is not None or gen_j[d] is not None])
    decode_tokens = gen["output_tokens"] - pre["output_tokens"]
    decode_s = gen["duration_s"] - pre["duration_s"]
    pre["samples_per_kwh"] = _ratio(pre["prompts"], None if pre["energy_wh"] is None else pre["energy_wh"] / 1000)
    pre["samples_per_second"] = _ratio(pre["prompts"], pre["duration_s"])
    gen["tokens_per_kwh"] = _ratio(gen["output_tokens"], None if gen["energy_wh"] is None else gen["energy_wh"] / 1000)
    gen["tokens_per_second"] = _ratio(gen["output_tokens"], gen["duration_s"])
    decode = {
        "duration_s": decode_s,
        "energy_wh": _wh(decode_total),
        "gpu_energy_wh": _wh(decode_j["gpu"]),
        "cpu_energy_wh": _wh(decode_j["cpu"]),
        "ram_energy_wh": _wh(decode_j["ram"]),
        "output_tokens": decode_tokens,
        "tokens_per_kwh": _ratio(decode_tokens, None if decode_total is None else decode_total / _J_PER_KWH),
        "tokens_per_second": _ratio(decode_tokens, decode_s),
    }
    return {
        "method": "prefill: every prompt with max_new_tokens = min_new_tokens = 1; generate: the full workload; "
        "decode = generate - prefill (energy, duration and tokens)",
        "prefill": pre,
        "generate": gen,
        "decode": decode,
    }


def _repetitions(
    generate: Sequence[WindowMeasurement],
    records: Sequence[RequestRecord],
    chosen: dict[str, str],
    expected: Expected,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rows: list[dict[str, Any]] = []
    for window in generate:
        rep_records = [r for r in records if r.repetition == window.repetition and r.phase == "generate" and r.ok]
        completion = sum(r.completion_tokens for r in rep_records)
        joules = _joules([window], chosen, expected)
        total_j = _total(joules, _required(chosen))
        rows.append(
            {
                "repetition": window.repetition,
                "window": window.name,
                "duration_s": window.duration_s,
                "gpu_energy_wh": _wh(joules["gpu"]),
                "cpu_energy_wh": _wh(joules["cpu"]),
                "ram_energy_wh": _wh(joules["ram"]),
                "total_energy_wh": _wh(total_j),
                "energy_bounds_wh": _bounds_wh(_bounds_j([window], chosen, expected)),
                "completion_tokens": completion,
                "output_tokens_per_second": _ratio(completion, window.duration_s),
                "joules_per_output_token": _ratio(total_j, completion),
                "meter_errors": window.errors,
            }
        )
    if len(rows) < 2:
        return rows, None

    def column(key: str) -> dict[str, Any] | None:
        values = [r[key] for r in rows if r[key] is not None]
        return stats.describe(values) if len(values) == len(rows) else None

    return rows, {
        "total_energy_wh": column("total_energy_wh"),
        "gpu_energy_wh": column("gpu_energy_wh"),
        "joules_per_output_token": column("joules_per_output_token"),
        "output_tokens_per_second": column("output_tokens_per_second"),
        "duration_s": column("duration_s"),
    }


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


def _backend_warnings(model_info: dict[str, Any]) -> list[str]:
    warnings: list[str] = []
    http = model_info.get("http") or {}
    for run in http.get("runs") or []:
        check = (run.get("prometheus") or {}).get("cross_check")
        if check and not check.get("agrees"):
            warnings.append(
                f"run '{run.get('label')}': the server counted {check['server_output_tokens']} output tokens, the "
                f"client {check['client_output_tokens']} ({check.get('note', '')})"
            )
    checks = (http.get("measured") or {}).get("answer_checks") or {}
    if checks.get("warning"):
        warnings.append(str(checks["warning"]))
    errors = http.get("errors_by_class") or {}
    if errors:
        warnings.append("failed requests by class: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
    return warnings


def _window_warnings(windows: Sequence[WindowMeasurement], meter_period_s: float | None) -> list[str]:
    """Windows too short for the coarsest update period among the meters whose figures are reported."""
    warnings = []
    for window in windows:
        if window.duration_s < 1.0:
            warnings.append(
                f"window '{window.name}' lasted {window.duration_s:.3f} s (< 1 s): energy from meters with a "
                "coarse update period is unreliable over it; measure more prompts"
            )
        elif meter_period_s and window.duration_s < 10 * meter_period_s:
            warnings.append(
                f"window '{window.name}' lasted {window.duration_s:.2f} s, less than ten meter periods "
                f"({10 * meter_period_s:.1f} s); consider more prompts or repetitions"
            )
    return warnings


def aggregate(
    *,
    config: BenchmarkConfig,
    prompt_set: PromptSet,
    records: Sequence[RequestRecord],
    windows: Sequence[WindowMeasurement],
    model_info: dict[str, Any],
    meters_info: dict[str, Any],
    environment: dict[str, Any],
    provenance: dict[str, Any],
    timestamps: dict[str, str],
    status: str,
    gpu_ids_used: list[int] | None = None,
    warnings: Sequence[str] = (),
    steady_state_readings: dict[str, list[IntervalReading]] | None = None,
) -> BenchmarkResult:
    """Build the typed result (see docs/results.md for every key and its unit; ``.to_dict()`` is ``run()``'s dict).

    ``steady_state_readings`` holds, by generate-window label, the meters' readings over the backend's
    steady-state interval in that window (where a meter can read a past interval back).
    """
    metered = bool(meters_info)
    generate = [w for w in windows if w.kind == "generate"]
    prefill = [w for w in windows if w.kind == "prefill"]
    idle = next((w for w in windows if w.kind == "idle"), None)
    generate_records = [r for r in records if r.phase == "generate"]
    duration_s = sum(w.duration_s for w in generate)
    summary = _summary(generate_records, duration_s)
    expected = expected_devices(windows)
    energy, energy_warnings = _energy(
        generate, idle, summary, metered, gpu_ids_used, config.metrics.cross_check_tolerance, model_info, expected
    )
    chosen: dict[str, str] = energy["meters_used"]
    repetitions, repetition_stats = _repetitions(generate, records, chosen, expected)
    phases = (
        _phases(prefill, generate, records, chosen, expected, energy["flags"], energy_warnings)
        if metered or prefill
        else None
    )
    if metered:
        energy["steady_state"] = _steady_state(model_info, generate, chosen, steady_state_readings or {}, expected)
    all_warnings = list(warnings) + list(prompt_set.warnings) + energy_warnings + _backend_warnings(model_info)
    if metered:
        periods = [
            float(period)
            for meter in set(energy.get("meters_used", {}).values())
            if (period := (meters_info.get(meter) or {}).get("update_period_s"))
        ]
        all_warnings += _window_warnings([w for w in windows if w.kind != "idle"], max(periods, default=None))
    for window in windows:
        all_warnings += window.errors
    if any(w.errors for w in windows):
        energy["flags"].append("meter-error")
    if model_info.get("synthetic"):
        all_warnings.append(str(model_info.get("note", "synthetic model (random weights)")))
    result = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "config": {
            "name": config.name,
            "backend": config.backend.type,
            "model": config.backend.model,
            "dataset": config.scenario.dataset_name,
            "num_samples": config.scenario.num_samples,
            "device_ids": list(config.backend.device_ids),
            "batch_size": config.scenario.input_shapes.batch_size,
            "repetitions": config.scenario.repetitions,
            "generate_kwargs": config.scenario.generate_kwargs.as_kwargs(),
        },
        "summary": summary,
        "energy": energy | {"enabled": metered},
        "phases": phases,
        "latency": _latency(generate_records),
        "repetitions": repetitions,
        "repetition_statistics": repetition_stats,
        "model": model_info,
        "dataset": {
            "source": prompt_set.source,
            "num_requested": prompt_set.num_requested,
            "num_available": prompt_set.num_available,
            "num_used": len(prompt_set.prompts),
            "prompts_sha256": prompt_set.sha256,
            "hub": prompt_set.hub,
        },
        "meters": meters_info,
        "environment": environment,
        "provenance": provenance,
        "timestamps": timestamps,
        "warnings": all_warnings,
        "energy_notes": energy["notes"],
    }
    all_warnings += apply_0_0_4_types(result)
    return BenchmarkResult.model_validate(result)
