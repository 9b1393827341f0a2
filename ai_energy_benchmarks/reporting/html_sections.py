"""The HTML page's sections, each read from the typed report (``reporting/html.py`` assembles the page)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

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


# -- HTML helpers -----------------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, digits: int = 4, unit: str = "") -> str:
    """A number for people: ``digits`` significant digits, "n/a" for None, the unit after a space."""
    if value is None or isinstance(value, bool):
        text = "n/a" if value is None else str(value).lower()
    elif isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".rstrip() if text != "n/a" else text


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """A table; cells are already HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kind_badge(source: str | None) -> str:
    kind = source_kind(source)
    text = {"measured": "measured", "estimated": "estimate", "absent": "not metered"}[kind]
    return f'<span class="badge {kind}" title="{_e(source)}">{text}</span>'


def _ci(statistics: Statistics | None, digits: int = 4) -> str:
    """``[low, high]`` of a statistics block's 95% interval, or an empty string."""
    if statistics is None or statistics.ci95_low is None:
        return ""
    return f"95% CI [{num(statistics.ci95_low, digits)}, {num(statistics.ci95_high, digits)}]"


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings as ``(dotted key, text)`` rows; lists of scalars joined, other lists as JSON."""
    rows: list[tuple[str, str]] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            rows.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and all(not isinstance(v, (Mapping, list)) for v in data):
        rows.append((prefix, ", ".join(str(v) for v in data) if data else "none"))
    elif isinstance(data, list):
        rows.append((prefix, json.dumps(data, ensure_ascii=False)))
    else:
        rows.append((prefix, num(data) if isinstance(data, float) else "n/a" if data is None else str(data)))
    return rows


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
        f"<header><h1>Benchmark report: {_e(config.name)}</h1>"
        f'<p><span class="status {_e(status)}">{_e(status)}</span>{synthetic}</p>'
        f"<p><b>{_e(config.backend)}</b> · model <b>{_e(config.model)}</b>"
        f" · dataset <b>{_e(config.dataset)}</b> · {_e(started)} → {_e(finished)}</p>"
        f'<p class="muted">run directory {_e(run.directory)}</p></header>'
    )


def warnings(report: BenchmarkResult) -> str:
    """The report's warnings and energy flags."""
    items = list(report.warnings)
    items += [f"energy flag: {flag}" for flag in report.energy.flags]
    if not items:
        return ""
    body = "".join(f"<li>{_e(item)}</li>" for item in items)
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
            _ci(statistics.joules_per_output_token),
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
            _ci(statistics.output_tokens_per_second),
        ),
        ("Requests per second", num(summary.requests_per_second, 4), ""),
        (
            "End-to-end latency",
            f"mean {num(latency.mean, 4, 's')} · p50 {num(latency.p50, 4, 's')} · p99 {num(latency.p99, 4, 's')}",
            _ci(latency if timing else None),
        ),
        (
            "Time to first token",
            f"mean {num(ttft.mean, 4, 's')} · p50 {num(ttft.p50, 4, 's')} · p99 {num(ttft.p99, 4, 's')}",
            _ci(ttft if timing else None),
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
    body = _table(["figure", "value", "note"], [(_e(a), _e(b), _e(c)) for a, b, c in rows], "key")
    return f'<section id="key-figures"><h2>Key figures</h2>{body}</section>'


def _range(bounds: Sequence[Any] | None, scale: float = 1.0, unit: str = "") -> str:
    """``95% CI low-high unit``; an end with no finite bound reads "unbounded"."""
    if not bounds:
        return ""
    low, high = (None if v is None else v * scale for v in bounds)
    return f"95% CI {num(low, 4)} to {'unbounded' if high is None else num(high, 4)} {unit}".rstrip()


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
            f"scorer {quality.scorer}; {_range(quality.accuracy_ci95, 100.0, '%')} (Wilson)"
            + (f"; {quality.unscored} not scored" if quality.unscored else ""),
        ),
        (
            "Energy per correct answer",
            num(quality.joules_per_correct_answer, 4, "J"),
            why or f"{_range(quality.joules_per_correct_answer_ci95, 1.0, 'J')}; {provenance}",
        ),
        (
            "Energy per 1,000 correct answers",
            num(quality.wh_per_1000_correct_answers, 4, "Wh"),
            why or _range(quality.wh_per_1000_correct_answers_ci95, 1.0, "Wh"),
        ),
    ]


def _img(name: str, path: Path, title: str) -> str:
    from ai_energy_benchmarks.reporting.plots import FIGURE_SIZES_PX

    width, height = FIGURE_SIZES_PX[name]
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure id="figure-{_e(name)}"><img src="data:image/png;base64,{data}" width="{width}" height="{height}"'
        f' alt="{_e(title)}" data-figure="{_e(name)}"><figcaption>{_e(title)} ({_e(path.name)})</figcaption></figure>'
    )


