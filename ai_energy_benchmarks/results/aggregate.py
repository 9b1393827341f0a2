"""Combine per-request records and per-window energy readings into the versioned, JSON-safe result.

Only this package combines the two streams: backends produce records, meters produce readings.

Windows have a kind: ``idle`` (baseline), ``prefill`` (one new token per prompt) and ``generate`` (the full
workload). The headline figures (``summary``, ``energy``) come from the generate windows; the prefill windows give
the per-phase split (decode = generate - prefill) and the idle window the baseline power.

Honesty rules: a device class whose reported meter did not read every device it reads elsewhere in every window
is null (flag ``<class>-incomplete``), and so is every figure derived from it (totals, J/token, per-1000-queries,
per-phase splits); a negative energy is never reported (null and flag ``negative-energy``); bounds are given where
the meters give them (``energy_bounds_wh``); an estimate is never ranked above a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.datasets.workload import Workload
from ai_energy_benchmarks.energy.base import IntervalReading, WindowMeasurement
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.results.attribution import ReadBack, attribute_energy
from ai_energy_benchmarks.results.contract import apply_0_0_4_types
from ai_energy_benchmarks.results.energy import NO_GPU_SOURCE, REMOTE_SERVER_SOURCE, _energy
from ai_energy_benchmarks.results.meters import Expected, choose_meters, expected_devices, metered_gpus
from ai_energy_benchmarks.results.model import SCHEMA_VERSION, BenchmarkResult
from ai_energy_benchmarks.results.phases import _phases, _repetitions
from ai_energy_benchmarks.results.quality import quality_block
from ai_energy_benchmarks.results.speed import _latency, _summary
from ai_energy_benchmarks.results.steady import TIME_SHARE_SOURCE, _steady_state
from ai_energy_benchmarks.results.workload import workload_block
from ai_energy_benchmarks.scoring import describe_scorer, verdicts_of


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
    scoring_errors: Sequence[str] = (),
    read_back: ReadBack | None = None,
    workload: Workload | None = None,
    hardware: dict[str, Any] | None = None,
) -> BenchmarkResult:
    """Build the typed result (see docs/results.md for every key and its unit; ``.to_dict()`` is ``run()``'s dict).

    ``steady_state_readings`` holds, by generate-window label, the meters' readings over the backend's
    steady-state interval in that window (where a meter can read a past interval back). With
    ``scenario.scorer``, the records' verdicts (``correct``, set by :func:`~ai_energy_benchmarks.scoring.score_records`)
    give the ``quality`` block; ``scoring_errors`` are what the scorer raised. Each record's ``energy_j`` is set
    (its share of its window's energy, :mod:`~ai_energy_benchmarks.results.attribution`), using ``read_back`` (the
    meters' energy over a past interval) for the power's shape where given.
    ``workload``: the session workload (conversations or a trace) the records came from, for the ``workload``
    block. ``hardware``: the steady-hardware waits and per-window throttle flags
    (:class:`~ai_energy_benchmarks.steady_hardware.SteadyHardware`), only when a GPU meter ran.
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
        _phases(prefill, generate, records, chosen, expected, energy["flags"], energy_warnings, model_info)
        if metered or prefill
        else None
    )
    if gpus := metered_gpus(meters_info, chosen.get("gpu")):
        energy["gpus"] = gpus  # which GPUs the GPU figure covers, by UUID (only when a meter identified them)
    if metered:
        attribution = attribute_energy(records, windows, chosen, expected, read_back, phases)
        if attribution is not None:
            energy["request_attribution"] = attribution
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
            "synthetic": prompt_set.synthetic,
        },
        "meters": meters_info,
        "environment": environment,
        "provenance": provenance,
        "timestamps": timestamps,
        "warnings": all_warnings,
        "energy_notes": energy["notes"],
    }
    scorer = config.scenario.scorer
    if scorer is not None:
        result["quality"] = quality_block(
            scorer, describe_scorer(scorer), verdicts_of(generate_records), result["energy"], scoring_errors
        )
        all_warnings += list(scoring_errors)
    if workload is not None:  # a session workload's own block; absent otherwise
        result["workload"] = workload_block(workload, records, windows, chosen if metered else {}, expected, model_info)
    if hardware is not None:  # only with a GPU meter: other runs' results keep their keys
        result["hardware"] = hardware
    all_warnings += apply_0_0_4_types(result)
    return BenchmarkResult.model_validate(result)


__all__ = [
    "NO_GPU_SOURCE",
    "REMOTE_SERVER_SOURCE",
    "SCHEMA_VERSION",
    "TIME_SHARE_SOURCE",
    "Expected",
    "aggregate",
    "choose_meters",
    "expected_devices",
]
