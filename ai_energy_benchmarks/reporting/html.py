"""The report of one run: PNG figures and one self-contained HTML page (images embedded, no external resource).

    files = write_report("benchmark_output/quickstart")          # -> benchmark_output/quickstart/report/
    files.html                                                   # report.html: open it anywhere, offline

The page shows the key figures with their sources, the energy breakdown (by device and by phase; estimates
hatched), the GPU power timeline when the NVML meter recorded one, latency distributions (TTFT, end to end and,
for streaming backends, inter-token) as CDFs, per-repetition energy with its 95% confidence interval, the warnings,
and the configuration and environment the run used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ai_energy_benchmarks._version import __version__
from ai_energy_benchmarks.reporting import ReportError, require_matplotlib
from ai_energy_benchmarks.reporting import html_sections as sections
from ai_energy_benchmarks.reporting.html_format import esc, num
from ai_energy_benchmarks.reporting.html_sections import FIGURES
from ai_energy_benchmarks.reporting.runs import Run, latency_samples, load_run
from ai_energy_benchmarks.results.writers import write_text_atomic

logger = logging.getLogger(__name__)

HTML_FILE = "report.html"
DEFAULT_REPORT_DIR = "report"


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
        interval = (report.meters.get("nvml") or {}).get("poll_interval_s")
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
    if report.repetitions:
        figures["repetitions"] = plots.repetitions(report, output_dir / FIGURES["repetitions"][0])
    else:
        skipped["repetitions"] = "the report has no repetitions"
    for name, path in figures.items():
        logger.info("figure %s: %s", name, path)
    return figures, skipped


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
    name = report.config.name or run.label
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts = [
        sections.header(report, run),
        sections.warnings(report),
        sections.key_figures(report, samples),
        sections.energy_section(report, figures),
        sections.figure_section("power", "power_timeline", figures, skipped),
        sections.figure_section("latency", "latency_cdf", figures, skipped, sections.latency_table(report)),
        sections.figure_section("repetitions", "repetitions", figures, skipped, sections.repetition_table(report)),
        sections.configuration(report),
        sections.environment(report),
        f"<footer>Generated by ai-energy-benchmark {esc(__version__)} on {esc(generated)} from"
        f" {esc(run.report_path)}.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="ai-energy-benchmark {esc(__version__)}">'
        f"<title>Benchmark report: {esc(name)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(part for part in parts if part)
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


__all__ = [
    "DEFAULT_REPORT_DIR",
    "FIGURES",
    "HTML_FILE",
    "ReportFiles",
    "draw_figures",
    "num",
    "render_html",
    "write_report",
]
