"""A sweep's summary: one row per point (typed report fields), the Markdown table, the manifest, the CSV and the plot.

Reads each point's :class:`~ai_energy_benchmarks.results.model.BenchmarkResult`; knows nothing of how points ran.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ai_energy_benchmarks.reporting.runs import prompts_per_second, source_kind
from ai_energy_benchmarks.results.model import BenchmarkResult
from ai_energy_benchmarks.results.writers import write_text_atomic
from ai_energy_benchmarks.sweeps.grid import SweepParam, public_value
from ai_energy_benchmarks.sweeps.outcome import PointOutcome, SweepOutcome

logger = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
MANIFEST = "sweep.json"
PLOT = "energy_vs_latency.png"


class SweepSpec(Protocol):
    """What the summary needs to know of the sweep (``sweeps.execution.Sweep`` is one)."""

    params: list[SweepParam]
    config_path: str | None
    config_name: str | None
    overrides: list[str]
    slo_p99_s: float | None
    slo_ttft_p99_s: float | None
    directory: Path

    @property
    def public_overrides(self) -> list[str]: ...


def meets_slo(spec: SweepSpec, report: BenchmarkResult | None) -> bool | None:
    """Whether a report meets every latency objective given (None when none is given)."""
    if spec.slo_p99_s is None and spec.slo_ttft_p99_s is None:
        return None
    if report is None:
        return False
    latency = report.latency
    checks = []
    if spec.slo_p99_s is not None:
        p99 = latency.latency_s.p99 if latency else None
        checks.append(p99 is not None and p99 <= spec.slo_p99_s)
    if spec.slo_ttft_p99_s is not None:
        ttft = latency.ttft_s.p99 if latency else None
        checks.append(ttft is not None and ttft <= spec.slo_ttft_p99_s)
    return all(checks)


_FIGURES = (
    "repetitions",
    "successful_prompts",
    "total_energy_wh",
    "wh_per_1000_queries",
    "joules_per_output_token",
    "joules_per_output_token_ci95_low",
    "joules_per_output_token_ci95_high",
    "output_tokens_per_second",
    "prompts_per_second",
    "latency_p50_s",
    "latency_p99_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "energy_sources",
)


def _figures(report: BenchmarkResult | None) -> dict[str, Any]:
    """A completed point's figures for its summary row (all None without a report)."""
    if report is None:
        return dict.fromkeys(_FIGURES)
    energy, latency = report.energy, report.latency
    jpt_ci = report.repetition_statistics.joules_per_output_token if report.repetition_statistics else None
    return {
        "repetitions": len(report.repetitions) or None,
        "successful_prompts": report.summary.successful_prompts,
        "total_energy_wh": energy.total_energy_wh,
        "wh_per_1000_queries": energy.total_wh_per_1000_queries,
        "joules_per_output_token": energy.joules_per_output_token,
        "joules_per_output_token_ci95_low": jpt_ci.ci95_low if jpt_ci else None,
        "joules_per_output_token_ci95_high": jpt_ci.ci95_high if jpt_ci else None,
        "output_tokens_per_second": report.summary.throughput_output_tokens_per_second,
        "prompts_per_second": prompts_per_second(report),
        "latency_p50_s": latency.latency_s.p50 if latency else None,
        "latency_p99_s": latency.latency_s.p99 if latency else None,
        "ttft_p50_s": latency.ttft_s.p50 if latency else None,
        "ttft_p99_s": latency.ttft_s.p99 if latency else None,
        "energy_sources": ", ".join(
            f"{device}={source_kind(energy.sources.get(device))}" for device in ("gpu", "cpu", "ram")
        ),
    }


def summary_rows(spec: SweepSpec, outcomes: Sequence[PointOutcome]) -> list[dict[str, Any]]:
    """One row per point: its settings, status, energy and latency figures, Pareto membership and SLO verdict."""
    from ai_energy_benchmarks.reporting.sweep_plot import pareto_front

    rows = []
    for outcome in outcomes:
        report = outcome.report if outcome.status == "completed" else None
        row: dict[str, Any] = {"point": outcome.point.index, "name": outcome.point.name}
        row.update(dict(outcome.point.public_settings))
        row["status"] = outcome.status
        row.update(_figures(report))
        row.update(
            {
                "pareto_p50": None,
                "pareto_p99": None,
                "meets_slo": meets_slo(spec, report),
                "run_dir": str(outcome.run_dir),
            }
        )
        rows.append(row)
    plotted = [
        row
        for row in rows
        if all(isinstance(row[k], (int, float)) for k in ("joules_per_output_token", "latency_p50_s", "latency_p99_s"))
    ]
    for column, latency in (("pareto_p50", "latency_p50_s"), ("pareto_p99", "latency_p99_s")):
        front = set(pareto_front([(row[latency], row["joules_per_output_token"]) for row in plotted]))
        for index, row in enumerate(plotted):
            row[column] = index in front
    return rows


def best(rows: Sequence[Mapping[str, Any]], outcomes: Sequence[PointOutcome]) -> PointOutcome | None:
    """The point with the lowest J per output token among those meeting the SLOs (all completed, if no SLO)."""
    candidates = [
        (row["joules_per_output_token"], outcome)
        for row, outcome in zip(rows, outcomes, strict=True)
        if isinstance(row["joules_per_output_token"], (int, float)) and row["meets_slo"] is not False
    ]
    return min(candidates, key=lambda pair: pair[0])[1] if candidates else None


