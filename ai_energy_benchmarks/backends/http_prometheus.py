"""The server's own view of a run, from its Prometheus ``/metrics``: parsing, gauges, counter deltas, histogram
means and the token cross-check. Which series to read comes from the server's profile (``backends/servers/``);
the defaults are vLLM's. Pure functions: no I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

from ai_energy_benchmarks.backends.servers.base import MetricNames
from ai_energy_benchmarks.backends.servers.vllm import METRICS as VLLM_METRICS
from ai_energy_benchmarks.results import stats

#: Relative difference between the server's and the client's token totals above which the cross-check is flagged.
CROSS_CHECK_TOLERANCE = 0.01

#: vLLM's series kept in every 1 s sample (summed over label sets of the served model).
SAMPLED_SERIES = VLLM_METRICS.sampled
#: vLLM's counters reported as deltas over a run.
COUNTER_SERIES = VLLM_METRICS.counters
#: vLLM's histograms whose mean over a run (delta of _sum / delta of _count) is reported, by short name.
HISTOGRAM_SERIES = dict(VLLM_METRICS.histograms)


def parse_prometheus(
    text: str, model: str | Collection[str] | None = None, names: MetricNames = VLLM_METRICS
) -> dict[str, float]:
    """Sum every series named with ``names.prefix`` over its label sets (only those of ``model``, a name or the
    model's names, when series carry the model label ``names.model_label``).

    The text is parsed by ``prometheus_client``'s exposition-format parser, so label values are unescaped and labels
    are matched by name and whole value. Histogram buckets and ``_created`` timestamps are skipped; ``_sum`` and
    ``_count`` are kept; NaN samples are ignored. Raises ``ValueError`` for text that is not in the format.
    """
    from prometheus_client.parser import text_string_to_metric_families

    wanted = None if model is None else ({model} if isinstance(model, str) else set(model))
    label = names.model_label
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if not name.startswith(names.prefix) or name.endswith(("_bucket", "_created")):
                continue
            served = sample.labels.get(label) if label is not None else None
            if wanted is not None and served is not None and served not in wanted:
                continue
            if math.isnan(sample.value):
                continue
            values[name] = values.get(name, 0.0) + sample.value
    return values


def _gauge_summary(samples: Sequence[dict[str, float]], name: str) -> dict[str, float | None] | None:
    values = [s[name] for s in samples if name in s]
    if not values:
        return None
    return {"mean": stats.mean(values), "max": max(values)}


def prometheus_summary(
    before: dict[str, float] | None,
    after: dict[str, float] | None,
    samples: Sequence[tuple[float, dict[str, float]]],
    run_start_s: float,
    client_output_tokens: int,
    client_prompt_tokens: int,
    scrape_errors: int,
    names: MetricNames = VLLM_METRICS,
) -> dict[str, Any]:
    """The server's view of one run: gauges over the 1 s samples, counter deltas, histogram means, cross-check."""
    summary: dict[str, Any] = {"scrapes": len(samples) + (before is not None) + (after is not None)}
    summary["scrape_errors"] = scrape_errors
    gauges = [values for _, values in samples]
    if after is not None:
        gauges = [*gauges, after]
    for key in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        name = names.gauges.get(key)
        summary[key] = _gauge_summary(gauges, name) if name is not None else None
    summary["samples"] = [
        {"t_offset_s": round(t - run_start_s, 4), **{k.removeprefix(names.prefix): v for k, v in values.items()}}
        for t, values in samples
    ]
    if before is None or after is None:
        summary["deltas"] = None
        summary["server_mean_latency_s"] = None
        summary["cross_check"] = None
        return summary
    deltas = {
        name: after[name] - before[name]
        for name in (*names.counters, *names.feature_counters)
        if name in after and name in before
    }
    summary["deltas"] = deltas
    means: dict[str, float | None] = {}
    for short, name in names.histograms.items():
        count = after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0)
        total = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
        means[short] = total / count if count > 0 else None
    summary["server_mean_latency_s"] = means
    summary["cross_check"] = token_cross_check(deltas, client_output_tokens, client_prompt_tokens, names)
    return summary


def token_cross_check(
    deltas: dict[str, float],
    client_output_tokens: int,
    client_prompt_tokens: int,
    names: MetricNames = VLLM_METRICS,
) -> dict[str, Any] | None:
    """Compare the server's generated / prompt token counters with the client's totals (from ``usage``)."""
    server_output = deltas.get(names.generation_tokens or "")
    if server_output is None:
        return None
    server_prompt = deltas.get(names.prompt_tokens or "")
    difference = abs(server_output - client_output_tokens) / max(server_output, client_output_tokens, 1)
    negative = server_output < 0 or (server_prompt is not None and server_prompt < 0)
    return {
        "server_output_tokens": server_output,
        "client_output_tokens": client_output_tokens,
        "server_prompt_tokens": server_prompt,
        "client_prompt_tokens": client_prompt_tokens,
        "output_relative_difference": difference,
        "tolerance": CROSS_CHECK_TOLERANCE,
        "agrees": (not negative) and difference <= CROSS_CHECK_TOLERANCE,
        "note": "server counters restarted during the run"
        if negative
        else "server counters include every client of this server; the client counts its own requests (failed "
        "ones too, as far as they streamed)",
    }
