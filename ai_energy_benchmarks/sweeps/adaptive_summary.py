"""The adaptive sweep's summary (:mod:`.adaptive`): one row per point with its load profile, offered and achieved
rates, J/token, goodput, latency and TTFT percentiles, Pareto membership and SLO verdict; written as ``summary.csv``,
``summary.json``, ``summary.md``, the manifest ``sweep.json`` (with the rates and why the sweep stopped) and the
figure (energy vs latency with the Pareto front and the SLO line, and energy vs request rate)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ai_energy_benchmarks.results.writers import write_text_atomic
from ai_energy_benchmarks.sweeps import summary
from ai_energy_benchmarks.sweeps.outcome import PointOutcome
from ai_energy_benchmarks.sweeps.saturation import SATURATION_CRITERIA, PointLoad, StopReason

if TYPE_CHECKING:
    from ai_energy_benchmarks.sweeps.adaptive import AdaptiveOutcome, AdaptiveSweep

logger = logging.getLogger(__name__)

SUMMARY_JSON = "summary.json"
_LOAD_COLUMNS = (
    "request_throughput_per_s",
    "achieved_rate_per_s",
    "kept_up_rate_per_s",
    "goodput_per_s",
    "goodput_from",
    "waiting_growth",
)


def rows(
    sweep: AdaptiveSweep, outcomes: Sequence[PointOutcome], loads: Mapping[str, PointLoad], stop: StopReason | None
) -> list[dict[str, Any]]:
    """The grid summary's rows (figures, Pareto, SLO) with the load in place of the raw settings."""
    result = []
    for row, outcome in zip(summary.summary_rows(sweep, outcomes), outcomes, strict=True):
        settings = dict(outcome.point.settings)
        load = loads.get(outcome.point.name)
        rate = settings.get("backend.request_rate", "null")
        figures = {k: v for k, v in row.items() if k not in settings and k not in ("point", "name")}
        tail = {key: figures.pop(key) for key in ("pareto_p50", "pareto_p99", "meets_slo", "run_dir")}
        result.append(
            {
                "point": row["point"],
                "name": row["name"],
                "profile": settings.get("backend.load_profile"),
                "concurrency": int(settings.get("backend.concurrency", 1)),
                "offered_rate_per_s": None if rate == "null" else float(rate),
                **figures,
                **{key: getattr(load, key) if load else None for key in _LOAD_COLUMNS},
                "over_saturated": stop is not None
                and stop.point == outcome.point.name
                and stop.criterion in SATURATION_CRITERIA,
                **tail,
            }
        )
    return result


def _label(row: Mapping[str, Any]) -> str:
    rate = row["offered_rate_per_s"]
    return f"{rate:g}/s" if rate is not None else ("sync" if row["profile"] == "synchronous" else "max")


def markdown(
    sweep: AdaptiveSweep, table: Sequence[Mapping[str, Any]], stop: StopReason | None, rates: Sequence[float]
) -> str:
    """``summary.md``: the points in load order, then the rates chosen and why the sweep stopped."""
    slo = summary.slo_text(sweep)
    headers = [
        "point",
        "profile",
        "offered req/s",
        "achieved req/s",
        "status",
        "J / output token",
        "goodput req/s",
        "p50 / p99 latency (s)",
        "p50 / p99 TTFT (s)",
        "Pareto (p50 / p99)",
    ]
    if slo:
        headers.append("meets SLO")
    fmt, mark = summary._fmt, summary._mark
    title = f"Adaptive load sweep ({sweep.rate_profile} rates, concurrency limit {sweep.concurrency})"
    lines = summary.markdown_head(title, sweep, headers)
    for row in table:
        cells = [
            row["name"] + (" (over-saturated)" if row["over_saturated"] else ""),
            str(row["profile"]),
            fmt(row["offered_rate_per_s"]),
            fmt(row["achieved_rate_per_s"]),
            str(row["status"]),
            fmt(row["joules_per_output_token"]),
            fmt(row["goodput_per_s"]),
            f"{fmt(row['latency_p50_s'])} / {fmt(row['latency_p99_s'])}",
            f"{fmt(row['ttft_p50_s'])} / {fmt(row['ttft_p99_s'])}",
            f"{mark(row['pareto_p50'])} / {mark(row['pareto_p99'])}",
        ]
        if slo:
            cells.append(mark(row["meets_slo"]))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += [
        "",
        f"Rates: {', '.join(f'{r:g}' for r in rates) or 'none'} req/s, spread between the synchronous and throughput "
        "points' request throughputs. Achieved: requests per second of the run (last end - first start). "
        "Goodput: requests per second within the objectives. Pareto: no other point has both lower energy "
        "per token and lower latency (p50 / p99).",
    ]
    if stop is not None:
        lines += [
            "",
            f"Stopped{' early' if stop.early else ''}: {stop.reason}"
            + (f" ({stop.point})" if stop.point else "")
            + ".",
        ]
    if slo:
        lines += ["", f"Latency SLO: {slo}."]
    return "\n".join(lines) + "\n"


