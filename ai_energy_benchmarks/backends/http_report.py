"""What the HTTP backend reports about its runs: each run's summary, the measured runs and their metrics, the steady
states, the load settings, and whose energy the meters read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_metrics import error_counts, request_metrics, schedule_drift, steady_state
from ai_energy_benchmarks.backends.http_prometheus import prometheus_summary
from ai_energy_benchmarks.backends.servers.base import MetricNames


def run_summary(label: str, state: hc.RunState, backend: OpenAIHTTPConfig, names: MetricNames | None) -> dict[str, Any]:
    """One run's requests, latencies, load shape, steady state and (when scraped) the server's Prometheus view."""
    trace = state.trace
    duration = (trace.end_s or trace.start_s) - trace.start_s
    records = state.records
    summary: dict[str, Any] = {
        "label": label,
        "requests_sent": state.sent,
        "requests_not_sent": state.not_sent,
        "start_s": trace.start_s,
        "end_s": trace.end_s,
        **request_metrics(records, duration, backend.slo_ttft_s, backend.slo_tpot_s, backend.slo_e2e_s),
        "retries_by_class": dict(sorted(state.retries.items())),
        "concurrency": {
            "limit": trace.concurrency,
            "max_in_flight": trace.max_occupied(),
            "mean_in_flight": trace.mean_occupied(),
        },
        "steady_state": steady_state(trace, records),
        "stopped": state.stop_reason,
        "responses_without_usage": state.usage_missing,
    }
    if state.plan.scheduled:
        summary["schedule_drift"] = schedule_drift(state.drift_s, state.held_for_slot)
    summary["prefix_cache"] = prefix_cache(state.prometheus_before, state.prometheus_after)
    if state.plan.scrape_interval_s is not None and names is not None:
        summary["prometheus"] = prometheus_summary(
            state.prometheus_before,
            state.prometheus_after,
            state.prometheus_samples,
            trace.start_s,
            client_output_tokens=sum(r.completion_tokens for r in records),
            client_prompt_tokens=sum(r.prompt_tokens for r in records),
            scrape_errors=state.scrape_errors,
            names=names,
        )
    return summary


#: vLLM's prefix-cache counters (tokens looked up in the cache, and of those found there), as exposed on /metrics.
PREFIX_CACHE_QUERIES = "vllm:prefix_cache_queries_total"
PREFIX_CACHE_HITS = "vllm:prefix_cache_hits_total"


def measured_runs(
    runs: list[tuple[str, hc.RunState]], backend: OpenAIHTTPConfig, names: MetricNames | None
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], hc.RunState]], dict[str, Any]]:
    """Every run's summary (``runs``: label and state, in order), the measured runs (the ``generate`` passes, or
    every run but the warm-up when none is named so) each with its state, and their request metrics over their
    summed duration."""
    summaries = [run_summary(label, state, backend, names) for label, state in runs]
    pairs = list(zip(summaries, (state for _, state in runs), strict=True))
    generate = [(run, state) for run, state in pairs if str(run["label"]).startswith("generate")]
    if not generate:
        generate = [(run, state) for run, state in pairs if run["label"] != "warmup"]
    records = [r for _, state in generate for r in state.records]
    duration = sum(float(run["duration_s"]) for run, _ in generate)
    measured = request_metrics(records, duration, backend.slo_ttft_s, backend.slo_tpot_s, backend.slo_e2e_s)
    return summaries, generate, measured


def steady_state_intervals(runs: list[tuple[str, hc.RunState]]) -> dict[str, tuple[float, float]]:
    """Each measured run's steady state (all slots busy), by label: ``time.perf_counter()`` start, end (runs that
    never filled every slot left out)."""
    intervals: dict[str, tuple[float, float]] = {}
    for label, state in runs:
        bounds = state.trace.steady_bounds()
        if label != "warmup" and bounds is not None:
            intervals[label] = bounds
    return intervals


def load_settings(backend: OpenAIHTTPConfig, ignore_eos: bool, pooled_connections: int) -> dict[str, Any]:
    """The load the runs were sent with (``describe()["load"]``)."""
    return {
        "load_profile": backend.load_profile_name,
        "load_profile_from": "backend.load_profile"
        if backend.load_profile is not None
        else "concurrency, request_rate and arrival (no backend.load_profile)",
        "concurrency": backend.concurrency,
        "request_rate_per_s": backend.request_rate,
        "arrival": backend.arrival if backend.request_rate is not None else "as fast as concurrency allows",
        "burstiness": backend.burstiness,
        "seed": backend.seed,
        "duration_s": backend.duration_s,
        "ignore_eos": ignore_eos,
        "max_retries": backend.max_retries,
        "retry_backoff_s": backend.retry_backoff_s,
        "connect_timeout_s": backend.connect_timeout_s,
        "read_timeout_s": backend.read_timeout_s,
        "max_consecutive_failures": backend.max_consecutive_failures,
        "pooled_connections": pooled_connections,
        "note": "one prompt per request; the server forms its own batches, and concurrency / request_rate "
        "set the load (scenario.input_shapes.batch_size only sizes the warm-up: warmup_runs x batch_size "
        "requests)",
    }


def http_block(
    runs: list[dict[str, Any]],
    generate: list[tuple[dict[str, Any], hc.RunState]],
    measured: dict[str, Any],
    usage_in_stream: bool,
    warmup_errors: Mapping[str, int],
    prometheus: dict[str, Any],
) -> dict[str, Any]:
    """``describe()["http"]``: where token counts come from, the measured runs' metrics and steady states (see
    :func:`measured_runs`), errors by class, every run's summary, and the Prometheus scrape (``prometheus``)."""
    return {
        "token_counts_from": "usage"
        if usage_in_stream
        else "streamed chunks (the server sent no usage block; a lower bound)",
        "measured": measured,
        "steady_state": [run["steady_state"] | {"label": run["label"]} for run, _ in generate],
        "errors_by_class": measured["errors_by_class"],
        "warmup_errors_by_class": dict(sorted(warmup_errors.items())),
        "runs": runs,
        "prometheus": prometheus,
        "error_classes": list(hc.ERROR_CLASSES),
    }


