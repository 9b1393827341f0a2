"""Compare runs: their key figures side by side, ratios to the first run, and which differences are real.

    comparison = compare_runs(["runs/bs1", "runs/bs4"])
    print(format_text(comparison))

A difference is *significant* when both runs carry the statistics of the figure's samples (mean, standard
deviation, count: from ``scenario.repetitions`` >= 2 for energy and throughput, from the per-request latencies for
mean latency and TTFT) and Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom, two-sided) of
the run against the first run gives p < :data:`SIGNIFICANCE_LEVEL`. The p-value is printed beside the ratio.

Runs are comparable only when they measured the same workload: the same prompts (``dataset.prompts_sha256``) and
the same output lengths (``generate_kwargs.max_new_tokens`` / ``min_new_tokens``). Otherwise
:func:`compare_runs` raises :class:`WorkloadMismatchError` unless ``force`` is set.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.reporting import ReportError
from ai_energy_benchmarks.reporting.runs import (
    DEVICES,
    Run,
    dig,
    load_run,
    prompts_per_second,
    source_kind,
    unique_labels,
)
from ai_energy_benchmarks.results.stats import WelchResult, welch_t_test

logger = logging.getLogger(__name__)

Interval = tuple[float, float]
#: A figure's samples as a report summarises them: mean, sample standard deviation, count.
Sample = tuple[float, float, int]

#: Two-sided p-value below which a difference is marked significant.
SIGNIFICANCE_LEVEL = 0.05
#: The test, as the outputs name it.
TEST_NAME = "Welch's t-test (unequal variances, Welch-Satterthwaite df), two-sided"


class WorkloadMismatchError(ReportError):
    """The runs measured different workloads (prompts or output lengths); exit code 2."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _repetitions(report: Mapping[str, Any]) -> int:
    rows = report.get("repetitions")
    if isinstance(rows, list) and rows:
        return len(rows)
    configured = _number(dig(report, "config.repetitions"))
    return int(configured) if configured else 1


def _per_pass(key: str, device: str | None = None) -> Callable[[Mapping[str, Any]], float | None]:
    """``energy.<key>`` divided by the number of repetitions (one pass over the prompts).

    With ``device``, None when that device's energy was not read at all (a 0 by absence is no figure).
    """

    def value(report: Mapping[str, Any]) -> float | None:
        if device is not None and source_kind(dig(report, f"energy.sources.{device}")) == "absent":
            return None
        total = _number(dig(report, f"energy.{key}"))
        return None if total is None else total / _repetitions(report)

    return value


def _stat_interval(
    path: str, scale: Callable[[Mapping[str, Any]], float | None] | None = None
) -> Callable[[Mapping[str, Any]], Interval | None]:
    """The 95% interval ``(ci95_low, ci95_high)`` of the statistics block at ``path``, optionally scaled."""

    def interval(report: Mapping[str, Any]) -> Interval | None:
        low, high = _number(dig(report, f"{path}.ci95_low")), _number(dig(report, f"{path}.ci95_high"))
        if low is None or high is None:
            return None
        factor = 1.0 if scale is None else scale(report)
        if factor is None:
            return None
        return (low * factor, high * factor)

    return interval


def _stat_sample(
    path: str, scale: Callable[[Mapping[str, Any]], float | None] | None = None
) -> Callable[[Mapping[str, Any]], Sample | None]:
    """``(mean, std, count)`` of the statistics block at ``path`` (mean and std optionally scaled)."""

    def sample(report: Mapping[str, Any]) -> Sample | None:
        centre, spread = _number(dig(report, f"{path}.mean")), _number(dig(report, f"{path}.std"))
        count = _number(dig(report, f"{path}.count"))
        if centre is None or spread is None or count is None or count < 2:
            return None
        factor = 1.0 if scale is None else scale(report)
        if factor is None:
            return None
        return (centre * factor, abs(spread * factor), int(count))

    return sample


def _per_1000_queries_factor(report: Mapping[str, Any]) -> float | None:
    """Converts energy per repetition (Wh) into Wh per 1,000 successful queries."""
    successful = _number(dig(report, "summary.successful_prompts"))
    if not successful:
        return None
    return 1000.0 / (successful / _repetitions(report))


