"""RAPL meter: CPU package and DRAM energy from the Linux powercap tree (``/sys/class/powercap``).

Each package zone ``intel-rapl:N`` (``name`` = ``package-N``; also on AMD CPUs, whose RAPL the same driver exposes)
gives a ``cpu:N`` reading (``measured:rapl``); its ``dram`` subzone, where present, a ``ram:N`` reading
(``measured:rapl-dram``). ``core``/``uncore`` subzones are parts of the package and are not reported separately;
``psys`` (whole platform, some laptops) is left out so nothing is counted twice.

``energy_uj`` is cumulative (µJ) and wraps to 0 after ``max_energy_range_uj`` (about 262 kJ: some 20 minutes at
200 W). Every zone is read at each window edge and by a background thread every ``metrics.rapl.poll_interval_s``
seconds; each read adds the difference to the previous one (plus ``max_energy_range_uj`` when the counter went
backwards), so windows of any length are measured as long as no zone wraps twice between two reads.

Windows may nest and overlap: each open window keeps its own start snapshot. Every read also goes into a record of
each zone's running total, so the energy of a past interval can be read back with bounds
(:meth:`RaplMeter.energy_between`, in seconds of the meter's clock: ``time.perf_counter()`` unless a test passes a
simulated one).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyReading, IntervalReading, SnapshotWindows
from ai_energy_benchmarks.energy.clock import SYSTEM_CLOCK, Clock
from ai_energy_benchmarks.energy.record import CumulativeRecord
from ai_energy_benchmarks.exceptions import MeterError

logger = logging.getLogger(__name__)

PACKAGE_SOURCE = "measured:rapl"
DRAM_SOURCE = "measured:rapl-dram"

_ZONE = re.compile(r"intel-rapl:(\d+)")
_SUBZONE = re.compile(r"intel-rapl:(\d+):(\d+)")


def _permission_message(path: Path, root: Path) -> str:
    return (
        f"RAPL counter {path} is not readable (permission denied): since Linux 5.10 energy_uj is readable by root "
        f"only; run as root, or grant read access until the next reboot with "
        f"`sudo chmod a+r {root}/intel-rapl:*/energy_uj {root}/intel-rapl:*/intel-rapl:*/energy_uj` "
        "(a udev rule or systemd-tmpfiles entry makes it permanent)"
    )


@dataclass
class _Zone:
    """One counter and its running total (guarded by the meter's lock)."""

    directory: Path
    label: str  # the zone's ``name`` file: package-0, dram, ...
    device: str  # cpu:N or ram:N
    source: str
    max_energy_range_uj: int
    last_uj: int = 0
    total_uj: int = 0
    wraps: int = 0
    #: The running total (J) at every read, over perf_counter time.
    record: CumulativeRecord = field(default_factory=CumulativeRecord)

    @property
    def energy_file(self) -> Path:
        return self.directory / "energy_uj"


class RaplMeter(SnapshotWindows[dict[str, int]]):
    """CPU package (``cpu:N``) and DRAM (``ram:N``) energy from RAPL counters, per window, in J."""

    name = "rapl"
    output_files: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: MetricsConfig,
        output_dir: Path,
        gpu_ids: list[int] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``clock`` times every read (a test may pass a simulated one)."""
        #: Seconds between background reads (wraparound tracking and the interval record).
        self.poll_interval_s = float(config.rapl.poll_interval_s)
        self._root = Path(config.rapl.root)
        self._zones: list[_Zone] = []
        self._ignored: list[dict[str, str]] = []
        self._init_windows(clock)
        self._prepared = False

    # -- set-up ------------------------------------------------------------------------------------------------------

    def _read_int(self, path: Path) -> int:
        try:
            text = path.read_text()
        except PermissionError as exc:
            raise MeterError(_permission_message(path, self._root)) from exc
        except FileNotFoundError as exc:
            raise MeterError(f"RAPL counter {path} not found (zone removed?)") from exc
        except OSError as exc:
            raise MeterError(f"RAPL counter {path} could not be read: {exc.strerror or exc}") from exc
        try:
            return int(text.strip())
        except ValueError as exc:
            raise MeterError(f"RAPL file {path} does not hold an integer: {text.strip()!r}") from exc

    def _read_name(self, directory: Path) -> str:
        try:
            return (directory / "name").read_text().strip()
        except OSError as exc:
            raise MeterError(f"RAPL zone {directory} has no readable name file: {exc.strerror or exc}") from exc

    def _discover(self) -> None:
        if not self._root.is_dir():
            raise MeterError(f"no RAPL counters: {self._root} not found; common in VMs and containers")
        packages = sorted(
            (int(m.group(1)), path)
            for path in self._root.iterdir()
            if (m := _ZONE.fullmatch(path.name)) and path.is_dir()
        )
        if not packages:
            raise MeterError(f"no RAPL counters: {self._root}/intel-rapl:* not found; common in VMs and containers")
        zones: list[_Zone] = []
        for number, directory in packages:
            label = self._read_name(directory)
            if not label.startswith("package"):
                self._ignored.append({"zone": directory.name, "name": label, "why": "not a CPU package"})
                continue
            zones.append(self._zone(directory, label, f"cpu:{number}", PACKAGE_SOURCE))
            subzones = sorted(
                (int(m.group(2)), path)
                for path in directory.iterdir()
                if (m := _SUBZONE.fullmatch(path.name)) and path.is_dir()
            )
            for _, sub in subzones:
                sub_label = self._read_name(sub)
                if sub_label == "dram":
                    zones.append(self._zone(sub, sub_label, f"ram:{number}", DRAM_SOURCE))
                else:
                    self._ignored.append({"zone": sub.name, "name": sub_label, "why": "included in its package"})
        if not zones:
            raise MeterError(f"no RAPL counters: no package zone under {self._root}; common in VMs and containers")
        self._zones = zones

    def _zone(self, directory: Path, label: str, device: str, source: str) -> _Zone:
        max_range = self._read_int(directory / "max_energy_range_uj")
        zone = _Zone(directory, label, device, source, max_range)
        zone.last_uj = self._read_int(zone.energy_file)
        zone.record.add(self._clock.now_s(), 0.0)
        return zone

    def prepare(self) -> None:
        """Find the zones, check every counter is readable and start the wraparound poller."""
        if self._prepared:
            return
        self._zones, self._ignored = [], []
        self._discover()
        self._prepared = True
        self._start_polling(self.poll_interval_s)
        logger.debug("rapl meter ready: %s", self.describe())

    # -- reading -----------------------------------------------------------------------------------------------------

    def _update(self, zone: _Zone) -> None:
        """Read ``zone`` and add the difference to its total. The caller holds the lock."""
        value = self._read_int(zone.energy_file)
        delta = value - zone.last_uj
        if delta < 0:
            delta += zone.max_energy_range_uj
            zone.wraps += 1
        zone.total_uj += delta
        zone.last_uj = value
        zone.record.add(self._clock.now_s(), zone.total_uj / 1e6)

    def _snapshot(self) -> dict[str, int]:
        with self._lock:
            for zone in self._zones:
                self._update(zone)
            return {zone.device: zone.total_uj for zone in self._zones}

    def _poll(self) -> None:
        self._snapshot()

    # -- windows -----------------------------------------------------------------------------------------------------

    def _ready(self) -> bool:
        return self._prepared

    def _readings(self, start: dict[str, int], end: dict[str, int]) -> list[EnergyReading]:
        """One reading per package and DRAM zone, in J."""
        readings = [
            EnergyReading(
                device=zone.device,
                energy_j=(end[zone.device] - start[zone.device]) / 1e6,
                source=zone.source,
                meter=self.name,
                note=f"RAPL zone {zone.directory.name} ({zone.label})",
            )
            for zone in self._zones
        ]
        return readings

    # -- past intervals ----------------------------------------------------------------------------------------------

    def energy_between(self, start_s: float, end_s: float) -> list[IntervalReading]:
        """Each zone's energy between two instants on the meter's clock, read back from its record (J, bounded)."""
        if not self._prepared:
            return []
        with self._lock:
            records = [(zone, zone.record.copy()) for zone in self._zones]
        readings: list[IntervalReading] = []
        for zone, record in records:
            estimate = record.interval(start_s, end_s)
            if estimate is None:
                logger.warning("rapl meter: %s's record does not cover %.3f-%.3f s", zone.device, start_s, end_s)
                continue
            what = f"RAPL zone {zone.directory.name} ({zone.label})"
            readings.append(IntervalReading.from_estimate(zone.device, estimate, zone.source, self.name, what))
        return readings

    # -- description and shutdown ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The zones read (and those left out, with why)."""
        return {
            "root": str(self._root),
            "poll_interval_s": self.poll_interval_s,
            "update_period_s": None,  # counters read at each window edge: no sampling period
            "zones": [
                {
                    "zone": zone.directory.name,
                    "name": zone.label,
                    "device": zone.device,
                    "source": zone.source,
                    "max_energy_range_uj": zone.max_energy_range_uj,
                    "wraps_seen": zone.wraps,
                }
                for zone in self._zones
            ],
            "ignored_zones": list(self._ignored),
        }

    def close(self) -> None:
        """Stop the background reader."""
        self._stop_polling()
        self._drop_open_windows()
        self._prepared = False