def prefix_cache(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, Any] | None:
    """The server's prefix-cache queries and hits (tokens) over a run, from its counters before and after (None
    where it has no such counters or was not scraped). Counters cover every client of the server."""
    if before is None or after is None:
        return None
    names = (PREFIX_CACHE_QUERIES, PREFIX_CACHE_HITS)
    if not all(name in before and name in after for name in names):
        return None
    queries = after[PREFIX_CACHE_QUERIES] - before[PREFIX_CACHE_QUERIES]
    hits = after[PREFIX_CACHE_HITS] - before[PREFIX_CACHE_HITS]
    if queries < 0 or hits < 0:
        return {"queries_tokens": None, "hits_tokens": None, "hit_rate": None, "note": "server counters restarted"}
    return {
        "queries_tokens": int(queries),
        "hits_tokens": int(hits),
        "hit_rate": hits / queries if queries > 0 else None,
        "source": "measured:server-prometheus (vllm:prefix_cache_queries / vllm:prefix_cache_hits, tokens)",
    }


def _summed(runs: list[dict[str, Any]], name: str | None) -> float | None:
    """The sum of counter ``name``'s deltas over ``runs`` (None: no run has it)."""
    if name is None:
        return None
    values = [((run.get("prometheus") or {}).get("deltas") or {}).get(name) for run in runs]
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def server_features(runs: list[dict[str, Any]], names: MetricNames | None, scraped: bool) -> dict[str, Any]:
    """Prefix-cache hit rate and speculative-decoding acceptance over the measured generate ``runs`` (run summaries),
    from the server's counters; each null with the reason where the server gave none.

    ``prefix_cache.hit_rate`` = hit tokens / queried tokens; ``speculative_decoding.acceptance_rate`` = accepted
    tokens / draft tokens, ``mean_accepted_tokens_per_draft`` = accepted tokens / drafts.
    """
    why = None
    if not scraped:
        why = "the server's Prometheus /metrics was not read (unavailable, or backend.scrape_metrics is false)"
    elif names is None:
        why = "the server's profile names no Prometheus series"
    prefix: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None
    prefix_why = spec_why = why
    if why is None and names is not None:
        queries, hits = _summed(runs, names.prefix_cache_queries), _summed(runs, names.prefix_cache_hits)
        if queries is None or hits is None:
            prefix_why = "the server exposes no prefix-cache counters" + (
                f" ({names.prefix_cache_queries}, {names.prefix_cache_hits})" if names.prefix_cache_queries else ""
            )
        elif queries <= 0:
            prefix_why = "no prefix-cache queries during the measured passes"
        else:
            prefix = {
                "hit_rate": hits / queries,
                "hit_tokens": hits,
                "queried_tokens": queries,
                "series": [names.prefix_cache_hits, names.prefix_cache_queries],
            }
        drafts = _summed(runs, names.spec_decode_drafts)
        drafted = _summed(runs, names.spec_decode_draft_tokens)
        accepted = _summed(runs, names.spec_decode_accepted_tokens)
        if drafted is None or accepted is None:
            spec_why = "the server exposes no speculative-decoding counters (speculative decoding off, or not reported)"
        elif drafted <= 0:
            spec_why = "no draft tokens during the measured passes"
        else:
            spec = {
                "acceptance_rate": accepted / drafted,
                "accepted_tokens": accepted,
                "draft_tokens": drafted,
                "drafts": drafts,
                "mean_accepted_tokens_per_draft": None if not drafts else accepted / drafts,
                "series": [
                    n
                    for n in (
                        names.spec_decode_accepted_tokens,
                        names.spec_decode_draft_tokens,
                        names.spec_decode_drafts,
                    )
                    if n is not None
                ],
            }
    return {
        "over": "the measured generate passes (counter deltas, summed over repetitions)",
        "prefix_cache": prefix,
        "prefix_cache_note": None if prefix is not None else prefix_why,
        "speculative_decoding": spec,
        "speculative_decoding_note": None if spec is not None else spec_why,
    }


