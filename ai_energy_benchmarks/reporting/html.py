"""The report of one run: PNG figures and one self-contained HTML page (images embedded, no external resource).

    files = write_report("benchmark_output/quickstart")          # -> benchmark_output/quickstart/report/
    files.html                                                   # report.html: open it anywhere, offline

The page shows the key figures with their sources, the energy breakdown (by device and by phase; estimates
hatched), the GPU power timeline when the NVML meter recorded one, latency distributions (TTFT, end to end and,
for streaming backends, inter-token) as CDFs, per-repetition energy with its 95% confidence interval, the warnings,
and the configuration and environment the run used.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ai_energy_benchmarks._version import __version__
from ai_energy_benchmarks.reporting import ReportError, require_matplotlib
from ai_energy_benchmarks.reporting.runs import DEVICES, Run, dig, latency_samples, load_run, source_kind
from ai_energy_benchmarks.results.writers import write_text_atomic

logger = logging.getLogger(__name__)

HTML_FILE = "report.html"
DEFAULT_REPORT_DIR = "report"

#: Figure name -> (PNG file name, title), in page order.
FIGURES: dict[str, tuple[str, str]] = {
    "energy_breakdown": ("energy_breakdown.png", "Energy breakdown"),
    "power_timeline": ("power_timeline.png", "GPU power timeline"),
    "latency_cdf": ("latency_cdf.png", "Latency distributions"),
    "repetitions": ("repetitions.png", "Repetitions and confidence interval"),
}


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote: the HTML page and each figure's PNG, and the figures left out (why)."""

    html: Path
    figures: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


# -- figures ----------------------------------------------------------------------------------------------------------


