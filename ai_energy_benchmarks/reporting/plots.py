"""The figures of one run's report, drawn with matplotlib (the optional ``[report]`` extra); the sweep's figure is
in ``sweep_plot.py`` and what all figures share in ``plot_style.py`` (both re-exported here).

Every figure is drawn on a fresh :class:`matplotlib.figure.Figure` (no pyplot, no global figure state, no display
needed) under matplotlib's default style, so a user's matplotlibrc cannot change how it looks or its size, and is
saved as a PNG of exactly :data:`FIGURE_SIZES_PX` pixels. Measured energy is drawn solid, estimated energy hatched,
and every legend says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ai_energy_benchmarks.reporting.plot_style import (
    DEVICE_COLOURS,
    DEVICE_NAMES,
    DPI,
    ESTIMATE_HATCH,
    FIGURE_SIZES_PX,
    FRONT_COLOUR,
    LATENCY_COLOUR,
    _blank,
    _figure,
    _fmt,
    _kind_legend,
    _save,
    finite,
    num_text,
    png_size,
)
from ai_energy_benchmarks.reporting.runs import DEVICES, source_kind
from ai_energy_benchmarks.reporting.sweep_plot import SweepPlotPoint, pareto_front, sweep_energy_vs_latency
from ai_energy_benchmarks.results.model import (
    BenchmarkResult,
    PhaseBlock,
    Repetition,
    RepetitionStatistics,
    Statistics,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Resolution of every figure (dots per inch); sizes below are in pixels at this resolution.


def _device_kinds(result: BenchmarkResult) -> dict[str, str]:
    return {device: source_kind(result.energy.sources.get(device)) for device in DEVICES}


def _energy_devices(result: BenchmarkResult) -> list[str]:
    """Device classes with an energy figure that was read (measured or estimated)."""
    kinds = _device_kinds(result)
    return [device for device in DEVICES if kinds[device] != "absent"]


# -- report figures ---------------------------------------------------------------------------------------------------


def energy_breakdown(result: BenchmarkResult, path: Path) -> Path:
    """Energy (Wh) by device class, and by phase (prefill / decode) stacked by device; estimates hatched."""
    with _figure("energy_breakdown") as figure:
        by_device, by_phase = figure.subplots(1, 2, width_ratios=[1, 1.2])
        kinds = _device_kinds(result)
        devices = _energy_devices(result)
        energy = result.energy
        if not energy.enabled or not devices:
            reason = "energy not measured (metrics.enabled=false)" if not energy.enabled else ""
            _blank(by_device, reason or "no energy figure was read")
            _blank(by_phase, "no energy by phase")
            return _save(figure, path)

        values = [float(getattr(energy, f"{d}_energy_wh") or 0.0) if d in devices else 0.0 for d in DEVICES]
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
        idle = energy.idle_baseline.idle_energy_wh_over_measured_duration if energy.idle_baseline else {}
        idle_drawn = False
        for index, device in enumerate(DEVICES):
            idle_wh = idle.get(device) if device in devices else None
            if isinstance(idle_wh, (int, float)):
                by_device.hlines(idle_wh, index - 0.4, index + 0.4, colors="black", linestyles="dashed")
                idle_drawn = True
        total = energy.total_energy_wh
        by_device.set_title(f"Energy by device, measured windows (total {_fmt(total)} Wh)", fontsize=11)
        by_device.set_ylabel("energy (Wh)")
        idle_values = [float(v) for v in idle.values() if isinstance(v, (int, float))]
        top = max([*values, *idle_values])
        by_device.set_ylim(0, top * 1.6 if top > 0 else 1)
        _kind_legend(by_device, devices, kinds, "upper left", idle_line=idle_drawn)

        phases = result.phases
        if phases is None:
            _blank(by_phase, "no prefill pass was measured (scenario.measure_prefill=false):\nno prefill/decode split")
            return _save(figure, path)
        prefill_tokens = phases.prefill.prompt_tokens
        decode_tokens = phases.decode.output_tokens
        names = [
            ("prefill", f"prefill\n({num_text(prefill_tokens)} prompt tokens)"),
            ("decode", f"decode\n({num_text(decode_tokens)} output tokens)"),
            ("generate", "generate\n(= prefill + decode)"),
        ]
        present = [(key, label) for key, label in names if key in phases.model_fields_set]
        bottoms = [0.0] * len(present)
        for device in devices:
            blocks: list[PhaseBlock] = [getattr(phases, key) for key, _ in present]
            heights = [max(float(getattr(block, f"{device}_energy_wh") or 0.0), 0.0) for block in blocks]
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
    statistics: Statistics | None,
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
    if (
        statistics
        and statistics.ci95_low is not None
        and statistics.ci95_high is not None
        and statistics.mean is not None
    ):
        mean, low, high = statistics.mean, statistics.ci95_low, statistics.ci95_high
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


def _column(rows: Sequence[Repetition], key: str) -> list[float] | None:
    """``row.<key>`` of every row as floats, or None when any is missing."""
    values = [finite(getattr(row, key)) for row in rows]
    return None if not values or any(v is None for v in values) else [float(v) for v in values if v is not None]


def repetitions(result: BenchmarkResult, path: Path) -> Path:
    """Per repetition: energy (Wh, stacked by device), J per output token and throughput, with mean and 95% CI."""
    with _figure("repetitions") as figure:
        energy_axes, jpt_axes, speed_axes = figure.subplots(1, 3)
        rows = result.repetitions
        statistics = result.repetition_statistics or RepetitionStatistics()
        labels = [str(i if row.repetition is None else row.repetition) for i, row in enumerate(rows)]
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
            statistics.total_energy_wh,
            "Energy per repetition (hatched: estimated)" if estimated else "Energy per repetition (measured)",
            "energy (Wh)",
        )
        jpt = _column(rows, "joules_per_output_token")
        _interval_panel(
            jpt_axes,
            labels,
            [_Stack(jpt, "#8c6bb1", ESTIMATE_HATCH if estimated else None)] if jpt else [],
            statistics.joules_per_output_token,
            "Energy per output token",
            "J / output token",
        )
        speed = _column(rows, "output_tokens_per_second")
        _interval_panel(
            speed_axes,
            labels,
            [_Stack(speed, "#9ecae1")] if speed else [],
            statistics.output_tokens_per_second,
            "Output throughput",
            "tokens / s",
        )
        return _save(figure, path)


__all__ = [
    "DEVICE_COLOURS",
    "DEVICE_NAMES",
    "DPI",
    "ESTIMATE_HATCH",
    "FIGURE_SIZES_PX",
    "FRONT_COLOUR",
    "LATENCY_COLOUR",
    "SweepPlotPoint",
    "energy_breakdown",
    "finite",
    "latency_cdf",
    "num_text",
    "pareto_front",
    "png_size",
    "power_timeline",
    "repetitions",
    "sweep_energy_vs_latency",
]
