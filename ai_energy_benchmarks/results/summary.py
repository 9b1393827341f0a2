"""A short human summary of a result (the CLI prints it; the library never prints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ai_energy_benchmarks.results.model import BenchmarkResult, DatasetInfo, SteadyState, Summary, as_result


def _num(value: Any, digits: int = 4, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.{digits}f}"
    else:
        text = str(value)
    return f"{text} {unit}".rstrip()


def _kind(source: str | None) -> str:
    if not source:
        return "not read"
    if source.startswith("measured:"):
        return f"measured ({source.removeprefix('measured:')})"
    if source.startswith("estimated:"):
        return f"ESTIMATE ({source.removeprefix('estimated:')})"
    return source


def _steady_sources(steady: SteadyState) -> str:
    """Which devices' steady-state energy was measured over the interval and which was a time-share ESTIMATE."""
    by_kind: dict[str, list[str]] = {"measured": [], "estimated": []}
    for device in ("gpu", "cpu", "ram"):
        sources = {str(row.devices[device].source) for row in steady.windows if device in row.devices}
        if sources:
            kind = "measured" if all(src.startswith("measured:") for src in sources) else "estimated"
            by_kind[kind].append(device)
    parts = []
    if by_kind["measured"]:
        parts.append(f"{', '.join(by_kind['measured'])} measured over the interval")
    if by_kind["estimated"]:
        parts.append(f"{', '.join(by_kind['estimated'])} ESTIMATE: time share of the window")
    return "; ".join(parts) or "not read"


def _dataset(dataset: DatasetInfo) -> str:
    """The prompt source; for a hub dataset also its config, split and the commit the rows came from."""
    hub = dataset.hub
    if not hub:
        return str(dataset.source)
    parts = [f"config {hub['config']}" if hub.get("config") else None, f"split {hub['split']}"]
    if hub.get("commit"):
        parts.append(f"commit {str(hub['commit'])[:12]}")
    if hub.get("offline"):
        parts.append("from the local cache")
    return f"{dataset.source} ({', '.join(p for p in parts if p)})"


def _output_rate(summary: Summary) -> Any:
    """Output tokens per second (a schema 1.0 report kept them in ``throughput_tokens_per_second``)."""
    if "throughput_output_tokens_per_second" in summary.model_fields_set:
        return summary.throughput_output_tokens_per_second
    return summary.throughput_tokens_per_second


