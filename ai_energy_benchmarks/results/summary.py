"""A short human summary of a result (the CLI prints it; the library never prints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ai_energy_benchmarks.results.model import (
    BenchmarkResult,
    DatasetInfo,
    Hardware,
    Quality,
    SteadyState,
    Summary,
    WorkloadResult,
    as_result,
)
from ai_energy_benchmarks.results.model_gpu import gpu_control_lines


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


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _quality_lines(quality: Quality) -> list[str]:
    """Accuracy with its Wilson interval, and the energy per correct answer (or why there is none)."""
    low, high = quality.accuracy_ci95 or (None, None)
    lines = [
        f"  accuracy      {quality.correct}/{quality.scored} correct = {_percent(quality.accuracy)}%"
        f" (95% CI {_percent(low)}-{_percent(high)}%, Wilson); scorer {quality.scorer}"
        + (f"; {quality.unscored} not scored" if quality.unscored else "")
    ]
    per_correct = f"{_num(quality.joules_per_correct_answer, 4)} J per correct answer"
    if quality.joules_per_correct_answer is None:
        lines.append(f"  per correct   {per_correct} ({quality.null_reason})")
    else:
        ci = quality.joules_per_correct_answer_ci95 or [None, None]
        lines.append(
            f"  per correct   {per_correct} (95% CI {_num(ci[0], 4)}-{_num(ci[1], 4)} J)"
            f"; {_num(quality.wh_per_1000_correct_answers, 4, 'Wh')} per 1,000 correct answers"
        )
    return lines


def _workload_lines(workload: WorkloadResult | None) -> list[str]:
    """A multi-turn or trace run's own lines: conversations and turns, or the replay's drift and lengths."""
    if workload is None:
        return []
    lines: list[str] = []
    estimate = " (ESTIMATE: sum of its requests' shares of window energy)" if workload.energy_source else ""
    if workload.kind == "multi_turn":
        latency, joules = workload.conversation_latency_s, workload.conversation_energy_j
        lines.append(
            f"  multi-turn    {workload.conversations} conversations, {workload.turns} turns (history: "
            f"{workload.history}); per conversation {_num(latency.mean if latency else None, 4, 's')}"
            f", {_num(joules.mean if joules else None, 4, 'J')}{estimate}"
        )
        turns = [
            f"{t.get('turn')}: {_num(t.get('mean_latency_s'), 3, 's')} {_num(t.get('mean_energy_j'), 3, 'J')}"
            f" {_num(t.get('mean_prompt_tokens'), 1, 'tok')}"
            for t in workload.per_turn or []
        ]
        lines.append("  by turn       " + " | ".join(turns))
    elif workload.kind == "trace":
        drift = (workload.schedule_drift or [{}])[0]
        outputs = workload.output_tokens or {}
        lines.append(
            f"  trace         {workload.requests} requests over {_num(workload.span_s, 3, 's')}"
            f" (scale {workload.scale}); drift p99 {_num(drift.get('p99'), 3, 'ms')}"
            f", held for a slot {drift.get('held_for_a_slot', 'n/a')}"
            f"; output tokens {outputs.get('served_total')}/{outputs.get('trace_total')}"
        )
    cache = workload.prefix_cache
    if cache:
        rate = cache.get("hit_rate")
        lines.append(
            f"  prefix cache  {cache.get('hits_tokens')} of {cache.get('queries_tokens')} prompt tokens hit"
            f" ({_num(None if rate is None else 100 * rate, 1)}%; server counters)"
        )
    return lines


def hardware_line(hardware: Hardware) -> str:
    """The steady-hardware waits and the throttle verdict in one line."""
    parts = [
        f"{'steady' if wait.reached else 'NOT steady'} after {_num(wait.duration_s, 1, 's')}"
        for wait in hardware.waits
        if wait.kind == "steady"
    ]
    cooldowns = [wait.duration_s or 0.0 for wait in hardware.waits if wait.kind == "cooldown"]
    if cooldowns:
        parts.append(f"{len(cooldowns)} cooldown(s), {_num(sum(cooldowns), 1, 's')} in all")
    throttled = hardware.throttled_windows
    parts.append(f"THROTTLED in {', '.join(throttled)}" if throttled else f"throttling: {hardware.throttle}")
    return "; ".join(parts)


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
        per_request = (energy.request_attribution or {}).get("generate_request_energy_j")
        if per_request:
            lines.append(
                f"  per request   {_num(per_request.get('mean'), 4, 'J')} mean, p50 {_num(per_request.get('p50'), 4)}"
                f", p99 {_num(per_request.get('p99'), 4)} J ("
                + ("a model: the measured" if energy.all_measured else "ESTIMATE: the estimated")
                + " window energy shared by power and tokens; requests.jsonl energy_j)"
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
    quality = typed.quality
    if quality is not None:
        lines += _quality_lines(quality)
    lines += _workload_lines(typed.workload)
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
    lines += gpu_control_lines(typed.gpu_control)
    if typed.hardware is not None:
        lines.append(f"  GPUs          {hardware_line(typed.hardware)}")
    for warning in typed.warnings:
        lines.append(f"  warning       {warning}")
    if report_path:
        lines.append(f"  report        {report_path}")
    return "\n".join(lines)