def draw_figures(run: Run, output_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Draw every figure the run has data for into ``output_dir``; return the PNGs and the reasons for the others."""
    from ai_energy_benchmarks.reporting import plots

    report = run.report
    figures: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    figures["energy_breakdown"] = plots.energy_breakdown(report, output_dir / FIGURES["energy_breakdown"][0])
    timeline = run.timeline()
    if timeline:
        interval = dig(report, "meters.nvml.poll_interval_s")
        figures["power_timeline"] = plots.power_timeline(
            timeline, output_dir / FIGURES["power_timeline"][0], plots.finite(interval)
        )
    else:
        skipped["power_timeline"] = (
            "no timeline.csv in the run directory (recorded by the NVML meter: metrics.type=nvml)"
        )
    samples = latency_samples(run.requests())
    if samples["latency_s"]:
        figures["latency_cdf"] = plots.latency_cdf(samples, output_dir / FIGURES["latency_cdf"][0])
    else:
        skipped["latency_cdf"] = "no successful request in requests.jsonl"
    if report.get("repetitions"):
        figures["repetitions"] = plots.repetitions(report, output_dir / FIGURES["repetitions"][0])
    else:
        skipped["repetitions"] = "the report has no repetitions"
    for name, path in figures.items():
        logger.info("figure %s: %s", name, path)
    return figures, skipped


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


def _ci(statistics: Any, digits: int = 4) -> str:
    """``[low, high]`` of a statistics block's 95% interval, or an empty string."""
    if not isinstance(statistics, Mapping) or statistics.get("ci95_low") is None:
        return ""
    return f"95% CI [{num(statistics['ci95_low'], digits)}, {num(statistics['ci95_high'], digits)}]"


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


def _header(report: Mapping[str, Any], run: Run) -> str:
    config, model = report.get("config", {}), report.get("model", {}) or {}
    status = str(report.get("status", "unknown"))
    synthetic = (
        ' <span class="badge estimated">synthetic model: random weights</span>' if model.get("synthetic") else ""
    )
    started, finished = dig(report, "timestamps.started_at", "?"), dig(report, "timestamps.finished_at", "?")
    return (
        f"<header><h1>Benchmark report: {_e(config.get('name'))}</h1>"
        f'<p><span class="status {_e(status)}">{_e(status)}</span>{synthetic}</p>'
        f"<p><b>{_e(config.get('backend'))}</b> · model <b>{_e(config.get('model'))}</b>"
        f" · dataset <b>{_e(config.get('dataset'))}</b> · {_e(started)} → {_e(finished)}</p>"
        f'<p class="muted">run directory {_e(run.directory)}</p></header>'
    )


def _warnings(report: Mapping[str, Any]) -> str:
    items = list(report.get("warnings") or [])
    items += [f"energy flag: {flag}" for flag in dig(report, "energy.flags", []) or []]
    if not items:
        return ""
    body = "".join(f"<li>{_e(item)}</li>" for item in items)
    return f'<section id="warnings"><h2>Warnings</h2><ul class="warnings">{body}</ul></section>'


def _key_figures(report: Mapping[str, Any], samples: Mapping[str, Sequence[float]]) -> str:
    summary, energy = report.get("summary", {}), report.get("energy", {}) or {}
    statistics = report.get("repetition_statistics") or {}
    sources = energy.get("sources") or {}
    estimated = [d for d in DEVICES if source_kind(sources.get(d)) == "estimated"]
    if not energy.get("enabled"):
        provenance = "not measured (metrics.enabled=false)"
    elif estimated:
        provenance = "includes estimates: " + ", ".join(d.upper() for d in estimated)
    else:
        provenance = "measured"
    latency, ttft = dig(report, "latency.latency_s", {}), dig(report, "latency.ttft_s", {})
    rows: list[tuple[str, str, str]] = [
        (
            "Prompts",
            f"{num(summary.get('successful_prompts'))} ok of {num(summary.get('total_prompts'))}",
            f"{num(dig(report, 'config.repetitions', 1))} repetition(s)",
        ),
        ("Measured duration", num(summary.get("total_duration_seconds"), 4, "s"), "sum of the generate windows"),
        ("Total energy", num(energy.get("total_energy_wh"), 4, "Wh"), provenance),
        ("Energy per 1,000 queries", num(energy.get("total_wh_per_1000_queries"), 4, "Wh"), provenance),
        (
            "Energy per output token",
            num(energy.get("joules_per_output_token"), 4, "J"),
            _ci(statistics.get("joules_per_output_token")),
        ),
        ("Output tokens per joule", num(energy.get("output_tokens_per_joule"), 4), ""),
        (
            "Emissions",
            num(energy.get("emissions_g_co2eq"), 4, "g CO2eq"),
            f"at {num(energy.get('carbon_intensity_g_per_kwh'), 4, 'g/kWh')}",
        ),
        (
            "Output throughput",
            num(summary.get("throughput_output_tokens_per_second"), 4, "tokens/s"),
            _ci(statistics.get("output_tokens_per_second")),
        ),
        ("Requests per second", num(summary.get("requests_per_second"), 4), ""),
        (
            "End-to-end latency",
            f"mean {num(latency.get('mean'), 4, 's')} · p50 {num(latency.get('p50'), 4, 's')}"
            f" · p99 {num(latency.get('p99'), 4, 's')}",
            _ci(latency),
        ),
        (
            "Time to first token",
            f"mean {num(ttft.get('mean'), 4, 's')} · p50 {num(ttft.get('p50'), 4, 's')}"
            f" · p99 {num(ttft.get('p99'), 4, 's')}",
            _ci(ttft),
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
    idle = energy.get("idle_baseline")
    if isinstance(idle, Mapping):
        powers = ", ".join(
            f"{device.upper()} {num(watts, 4, 'W')}"
            for device, watts in (idle.get("power_w") or {}).items()
            if watts is not None
        )
        rows.append(
            (
                "Idle baseline",
                f"active energy {num(idle.get('total_active_energy_wh'), 4, 'Wh')}",
                f"idle share {num(idle.get('idle_share'), 3)}; idle power {powers or 'n/a'}",
            )
        )
    body = _table(["figure", "value", "note"], [(_e(a), _e(b), _e(c)) for a, b, c in rows], "key")
    return f'<section id="key-figures"><h2>Key figures</h2>{body}</section>'


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


def _energy_section(report: Mapping[str, Any], figures: Mapping[str, Path]) -> str:
    energy = report.get("energy", {}) or {}
    sources = energy.get("sources") or {}
    meters = energy.get("meters_used") or {}
    notes: dict[str, str] = {}
    for reading in energy.get("readings") or []:
        device = str(reading.get("device", "")).split(":")[0]
        if reading.get("note") and device not in notes and reading.get("meter") == meters.get(device):
            notes[device] = str(reading["note"])
    rows = [
        (
            _e(device.upper()),
            _e(num(energy.get(f"{device}_energy_wh"), 5, "Wh")),
            _e(num(energy.get(f"{device}_energy_j"), 5, "J")),
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
    phases = report.get("phases")
    if isinstance(phases, Mapping):
        phase_rows = []
        for key in ("prefill", "decode", "generate"):
            block = phases.get(key)
            if not isinstance(block, Mapping):
                continue
            phase_rows.append(
                (
                    _e(key),
                    _e(num(block.get("duration_s"), 4, "s")),
                    _e(num(block.get("energy_wh"), 4, "Wh")),
                    _e(num(block.get("prompt_tokens"))),
                    _e(num(block.get("output_tokens"))),
                    _e(num(block.get("tokens_per_kwh") or block.get("samples_per_kwh"), 4)),
                )
            )
        parts.append(
            _table(
                ["phase", "duration", "energy", "prompt tokens", "output tokens", "tokens (samples) per kWh"],
                phase_rows,
            )
        )
        parts.append(f'<p class="muted">{_e(phases.get("method"))}</p>')
    parts.append(_steady_state_table(energy.get("steady_state")))
    checks = energy.get("cross_checks") or []
    if checks:
        parts.append("<h3>Meter cross-checks</h3><ul>")
        parts += [f"<li>{_e(json.dumps(check, ensure_ascii=False))}</li>" for check in checks]
        parts.append("</ul>")
    for note in energy.get("notes") or []:
        parts.append(f'<p class="muted">{_e(note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _steady_state_table(steady: Any) -> str:
    """The HTTP backend's steady state per window and device: energy, bounds where read back, and the source."""
    if not isinstance(steady, Mapping) or not steady.get("windows"):
        return ""
    rows = []
    for window in steady["windows"]:
        devices = window.get("devices") or {}
        if not window.get("reached") or not devices:
            rows.append((_e(window.get("label")), "all", _e("not reached"), "", "", ""))
            continue
        for device, block in devices.items():
            bounds = (
                f"[{num(block['lower_wh'], 4)}, {num(block['upper_wh'], 4)}] Wh"
                if block.get("lower_wh") is not None and block.get("upper_wh") is not None
                else ""
            )
            rows.append(
                (
                    _e(window.get("label")),
                    _e(device.upper()),
                    _e(num(block.get("energy_wh"), 5, "Wh")),
                    _e(bounds),
                    _kind_badge(block.get("source")),
                    _e(block.get("source")),
                )
            )
    summary = (
        f"{num(steady.get('joules_per_output_token'), 4, 'J')} per output token over "
        f"{num(steady.get('output_tokens'), 6)} tokens"
    )
    return (
        "<h3>Steady state (all concurrency slots busy)</h3>"
        + _table(["window", "device", "energy", "bounds", "kind", "source"], rows, css="steady-state")
        + f'<p class="muted">{_e(summary)}; devices whose meter keeps a counter record are measured over the '
        "interval itself, the others are the window's energy times the interval's share of the window.</p>"
    )


def _figure_section(
    section_id: str, name: str, figures: Mapping[str, Path], skipped: Mapping[str, str], extra: str = ""
) -> str:
    title = FIGURES[name][1]
    body = _img(name, figures[name], title) if name in figures else _missing(skipped.get(name, "no data"))
    return f'<section id="{section_id}"><h2>{_e(title)}</h2>{body}{extra}</section>'


def _latency_table(report: Mapping[str, Any]) -> str:
    rows = []
    for key, label in (("ttft_s", "time to first token"), ("latency_s", "end-to-end latency")):
        block = dig(report, f"latency.{key}")
        if not isinstance(block, Mapping):
            continue
        rows.append(
            [_e(label)] + [_e(num(block.get(stat), 4)) for stat in ("count", "mean", "p50", "p90", "p99", "max")]
        )
    if not rows:
        return ""
    per = dig(report, "latency.per", "request")
    return _table(["seconds", "count", "mean", "p50", "p90", "p99", "max"], rows) + (
        f'<p class="muted">per {_e(per)}</p>'
    )


def _repetition_table(report: Mapping[str, Any]) -> str:
    rows = [
        [
            _e(row.get("repetition")),
            _e(num(row.get("duration_s"), 4, "s")),
            _e(num(row.get("total_energy_wh"), 4, "Wh")),
            _e(num(row.get("joules_per_output_token"), 4, "J")),
            _e(num(row.get("output_tokens_per_second"), 4)),
        ]
        for row in report.get("repetitions") or []
    ]
    if not rows:
        return ""
    statistics = report.get("repetition_statistics") or {}
    lines = []
    for key, label in (
        ("total_energy_wh", "energy per repetition (Wh)"),
        ("joules_per_output_token", "J per output token"),
        ("output_tokens_per_second", "output throughput (tokens/s)"),
    ):
        block = statistics.get(key)
        if isinstance(block, Mapping) and block.get("mean") is not None:
            lines.append(
                f"<li>{_e(label)}: mean {_e(num(block['mean'], 4))}, std {_e(num(block.get('std'), 3))},"
                f" {_e(_ci(block))}, CV {_e(num(block.get('cv'), 3))}</li>"
            )
    stats_html = (
        f"<ul>{''.join(lines)}</ul>"
        if lines
        else ('<p class="muted">One repetition: no confidence interval (set scenario.repetitions to 2 or more).</p>')
    )
    table = _table(["repetition", "duration", "energy", "J / output token", "tokens/s"], rows)
    return table + stats_html


def _configuration(report: Mapping[str, Any]) -> str:
    import yaml

    from ai_energy_benchmarks.config.redact import redact_data, redact_text

    provenance = report.get("provenance", {}) or {}
    config = provenance.get("config")
    # Redacted again: a report written by an older version may hold a key or a URL's credentials.
    text = yaml.safe_dump(redact_data(config), sort_keys=False) if isinstance(config, Mapping) else "(not recorded)"
    return (
        '<section id="configuration"><h2>Configuration</h2>'
        f"<p>source: {_e(redact_text(str(provenance.get('config_source'))))}"
        f"<br>sha256: <code>{_e(provenance.get('config_sha256'))}</code>"
        f"<br>prompts sha256: <code>{_e(dig(report, 'dataset.prompts_sha256'))}</code></p>"
        f"<pre>{_e(text)}</pre>"
        "<h3>Model</h3>"
        + _table(["key", "value"], [(_e(k), _e(v)) for k, v in _flatten(report.get("model") or {})])
        + "<h3>Dataset</h3>"
        + _table(["key", "value"], [(_e(k), _e(v)) for k, v in _flatten(report.get("dataset") or {})])
        + "<h3>Meters</h3>"
        + _table(["key", "value"], [(_e(k), _e(v)) for k, v in _flatten(report.get("meters") or {})])
        + "</section>"
    )


def _environment(report: Mapping[str, Any]) -> str:
    rows = [(_e(k), _e(v)) for k, v in _flatten(report.get("environment") or {})]
    return f'<section id="environment"><h2>Environment</h2>{_table(["key", "value"], rows)}</section>'


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1240px;
       padding: 1.5rem; color: #1d1d1d; background: #ffffff; line-height: 1.4; }
h1 { margin: 0 0 .4rem 0; font-size: 1.7rem; }
h2 { border-bottom: 2px solid #e3e3e3; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #d6d6d6; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.key td:nth-child(2) { font-weight: 600; white-space: nowrap; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption, .muted { color: #5c5c5c; font-size: .88rem; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .8rem; overflow-x: auto; font-size: .85rem; }
.badge { display: inline-block; border-radius: .3rem; padding: 0 .4rem; font-size: .8rem; border: 1px solid; }
.badge.measured { color: #14532d; background: #dcfce7; border-color: #86efac; }
.badge.estimated { color: #7c2d12; background: #ffedd5; border-color: #fdba74; }
.badge.absent { color: #3f3f46; background: #f4f4f5; border-color: #d4d4d8; }
.status { font-weight: 700; text-transform: uppercase; padding: .1rem .5rem; border-radius: .3rem; }
.status.completed { background: #dcfce7; color: #14532d; }
.status.failed, .status.interrupted { background: #fee2e2; color: #7f1d1d; }
ul.warnings li { color: #7c2d12; }
footer { margin-top: 2.5rem; color: #6b6b6b; font-size: .85rem; }
"""


def render_html(run: Run, figures: Mapping[str, Path], skipped: Mapping[str, str]) -> str:
    """The page as one HTML string, with every figure embedded as a base64 ``data:`` URI."""
    report = run.report
    samples = latency_samples(run.requests())
    name = dig(report, "config.name", run.label)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sections = [
        _header(report, run),
        _warnings(report),
        _key_figures(report, samples),
        _energy_section(report, figures),
        _figure_section("power", "power_timeline", figures, skipped),
        _figure_section("latency", "latency_cdf", figures, skipped, _latency_table(report)),
        _figure_section("repetitions", "repetitions", figures, skipped, _repetition_table(report)),
        _configuration(report),
        _environment(report),
        f"<footer>Generated by ai-energy-benchmark {_e(__version__)} on {_e(generated)} from"
        f" {_e(run.report_path)}.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="ai-energy-benchmark {_e(__version__)}">'
        f"<title>Benchmark report: {_e(name)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(section for section in sections if section)
        + "\n</body></html>\n"
    )


def write_report(run_dir: str | Path, output_dir: str | Path | None = None) -> ReportFiles:
    """Write the figures (PNG) and ``report.html`` for the run in ``run_dir``.

    ``output_dir`` defaults to ``<run_dir>/report``. Raises :class:`~ai_energy_benchmarks.reporting.ReportError`
    (exit code 2) when the run cannot be read, and
    :class:`~ai_energy_benchmarks.reporting.MissingExtraError` when matplotlib is not installed.
    """
    require_matplotlib()
    run = load_run(run_dir)
    out = Path(output_dir) if output_dir is not None else run.directory / DEFAULT_REPORT_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{out}: cannot create the report directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise ReportError(f"{out}: the report directory cannot be written (check permissions)")
    figures, skipped = draw_figures(run, out)
    page = out / HTML_FILE
    write_text_atomic(page, render_html(run, figures, skipped))
    logger.info("report page: %s", page)
    return ReportFiles(html=page, figures=figures, skipped=skipped)


__all__ = ["DEFAULT_REPORT_DIR", "FIGURES", "HTML_FILE", "ReportFiles", "draw_figures", "render_html", "write_report"]
