"""Per-phase energy (prefill, generate, decode = generate - prefill) and one row per repetition with statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.energy.base import WindowMeasurement
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.results import stats
from ai_energy_benchmarks.results.meters import (
    _DEVICES,
    _J_PER_KWH,
    Expected,
    _bounds_j,
    _bounds_wh,
    _joules,
    _ratio,
    _required,
    _total,
    _wh,
    refuse_negative,
)


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

        def warning(_: float, d: str = d, gen_d: float | None = gen_d, pre_d: float | None = pre_d) -> str:
            return (
                f"decode {d} energy would be negative (generate {gen_d:.4g} J < prefill {pre_d:.4g} J): it is null; "
                "the two windows' measurements are not consistent"
            )

        difference = None if gen_d is None or pre_d is None else gen_d - pre_d
        decode_j[d] = refuse_negative(difference, flags, warnings, warning)
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