def format_summary(result: BenchmarkResult | Mapping[str, Any], report_path: str | None = None) -> str:
    """Multi-line text: workload, speed, energy with the source of each figure, and warnings (``result``: the typed
    result or ``run()``'s dict)."""
    typed = as_result(result)
    config, summary, energy = typed.config, typed.summary, typed.energy
    lines = [
        f"Benchmark '{config.name}' [{typed.status}]: {config.backend} / {config.model}"
        + (" (SYNTHETIC model: random weights)" if typed.synthetic_model else ""),
        f"  prompts       {summary.successful_prompts}/{summary.total_prompts} ok"
        f", {summary.failed_prompts} failed; dataset {_dataset(typed.dataset)}",
        f"  tokens        {summary.total_prompt_tokens} prompt + {summary.total_completion_tokens} generated",
        f"  duration      {_num(summary.total_duration_seconds, 3, 's')} measured"
        f"; throughput {_num(_output_rate(summary), 1, 'output tokens/s')}",
        f"  latency       mean {_num(summary.known('avg_latency_seconds'), 4, 's')}"
        f"; TTFT mean {_num(summary.known('avg_time_to_first_token'), 4, 's')}",
    ]
    http = typed.model.get("http") or {}
    measured = http.get("measured") or {}
    if measured:
        ttft, itl, e2e = measured.get("ttft_s") or {}, measured.get("itl_s") or {}, measured.get("e2e_s") or {}
        lines.append(
            f"  http          TTFT p50 {_num(ttft.get('median'), 4, 's')} p99 {_num(ttft.get('p99'), 4, 's')}"
            f"; ITL p50 {_num(itl.get('median'), 4, 's')}; e2e p99 {_num(e2e.get('p99'), 4, 's')}"
        )
    if energy.enabled:
        sources = energy.sources
        lines += [
            f"  energy        total {_num(energy.known('total_energy_wh'), 6, 'Wh')}"
            f" = {_num(energy.total_energy_j, 3, 'J')}",
            f"    gpu         {_num(energy.known('gpu_energy_wh'), 6, 'Wh')}  {_kind(sources.get('gpu'))}",
            f"    cpu         {_num(energy.known('cpu_energy_wh'), 6, 'Wh')}  {_kind(sources.get('cpu'))}",
            f"    ram         {_num(energy.known('ram_energy_wh'), 6, 'Wh')}  {_kind(sources.get('ram'))}",
            f"  per 1000 q    {_num(energy.total_wh_per_1000_queries, 4, 'Wh')} total"
            f"; {_num(energy.joules_per_output_token, 4, 'J')}/output token"
            f"; {_num(energy.joules_per_total_token, 4, 'J')}/token (prompt + output)"
            f"; {_num(energy.joules_per_request, 4, 'J')}/request",
            f"  emissions     {_num(energy.known('emissions_g_co2eq'), 4, 'g CO2eq')}"
            f" at {_num(energy.carbon_intensity_g_per_kwh, 1, 'g/kWh')}"
            + (" (ESTIMATE: grid intensity x energy)" if energy.emissions_source else ""),
        ]
        steady = energy.steady_state
        if steady and steady.energy_wh is not None:
            lines.append(
                f"  steady state  {_num(steady.joules_per_output_token, 4, 'J')}/output token"
                f" over {steady.output_tokens:.1f} tokens ({_steady_sources(steady)})"
            )
        phases = typed.phases
        if phases:
            prefill, decode = phases.prefill, phases.decode
            lines.append(
                f"  phases        prefill {_num(prefill.energy_wh, 6, 'Wh')}"
                f" in {_num(prefill.duration_s, 3, 's')}"
                f"; decode {_num(decode.energy_wh, 6, 'Wh')} in {_num(decode.duration_s, 3, 's')}"
                f" ({_num(decode.tokens_per_kwh, 4)} tokens/kWh)"
            )
        baseline = energy.idle_baseline
        if baseline:
            power = ", ".join(f"{d} {_num(w, 2, 'W')}" for d, w in baseline.power_w.items() if w is not None)
            share = baseline.idle_share
            lines.append(
                f"  idle          {power}; active energy {_num(baseline.total_active_energy_wh, 6, 'Wh')}"
                f" (idle share {_num(None if share is None else 100 * share, 1)}%)"
            )
        if not energy.all_measured:
            lines.append("  note          energy figures marked ESTIMATE are models, not measurements")
    else:
        lines.append("  energy        not measured (metrics.enabled=false)")
    server = (typed.phases.server if typed.phases else None) or {}
    if server.get("available"):
        generate = server.get("generate_pass") or {}
        lines.append(
            f"  server times  prefill {_num(generate.get('server_mean_prefill_s'), 4, 's')}"
            f", decode {_num(generate.get('server_mean_decode_s'), 4, 's')} per request (its Prometheus)"
        )
    features = typed.model.get("server_features") or {}
    prefix, spec = features.get("prefix_cache"), features.get("speculative_decoding")
    if prefix or spec:
        lines.append(
            "  server        "
            + "; ".join(
                text
                for text in (
                    f"prefix-cache hit rate {_num(100 * prefix['hit_rate'], 1)}%" if prefix else "",
                    f"speculative acceptance {_num(100 * spec['acceptance_rate'], 1)}%" if spec else "",
                )
                if text
            )
        )
    for warning in typed.warnings:
        lines.append(f"  warning       {warning}")
    if report_path:
        lines.append(f"  report        {report_path}")
    return "\n".join(lines)