def energy_scope(on_this_host: bool, gpus: list[int] | None, device: str) -> dict[str, Any]:
    """Whose energy the meters read: the server's GPUs when it is on this host (``gpus``: None for all), and what
    the CPU and RAM figures cover."""
    if not on_this_host:
        note = (
            "the endpoint is not on this host: this host's GPUs are not the server's, so no GPU energy is "
            "attributed to the server; CPU and RAM energy are this (client) machine's only"
        )
    elif gpus is None:
        note = (
            "the server is on this host: its own GPUs are metered, those the GPU library lists its processes on "
            "(the process listening on the endpoint's port and its children), or every GPU visible here when they "
            f"cannot be found (backend.device {device}; energy.gpus[].matched_by says which; set "
            "backend.device_ids to name the server's GPUs); CPU and RAM energy cover client and server together"
        )
    elif not gpus:
        note = (
            f"the server is on this host, but backend.device is {device}: no GPU is metered as the "
            "server's (set backend.device_ids to the server's GPUs to meter them); CPU and RAM energy cover "
            "client and server together"
        )
    else:
        note = (
            f"the server is on this host: GPUs {gpus} are metered as the server's (backend.device/device_ids); "
            "CPU and RAM energy cover client and server together"
        )
    return {"server_on_this_host": on_this_host, "server_gpus_metered": gpus, "note": note}


def stop_message(state: hc.RunState, public_endpoint: str) -> str:
    """Why a run stopped early, with what succeeded, failed, was aborted and was never sent."""
    records = state.records
    ok = sum(1 for r in records if r.ok)
    failed = {k: v for k, v in error_counts(records).items() if k != hc.ABORTED}
    aborted = sum(1 for r in records if r.error_class == hc.ABORTED)
    classes = ", ".join(f"{k}: {v}" for k, v in failed.items()) or "none"
    return (
        f"backend vllm: run '{state.plan.label}' against {public_endpoint} stopped: {state.stop_reason}. "
        f"{ok} requests succeeded, {sum(failed.values())} failed ({classes}), {aborted} were aborted in flight "
        f"and {state.not_sent} were not sent "
        f"(backend.max_consecutive_failures={state.plan.max_consecutive_failures})"
    )