def write(
    sweep: AdaptiveSweep,
    outcomes: list[PointOutcome],
    rates: Sequence[float],
    stop: StopReason | None,
    plot: bool,
    loads: Mapping[str, PointLoad] | None = None,
) -> AdaptiveOutcome:
    """Write the summary files of ``outcomes`` (and the figure when ``plot``); return the sweep's outcome."""
    from ai_energy_benchmarks.sweeps.adaptive import AdaptiveOutcome

    if loads is None:
        loads = {o.point.name: load for o in outcomes if (load := sweep.load_of(o)) is not None}
    table = rows(sweep, outcomes, loads, stop)
    stop_data = dataclasses.asdict(stop) if stop is not None else None
    adaptive = {
        "rate_profile": sweep.rate_profile,
        "concurrency": sweep.concurrency,
        "rates_per_s": list(rates),
        "stop": stop_data,
    }
    manifest = json.loads(summary.manifest(sweep, outcomes)) | {"adaptive": adaptive}
    sweep.directory.mkdir(parents=True, exist_ok=True)
    document = {"adaptive": adaptive, "slo": manifest["slo"], "points": table}
    files = {
        "summary_csv": write_text_atomic(sweep.directory / summary.SUMMARY_CSV, summary._csv_text(table)),
        "summary_json": write_text_atomic(sweep.directory / SUMMARY_JSON, json.dumps(document, indent=2) + "\n"),
        "summary_md": write_text_atomic(sweep.directory / summary.SUMMARY_MD, markdown(sweep, table, stop, rates)),
        "manifest": write_text_atomic(sweep.directory / summary.MANIFEST, json.dumps(manifest, indent=2) + "\n"),
    }
    if plot:
        from ai_energy_benchmarks.reporting.sweep_plot import SweepPlotPoint, sweep_energy_vs_latency

        points = [
            SweepPlotPoint(
                label=_label(row),
                joules_per_token=float(row["joules_per_output_token"]),
                latency_p50_s=float(row["latency_p50_s"]),
                latency_p99_s=float(row["latency_p99_s"]),
                meets_slo=row["meets_slo"],
                rate_per_s=row["achieved_rate_per_s"] or row["request_throughput_per_s"],
                over_saturated=row["over_saturated"],
            )
            for row in table
            if row["pareto_p50"] is not None
        ]
        title = f"Adaptive load sweep ({sweep.rate_profile} rates)"
        files["plot"] = sweep_energy_vs_latency(points, sweep.directory / summary.PLOT, sweep.slo_p99_s, title)
    logger.info("adaptive sweep summary: %s", files["summary_md"])
    chosen = summary.best(table, outcomes)
    return AdaptiveOutcome(
        directory=sweep.directory,
        points=outcomes,
        files=files,
        best=chosen,
        rates_per_s=list(rates),
        stop=stop,
        loads=dict(loads),
    )


__all__ = ["SUMMARY_JSON", "markdown", "rows", "write"]
