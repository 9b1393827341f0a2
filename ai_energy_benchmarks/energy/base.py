"""The meter abstraction.

A meter measures named windows. Each window yields readings: energy in joules for one device class (``gpu``,
``cpu``, ``ram``, or a single device such as ``gpu:0``), each labelled with where the number came from. A source
starts with ``measured:`` (a hardware counter or power sensor) or ``estimated:`` (a model such as a TDP times load);
nothing else may call itself measured.

A reading may carry ``lower_j``/``upper_j`` bounds that cover its own error (the sampling error of polled power,
the edges of an interval read back from a record), and ``start_s``/``end_s``: the ``time.perf_counter()`` instants
the meter actually read at the window's edges, so a power derived from it divides by the meter's own interval.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from ai_energy_benchmarks.energy.record import INTERPOLATED_SOURCE, IntervalEstimate
from ai_energy_benchmarks.exceptions import MeterError

logger = logging.getLogger(__name__)

MEASURED_PREFIX = "measured:"
ESTIMATED_PREFIX = "estimated:"


@dataclass(frozen=True)
class EnergyReading:
    """Energy used by one device class during one window."""

    device: str
    energy_j: float
    source: str
    meter: str
    note: str = ""
    #: Bounds (J) that cover the reading's own error; None when the meter gives none (a model estimate).
    lower_j: float | None = field(default=None, kw_only=True)
    upper_j: float | None = field(default=None, kw_only=True)
    #: ``time.perf_counter()`` instants (s) the meter read at the window's edges; None when it does not say.
    start_s: float | None = field(default=None, kw_only=True)
    end_s: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        # Every label says which it is: aggregation relies on it (a joined label is measured only if all parts are).
        if not self.source.startswith((MEASURED_PREFIX, ESTIMATED_PREFIX)):
            raise ValueError(
                f"meter '{self.meter}': energy source '{self.source}' must start with "
                f"'{MEASURED_PREFIX}' or '{ESTIMATED_PREFIX}'"
            )
        if (self.lower_j is None) != (self.upper_j is None) or (
            self.lower_j is not None and self.upper_j is not None and self.lower_j > self.upper_j
        ):
            raise ValueError(f"meter '{self.meter}': bounds {self.lower_j}..{self.upper_j} J are not an interval")

    @property
    def meter_duration_s(self) -> float | None:
        """The meter's own interval (s) between its reads at the window's edges, when it says."""
        if self.start_s is None or self.end_s is None or self.end_s <= self.start_s:
            return None
        return self.end_s - self.start_s

    @property
    def is_measured(self) -> bool:
        """True only when the figure comes from a hardware counter or sensor."""
        return self.source.startswith(MEASURED_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe form (with ``energy_wh`` and ``is_measured`` added)."""
        data = asdict(self)
        data["energy_wh"] = self.energy_j / 3600.0
        data["is_measured"] = self.is_measured
        return data


@dataclass(frozen=True)
class IntervalReading(EnergyReading):
    """Energy of one device over a past interval, read back from a meter's record of its counter.

    The counter is sampled at discrete times (window edges and the meter's polls), so an interval whose edges fall
    between samples has bounds: ``lower_j`` counts only whole sampling intervals inside it, ``upper_j`` the smallest
    span of samples that covers it; ``energy_j`` interpolates linearly at each edge (constant power between two
    samples). All three are joules.
    """

    lower_j: float = field(kw_only=True)
    upper_j: float = field(kw_only=True)

    @classmethod
    def from_estimate(
        cls, device: str, estimate: IntervalEstimate, measured_source: str, meter: str, what: str
    ) -> IntervalReading:
        """The reading of ``estimate`` (``what`` was read, e.g. "the counter"): labelled ``measured_source`` when
        reads inside the interval cover most of it, an interpolation estimate otherwise."""
        note = (
            f"interval read back from {what} at polls and window edges; edges interpolated between reads up to "
            f"{estimate.edge_spacing_s * 1000:.0f} ms apart"
        )
        source = measured_source if estimate.mostly_read else INTERPOLATED_SOURCE
        return cls(device, estimate.energy_j, source, meter, note, lower_j=estimate.lower_j, upper_j=estimate.upper_j)


