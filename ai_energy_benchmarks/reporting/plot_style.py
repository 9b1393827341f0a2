"""What every figure shares: sizes (px), colours, the measured/estimated legend, a fresh figure per plot, PNG
saving at an exact size, and number formatting."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ai_energy_benchmarks.reporting import require_matplotlib

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
