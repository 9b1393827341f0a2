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

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.reporting import ReportError
from ai_energy_benchmarks.reporting.compare_format import CSV_COLUMNS, format_csv, format_markdown, format_text
from ai_energy_benchmarks.reporting.metrics import (
    METRICS,
    SIGNIFICANCE_LEVEL,
    TEST_NAME,
    Interval,
    Metric,
)
from ai_energy_benchmarks.reporting.runs import DEVICES, Run, load_run, source_kind, unique_labels
from ai_energy_benchmarks.results.model import BenchmarkResult
from ai_energy_benchmarks.results.stats import WelchResult, welch_t_test

logger = logging.getLogger(__name__)


class WorkloadMismatchError(ReportError):
    """The runs measured different workloads (prompts or output lengths); exit code 2."""


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


def _workload(report: BenchmarkResult) -> dict[str, Any]:
    kwargs = report.config.generate_kwargs
    return {
        "prompts_sha256": report.dataset.prompts_sha256,
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
    kinds = {run.label: {d: source_kind(run.report.energy.sources.get(d)) for d in DEVICES} for run in runs}
    for device in DEVICES:
        seen = {labels[device] for labels in kinds.values()}
        if len(seen) > 1:
            detail = ", ".join(f"{label} {k[device]}" for label, k in kinds.items())
            notes.append(f"{device.upper()} energy is not read the same way in every run ({detail})")
    if any(any(k == "estimated" for k in run_kinds.values()) for run_kinds in kinds.values()):
        notes.append("estimated energy (CodeCarbon's models) compares machines only roughly; prefer measured figures")
    hosts = {
        run.label: (
            run.report.environment.get("cpu_model"),
            tuple(str(g.get("name")) for g in run.report.environment.get("gpus") or [] if isinstance(g, Mapping)),
        )
        for run in runs
    }
    if len(set(hosts.values())) > 1:
        notes.append(
            "the runs ran on different hardware: " + "; ".join(f"{k}: {v[0]} {list(v[1])}" for k, v in hosts.items())
        )
    scorers = {run.label: run.report.quality.scorer if run.report.quality else None for run in runs}
    if len(set(scorers.values())) > 1:
        shown = ", ".join(f"{label} {scorer or 'unscored'}" for label, scorer in scorers.items())
        notes.append(f"the answers were not scored the same way: {shown}")
    for run in runs:
        quality = run.report.quality
        if quality is not None and quality.null_reason:
            notes.append(f"{run.label}: no energy per correct answer ({quality.null_reason})")
    if any(run.report.synthetic_model for run in runs):
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