class IncompleteWindowError(MeterError):
    """A meter could read only part of a window: ``readings`` holds what it could read (possibly nothing), the
    message says what failed, and ``failed_at_s`` (``time.perf_counter()``) when the failure was first seen."""

    def __init__(
        self,
        message: str,
        readings: list[EnergyReading] | None = None,
        emissions_kg: float | None = None,
        failed_at_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.readings = list(readings or [])
        self.emissions_kg = emissions_kg
        self.failed_at_s = failed_at_s


@runtime_checkable
class IntervalEnergyMeter(Protocol):
    """A meter that can also give the energy of a past interval that was not opened as a window."""

    name: str

    def energy_between(self, start_s: float, end_s: float) -> list[IntervalReading]:
        """Energy per device between two ``time.perf_counter()`` instants; empty when the record cannot cover it."""


@dataclass
class WindowMeasurement:
    """What every meter reported for one named window, with the window's own wall-clock duration."""

    name: str
    duration_s: float
    kind: str = "generate"
    repetition: int | None = None
    readings: list[EnergyReading] = field(default_factory=list)
    emissions_kg: float | None = None
    #: Energy (J) of the readings of the meters that gave ``emissions_kg``: emissions / this = the grid intensity.
    emissions_energy_j: float = 0.0
    errors: list[str] = field(default_factory=list)

    def _of(self, device: str, meter: str | None) -> list[EnergyReading]:
        return [
            r
            for r in self.readings
            if (r.device == device or r.device.startswith(device + ":")) and (meter is None or r.meter == meter)
        ]

    def energy_j(self, device: str, meter: str | None = None) -> float | None:
        """Energy of ``device`` (or of every ``device:N`` reading) in joules as ``meter`` read it, None when not
        read. Without ``meter``, every meter's readings are added: only right when one meter read the device."""
        values = [r.energy_j for r in self._of(device, meter)]
        return sum(values) if values else None

    def source(self, device: str, meter: str | None = None) -> str | None:
        """The source label(s) of ``device``'s readings (by ``meter``), joined with '+' when several."""
        sources = sorted({r.source for r in self._of(device, meter)})
        return "+".join(sources) if sources else None


@runtime_checkable
class EnergyMeter(Protocol):
    """What the runner needs from a meter. Implementations know nothing of models or backends."""

    name: str
    #: Glob patterns, relative to the run directory, of the files this meter writes there (e.g. ``timeline.csv``);
    #: empty when it writes none. The runner moves an earlier run's files away before a new run by these patterns.
    output_files: ClassVar[tuple[str, ...]]

    def prepare(self) -> None:
        """Do the slow set-up (hardware discovery, a first reading) outside every measured window."""

    def start_window(self, name: str) -> None:
        """Begin measuring window ``name``."""

    def stop_window(self, name: str) -> tuple[list[EnergyReading], float | None]:
        """End window ``name``; return its readings and its emissions in kg CO2eq (None if not known)."""

    def describe(self) -> dict[str, Any]:
        """Hardware and methods this meter uses, for the report's environment section."""

    def close(self) -> None:
        """Release resources; write the meter's own files if it has any."""


SnapshotT = TypeVar("SnapshotT")


class SnapshotWindows(Generic[SnapshotT]):
    """Windows for meters that read cumulative counters: one snapshot at each window edge, so windows may nest and
    overlap freely. Subclasses give ``name``, :meth:`_ready`, :meth:`_snapshot` and :meth:`_readings`."""

    name: str

    def _init_windows(self) -> None:
        self._open: dict[str, SnapshotT] = {}
        self._open_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- the background reader (wraparounds, timelines, interval records) --------------------------------------------

    def _poll(self) -> None:
        """One background read (subclasses that poll override it)."""

    def _start_polling(self, interval_s: float, jitter: random.Random | None = None) -> None:
        """Call :meth:`_poll` every ``interval_s`` seconds in a daemon thread until :meth:`_stop_polling`.

        With ``jitter``, each wait is drawn uniformly from 0.5-1.5 x ``interval_s`` (same mean rate), so samples
        of a signal that repeats at the polling rate fall at random phases instead of always the same one.
        """
        self._stop.clear()
        self._poller = threading.Thread(
            target=self._poll_loop, args=(interval_s, jitter), name=f"{self.name}-meter-poller", daemon=True
        )
        self._poller.start()

    def _poll_loop(self, interval_s: float, jitter: random.Random | None = None) -> None:
        def step_s() -> float:
            return interval_s * jitter.uniform(0.5, 1.5) if jitter is not None else interval_s

        next_s = time.monotonic() + step_s()
        while not self._stop.wait(max(0.0, next_s - time.monotonic())):
            try:
                self._poll()
            except MeterError as exc:  # the next window edge reads the same counters and reports it
                logger.debug("%s meter: background read failed: %s", self.name, exc)
            except Exception:  # the poller must outlive a bad sample
                logger.exception("%s meter: background read failed", self.name)
            next_s += step_s()
            now = time.monotonic()
            if next_s < now:  # fell behind (e.g. a stalled driver call): skip, do not burst
                next_s = now + step_s()

    def _stop_polling(self) -> bool:
        """Stop the background reader; False when none was running."""
        if self._poller is None:
            return False
        self._stop.set()
        self._poller.join()
        self._poller = None
        return True

    def _ready(self) -> bool:
        """Whether :meth:`prepare` has run."""
        raise NotImplementedError

    def _snapshot(self) -> SnapshotT:
        """The counters now."""
        raise NotImplementedError

    def _readings(self, start: SnapshotT, end: SnapshotT) -> list[EnergyReading]:
        """The readings of a window that opened at ``start`` and closed at ``end``."""
        raise NotImplementedError

    def start_window(self, name: str) -> None:
        """Open window ``name`` (windows may nest and overlap)."""
        if not self._ready():
            raise MeterError(f"{self.name} meter used before prepare()")
        if name in self._open:
            raise MeterError(f"{self.name} meter: window '{name}' is already open")
        before_s = time.perf_counter()
        self._open[name] = self._snapshot()
        self._open_at[name] = (before_s + time.perf_counter()) / 2.0

    def stop_window(self, name: str) -> tuple[list[EnergyReading], float | None]:
        """Close window ``name``; counters know no emissions (None).

        Readings that do not say when the meter read their edges get the times of the two snapshots.
        """
        start = self._open.pop(name, None)
        start_s = self._open_at.pop(name, None)
        if start is None:
            raise MeterError(f"{self.name} meter: window '{name}' was not started")
        before_s = time.perf_counter()
        end = self._snapshot()
        end_s = (before_s + time.perf_counter()) / 2.0
        return [
            r if r.start_s is not None else dataclasses.replace(r, start_s=start_s, end_s=end_s)
            for r in self._readings(start, end)
        ], None

    def _drop_open_windows(self) -> None:
        if self._open:
            logger.warning("%s meter closed with open windows: %s", self.name, ", ".join(self._open))
            self._open.clear()
            self._open_at.clear()


class MeterSet:
    """Several meters driven together; windows are timed here, independently of any meter's own clock."""

    def __init__(self, meters: list[EnergyMeter], synchronize: Callable[[], None] | None = None) -> None:
        self.meters = meters
        self._synchronize = synchronize or (lambda: None)
        self.windows: list[WindowMeasurement] = []
        #: ``time.perf_counter()`` when the meters were prepared: failures are reported relative to it.
        self.origin_s = time.perf_counter()

    def prepare(self) -> None:
        """Prepare every meter (outside the measured windows)."""
        self.origin_s = time.perf_counter()
        for meter in self.meters:
            meter.prepare()

    @contextmanager
    def window(self, name: str, kind: str = "generate", repetition: int | None = None) -> Iterator[WindowMeasurement]:
        """Measure the body as window ``name`` (of ``kind``: idle, prefill, generate); meters stop even on errors.

        The device is synchronised before the window opens and before it closes, so queued GPU work is counted
        in the window it belongs to.
        """
        measurement = WindowMeasurement(name=name, duration_s=0.0, kind=kind, repetition=repetition)
        self._synchronize()
        started: list[EnergyMeter] = []
        for meter in self.meters:
            try:
                meter.start_window(name)
                started.append(meter)
            except Exception as exc:  # a failed meter must not stop the others, nor the run
                message = f"meter '{meter.name}' failed to start window '{name}': {exc}; its readings are missing"
                logger.error(message)
                measurement.errors.append(message)
        start_s = time.perf_counter()
        try:
            yield measurement
            self._synchronize()
        finally:
            measurement.duration_s = time.perf_counter() - start_s
            self._stop_started(started, name, measurement)
            self.windows.append(measurement)

    def _stop_started(self, started: list[EnergyMeter], name: str, measurement: WindowMeasurement) -> None:
        for meter in reversed(started):
            try:
                readings, emissions_kg = meter.stop_window(name)
            except IncompleteWindowError as exc:  # part of the window was read: keep that part, say what failed
                when = (
                    f" (first failure {exc.failed_at_s - self.origin_s:.3f} s after the meters started)"
                    if exc.failed_at_s is not None
                    else ""
                )
                message = f"meter '{meter.name}' could not read all of window '{name}': {exc}{when}"
                logger.error(message)
                measurement.errors.append(message)
                readings, emissions_kg = exc.readings, exc.emissions_kg
            except Exception as exc:
                message = f"meter '{meter.name}' failed to stop window '{name}': {exc}"
                logger.error(message)
                measurement.errors.append(message)
                continue
            measurement.readings.extend(readings)
            if emissions_kg is not None:
                measurement.emissions_kg = (measurement.emissions_kg or 0.0) + emissions_kg
                measurement.emissions_energy_j += sum(r.energy_j for r in readings)

    def energy_between(self, start_s: float, end_s: float) -> list[IntervalReading]:
        """Energy of a past interval (``time.perf_counter()`` seconds) from every meter that keeps a record.

        Meters without one (CodeCarbon) add nothing: the caller estimates their share another way.
        """
        readings: list[IntervalReading] = []
        for meter in self.meters:
            if not isinstance(meter, IntervalEnergyMeter):
                continue
            try:
                readings.extend(meter.energy_between(start_s, end_s))
            except Exception as exc:  # a failed read-back must not cost the run its window figures
                logger.warning("meter '%s' cannot read the interval back: %s", meter.name, exc)
        return readings

    def describe(self) -> dict[str, Any]:
        """Each meter's description, keyed by meter name."""
        return {meter.name: meter.describe() for meter in self.meters}

    def close(self) -> None:
        """Close every meter, logging (not raising) failures."""
        for meter in self.meters:
            try:
                meter.close()
            except Exception as exc:
                logger.warning("meter '%s' failed to close: %s", meter.name, exc)