def _missing(reason: str) -> str:
    return f'<p class="muted">Not shown: {_e(reason)}.</p>'


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
            _e(device.upper()),
            _e(num(getattr(energy, f"{device}_energy_wh"), 5, "Wh")),
            _e(num(getattr(energy, f"{device}_energy_j"), 5, "J")),
            _kind_badge(sources.get(device)),
            _e(sources.get(device) or "none"),
            _e(notes.get(device, "")),
        )
        for device in DEVICES
    ]
    parts = [
        '<section id="energy"><h2>Energy</h2>',
        _img("energy_breakdown", figures["energy_breakdown"], FIGURES["energy_breakdown"][1]),
        '<p class="muted">Solid bars are measured (hardware counters); hatched bars are estimates (models of power,'
        " such as CodeCarbon's from CPU load and TDP or from installed RAM).</p>",
        _table(["device", "energy", "joules", "kind", "source", "note"], rows),
    ]
    phases = report.phases
    if phases is not None:
        phase_rows = []
        for key in ("prefill", "decode", "generate"):
            block: PhaseBlock = getattr(phases, key)
            phase_rows.append(
                (
                    _e(key),
                    _e(num(block.duration_s, 4, "s")),
                    _e(num(block.energy_wh, 4, "Wh")),
                    _e(num(block.prompt_tokens)),
                    _e(num(block.output_tokens)),
                    _e(num(block.tokens_per_kwh or block.samples_per_kwh, 4)),
                )
            )
        parts.append(
            _table(
                ["phase", "duration", "energy", "prompt tokens", "output tokens", "tokens (samples) per kWh"],
                phase_rows,
            )
        )
        parts.append(f'<p class="muted">{_e(phases.method)}</p>')
    parts.append(_steady_state_table(energy.steady_state))
    if energy.cross_checks:
        parts.append("<h3>Meter cross-checks</h3><ul>")
        parts += [f"<li>{_e(json.dumps(check.to_dict(), ensure_ascii=False))}</li>" for check in energy.cross_checks]
        parts.append("</ul>")
    for note in energy.notes:
        parts.append(f'<p class="muted">{_e(note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _steady_state_table(steady: SteadyState | None) -> str:
    """The HTTP backend's steady state per window and device: energy, bounds where read back, and the source."""
    if steady is None or not steady.windows:
        return ""
    rows = []
    for window in steady.windows:
        if not window.reached or not window.devices:
            rows.append((_e(window.label), "all", _e("not reached"), "", "", ""))
            continue
        for device, block in window.devices.items():
            bounds = (
                f"[{num(block.lower_wh, 4)}, {num(block.upper_wh, 4)}] Wh"
                if block.lower_wh is not None and block.upper_wh is not None
                else ""
            )
            rows.append(
                (
                    _e(window.label),
                    _e(device.upper()),
                    _e(num(block.energy_wh, 5, "Wh")),
                    _e(bounds),
                    _kind_badge(block.source),
                    _e(block.source),
                )
            )
    summary = (
        f"{num(steady.joules_per_output_token, 4, 'J')} per output token over {num(steady.output_tokens, 6)} tokens"
    )
    return (
        "<h3>Steady state (all concurrency slots busy)</h3>"
        + _table(["window", "device", "energy", "bounds", "kind", "source"], rows, css="steady-state")
        + f'<p class="muted">{_e(summary)}; devices whose meter keeps a counter record are measured over the '
        "interval itself, the others are the window's energy times the interval's share of the window.</p>"
    )


def figure_section(
    section_id: str, name: str, figures: Mapping[str, Path], skipped: Mapping[str, str], extra: str = ""
) -> str:
    title = FIGURES[name][1]
    body = _img(name, figures[name], title) if name in figures else _missing(skipped.get(name, "no data"))
    return f'<section id="{section_id}"><h2>{_e(title)}</h2>{body}{extra}</section>'


def latency_table(report: BenchmarkResult) -> str:
    """Latency and TTFT statistics (s)."""
    timing = report.latency
    if timing is None:
        return ""
    rows = []
    for key, label in (("ttft_s", "time to first token"), ("latency_s", "end-to-end latency")):
        block: Statistics = getattr(timing, key)
        rows.append(
            [_e(label)] + [_e(num(getattr(block, stat), 4)) for stat in ("count", "mean", "p50", "p90", "p99", "max")]
        )
    per = timing.per or "request"
    return _table(["seconds", "count", "mean", "p50", "p90", "p99", "max"], rows) + (
        f'<p class="muted">per {_e(per)}</p>'
    )


def repetition_table(report: BenchmarkResult) -> str:
    """One row per repetition, and the repetitions' statistics (mean, std, 95% CI, CV)."""
    rows = [
        [
            _e(row.repetition),
            _e(num(row.duration_s, 4, "s")),
            _e(num(row.total_energy_wh, 4, "Wh")),
            _e(num(row.joules_per_output_token, 4, "J")),
            _e(num(row.output_tokens_per_second, 4)),
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
                f"<li>{_e(label)}: mean {_e(num(block.mean, 4))}, std {_e(num(block.std, 3))},"
                f" {_e(_ci(block))}, CV {_e(num(block.cv, 3))}</li>"
            )
    stats_html = (
        f"<ul>{''.join(lines)}</ul>"
        if lines
        else ('<p class="muted">One repetition: no confidence interval (set scenario.repetitions to 2 or more).</p>')
    )
    table = _table(["repetition", "duration", "energy", "J / output token", "tokens/s"], rows)
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
        f"<p>source: {_e(redact_text(str(provenance.get('config_source'))))}"
        f"<br>sha256: <code>{_e(provenance.get('config_sha256'))}</code>"
        f"<br>prompts sha256: <code>{_e(report.dataset.prompts_sha256)}</code></p>"
        f"<pre>{_e(text)}</pre>"
        "<h3>Model</h3>"
        + _table(["key", "value"], [(_e(k), _e(v)) for k, v in _flatten(report.model)])
        + "<h3>Dataset</h3>"
        + _table(["key", "value"], [(_e(k), _e(v)) for k, v in _flatten(report.dataset.to_dict())])
        + "<h3>Meters</h3>"
        + _table(["key", "value"], [(_e(k), _e(v)) for k, v in _flatten(report.meters)])
        + "</section>"
    )


def environment(report: BenchmarkResult) -> str:
    """The machine and package versions as recorded."""
    rows = [(_e(k), _e(v)) for k, v in _flatten(report.environment)]
    return f'<section id="environment"><h2>Environment</h2>{_table(["key", "value"], rows)}</section>'
