"""The GPU meter's timeline: one row per GPU per poll (power, clocks, temperature, utilisation), written to
``<output_dir>/timeline.csv`` in batches so long runs keep little in memory."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.energy.devices.base import GpuDevice

TIMELINE_FILE = "timeline.csv"
TIMELINE_COLUMNS = (
    "timestamp_unix_s",
    "elapsed_s",
    "gpu",
    "power_w",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "temperature_c",
    "utilization_pct",
)
# Rows kept in memory before they are appended to the file.
_FLUSH_ROWS = 10_000


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None, whole numbers without a decimal point (as the libraries report clocks)."""
    if value is None:
        return ""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class Timeline:
    """Rows of :data:`TIMELINE_COLUMNS`, appended to ``output_dir / TIMELINE_FILE``."""

    def __init__(self, output_dir: Path) -> None:
        self._output_dir = output_dir
        self._rows: list[tuple[Any, ...]] = []
        self._header_written = False
        self.rows_written = 0

    @property
    def path(self) -> Path:
        return self._output_dir / TIMELINE_FILE

    def add(self, device: GpuDevice, elapsed_s: float, power_w: float | None) -> None:
        """A row for ``device`` sampled ``elapsed_s`` after the meter started, with its power (W) if read."""
        sm_clock, mem_clock = device.clocks_mhz()
        self._rows.append(
            (
                f"{time.time():.3f}",
                f"{elapsed_s:.4f}",
                device.index,
                "" if power_w is None else f"{power_w:.3f}",
                _cell(sm_clock),
                _cell(mem_clock),
                _cell(device.temperature_c()),
                _cell(device.utilization_pct()),
            )
        )
        if len(self._rows) >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Append the rows kept so far (and the header, the first time)."""
        rows, self._rows = self._rows, []
        if not rows and self._header_written:
            return
        self._output_dir.mkdir(parents=True, exist_ok=True)
        mode = "a" if self._header_written else "w"
        with self.path.open(mode, newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if not self._header_written:
                writer.writerow(TIMELINE_COLUMNS)
                self._header_written = True
            writer.writerows(rows)
        self.rows_written += len(rows)