def write_outputs(spec: SweepSpec, outcomes: list[PointOutcome], plot: bool) -> SweepOutcome:
    """Write the summary CSV and Markdown, the manifest and (``plot``) the figure; return the sweep's outcome."""
    rows = summary_rows(spec, outcomes)
    chosen = best(rows, outcomes)
    files = {
        "summary_csv": write_text_atomic(spec.directory / SUMMARY_CSV, _csv_text(rows)),
        "summary_md": write_text_atomic(spec.directory / SUMMARY_MD, markdown(spec, rows, chosen)),
        "manifest": write_text_atomic(spec.directory / MANIFEST, manifest(spec, outcomes)),
    }
    if plot:
        from ai_energy_benchmarks.reporting.sweep_plot import SweepPlotPoint, sweep_energy_vs_latency

        points = [
            SweepPlotPoint(
                label=outcome.point.label,
                joules_per_token=float(row["joules_per_output_token"]),
                latency_p50_s=float(row["latency_p50_s"]),
                latency_p99_s=float(row["latency_p99_s"]),
                meets_slo=row["meets_slo"],
            )
            for row, outcome in zip(rows, outcomes, strict=True)
            if row["pareto_p50"] is not None
        ]
        title = "Sweep over " + ", ".join(param.key for param in spec.params)
        files["plot"] = sweep_energy_vs_latency(points, spec.directory / PLOT, spec.slo_p99_s, title)
    logger.info("sweep summary: %s", files["summary_md"])
    return SweepOutcome(directory=spec.directory, points=outcomes, files=files, best=chosen)


class BaseConfigOf(Protocol):
    """Where a sweep's base config comes from (a grid sweep and an adaptive sweep alike)."""

    config_path: str | None
    config_name: str | None

    @property
    def public_overrides(self) -> list[str]: ...


def markdown_head(title: str, sweep: BaseConfigOf, headers: list[str]) -> list[str]:
    """A summary.md's first lines: the title, the base config and its common overrides, the table's header rows."""
    overrides = sweep.public_overrides
    return [
        f"# {title}",
        "",
        f"Base config: {sweep.config_path or f'preset {sweep.config_name}'}"
        + (f"; common overrides: `{' '.join(overrides)}`" if overrides else ""),
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]


def slo_text(spec: SweepSpec) -> str:
    """The latency objectives in words ("" when none is given)."""
    parts = []
    if spec.slo_p99_s is not None:
        parts.append(f"p99 end-to-end latency ≤ {spec.slo_p99_s:g} s")
    if spec.slo_ttft_p99_s is not None:
        parts.append(f"p99 time to first token ≤ {spec.slo_ttft_p99_s:g} s")
    return " and ".join(parts)


def markdown(spec: SweepSpec, rows: Sequence[Mapping[str, Any]], chosen: PointOutcome | None) -> str:
    """``summary.md``: one table row per point, what the columns mean, and the lowest-energy point (within SLO)."""
    keys = [param.key for param in spec.params]
    headers = [
        *(key.rsplit(".", 1)[-1] for key in keys),
        "status",
        "J / output token",
        "Wh / 1000 queries",
        "tokens/s",
        "p50 latency (s)",
        "p99 latency (s)",
        "p99 TTFT (s)",
        "Pareto (p50 / p99)",
    ]
    slo = slo_text(spec)
    if slo:
        headers.append("meets SLO")
    lines = markdown_head(f"Sweep over {', '.join(keys)}", spec, headers)
    for row in rows:
        jpt = _fmt(row["joules_per_output_token"])
        if row["joules_per_output_token_ci95_low"] is not None:
            jpt += (
                f" [{_fmt(row['joules_per_output_token_ci95_low'])}, {_fmt(row['joules_per_output_token_ci95_high'])}]"
            )
        cells = [
            *(str(row[key]) for key in keys),
            str(row["status"]),
            jpt,
            _fmt(row["wh_per_1000_queries"]),
            _fmt(row["output_tokens_per_second"]),
            _fmt(row["latency_p50_s"]),
            _fmt(row["latency_p99_s"]),
            _fmt(row["ttft_p99_s"]),
            f"{_mark(row['pareto_p50'])} / {_mark(row['pareto_p99'])}",
        ]
        if slo:
            cells.append(_mark(row["meets_slo"]))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append("")
    lines.append(
        "J / output token: total energy of the measured windows per generated token, with its 95% confidence "
        "interval over repetitions when there are two or more. Pareto: no other point has both lower energy per "
        "token and lower latency (at p50 / at p99)."
    )
    if slo:
        verdict = (
            f"Lowest energy per token meeting {slo}: **{chosen.point.label}**."
            if chosen
            else f"No completed point meets {slo}."
        )
        lines += ["", f"Latency SLO: {slo}. {verdict}"]
    elif chosen:
        lines += ["", f"Lowest energy per token: **{chosen.point.label}**."]
    return "\n".join(lines) + "\n"


def manifest(spec: SweepSpec, outcomes: Sequence[PointOutcome]) -> str:
    """``sweep.json``: the grid (secrets redacted), the SLOs and each point's status."""
    data = {
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": spec.config_path,
        "config_name": spec.config_name,
        "overrides": spec.public_overrides,
        "params": [
            {"key": param.key, "values": [public_value(param.key, value) for value in param.values]}
            for param in spec.params
        ],
        "slo": {"p99_latency_s": spec.slo_p99_s, "p99_ttft_s": spec.slo_ttft_p99_s},
        "points": [
            {
                "index": outcome.point.index,
                "name": outcome.point.name,
                "settings": dict(outcome.point.public_settings),
                "run_dir": str(outcome.run_dir),
                "status": outcome.status,
                "ran_now": outcome.ran_now,
                "message": outcome.message,
            }
            for outcome in outcomes
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _mark(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["point", "name", "status"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


__all__ = ["MANIFEST", "PLOT", "SUMMARY_CSV", "SUMMARY_MD", "best", "markdown", "meets_slo", "summary_rows"]
