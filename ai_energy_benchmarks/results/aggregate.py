"""Combine per-request records and per-window energy readings into the versioned, JSON-safe result.

Only this module combines the two streams: backends produce records, meters produce readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.energy.base import WindowMeasurement
from ai_energy_benchmarks.results import stats

SCHEMA_VERSION = "1.0"
_J_PER_WH = 3600.0
_DEVICES = ("gpu", "cpu", "ram")
NO_GPU_SOURCE = "none:no-gpu-metered"


def _weighted_mean(pairs: Sequence[tuple[float, int]]) -> float | None:
    weight = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weight if weight else None


def _summary(records: Sequence[RequestRecord], duration_s: float) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    prompt_tokens = sum(r.prompt_tokens for r in ok)
    completion_tokens = sum(r.completion_tokens for r in ok)
    ttft = [(r.ttft_s, r.num_prompts) for r in ok if r.ttft_s is not None]
    return {
        "total_prompts": sum(r.num_prompts for r in records),
        "successful_prompts": sum(r.num_prompts for r in ok),
        "failed_prompts": sum(r.num_prompts for r in records if not r.ok),
        "total_duration_seconds": duration_s,
        "avg_latency_seconds": _weighted_mean([(r.latency_s, r.num_prompts) for r in ok]),
        "avg_time_to_first_token": _weighted_mean([(v, w) for v, w in ttft if v is not None]),
        "total_tokens": prompt_tokens + completion_tokens,
        "total_prompt_tokens": prompt_tokens,
        "total_completion_tokens": completion_tokens,
        "throughput_tokens_per_second": completion_tokens / duration_s if duration_s > 0 else None,
        "throughput_total_tokens_per_second": (prompt_tokens + completion_tokens) / duration_s
        if duration_s > 0
        else None,
        "requests_per_second": len(ok) / duration_s if duration_s > 0 else None,
    }


def _latency(records: Sequence[RequestRecord]) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    return {
        "unit": "s",
        "per": "request (a batch counts once)",
        "latency_s": stats.describe([r.latency_s for r in ok]),
        "ttft_s": stats.describe([r.ttft_s for r in ok if r.ttft_s is not None]),
    }


def _window_energy(window: WindowMeasurement) -> dict[str, float | None]:
    return {device: window.energy_j(device) for device in _DEVICES}


def _energy(
    windows: Sequence[WindowMeasurement], summary: dict[str, Any], metered: bool
) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = [] if metered else ["energy measurement disabled (metrics.enabled=false)"]
    joules: dict[str, float | None] = {d: None for d in _DEVICES}
    sources: dict[str, str | None] = {d: None for d in _DEVICES}
    for device in _DEVICES:
        values = [w.energy_j(device) for w in windows]
        present = [v for v in values if v is not None]
        joules[device] = sum(present) if present else None
        labels = sorted({s for w in windows if (s := w.source(device))})
        sources[device] = "+".join(labels) if labels else None
    if metered and joules["gpu"] is None:
        joules["gpu"] = 0.0
        sources["gpu"] = NO_GPU_SOURCE
        notes.append("no GPU was used or metered: GPU energy is 0 by absence, not a measurement")
    emissions = [w.emissions_kg for w in windows if w.emissions_kg is not None]
    emissions_kg = sum(emissions) if emissions else None
    total_j = sum(v for v in joules.values() if v is not None) if metered else None
    measured_j = sum(
        r.energy_j for w in windows for r in w.readings if r.is_measured and r.device.split(":")[0] in _DEVICES
    )
    successful = summary["successful_prompts"]
    completion = summary["total_completion_tokens"]
    all_tokens = summary["total_tokens"]

    def wh(value: float | None) -> float | None:
        return None if value is None else value / _J_PER_WH

    def per_1000(value: float | None) -> float | None:
        return None if value is None or not successful else value / _J_PER_WH / successful * 1000

    energy: dict[str, Any] = {
        "gpu_energy_wh": wh(joules["gpu"]),
        "cpu_energy_wh": wh(joules["cpu"]),
        "ram_energy_wh": wh(joules["ram"]),
        "total_energy_wh": wh(total_j),
        "energy_wh": wh(joules["gpu"]),
        "emissions_g_co2eq": None if emissions_kg is None else emissions_kg * 1000.0,
        "emissions_kg_co2eq": emissions_kg,
        "carbon_intensity_g_per_kwh": (emissions_kg * 1000.0) / (total_j / 3.6e6)
        if emissions_kg is not None and total_j
        else None,
        "gpu_energy_j": joules["gpu"],
        "cpu_energy_j": joules["cpu"],
        "ram_energy_j": joules["ram"],
        "total_energy_j": total_j,
        "sources": sources,
        "measured_energy_wh": wh(measured_j) if metered else None,
        "estimated_energy_wh": wh(total_j - measured_j) if total_j is not None else None,
        "all_measured": bool(metered and total_j is not None and abs(total_j - measured_j) < 1e-12 and total_j > 0),
        "total_wh_per_1000_queries": per_1000(total_j),
        "gpu_wh_per_1000_queries": per_1000(joules["gpu"]),
        "total_wh_per_request": None if total_j is None or not successful else total_j / _J_PER_WH / successful,
        "joules_per_output_token": None if total_j is None or not completion else total_j / completion,
        "output_tokens_per_joule": None if not total_j else completion / total_j,
        "tokens_per_joule": None if not total_j else all_tokens / total_j,
        "readings": [r.to_dict() | {"window": w.name} for w in windows for r in w.readings],
        "notes": notes,
    }
    if metered and not energy["all_measured"]:
        estimated = [f"{d} ({s})" for d, s in sources.items() if s and not s.startswith("measured:")]
        if estimated:
            notes.append("not measured, estimated or absent: " + ", ".join(estimated))
    return energy, notes


def _repetitions(
    windows: Sequence[WindowMeasurement], records: Sequence[RequestRecord]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rows: list[dict[str, Any]] = []
    for number, window in enumerate(windows):
        rep_records = [r for r in records if r.repetition == number and r.ok]
        completion = sum(r.completion_tokens for r in rep_records)
        per_device = _window_energy(window)
        present = [v for v in per_device.values() if v is not None]
        total_j = sum(present) if present else None
        rows.append(
            {
                "repetition": number,
                "window": window.name,
                "duration_s": window.duration_s,
                "gpu_energy_wh": None if per_device["gpu"] is None else per_device["gpu"] / _J_PER_WH,
                "cpu_energy_wh": None if per_device["cpu"] is None else per_device["cpu"] / _J_PER_WH,
                "ram_energy_wh": None if per_device["ram"] is None else per_device["ram"] / _J_PER_WH,
                "total_energy_wh": None if total_j is None else total_j / _J_PER_WH,
                "completion_tokens": completion,
                "throughput_tokens_per_second": completion / window.duration_s if window.duration_s > 0 else None,
                "meter_errors": window.errors,
            }
        )
    if len(rows) < 2:
        return rows, None
    totals = [r["total_energy_wh"] for r in rows if r["total_energy_wh"] is not None]
    throughput = [r["throughput_tokens_per_second"] for r in rows if r["throughput_tokens_per_second"]]
    return rows, {
        "total_energy_wh": stats.describe(totals) if len(totals) == len(rows) else None,
        "throughput_tokens_per_second": stats.describe(throughput),
        "duration_s": stats.describe([r["duration_s"] for r in rows]),
    }


def _window_warnings(windows: Sequence[WindowMeasurement], meter_period_s: float | None) -> list[str]:
    warnings = []
    for window in windows:
        if window.duration_s < 1.0:
            warnings.append(
                f"window '{window.name}' lasted {window.duration_s:.3f} s (< 1 s): energy figures from meters "
                "with a coarse update period are unreliable; measure more prompts"
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
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Build the result dict (see docs/results.md for every key and its unit)."""
    metered = bool(meters_info)
    duration_s = sum(w.duration_s for w in windows)
    summary = _summary(records, duration_s)
    energy, energy_notes = _energy(windows, summary, metered)
    repetitions, repetition_stats = _repetitions(windows, records)
    all_warnings = list(warnings) + list(prompt_set.warnings)
    all_warnings += _window_warnings(windows, config.metrics.measure_power_secs if metered else None)
    for window in windows:
        all_warnings += window.errors
    if model_info.get("synthetic"):
        all_warnings.append(str(model_info.get("note", "synthetic model (random weights)")))
    return {
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
        "latency": _latency(records),
        "repetitions": repetitions,
        "repetition_statistics": repetition_stats,
        "model": model_info,
        "dataset": {
            "source": prompt_set.source,
            "num_requested": prompt_set.num_requested,
            "num_available": prompt_set.num_available,
            "num_used": len(prompt_set.prompts),
            "prompts_sha256": prompt_set.sha256,
        },
        "meters": meters_info,
        "environment": environment,
        "provenance": provenance,
        "timestamps": timestamps,
        "warnings": all_warnings,
        "energy_notes": energy_notes,
    }
