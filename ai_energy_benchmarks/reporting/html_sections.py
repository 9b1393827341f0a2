"""The HTML page's sections, each read from the typed report (``reporting/html.py`` assembles the page)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from ai_energy_benchmarks.reporting.html_format import (
    ci_range,
    ci_text,
    esc,
    figure_html,
    flatten,
    html_table,
    kind_badge,
    not_shown,
    num,
)
from ai_energy_benchmarks.reporting.runs import DEVICES, Run, source_kind
from ai_energy_benchmarks.results.model import (
    BenchmarkResult,
    PhaseBlock,
    RepetitionStatistics,
    Statistics,
    SteadyState,
)

#: Figure name -> (PNG file name, title), in page order.
FIGURES: dict[str, tuple[str, str]] = {
    "energy_breakdown": ("energy_breakdown.png", "Energy breakdown"),
    "power_timeline": ("power_timeline.png", "GPU power timeline"),
    "latency_cdf": ("latency_cdf.png", "Latency distributions"),
    "repetitions": ("repetitions.png", "Repetitions and confidence interval"),
}


# -- page sections ----------------------------------------------------------------------------------------------------


def header(report: BenchmarkResult, run: Run) -> str:
    """The page's title block: run name, status, backend, model, dataset, times."""
    config = report.config
    status = report.status or "unknown"
    synthetic = (
        ' <span class="badge estimated">synthetic model: random weights</span>' if report.synthetic_model else ""
    )
    started, finished = report.timestamps.started_at or "?", report.timestamps.finished_at or "?"
    return (
        f"<header><h1>Benchmark report: {esc(config.name)}</h1>"
        f'<p><span class="status {esc(status)}">{esc(status)}</span>{synthetic}</p>'
        f"<p><b>{esc(config.backend)}</b> · model <b>{esc(config.model)}</b>"
        f" · dataset <b>{esc(config.dataset)}</b> · {esc(started)} → {esc(finished)}</p>"
        f'<p class="muted">run directory {esc(run.directory)}</p></header>'
    )


def warnings(report: BenchmarkResult) -> str:
    """The report's warnings and energy flags."""
    items = list(report.warnings)
    items += [f"energy flag: {flag}" for flag in report.energy.flags]
    if not items:
        return ""
    body = "".join(f"<li>{esc(item)}</li>" for item in items)
    return f'<section id="warnings"><h2>Warnings</h2><ul class="warnings">{body}</ul></section>'


def key_figures(report: BenchmarkResult, samples: Mapping[str, Sequence[float]]) -> str:
    """The headline figures with where each came from."""
    summary, energy = report.summary, report.energy
    statistics = report.repetition_statistics or RepetitionStatistics()
    estimated = [d for d in DEVICES if source_kind(energy.sources.get(d)) == "estimated"]
    if not energy.enabled:
        provenance = "not measured (metrics.enabled=false)"
    elif estimated:
        provenance = "includes estimates: " + ", ".join(d.upper() for d in estimated)
    else:
        provenance = "measured"
    timing = report.latency
    latency = timing.latency_s if timing else Statistics()
    ttft = timing.ttft_s if timing else Statistics()
    repetitions = 1 if report.config.repetitions is None else report.config.repetitions
    rows: list[tuple[str, str, str]] = [
        (
            "Prompts",
            f"{num(summary.successful_prompts)} ok of {num(summary.total_prompts)}",
            f"{num(repetitions)} repetition(s)",
        ),
        ("Measured duration", num(summary.total_duration_seconds, 4, "s"), "sum of the generate windows"),
        ("Total energy", num(energy.total_energy_wh, 4, "Wh"), provenance),
        ("Energy per 1,000 queries", num(energy.total_wh_per_1000_queries, 4, "Wh"), provenance),
        (
            "Energy per output token",
            num(energy.joules_per_output_token, 4, "J"),
            ci_text(statistics.joules_per_output_token),
        ),
        ("Output tokens per joule", num(energy.output_tokens_per_joule, 4), ""),
        (
            "Emissions",
            num(energy.emissions_g_co2eq, 4, "g CO2eq"),
            f"at {num(energy.carbon_intensity_g_per_kwh, 4, 'g/kWh')}",
        ),
        (
            "Output throughput",
            num(summary.throughput_output_tokens_per_second, 4, "tokens/s"),
            ci_text(statistics.output_tokens_per_second),
        ),
        ("Requests per second", num(summary.requests_per_second, 4), ""),
        (
            "End-to-end latency",
            f"mean {num(latency.mean, 4, 's')} · p50 {num(latency.p50, 4, 's')} · p99 {num(latency.p99, 4, 's')}",
            ci_text(latency if timing else None),
        ),
        (
            "Time to first token",
            f"mean {num(ttft.mean, 4, 's')} · p50 {num(ttft.p50, 4, 's')} · p99 {num(ttft.p99, 4, 's')}",
            ci_text(ttft if timing else None),
        ),
    ]
    if samples.get("itl_s"):
        from ai_energy_benchmarks.results.stats import percentile

        itl = list(samples["itl_s"])
        rows.append(
            (
                "Inter-token latency",
                f"p50 {num(percentile(itl, 50), 4, 's')} · p99 {num(percentile(itl, 99), 4, 's')}",
                f"{len(itl):,} gaps between streamed chunks",
            )
        )
    rows += _quality_rows(report, provenance)
    idle = energy.idle_baseline
    if idle is not None:
        powers = ", ".join(
            f"{device.upper()} {num(watts, 4, 'W')}" for device, watts in idle.power_w.items() if watts is not None
        )
        rows.append(
            (
                "Idle baseline",
                f"active energy {num(idle.total_active_energy_wh, 4, 'Wh')}",
                f"idle share {num(idle.idle_share, 3)}; idle power {powers or 'n/a'}",
            )
        )
    body = html_table(["figure", "value", "note"], [(esc(a), esc(b), esc(c)) for a, b, c in rows], "key")
    return f'<section id="key-figures"><h2>Key figures</h2>{body}</section>'


