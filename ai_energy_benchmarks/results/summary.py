"""A short human summary of a result dict (the CLI prints it; the library never prints)."""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.results.contract import honest


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


def _steady_sources(steady: dict[str, Any]) -> str:
    """Which devices' steady-state energy was measured over the interval and which was a time-share ESTIMATE."""
    by_kind: dict[str, list[str]] = {"measured": [], "estimated": []}
    for device in ("gpu", "cpu", "ram"):
        sources = {
            str((row.get("devices") or {}).get(device, {}).get("source"))
            for row in steady.get("windows") or []
            if (row.get("devices") or {}).get(device)
        }
        if sources:
            kind = "measured" if all(src.startswith("measured:") for src in sources) else "estimated"
            by_kind[kind].append(device)
    parts = []
    if by_kind["measured"]:
        parts.append(f"{', '.join(by_kind['measured'])} measured over the interval")
    if by_kind["estimated"]:
        parts.append(f"{', '.join(by_kind['estimated'])} ESTIMATE: time share of the window")
    return "; ".join(parts) or "not read"


def _dataset(dataset: dict[str, Any]) -> str:
    """The prompt source; for a hub dataset also its config, split and the commit the rows came from."""
    hub = dataset.get("hub")
    if not hub:
        return str(dataset["source"])
    parts = [f"config {hub['config']}" if hub.get("config") else None, f"split {hub['split']}"]
    if hub.get("commit"):
        parts.append(f"commit {str(hub['commit'])[:12]}")
    if hub.get("offline"):
        parts.append("from the local cache")
    return f"{dataset['source']} ({', '.join(p for p in parts if p)})"


def _output_rate(result: dict[str, Any]) -> Any:
    """Output tokens per second (a schema 1.0 report kept them in ``throughput_tokens_per_second``)."""
    summary = result["summary"]
    if "throughput_output_tokens_per_second" in summary:
        return summary["throughput_output_tokens_per_second"]
    return summary.get("throughput_tokens_per_second")


def format_summary(result: dict[str, Any], report_path: str | None = None) -> str:
    """Multi-line text: workload, speed, energy with the source of each figure, and warnings."""
    config, summary, energy = result["config"], result["summary"], result.get("energy", {})
    model = result.get("model", {})
    lines = [
        f"Benchmark '{config['name']}' [{result['status']}]: {config['backend']} / {config['model']}"
        + (" (SYNTHETIC model: random weights)" if model.get("synthetic") else ""),
        f"  prompts       {summary['successful_prompts']}/{summary['total_prompts']} ok"
        f", {summary['failed_prompts']} failed; dataset {_dataset(result['dataset'])}",
        f"  tokens        {summary['total_prompt_tokens']} prompt + {summary['total_completion_tokens']} generated",
        f"  duration      {_num(summary['total_duration_seconds'], 3, 's')} measured"
        f"; throughput {_num(_output_rate(result), 1, 'output tokens/s')}",
        f"  latency       mean {_num(honest(result, 'summary.avg_latency_seconds'), 4, 's')}"
        f"; TTFT mean {_num(honest(result, 'summary.avg_time_to_first_token'), 4, 's')}",
    ]
    http = model.get("http") or {}
    measured = http.get("measured") or {}
    if measured:
        ttft, itl, e2e = measured.get("ttft_s") or {}, measured.get("itl_s") or {}, measured.get("e2e_s") or {}
        lines.append(
            f"  http          TTFT p50 {_num(ttft.get('median'), 4, 's')} p99 {_num(ttft.get('p99'), 4, 's')}"
            f"; ITL p50 {_num(itl.get('median'), 4, 's')}; e2e p99 {_num(e2e.get('p99'), 4, 's')}"
        )
    if energy.get("enabled"):
        sources = energy.get("sources", {})
        lines += [
            f"  energy        total {_num(honest(result, 'energy.total_energy_wh'), 6, 'Wh')}"
            f" = {_num(energy['total_energy_j'], 3, 'J')}",
            f"    gpu         {_num(honest(result, 'energy.gpu_energy_wh'), 6, 'Wh')}  {_kind(sources.get('gpu'))}",
            f"    cpu         {_num(honest(result, 'energy.cpu_energy_wh'), 6, 'Wh')}  {_kind(sources.get('cpu'))}",
            f"    ram         {_num(honest(result, 'energy.ram_energy_wh'), 6, 'Wh')}  {_kind(sources.get('ram'))}",
            f"  per 1000 q    {_num(energy['total_wh_per_1000_queries'], 4, 'Wh')} total"
            f"; {_num(energy['joules_per_output_token'], 4, 'J')}/output token",
            f"  emissions     {_num(honest(result, 'energy.emissions_g_co2eq'), 4, 'g CO2eq')}"
            f" at {_num(energy['carbon_intensity_g_per_kwh'], 1, 'g/kWh')}"
            + (" (ESTIMATE: grid intensity x energy)" if energy.get("emissions_source") else ""),
        ]
        steady = energy.get("steady_state")
        if steady and steady.get("energy_wh") is not None:
            lines.append(
                f"  steady state  {_num(steady['joules_per_output_token'], 4, 'J')}/output token"
                f" over {steady['output_tokens']:.1f} tokens ({_steady_sources(steady)})"
            )
        phases = result.get("phases")
        if phases:
            prefill, decode = phases["prefill"], phases["decode"]
            lines.append(
                f"  phases        prefill {_num(prefill['energy_wh'], 6, 'Wh')}"
                f" in {_num(prefill['duration_s'], 3, 's')}"
                f"; decode {_num(decode['energy_wh'], 6, 'Wh')} in {_num(decode['duration_s'], 3, 's')}"
                f" ({_num(decode['tokens_per_kwh'], 4)} tokens/kWh)"
            )
        baseline = energy.get("idle_baseline")
        if baseline:
            power = ", ".join(f"{d} {_num(w, 2, 'W')}" for d, w in baseline["power_w"].items() if w is not None)
            lines.append(
                f"  idle          {power}; active energy {_num(baseline['total_active_energy_wh'], 6, 'Wh')}"
                f" (idle share {_num(None if baseline['idle_share'] is None else 100 * baseline['idle_share'], 1)}%)"
            )
        if not energy.get("all_measured"):
            lines.append("  note          energy figures marked ESTIMATE are models, not measurements")
    else:
        lines.append("  energy        not measured (metrics.enabled=false)")
    for warning in result.get("warnings", []):
        lines.append(f"  warning       {warning}")
    if report_path:
        lines.append(f"  report        {report_path}")
    return "\n".join(lines)