def _field(path: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda report: _number(dig(report, path))


@dataclass(frozen=True)
class Metric:
    """A key figure: how to read it (with its 95% interval and its samples' statistics) from a report, its unit,
    and which way is better."""

    key: str
    label: str
    unit: str
    better: str
    value: Callable[[Mapping[str, Any]], float | None]
    interval: Callable[[Mapping[str, Any]], Interval | None] = field(default=lambda report: None)
    sample: Callable[[Mapping[str, Any]], Sample | None] = field(default=lambda report: None)


#: The figures compared, in table order. Energy per pass and per token carry repetition CIs.
METRICS: tuple[Metric, ...] = (
    Metric(
        "energy_per_pass_wh",
        "energy per pass over the prompts",
        "Wh",
        "lower",
        _per_pass("total_energy_wh"),
        _stat_interval("repetition_statistics.total_energy_wh"),
        _stat_sample("repetition_statistics.total_energy_wh"),
    ),
    Metric(
        "wh_per_1000_queries",
        "energy per 1,000 queries",
        "Wh",
        "lower",
        _field("energy.total_wh_per_1000_queries"),
        _stat_interval("repetition_statistics.total_energy_wh", _per_1000_queries_factor),
        _stat_sample("repetition_statistics.total_energy_wh", _per_1000_queries_factor),
    ),
    Metric(
        "joules_per_output_token",
        "energy per output token",
        "J",
        "lower",
        _field("energy.joules_per_output_token"),
        _stat_interval("repetition_statistics.joules_per_output_token"),
        _stat_sample("repetition_statistics.joules_per_output_token"),
    ),
    Metric(
        "gpu_energy_per_pass_wh",
        "GPU energy per pass",
        "Wh",
        "lower",
        _per_pass("gpu_energy_wh", "gpu"),
        _stat_interval("repetition_statistics.gpu_energy_wh"),
        _stat_sample("repetition_statistics.gpu_energy_wh"),
    ),
    Metric("total_energy_wh", "total energy (all repetitions)", "Wh", "lower", _field("energy.total_energy_wh")),
    Metric("emissions_g_per_pass", "emissions per pass", "g CO2eq", "lower", _per_pass("emissions_g_co2eq")),
    Metric(
        "output_tokens_per_second",
        "output throughput",
        "tokens/s",
        "higher",
        _field("summary.throughput_output_tokens_per_second"),
        _stat_interval("repetition_statistics.output_tokens_per_second"),
        _stat_sample("repetition_statistics.output_tokens_per_second"),
    ),
    Metric("prompts_per_second", "prompts per second", "1/s", "higher", prompts_per_second),
    Metric(
        "latency_mean_s",
        "end-to-end latency, mean",
        "s",
        "lower",
        _field("latency.latency_s.mean"),
        _stat_interval("latency.latency_s"),
        _stat_sample("latency.latency_s"),
    ),
    Metric("latency_p50_s", "end-to-end latency, p50", "s", "lower", _field("latency.latency_s.p50")),
    Metric("latency_p99_s", "end-to-end latency, p99", "s", "lower", _field("latency.latency_s.p99")),
    Metric(
        "ttft_mean_s",
        "time to first token, mean",
        "s",
        "lower",
        _field("latency.ttft_s.mean"),
        _stat_interval("latency.ttft_s"),
        _stat_sample("latency.ttft_s"),
    ),
    Metric("ttft_p50_s", "time to first token, p50", "s", "lower", _field("latency.ttft_s.p50")),
    Metric("ttft_p99_s", "time to first token, p99", "s", "lower", _field("latency.ttft_s.p99")),
)


@dataclass
class Cell:
    """One run's figure: value, 95% interval, ratio to the first run, and Welch's t-test against the first run.

    ``welch`` (and so ``p_value`` and ``significant``) is None when either run lacks the samples' statistics for
    this figure, or they cannot be tested (fewer than two samples, no spread at all), and always for the first run.
    """

    value: float | None
    interval: Interval | None
    ratio: float | None
    welch: WelchResult | None = None

    @property
    def p_value(self) -> float | None:
        """Two-sided p-value of Welch's t-test against the first run."""
        return None if self.welch is None else self.welch.p_value

    @property
    def significant(self) -> bool | None:
        """True when p < :data:`SIGNIFICANCE_LEVEL`; None when untested."""
        return None if self.welch is None else self.welch.p_value < SIGNIFICANCE_LEVEL


@dataclass
class Row:
    """One figure across all runs."""

    metric: Metric
    cells: list[Cell]


@dataclass
class Comparison:
    """The runs compared, one row per figure, and notes a reader should know (differing energy sources, ...)."""

    runs: list[Run]
    rows: list[Row]
    notes: list[str]
    workload_differences: list[str]

    @property
    def labels(self) -> list[str]:
        """The runs' labels, in order (the first is the baseline of every ratio)."""
        return [run.label for run in self.runs]

    @property
    def has_tests(self) -> bool:
        """True when at least one difference could be tested (Welch's t-test)."""
        return any(cell.welch is not None for row in self.rows for cell in row.cells)


def _workload(report: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dig(report, "config.generate_kwargs", {}) or {}
    return {
        "prompts_sha256": dig(report, "dataset.prompts_sha256"),
        "max_new_tokens": kwargs.get("max_new_tokens"),
        "min_new_tokens": kwargs.get("min_new_tokens"),
    }


def workload_differences(runs: Sequence[Run]) -> list[str]:
    """How each run's workload differs from the first run's (prompts hash, max/min_new_tokens); empty if none."""
    base = _workload(runs[0].report)
    differences = []
    for run in runs[1:]:
        workload = _workload(run.report)
        for key, value in workload.items():
            if value != base[key]:
                shown = (lambda v: str(v)[:12] if v is not None else "none") if key == "prompts_sha256" else str
                differences.append(f"{run.label} has {key} {shown(value)} where {runs[0].label} has {shown(base[key])}")
    return differences


def _notes(runs: Sequence[Run]) -> list[str]:
    notes = []
    for run in runs:
        if run.status != "completed":
            notes.append(f"{run.label}: status {run.status}; its figures cover only what was measured")
    kinds = {run.label: {d: source_kind(dig(run.report, f"energy.sources.{d}")) for d in DEVICES} for run in runs}
    for device in DEVICES:
        seen = {labels[device] for labels in kinds.values()}
        if len(seen) > 1:
            detail = ", ".join(f"{label} {k[device]}" for label, k in kinds.items())
            notes.append(f"{device.upper()} energy is not read the same way in every run ({detail})")
    if any(any(k == "estimated" for k in run_kinds.values()) for run_kinds in kinds.values()):
        notes.append("estimated energy (CodeCarbon's models) compares machines only roughly; prefer measured figures")
    hosts = {
        run.label: (
            dig(run.report, "environment.cpu_model"),
            tuple(str(g.get("name")) for g in dig(run.report, "environment.gpus", []) if isinstance(g, Mapping)),
        )
        for run in runs
    }
    if len(set(hosts.values())) > 1:
        notes.append(
            "the runs ran on different hardware: " + "; ".join(f"{k}: {v[0]} {list(v[1])}" for k, v in hosts.items())
        )
    if any(dig(run.report, "model.synthetic") for run in runs):
        notes.append("a synthetic model (random weights) measures the machine and the harness, not a real model")
    return notes


def compare(runs: Sequence[Run], force: bool = False) -> Comparison:
    """Compare loaded runs (the first is the baseline). Raises :class:`WorkloadMismatchError` unless ``force``."""
    if len(runs) < 2:
        raise ReportError("compare needs at least two runs")
    differences = workload_differences(runs)
    if differences and not force:
        raise WorkloadMismatchError(
            "the runs measured different workloads (" + "; ".join(differences) + "); pass --force to compare anyway"
        )
    rows = []
    for metric in METRICS:
        values = [metric.value(run.report) for run in runs]
        if all(v is None for v in values):
            continue
        intervals = [metric.interval(run.report) for run in runs]
        samples = [metric.sample(run.report) for run in runs]
        base, base_sample = values[0], samples[0]
        cells = []
        for index, (value, interval, sample) in enumerate(zip(values, intervals, samples, strict=True)):
            ratio = value / base if index and value is not None and base else None
            welch = None
            if index and sample is not None and base_sample is not None:
                welch = welch_t_test(*base_sample, *sample)
            cells.append(Cell(value=value, interval=interval, ratio=ratio, welch=welch))
        rows.append(Row(metric=metric, cells=cells))
    notes = _notes(runs)
    if differences:
        notes.insert(0, "compared with --force although the workloads differ: " + "; ".join(differences))
    return Comparison(runs=list(runs), rows=rows, notes=notes, workload_differences=differences)


def compare_runs(paths: Sequence[str | Path], force: bool = False) -> Comparison:
    """Load the runs at ``paths`` (run directories or report files) and :func:`compare` them."""
    loaded = [load_run(path) for path in paths]
    for run, label in zip(loaded, unique_labels([run.directory for run in loaded]), strict=True):
        run.label = label
    return compare(loaded, force=force)


# -- rendering --------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    """``value`` rounded to ``digits`` significant digits, written without an exponent between 1e-4 and 1e6."""
    if value is None:
        return "n/a"
    rounded = float(f"{value:.{digits}g}")
    if rounded != 0 and (abs(rounded) >= 1e6 or abs(rounded) < 1e-4):
        return f"{rounded:.{digits - 1}e}"
    return f"{rounded:f}".rstrip("0").rstrip(".") if "." in f"{rounded:f}" else f"{rounded:f}"


def _cell_text(cell: Cell, first: bool) -> str:
    if cell.value is None:
        return "n/a"
    text = _fmt(cell.value)
    if cell.interval is not None:
        text += f" ±{_fmt((cell.interval[1] - cell.interval[0]) / 2, 2)}"
    if not first and cell.ratio is not None:
        text += f" ×{_fmt(cell.ratio, 3)}"
    if not first and cell.p_value is not None:
        text += f" p{_fmt_p(cell.p_value)}"
        if cell.significant:
            text += " *"
    return text


def _fmt_p(p_value: float) -> str:
    """``=`` and a p-value to two significant digits; below 1e-4 ``<0.0001``."""
    return "<0.0001" if p_value < 1e-4 else "=" + _fmt(p_value, 2)


def _legend(comparison: Comparison) -> list[str]:
    lines = [
        f"ratios (×) are to the first run, {comparison.labels[0]}; ± is the half-width of the 95% confidence interval",
    ]
    if comparison.has_tests:
        lines.append(
            f"p: {TEST_NAME}, each run against {comparison.labels[0]}; "
            f"* marks a significant difference (p < {SIGNIFICANCE_LEVEL:g})"
        )
    else:
        lines.append(
            f"no difference could be tested ({TEST_NAME}): no run pair has per-repetition or per-request "
            "statistics (set scenario.repetitions >= 2)"
        )
    return lines


def _matrix(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    headers = ["figure", "unit", *comparison.labels]
    body = [
        [row.metric.label + (" (higher is better)" if row.metric.better == "higher" else ""), row.metric.unit]
        + [_cell_text(cell, index == 0) for index, cell in enumerate(row.cells)]
        for row in comparison.rows
    ]
    return headers, body


def format_text(comparison: Comparison) -> str:
    """A plain-text table for the terminal, with its legend and notes."""
    headers, body = _matrix(comparison)
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    lines = [line(headers), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in body]
    lines.append("")
    lines += _legend(comparison)
    lines += [f"note: {note}" for note in comparison.notes]
    for label, run in zip(comparison.labels, comparison.runs, strict=True):
        lines.append(f"{label}: {run.report_path}")
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(comparison: Comparison) -> str:
    """The same table as Markdown (GitHub-flavoured), with the legend and notes as a list."""
    headers, body = _matrix(comparison)
    lines = [
        "| " + " | ".join(_md_escape(h) for h in headers) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * len(comparison.labels)) + "|",
    ]
    lines += ["| " + " | ".join(_md_escape(cell) for cell in row) + " |" for row in body]
    lines.append("")
    lines += [f"- {_md_escape(text)}" for text in _legend(comparison)]
    lines += [f"- note: {_md_escape(note)}" for note in comparison.notes]
    lines += [
        f"- `{label}`: `{run.report_path}`" for label, run in zip(comparison.labels, comparison.runs, strict=True)
    ]
    return "\n".join(lines) + "\n"


#: Columns of the CSV export: one row per (figure, run).
CSV_COLUMNS = (
    "metric",
    "label",
    "unit",
    "better",
    "run",
    "report",
    "value",
    "ci95_low",
    "ci95_high",
    "ratio_to_first",
    "test",
    "t",
    "dof",
    "p_value",
    "significant",
)


def format_csv(comparison: Comparison) -> str:
    """Long-form CSV (:data:`CSV_COLUMNS`): one row per figure and run; empty cells where there is no value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in comparison.rows:
        for run, cell in zip(comparison.runs, row.cells, strict=True):
            writer.writerow(
                [
                    row.metric.key,
                    row.metric.label,
                    row.metric.unit,
                    row.metric.better,
                    run.label,
                    str(run.report_path),
                    "" if cell.value is None else repr(cell.value),
                    "" if cell.interval is None else repr(cell.interval[0]),
                    "" if cell.interval is None else repr(cell.interval[1]),
                    "" if cell.ratio is None else repr(cell.ratio),
                    "" if cell.welch is None else TEST_NAME,
                    "" if cell.welch is None else repr(cell.welch.t),
                    "" if cell.welch is None else repr(cell.welch.dof),
                    "" if cell.welch is None else repr(cell.welch.p_value),
                    "" if cell.significant is None else str(cell.significant).lower(),
                ]
            )
    return buffer.getvalue()


__all__ = [
    "CSV_COLUMNS",
    "METRICS",
    "SIGNIFICANCE_LEVEL",
    "TEST_NAME",
    "Cell",
    "Comparison",
    "Metric",
    "Row",
    "WorkloadMismatchError",
    "compare",
    "compare_runs",
    "format_csv",
    "format_markdown",
    "format_text",
    "workload_differences",
]
