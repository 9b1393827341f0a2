"""The figures of a report and of a sweep, drawn with matplotlib (the optional ``[report]`` extra).

Every figure is drawn on a fresh :class:`matplotlib.figure.Figure` (no pyplot, no global figure state, no display
needed) under matplotlib's default style, so a user's matplotlibrc cannot change how it looks or its size, and is
saved as a PNG of exactly :data:`FIGURE_SIZES_PX` pixels. Measured energy is drawn solid, estimated energy hatched,
and every legend says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ai_energy_benchmarks.reporting import require_matplotlib
from ai_energy_benchmarks.reporting.runs import DEVICES, dig, source_kind

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Resolution of every figure (dots per inch); sizes below are in pixels at this resolution.
DPI = 100

#: Width and height in pixels of each figure's PNG.
FIGURE_SIZES_PX: dict[str, tuple[int, int]] = {
    "energy_breakdown": (1100, 450),
    "power_timeline": (1100, 400),
    "latency_cdf": (1200, 400),
    "repetitions": (1200, 400),
    "sweep_energy_vs_latency": (1200, 520),
}

#: One colour per device class (ColorBrewer Dark2), used by every figure and the HTML page.
DEVICE_COLOURS = {"gpu": "#1b9e77", "cpu": "#d95f02", "ram": "#7570b3"}
DEVICE_NAMES = {"gpu": "GPU", "cpu": "CPU", "ram": "RAM"}
ESTIMATE_HATCH = "///"
LATENCY_COLOUR = "#1f5fa8"
FRONT_COLOUR = "#c0392b"


@contextmanager
def _figure(name: str) -> Iterator[Figure]:
    """A blank figure of the registered pixel size, under matplotlib's default style."""
    require_matplotlib()
    import matplotlib.style
    from matplotlib.figure import Figure

    width_px, height_px = FIGURE_SIZES_PX[name]
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
        yield figure


