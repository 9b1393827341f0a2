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
    model_info: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Prefill, generate and decode (= generate - prefill); a negative decode energy is null, flagged and warned of
    (appended to ``flags`` and ``warnings``). ``server``: the server's own prefill/decode times beside them (HTTP
    runs, see :func:`server_phase_times`)."""
    model_info = model_info or {}
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
        "server": server_phase_times(model_info, records, warnings),
    }


#: Where ``phases.server`` comes from, for the report.
SERVER_TIMES_SOURCE = (
    "the server's Prometheus histograms of per-request prefill and decode time (vLLM: "
    "vllm:request_prefill_time_seconds, vllm:request_decode_time_seconds), read before and after each pass: mean per "
    "request = delta of _sum / delta of _count, averaged over the passes' repetitions weighted by successful requests"
)


def _weighted_server_mean(runs: Sequence[dict[str, Any]], phase: str, key: str) -> float | None:
    """The mean of the server's ``key`` histogram (``prefill_s``/``decode_s``) over the runs of ``phase``."""
    total = weight = 0.0
    for run in runs:
        if not str(run.get("label", "")).startswith(f"{phase}-"):
            continue
        means = (run.get("prometheus") or {}).get("server_mean_latency_s") or {}
        value, ok = means.get(key), run.get("ok") or 0
        if value is None or not ok:
            continue
        total += value * ok
        weight += ok
    return total / weight if weight else None


def _prefix_cache_hit_rate(runs: Sequence[dict[str, Any]], phase: str) -> float | None:
    """The server's prefix-cache hit rate (hit / queried tokens) over the runs of ``phase`` (None: not counted)."""
    blocks = [run.get("prefix_cache") for run in runs if str(run.get("label", "")).startswith(f"{phase}-")]
    counted = [b for b in blocks if isinstance(b, dict) and b.get("queries_tokens") is not None]
    queries = sum(int(b["queries_tokens"]) for b in counted)
    return sum(int(b["hits_tokens"]) for b in counted) / queries if queries else None


def _mean_latency_s(records: Sequence[RequestRecord], phase: str) -> float | None:
    values = [r.latency_s / r.num_prompts for r in records if r.phase == phase and r.ok]
    return stats.mean(values) if values else None


def _relative(client: float | None, server: float | None) -> dict[str, float | None]:
    difference = None if client is None or server is None or server == 0 else (client - server) / server
    return {"client_s": client, "server_s": server, "relative_difference": difference}


#: A generate pass whose prompt tokens were found in the server's prefix cache at a share this much above the
#: prefill pass's own is warned of.
PREFIX_CACHE_WARNING_RATE = 0.1


def server_phase_times(
    model_info: dict[str, Any], records: Sequence[RequestRecord], warnings: list[str] | None = None
) -> dict[str, Any] | None:
    """The server's own prefill and decode times beside the client's passes (HTTP backend runs; None otherwise).

    Cross-check: the client's mean latency of a prefill-pass request (one token: queue, prefill, one step and the
    HTTP round trip) against the server's mean prefill time in the generate pass; the client's decode time per request
    (mean generate-pass latency - mean prefill-pass latency) against the server's mean decode time in the generate
    pass. ``relative_difference`` = (client - server) / server; the client's figures include what the server does
    not time (HTTP, queueing), so they are expected to be somewhat larger.

    A generate pass that found its prompts in the server's prefix cache (filled by the prefill pass and the warm-up
    with the same prompts) did not redo their prefill, so decode = generate - prefill is biased low: warned of
    (appended to ``warnings``) when its hit rate exceeds the prefill pass's own by :data:`PREFIX_CACHE_WARNING_RATE`
    (hits within a pass, e.g. a shared system prompt, happen in both passes alike). On vLLM each pass salts its
    lookups (``backend.isolate_prefix_cache``), so this happens only where that is off or the server ignores it.
    """
    http = model_info.get("http")
    if not isinstance(http, dict):
        return None
    runs = [run for run in http.get("runs") or [] if isinstance(run, dict)]
    times = {
        phase: {
            "server_mean_prefill_s": _weighted_server_mean(runs, phase, "prefill_s"),
            "server_mean_decode_s": _weighted_server_mean(runs, phase, "decode_s"),
        }
        for phase in ("prefill", "generate")
    }
    client_prefill = _mean_latency_s(records, "prefill")
    client_generate = _mean_latency_s(records, "generate")
    client_decode = None if client_prefill is None or client_generate is None else client_generate - client_prefill
    available = any(value is not None for block in times.values() for value in block.values())
    prefix = (model_info.get("server_features") or {}).get("prefix_cache") or {}
    hit_rate = prefix.get("hit_rate")
    prefill_hit_rate = _prefix_cache_hit_rate(runs, "prefill")
    excess = None if hit_rate is None else hit_rate - (prefill_hit_rate or 0.0)
    if excess is not None and excess > PREFIX_CACHE_WARNING_RATE and warnings is not None:
        warnings.append(
            f"the generate pass found {hit_rate:.0%} of its prompt tokens in the server's prefix cache, the prefill "
            f"pass {prefill_hit_rate or 0.0:.0%} (the cache kept the earlier passes' prompts): it did not redo "
            "their prefill, so decode = generate - prefill is biased low; keep backend.isolate_prefix_cache on "
            "(vLLM reads cache_salt) or start the server without prefix caching (vLLM: --no-enable-prefix-caching)"
        )
    return {
        "generate_pass_prefix_cache_hit_rate": hit_rate,
        "available": available,
        "source": SERVER_TIMES_SOURCE,
        "note": None
        if available
        else "the server gave no prefill/decode time histograms (no Prometheus /metrics, scraping off, or a server "
        "profile without them): not cross-checked",
        "prefill_pass": times["prefill"],
        "generate_pass": times["generate"],
        "client_mean_latency_s": {
            "prefill_pass": client_prefill,
            "generate_pass": client_generate,
            "decode": client_decode,
        },
        "cross_check": {
            "prefill": _relative(client_prefill, times["generate"]["server_mean_prefill_s"]),
            "decode": _relative(client_decode, times["generate"]["server_mean_decode_s"]),
        }
        if available
        else None,
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
