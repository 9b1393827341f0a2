"""The HTML page's building blocks: escaped text, numbers for people, tables, source badges, 95% intervals, embedded
figures (``reporting/html_sections.py`` writes the sections with them)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.reporting.runs import source_kind
from ai_energy_benchmarks.results.model import Statistics


def esc(value: Any) -> str:
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


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """A table; cells are already HTML."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kind_badge(source: str | None) -> str:
    """A badge saying whether a figure was measured, estimated or not metered (its source as the tooltip)."""
    kind = source_kind(source)
    text = {"measured": "measured", "estimated": "estimate", "absent": "not metered"}[kind]
    return f'<span class="badge {kind}" title="{esc(source)}">{text}</span>'


def ci_text(statistics: Statistics | None, digits: int = 4) -> str:
    """``[low, high]`` of a statistics block's 95% interval, or an empty string."""
    if statistics is None or statistics.ci95_low is None:
        return ""
    return f"95% CI [{num(statistics.ci95_low, digits)}, {num(statistics.ci95_high, digits)}]"


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings as ``(dotted key, text)`` rows; lists of scalars joined, other lists as JSON."""
    rows: list[tuple[str, str]] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            rows.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and all(not isinstance(v, (Mapping, list)) for v in data):
        rows.append((prefix, ", ".join(str(v) for v in data) if data else "none"))
    elif isinstance(data, list):
        rows.append((prefix, json.dumps(data, ensure_ascii=False)))
    else:
        rows.append((prefix, num(data) if isinstance(data, float) else "n/a" if data is None else str(data)))
    return rows


def ci_range(bounds: Sequence[Any] | None, scale: float = 1.0, unit: str = "") -> str:
    """``95% CI low-high unit``; an end with no finite bound reads "unbounded"."""
    if not bounds:
        return ""
    low, high = (None if v is None else v * scale for v in bounds)
    return f"95% CI {num(low, 4)} to {'unbounded' if high is None else num(high, 4)} {unit}".rstrip()


def figure_html(name: str, path: Path, title: str) -> str:
    """The PNG figure at ``path`` embedded in the page (base64), at its size in pixels, with its title."""
    from ai_energy_benchmarks.reporting.plots import FIGURE_SIZES_PX

    width, height = FIGURE_SIZES_PX[name]
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure id="figure-{esc(name)}"><img src="data:image/png;base64,{data}" width="{width}" height="{height}"'
        f' alt="{esc(title)}" data-figure="{esc(name)}">'
        f"<figcaption>{esc(title)} ({esc(path.name)})</figcaption></figure>"
    )


def not_shown(reason: str) -> str:
    """A muted line saying why something is not shown."""
    return f'<p class="muted">Not shown: {esc(reason)}.</p>'


__all__ = ["ci_range", "ci_text", "esc", "figure_html", "flatten", "html_table", "kind_badge", "not_shown", "num"]