def _save(figure: Figure, path: Path) -> Path:
    """Save ``figure`` as a PNG of its exact pixel size (no tight bounding box) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI, bbox_inches=None, metadata={"Software": None})
    return path


def _fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits ("n/a" for None)."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}g}"


def num_text(value: Any) -> str:
    """An integer count with thousands separators ("?" when absent)."""
    return f"{value:,}" if isinstance(value, int) else "?"


def _blank(axes: Axes, message: str) -> None:
    """An empty panel that says why it is empty."""
    axes.set_axis_off()
    axes.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, color="#555555")


def _kind_legend(
    axes: Axes,
    devices: Sequence[str],
    kinds: Mapping[str, str],
    location: Literal["upper left", "upper right"],
    idle_line: bool = False,
) -> None:
    """Legend: one entry per device (its colour, measured or estimated), the solid/hatched key, the idle marker."""
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Artist] = []
    for device in devices:
        kind = kinds.get(device, "absent")
        handles.append(
            Patch(
                facecolor=DEVICE_COLOURS[device],
                edgecolor="black",
                hatch=ESTIMATE_HATCH if kind == "estimated" else None,
                label=f"{DEVICE_NAMES[device]} ({kind})",
            )
        )
    handles.append(Patch(facecolor="white", edgecolor="black", label="solid = measured"))
    handles.append(Patch(facecolor="white", edgecolor="black", hatch=ESTIMATE_HATCH, label="hatched = estimated"))
    if idle_line:
        handles.append(Line2D([], [], color="black", linestyle="dashed", label="idle power × measured duration"))
    axes.legend(handles=handles, loc=location, fontsize=8, framealpha=0.9)


def _device_kinds(result: Mapping[str, Any]) -> dict[str, str]:
    sources = dig(result, "energy.sources", {}) or {}
    return {device: source_kind(sources.get(device)) for device in DEVICES}


def _energy_devices(result: Mapping[str, Any]) -> list[str]:
    """Device classes with an energy figure that was read (measured or estimated)."""
    kinds = _device_kinds(result)
    return [device for device in DEVICES if kinds[device] != "absent"]


# -- report figures ---------------------------------------------------------------------------------------------------


def energy_breakdown(result: Mapping[str, Any], path: Path) -> Path:
    """Energy (Wh) by device class, and by phase (prefill / decode) stacked by device; estimates hatched."""
    with _figure("energy_breakdown") as figure:
        by_device, by_phase = figure.subplots(1, 2, width_ratios=[1, 1.2])
        kinds = _device_kinds(result)
        devices = _energy_devices(result)
        if not dig(result, "energy.enabled", False) or not devices:
            reason = "energy not measured (metrics.enabled=false)" if not dig(result, "energy.enabled") else ""
            _blank(by_device, reason or "no energy figure was read")
            _blank(by_phase, "no energy by phase")
            return _save(figure, path)

        values = [float(dig(result, f"energy.{d}_energy_wh", 0.0)) if d in devices else 0.0 for d in DEVICES]
        bars = by_device.bar(
            [DEVICE_NAMES[d] for d in DEVICES],
            values,
            color=[DEVICE_COLOURS[d] for d in DEVICES],
            edgecolor="black",
        )
        for bar, device in zip(bars, DEVICES, strict=True):
            if kinds[device] == "estimated":
                bar.set_hatch(ESTIMATE_HATCH)
        by_device.bar_label(
            bars,
            labels=[f"{_fmt(v)} Wh" if d in devices else "not metered" for d, v in zip(DEVICES, values, strict=True)],
            padding=2,
            fontsize=9,
        )
        idle = dig(result, "energy.idle_baseline.idle_energy_wh_over_measured_duration", {}) or {}
        idle_drawn = False
        for index, device in enumerate(DEVICES):
            idle_wh = idle.get(device) if device in devices else None
            if isinstance(idle_wh, (int, float)):
                by_device.hlines(idle_wh, index - 0.4, index + 0.4, colors="black", linestyles="dashed")
                idle_drawn = True
        total = dig(result, "energy.total_energy_wh")
        by_device.set_title(f"Energy by device, measured windows (total {_fmt(total)} Wh)", fontsize=11)
        by_device.set_ylabel("energy (Wh)")
        idle_values = [float(v) for v in idle.values() if isinstance(v, (int, float))]
        top = max([*values, *idle_values])
        by_device.set_ylim(0, top * 1.6 if top > 0 else 1)
        _kind_legend(by_device, devices, kinds, "upper left", idle_line=idle_drawn)

        phases = result.get("phases")
        if not isinstance(phases, Mapping) or not isinstance(phases.get("prefill"), Mapping):
            _blank(by_phase, "no prefill pass was measured (scenario.measure_prefill=false):\nno prefill/decode split")
            return _save(figure, path)
        prefill_tokens = dig(phases, "prefill.prompt_tokens")
        decode_tokens = dig(phases, "decode.output_tokens")
        names = [
            ("prefill", f"prefill\n({num_text(prefill_tokens)} prompt tokens)"),
            ("decode", f"decode\n({num_text(decode_tokens)} output tokens)"),
            ("generate", "generate\n(= prefill + decode)"),
        ]
        present = [(key, label) for key, label in names if isinstance(phases.get(key), Mapping)]
        bottoms = [0.0] * len(present)
        for device in devices:
            heights = [max(float(dig(phases, f"{key}.{device}_energy_wh", 0.0)), 0.0) for key, _ in present]
            bars = by_phase.bar(
                [label for _, label in present],
                heights,
                bottom=bottoms,
                color=DEVICE_COLOURS[device],
                edgecolor="black",
                hatch=ESTIMATE_HATCH if kinds[device] == "estimated" else None,
            )
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        by_phase.bar_label(bars, labels=[f"{_fmt(b)} Wh" for b in bottoms], padding=2, fontsize=9)
        by_phase.set_title("Energy by phase, all repetitions (stacked by device)", fontsize=11)
        by_phase.set_ylabel("energy (Wh)")
        by_phase.set_ylim(0, max(bottoms) * 1.6 if max(bottoms) > 0 else 1)
        _kind_legend(by_phase, devices, kinds, "upper left")
        return _save(figure, path)


def power_timeline(rows: Sequence[Mapping[str, Any]], path: Path, poll_interval_s: float | None = None) -> Path:
    """GPU power (W) over the run's elapsed time (s), one line per GPU, from the NVML meter's ``timeline.csv``."""
    with _figure("power_timeline") as figure:
        axes = figure.subplots()
        gpus = sorted({row["gpu"] for row in rows if row.get("gpu") is not None})
        if not gpus:
            _blank(axes, "no power timeline was recorded")
            return _save(figure, path)
        for gpu in gpus:
            points = [
                (row["elapsed_s"], row["power_w"])
                for row in rows
                if row.get("gpu") == gpu and row.get("elapsed_s") is not None and row.get("power_w") is not None
            ]
            axes.plot([p[0] for p in points], [p[1] for p in points], linewidth=1.2, label=f"GPU {gpu}")
        every = f", polled every {poll_interval_s * 1000:.0f} ms" if poll_interval_s else ""
        axes.set_title(f"GPU power draw (NVML, measured{every})", fontsize=11)
        axes.set_xlabel("time since the meter started (s)")
        axes.set_ylabel("power (W)")
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right", fontsize=8)
        return _save(figure, path)


def _cdf(axes: Axes, values: Sequence[float], title: str, unit_label: str, of: str = "requests") -> None:
    """Empirical CDF of ``values`` (s) with its p50 and p99 marked."""
    ordered = sorted(values)
    count = len(ordered)
    if not count:
        _blank(axes, f"{title}:\nnot recorded")
        return
    fractions = [(i + 1) / count for i in range(count)]
    axes.step(ordered, fractions, where="post", color=LATENCY_COLOUR, linewidth=1.5)
    from ai_energy_benchmarks.results.stats import percentile

    for q, style in ((50, "dashed"), (99, "dotted")):
        value = percentile(ordered, q)
        if value is None:
            continue
        axes.axvline(value, color="black", linestyle=style, linewidth=1, label=f"p{q} = {_fmt(value)} s")
    positive = [v for v in ordered if v > 0]
    median = percentile(positive, 50)
    if positive and median and positive[-1] / median > 8:  # a long tail: a log axis keeps the body readable
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
        unit_label += " (log scale)"
    else:
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(nbins=5))
    axes.set_title(f"{title} (n = {count})", fontsize=11)
    axes.set_xlabel(unit_label)
    axes.set_ylabel(f"fraction of {of} ≤ x")
    axes.set_ylim(0, 1.02)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)


def latency_cdf(samples: Mapping[str, Sequence[float]], path: Path) -> Path:
    """CDFs of time to first token, end-to-end latency and (when chunk times were recorded) inter-token latency."""
    with _figure("latency_cdf") as figure:
        panels = [("ttft_s", "Time to first token", "requests"), ("latency_s", "End-to-end latency", "requests")]
        if samples.get("itl_s"):
            panels.append(("itl_s", "Inter-token latency", "chunk gaps"))
        axes_list = figure.subplots(1, len(panels))
        for axes, (key, title, of) in zip(axes_list, panels, strict=True):
            _cdf(axes, samples.get(key, []), title, "seconds", of)
        return _save(figure, path)


@dataclass
class _Stack:
    """One layer of stacked bars: a value per repetition, its colour, hatch and legend label."""

    values: list[float]
    colour: str
    hatch: str | None = None
    label: str | None = None


def _interval_panel(
    axes: Axes,
    labels: Sequence[str],
    stacks: Sequence[_Stack],
    statistics: Mapping[str, Any] | None,
    title: str,
    ylabel: str,
) -> None:
    """Bars per repetition (stacked layers) with the mean and the 95% confidence interval drawn as a band."""
    if not labels or not stacks:
        _blank(axes, f"{title}:\nnot measured")
        return
    bottoms = [0.0] * len(labels)
    bars = None
    for stack in stacks:
        bars = axes.bar(
            labels,
            stack.values,
            bottom=bottoms,
            color=stack.colour,
            edgecolor="black",
            hatch=stack.hatch,
            alpha=0.9,
            label=stack.label,
        )
        bottoms = [b + v for b, v in zip(bottoms, stack.values, strict=True)]
    assert bars is not None
    axes.bar_label(bars, labels=[_fmt(total) for total in bottoms], padding=2, fontsize=8)
    top = max(bottoms)
    if statistics and statistics.get("ci95_low") is not None:
        mean, low, high = statistics["mean"], statistics["ci95_low"], statistics["ci95_high"]
        axes.axhspan(low, high, color="grey", alpha=0.25, label=f"95% CI [{_fmt(low)}, {_fmt(high)}]")
        axes.axhline(mean, color="black", linewidth=1.2, label=f"mean {_fmt(mean)}")
        top = min(max(top, high), 2.0 * top)  # a very wide interval runs off the axis rather than flatten the bars
    else:
        axes.text(
            0.5,
            0.97,
            "one repetition: no confidence interval\n(set scenario.repetitions ≥ 2)",
            transform=axes.transAxes,
            ha="center",
            va="top",
            fontsize=8,
        )
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper right", fontsize=7, framealpha=0.9)
    axes.set_ylim(0, top * 1.45 if top > 0 else 1)
    axes.set_title(title, fontsize=11)
    axes.set_xlabel("repetition")
    axes.set_ylabel(ylabel)


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> list[float] | None:
    """``row[key]`` of every row as floats, or None when any is missing."""
    values = [finite(row.get(key)) for row in rows]
    return None if not values or any(v is None for v in values) else [float(v) for v in values if v is not None]


def repetitions(result: Mapping[str, Any], path: Path) -> Path:
    """Per repetition: energy (Wh, stacked by device), J per output token and throughput, with mean and 95% CI."""
    with _figure("repetitions") as figure:
        energy_axes, jpt_axes, speed_axes = figure.subplots(1, 3)
        rows = result.get("repetitions") or []
        statistics = result.get("repetition_statistics") or {}
        labels = [str(row.get("repetition", i)) for i, row in enumerate(rows)]
        kinds = _device_kinds(result)
        estimated = any(kinds[d] == "estimated" for d in _energy_devices(result))
        energy_stacks = []
        for device in _energy_devices(result):
            values = _column(rows, f"{device}_energy_wh")
            if values is not None:
                energy_stacks.append(
                    _Stack(
                        values,
                        DEVICE_COLOURS[device],
                        ESTIMATE_HATCH if kinds[device] == "estimated" else None,
                        f"{DEVICE_NAMES[device]} ({kinds[device]})",
                    )
                )
        _interval_panel(
            energy_axes,
            labels,
            energy_stacks,
            statistics.get("total_energy_wh"),
            "Energy per repetition (hatched: estimated)" if estimated else "Energy per repetition (measured)",
            "energy (Wh)",
        )
        jpt = _column(rows, "joules_per_output_token")
        _interval_panel(
            jpt_axes,
            labels,
            [_Stack(jpt, "#8c6bb1", ESTIMATE_HATCH if estimated else None)] if jpt else [],
            statistics.get("joules_per_output_token"),
            "Energy per output token",
            "J / output token",
        )
        speed = _column(rows, "output_tokens_per_second")
        _interval_panel(
            speed_axes,
            labels,
            [_Stack(speed, "#9ecae1")] if speed else [],
            statistics.get("output_tokens_per_second"),
            "Output throughput",
            "tokens / s",
        )
        return _save(figure, path)


# -- sweep figure -----------------------------------------------------------------------------------------------------


@dataclass
class SweepPlotPoint:
    """One sweep point as plotted: its label, J per output token and latency percentiles (s)."""

    label: str
    joules_per_token: float
    latency_p50_s: float
    latency_p99_s: float
    meets_slo: bool | None = None


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
        panels = figure.subplots(1, 2, sharey=True)
        if not points:
            for axes in panels:
                _blank(axes, "no completed point with energy and latency figures")
            return _save(figure, path)
        for axes, attribute, name in zip(panels, ("latency_p50_s", "latency_p99_s"), ("p50", "p99"), strict=True):
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
                    edgecolor="black" if meets is not False else "#888888",
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
    axes.legend(handles=handles, labels=labels, loc="upper right", fontsize=8, framealpha=0.9)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height in pixels read from a PNG file's IHDR header (no image library needed)."""
    with path.open("rb") as handle:
        header = handle.read(24)
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG file")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


__all__ = [
    "DEVICE_COLOURS",
    "DPI",
    "FIGURE_SIZES_PX",
    "SweepPlotPoint",
    "energy_breakdown",
    "finite",
    "latency_cdf",
    "pareto_front",
    "png_size",
    "power_timeline",
    "repetitions",
    "sweep_energy_vs_latency",
]
