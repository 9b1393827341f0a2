"""The sweep's figure: energy per output token against p50 and p99 latency, with the Pareto front and the points
meeting the latency objective marked; for a load sweep (points with a request rate) a third panel of energy per
token against the request rate, the point that over-saturated the server marked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ai_energy_benchmarks.reporting.plot_style import FRONT_COLOUR, _blank, _figure, _fmt, _save

#: Edge colour of the point that over-saturated the server (the adaptive load sweep's stop).
SATURATED_COLOUR = "#7b3294"

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass
class SweepPlotPoint:
    """One sweep point as plotted: its label, J per output token and latency percentiles (s)."""

    label: str
    joules_per_token: float
    latency_p50_s: float
    latency_p99_s: float
    meets_slo: bool | None = None
    #: A load sweep's request rate at this point (req/s) and whether it over-saturated the server.
    rate_per_s: float | None = None
    over_saturated: bool = False


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (both minimised), by increasing x.

    A point is dominated when another is at most as large on both coordinates and smaller on at least one.
    """
    front: list[int] = []
    for index, (x, y) in enumerate(points):
        dominated = any(
            (ox <= x and oy <= y) and (ox < x or oy < y) for other, (ox, oy) in enumerate(points) if other != index
        )
        if not dominated and not any(points[f] == (x, y) for f in front):
            front.append(index)
    return sorted(front, key=lambda i: points[i])


def sweep_energy_vs_latency(
    points: Sequence[SweepPlotPoint], path: Path, slo_p99_s: float | None = None, title: str = ""
) -> Path:
    """J per output token against p50 and p99 end-to-end latency, with the Pareto front and the SLO marked."""
    with _figure("sweep_energy_vs_latency") as figure:
        by_rate = [p for p in points if p.rate_per_s is not None]
        panels = figure.subplots(1, 3 if by_rate else 2, sharey=True)
        if by_rate:
            _rate_panel(panels[2], by_rate)
        if not points:
            for axes in panels:
                _blank(axes, "no completed point with energy and latency figures")
            return _save(figure, path)
        for axes, attribute, name in zip(panels[:2], ("latency_p50_s", "latency_p99_s"), ("p50", "p99"), strict=True):
            xy = [(float(getattr(p, attribute)), p.joules_per_token) for p in points]
            front = pareto_front(xy)
            if len(front) > 1:
                axes.step(
                    [xy[i][0] for i in front],
                    [xy[i][1] for i in front],
                    where="post",
                    color=FRONT_COLOUR,
                    linewidth=1.5,
                    label="Pareto front",
                )
            for index, (point, (x, y)) in enumerate(zip(points, xy, strict=True)):
                on_front = index in front
                meets = point.meets_slo
                axes.scatter(
                    [x],
                    [y],
                    s=90 if on_front else 60,
                    marker="o" if meets is not False else "X",
                    facecolor=FRONT_COLOUR if on_front else "white",
                    edgecolor=SATURATED_COLOUR
                    if point.over_saturated
                    else "black"
                    if meets is not False
                    else "#888888",
                    linewidth=1.2,
                    zorder=3,
                )
                axes.annotate(point.label, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
            axes.margins(x=0.15, y=0.15)
            if slo_p99_s is not None and name == "p99":
                axes.axvline(slo_p99_s, color="black", linestyle="dashed")
                low, high = axes.get_xlim()
                high = max(high, slo_p99_s * 1.1)
                axes.axvspan(slo_p99_s, high, color=FRONT_COLOUR, alpha=0.07, linewidth=0)
                axes.set_xlim(low, high)
            axes.set_xlabel(f"{name} end-to-end latency (s)")
            axes.set_title(f"Energy per token vs {name} latency", fontsize=11)
            axes.grid(True, alpha=0.3)
            with_slo = any(point.meets_slo is not None for point in points)
            _sweep_legend(axes, with_slo, len(front) > 1, slo_p99_s if name == "p99" else None)
        panels[0].set_ylabel("energy per output token (J)")
        if title:
            figure.suptitle(title, fontsize=12)
        return _save(figure, path)


def _rate_panel(axes: Axes, points: Sequence[SweepPlotPoint]) -> None:
    """Energy per token against the request rate, in rate order; the over-saturated point edged in red."""
    ordered = sorted(points, key=lambda p: float(p.rate_per_s or 0.0))
    x = [float(p.rate_per_s or 0.0) for p in ordered]
    axes.plot(x, [p.joules_per_token for p in ordered], color="#888888", linewidth=1, zorder=2)
    for point, rate in zip(ordered, x, strict=True):
        axes.scatter(
            [rate],
            [point.joules_per_token],
            s=60,
            facecolor="white",
            edgecolor=SATURATED_COLOUR if point.over_saturated else "black",
            linewidth=1.5 if point.over_saturated else 1.0,
            zorder=3,
        )
        text = point.label + (" (over-saturated)" if point.over_saturated else "")
        axes.annotate(text, (rate, point.joules_per_token), textcoords="offset points", xytext=(6, 6), fontsize=8)
    axes.margins(x=0.15, y=0.15)
    if any(point.over_saturated for point in points):
        from matplotlib.lines import Line2D

        ring = Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor=SATURATED_COLOUR)
        axes.legend(handles=[ring], labels=["over-saturated the server (the sweep stopped)"], loc="best", fontsize=8)
    axes.set_xlabel("achieved request rate (req/s)")
    axes.set_title("Energy per token vs load", fontsize=11)
    axes.grid(True, alpha=0.3)


def _sweep_legend(axes: Axes, with_slo: bool, with_front: bool, slo_line_s: float | None) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", markerfacecolor=FRONT_COLOUR, markeredgecolor="black", markersize=9),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="black", markersize=8),
    ]
    labels = ["on the Pareto front (filled)", "dominated (hollow)"]
    if with_front:
        handles.append(Line2D([], [], color=FRONT_COLOUR, linewidth=1.5))
        labels.append("Pareto front (lower is better on both axes)")
    if with_slo:
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="black"))
        labels.append("circle: meets the latency SLO")
        handles.append(
            Line2D([], [], marker="X", linestyle="", markerfacecolor="white", markeredgecolor="#888888", markersize=8)
        )
        labels.append("cross: misses the latency SLO")
    if slo_line_s is not None:
        handles.append(Line2D([], [], color="black", linestyle="dashed"))
        labels.append(f"SLO: p99 ≤ {_fmt(slo_line_s)} s (shaded: beyond)")
    axes.legend(handles=handles, labels=labels, loc="best", fontsize=8, framealpha=0.9)


__all__ = ["SweepPlotPoint", "pareto_front", "sweep_energy_vs_latency"]