def _quality_rows(report: BenchmarkResult, provenance: str) -> list[tuple[str, str, str]]:
    """Accuracy (Wilson interval) and energy per correct answer, with the scorer (runs with ``scenario.scorer``)."""
    quality = report.quality
    if quality is None:
        return []
    why = quality.null_reason or ""
    return [
        (
            "Accuracy",
            f"{num(quality.correct)} correct of {num(quality.scored)} scored"
            f" ({num(None if quality.accuracy is None else 100 * quality.accuracy, 4, '%')})",
            f"scorer {quality.scorer}; {ci_range(quality.accuracy_ci95, 100.0, '%')} (Wilson)"
            + (f"; {quality.unscored} not scored" if quality.unscored else ""),
        ),
        (
            "Energy per correct answer",
            num(quality.joules_per_correct_answer, 4, "J"),
            why or f"{ci_range(quality.joules_per_correct_answer_ci95, 1.0, 'J')}; {provenance}",
        ),
        (
            "Energy per 1,000 correct answers",
            num(quality.wh_per_1000_correct_answers, 4, "Wh"),
            why or ci_range(quality.wh_per_1000_correct_answers_ci95, 1.0, "Wh"),
        ),
    ]


def energy_section(report: BenchmarkResult, figures: Mapping[str, Path]) -> str:
    """Energy per device with its source, the breakdown figure, phases, steady state, cross-checks and notes."""
    energy = report.energy
    sources, meters = energy.sources, energy.meters_used
    notes: dict[str, str] = {}
    for reading in energy.readings:
        device = str(reading.get("device", "")).split(":")[0]
        if reading.get("note") and device not in notes and reading.get("meter") == meters.get(device):
            notes[device] = str(reading["note"])
    rows = [
        (
            esc(device.upper()),
            esc(num(getattr(energy, f"{device}_energy_wh"), 5, "Wh")),
            esc(num(getattr(energy, f"{device}_energy_j"), 5, "J")),
            kind_badge(sources.get(device)),
            esc(sources.get(device) or "none"),
            esc(notes.get(device, "")),
        )
        for device in DEVICES
    ]
    parts = [
        '<section id="energy"><h2>Energy</h2>',
        figure_html("energy_breakdown", figures["energy_breakdown"], FIGURES["energy_breakdown"][1]),
        '<p class="muted">Solid bars are measured (hardware counters); hatched bars are estimates (models of power,'
        " such as CodeCarbon's from CPU load and TDP or from installed RAM).</p>",
        html_table(["device", "energy", "joules", "kind", "source", "note"], rows),
    ]
    phases = report.phases
    if phases is not None:
        phase_rows = []
        for key in ("prefill", "decode", "generate"):
            block: PhaseBlock = getattr(phases, key)
            phase_rows.append(
                (
                    esc(key),
                    esc(num(block.duration_s, 4, "s")),
                    esc(num(block.energy_wh, 4, "Wh")),
                    esc(num(block.prompt_tokens)),
                    esc(num(block.output_tokens)),
                    esc(num(block.tokens_per_kwh or block.samples_per_kwh, 4)),
                )
            )
        parts.append(
            html_table(
                ["phase", "duration", "energy", "prompt tokens", "output tokens", "tokens (samples) per kWh"],
                phase_rows,
            )
        )
        parts.append(f'<p class="muted">{esc(phases.method)}</p>')
    parts.append(_steady_state_table(energy.steady_state))
    if energy.cross_checks:
        parts.append("<h3>Meter cross-checks</h3><ul>")
        parts += [f"<li>{esc(json.dumps(check.to_dict(), ensure_ascii=False))}</li>" for check in energy.cross_checks]
        parts.append("</ul>")
    for note in energy.notes:
        parts.append(f'<p class="muted">{esc(note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _steady_state_table(steady: SteadyState | None) -> str:
    """The HTTP backend's steady state per window and device: energy, bounds where read back, and the source."""
    if steady is None or not steady.windows:
        return ""
    rows = []
    for window in steady.windows:
        if not window.reached or not window.devices:
            rows.append((esc(window.label), "all", esc("not reached"), "", "", ""))
            continue
        for device, block in window.devices.items():
            bounds = (
                f"[{num(block.lower_wh, 4)}, {num(block.upper_wh, 4)}] Wh"
                if block.lower_wh is not None and block.upper_wh is not None
                else ""
            )
            rows.append(
                (
                    esc(window.label),
                    esc(device.upper()),
                    esc(num(block.energy_wh, 5, "Wh")),
                    esc(bounds),
                    kind_badge(block.source),
                    esc(block.source),
                )
            )
    summary = (
        f"{num(steady.joules_per_output_token, 4, 'J')} per output token over {num(steady.output_tokens, 6)} tokens"
    )
    return (
        "<h3>Steady state (all concurrency slots busy)</h3>"
        + html_table(["window", "device", "energy", "bounds", "kind", "source"], rows, css="steady-state")
        + f'<p class="muted">{esc(summary)}; devices whose meter keeps a counter record are measured over the '
        "interval itself, the others are the window's energy times the interval's share of the window.</p>"
    )


def figure_section(
    section_id: str, name: str, figures: Mapping[str, Path], skipped: Mapping[str, str], extra: str = ""
) -> str:
    title = FIGURES[name][1]
    body = figure_html(name, figures[name], title) if name in figures else not_shown(skipped.get(name, "no data"))
    return f'<section id="{section_id}"><h2>{esc(title)}</h2>{body}{extra}</section>'


def latency_table(report: BenchmarkResult) -> str:
    """Latency and TTFT statistics (s)."""
    timing = report.latency
    if timing is None:
        return ""
    rows = []
    for key, label in (("ttft_s", "time to first token"), ("latency_s", "end-to-end latency")):
        block: Statistics = getattr(timing, key)
        rows.append(
            [esc(label)] + [esc(num(getattr(block, stat), 4)) for stat in ("count", "mean", "p50", "p90", "p99", "max")]
        )
    per = timing.per or "request"
    return html_table(["seconds", "count", "mean", "p50", "p90", "p99", "max"], rows) + (
        f'<p class="muted">per {esc(per)}</p>'
    )


def repetition_table(report: BenchmarkResult) -> str:
    """One row per repetition, and the repetitions' statistics (mean, std, 95% CI, CV)."""
    rows = [
        [
            esc(row.repetition),
            esc(num(row.duration_s, 4, "s")),
            esc(num(row.total_energy_wh, 4, "Wh")),
            esc(num(row.joules_per_output_token, 4, "J")),
            esc(num(row.output_tokens_per_second, 4)),
        ]
        for row in report.repetitions
    ]
    if not rows:
        return ""
    statistics = report.repetition_statistics or RepetitionStatistics()
    lines = []
    for key, label in (
        ("total_energy_wh", "energy per repetition (Wh)"),
        ("joules_per_output_token", "J per output token"),
        ("output_tokens_per_second", "output throughput (tokens/s)"),
    ):
        block: Statistics | None = getattr(statistics, key)
        if block is not None and block.mean is not None:
            lines.append(
                f"<li>{esc(label)}: mean {esc(num(block.mean, 4))}, std {esc(num(block.std, 3))},"
                f" {esc(ci_text(block))}, CV {esc(num(block.cv, 3))}</li>"
            )
    stats_html = (
        f"<ul>{''.join(lines)}</ul>"
        if lines
        else ('<p class="muted">One repetition: no confidence interval (set scenario.repetitions to 2 or more).</p>')
    )
    table = html_table(["repetition", "duration", "energy", "J / output token", "tokens/s"], rows)
    return table + stats_html


def configuration(report: BenchmarkResult) -> str:
    """The resolved config (redacted again), its hashes, and the model, dataset and meters as recorded."""
    import yaml

    from ai_energy_benchmarks.config.redact import redact_data, redact_text

    provenance = report.provenance
    config = provenance.get("config")
    # Redacted again: a report written by an older version may hold a key or a URL's credentials.
    text = yaml.safe_dump(redact_data(config), sort_keys=False) if isinstance(config, Mapping) else "(not recorded)"
    return (
        '<section id="configuration"><h2>Configuration</h2>'
        f"<p>source: {esc(redact_text(str(provenance.get('config_source'))))}"
        f"<br>sha256: <code>{esc(provenance.get('config_sha256'))}</code>"
        f"<br>prompts sha256: <code>{esc(report.dataset.prompts_sha256)}</code></p>"
        f"<pre>{esc(text)}</pre>"
        "<h3>Model</h3>"
        + html_table(["key", "value"], [(esc(k), esc(v)) for k, v in flatten(report.model)])
        + "<h3>Dataset</h3>"
        + html_table(["key", "value"], [(esc(k), esc(v)) for k, v in flatten(report.dataset.to_dict())])
        + "<h3>Meters</h3>"
        + html_table(["key", "value"], [(esc(k), esc(v)) for k, v in flatten(report.meters)])
        + "</section>"
    )


def environment(report: BenchmarkResult) -> str:
    """The machine and package versions as recorded."""
    rows = [(esc(k), esc(v)) for k, v in flatten(report.environment)]
    return f'<section id="environment"><h2>Environment</h2>{html_table(["key", "value"], rows)}</section>'
