"""``compare``'s outputs: a plain-text table (the console), Markdown, and long-form CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ai_energy_benchmarks.reporting.metrics import SIGNIFICANCE_LEVEL, TEST_NAME

if TYPE_CHECKING:
    from ai_energy_benchmarks.reporting.compare import Cell, Comparison


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


__all__ = ["CSV_COLUMNS", "format_csv", "format_markdown", "format_text"]
