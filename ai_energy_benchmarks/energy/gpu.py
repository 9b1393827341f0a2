"""The GPU meter: energy of the selected GPUs from their cumulative energy counters, power polling as a labelled
fallback, over any vendor library (:mod:`ai_energy_benchmarks.energy.devices`). ``nvml.py`` and ``amdsmi.py`` are
this meter with their adapter and labels.

Per selected GPU, a window's energy is the difference of the device's energy counter between the window's edges
(``measured:<vendor>-energy-counter``). GPUs without a counter are estimated by polling their power at random
intervals averaging the meter's ``poll_interval_s`` (``metrics.nvml.poll_interval_s``, ``metrics.amdsmi...``;
jittered, so a load that repeats at the polling rate is not sampled at one phase) and integrating with the
trapezoid rule (``estimated:<vendor>-power-integrated``), with bounds that cover the sampling error; a power
sample is also taken at each window edge. The same poller records a power, clock, temperature and utilisation
timeline (``<output_dir>/timeline.csv``), and temperature and throttle reasons in ``GpuMeter.conditions``.

Which GPUs are read, and how they are described, is :mod:`ai_energy_benchmarks.energy.gpu_discovery`.

A GPU that stops answering is never read as zero: the window it failed in, and every later one, gives no reading for
it, and :class:`IncompleteWindowError` says which GPU failed, with what error, and when.

Windows may nest and overlap: each open window keeps its own start snapshot. The meter also keeps a record of each
GPU's cumulative energy (the unwrapped counter, or the running power integral) at every poll and window edge, so the
energy of a past interval that was never opened as a window (the HTTP backend's steady state, known only afterwards)
can be read back with bounds: :meth:`GpuMeter.energy_between`. All times are the meter's clock's seconds
(``time.perf_counter()``, the clock of the measured windows, unless a test passes a simulated one).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyReading, IncompleteWindowError, IntervalReading, SnapshotWindows
from ai_energy_benchmarks.energy.clock import SYSTEM_CLOCK, Clock
from ai_energy_benchmarks.energy.devices.base import NO_PERMISSION, DeviceError, GpuLibrary
from ai_energy_benchmarks.energy.devices.processes import ServerProcesses
from ai_energy_benchmarks.energy.gpu_conditions import ConditionRecord
from ai_energy_benchmarks.energy.gpu_discovery import (
    check_indices,
    gpu_identity,
    gpu_state,
    requested_matches,
    selection_text,
    server_matches,
)
from ai_energy_benchmarks.energy.gpu_state import (
    SAMPLING_BOUND_SIGMAS,
    GpuState,
    Snapshot,
    bounds,
    interval_reading,
    plausible_j,
)
from ai_energy_benchmarks.energy.timeline import TIMELINE_COLUMNS, TIMELINE_FILE, Timeline
from ai_energy_benchmarks.exceptions import MeterError

logger = logging.getLogger(__name__)

__all__ = ["SAMPLING_BOUND_SIGMAS", "TIMELINE_COLUMNS", "TIMELINE_FILE", "GpuMeter"]


class GpuMeter(SnapshotWindows[Snapshot]):
    """Energy of the selected GPUs of one vendor library, one ``gpu:N`` reading per GPU and window.

    ``library`` makes the vendor adapter; ``counter_source`` / ``polled_source`` label counter and polled figures.
    ``poll_interval_s``: the mean polling interval (s; None: ``metrics.nvml.poll_interval_s``).
    ``poll_seed`` seeds the random polling intervals (None: a fresh seed); ``clock`` times every read (a test passes
    the clock its simulated GPUs run on).
    """

    name = "gpu"
    #: The power/clock/temperature timeline every GPU meter writes (see :mod:`ai_energy_benchmarks.energy.timeline`).
    output_files: ClassVar[tuple[str, ...]] = (TIMELINE_FILE,)

    def __init__(
        self,
        config: MetricsConfig,
        output_dir: Path,
        gpu_ids: list[int] | None,
        *,
        library: Callable[[], GpuLibrary],
        counter_source: str,
        polled_source: str,
        poll_interval_s: float | None = None,
        poll_seed: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._library_factory = library
        self._library: GpuLibrary | None = None
        self.counter_source, self.polled_source = counter_source, polled_source
        self._poll_seed = poll_seed
        self._poll_interval_s = float(config.nvml.poll_interval_s if poll_interval_s is None else poll_interval_s)
        self._requested = list(gpu_ids) if gpu_ids is not None else None
        self._initialized = False
        self._gpus: list[GpuState] = []
        self._visible_count = 0
        self._matched_by: dict[int, str] = {}
        self._server: ServerProcesses | None = None
        self._server_found: bool | None = None
        self._driver_version = "unknown"
        self._init_windows(clock)
        self.conditions = ConditionRecord(clock)  # each poll's temperature, power and throttle reasons, per GPU
        self._origin_s = 0.0
        self._timeline = Timeline(Path(output_dir))

    @property
    def timeline_path(self) -> Path:
        """Where the power/clock/temperature/utilisation timeline is written."""
        return self._timeline.path

    @property
    def _vendor(self) -> str:
        return self._library.vendor if self._library is not None else self.name

    def source_of(self, gpu: GpuState) -> str:
        return self.counter_source if gpu.has_counter else self.polled_source

    # -- set-up ------------------------------------------------------------------------------------------------------

    def meter_server(self, server: ServerProcesses) -> None:
        """Meter the GPUs a local server's processes run on (before :meth:`prepare`), when no GPU ids were given:
        those the library lists ``server.pids`` on; every visible GPU when it lists none of them (logged, and said
        in each GPU's ``matched_by``)."""
        self._server = server

    def prepare(self) -> None:
        """Open the library, check the selected GPUs, probe their counters and start the poller."""
        if self._initialized:
            return
        library = self._library_factory()
        library.open()
        self._library = library
        self._initialized = True
        try:
            self._discover(library)
        except BaseException:
            self._shutdown()
            raise
        self._origin_s = self._clock.now_s()
        with self._lock:
            for gpu in self._gpus:
                self._sample_power(gpu, strict=not gpu.has_counter)
                if not gpu.has_counter:
                    gpu.remember(self._clock.now_s(), None)
        polled = any(not gpu.has_counter for gpu in self._gpus)
        self._start_polling(self._poll_interval_s, random.Random(self._poll_seed) if polled else None)
        logger.debug("%s meter ready: %s", self.name, self.describe())

    def _discover(self, library: GpuLibrary) -> None:
        self._gpus = []
        self._visible_count = library.count()
        self._driver_version = library.driver_version()
        # The requested devices are the runtime's ordinals: matched to the library's GPUs through
        # CUDA_VISIBLE_DEVICES and the like (by index or UUID).
        if self._requested is None and self._server is not None:
            matches, self._server_found = server_matches(library, self._server, self._visible_count, self.name)
        else:
            matches = requested_matches(library, self._requested, self._visible_count)
        self._matched_by = {match.index: match.how for match in matches}
        indices = [match.index for match in matches]
        check_indices(library, indices, self._visible_count)
        for index in dict.fromkeys(indices):
            self._gpus.append(gpu_state(library, index, self._poll_interval_s, self.polled_source))

    # -- sampling ----------------------------------------------------------------------------------------------------

    def _sample_power(self, gpu: GpuState, strict: bool) -> float | None:
        """Read ``gpu``'s power (W) and extend its trapezoid integral. The caller holds the lock.

        With ``strict`` a failed read raises MeterError; otherwise it is logged once and None is returned.
        """
        before = self._clock.now_s()
        try:
            power_w = gpu.device.power_w()
        except DeviceError as exc:
            if not gpu.has_counter:
                gpu.failed(before, exc)
            if strict:
                hint = f"; {self._library.permission_hint}" if exc.kind == NO_PERMISSION and self._library else ""
                raise MeterError(f"{self._vendor}: cannot read GPU {gpu.index}'s power ({exc}){hint}") from exc
            if not gpu.power_error_logged:
                gpu.power_error_logged = True
                logger.warning("%s: cannot read GPU %d's power: %s", self._vendor, gpu.index, exc)
            return None
        gpu.add_power((before + self._clock.now_s()) / 2.0, power_w)
        if not gpu.has_counter:
            gpu.answered()
        return power_w

    def _poll(self) -> None:
        for gpu in self._gpus:
            with self._lock:
                power_w = self._sample_power(gpu, strict=False)
                elapsed_s = (gpu.last_sample_s or self._clock.now_s()) - self._origin_s
                self._remember(gpu, strict=False)
            self._timeline.add(gpu.device, elapsed_s, power_w)
            self.conditions.add(gpu.device, power_w)

    def _read_counter(self, gpu: GpuState) -> int:
        before = self._clock.now_s()
        try:
            value = gpu.device.energy_counter()
        except DeviceError as exc:
            gpu.failed(before, exc)
            raise MeterError(f"{self._vendor}: cannot read GPU {gpu.index}'s energy counter: {exc}") from exc
        gpu.answered()
        return value

    def _remember(self, gpu: GpuState, strict: bool) -> int | None:
        """Read ``gpu``'s counter (if it has one) into its record; return the raw value. The caller holds the lock."""
        if not gpu.has_counter:
            gpu.remember(self._clock.now_s(), None)
            return None
        try:
            before = self._clock.now_s()
            raw = self._read_counter(gpu)
            gpu.remember((before + self._clock.now_s()) / 2.0, raw)
        except MeterError:
            if strict:
                raise
            return None
        return raw

    def _snapshot(self) -> Snapshot:
        """Every GPU's cumulative values now; a GPU that does not answer is left out (and noted on the GPU)."""
        snapshot = Snapshot(time_s=0.0)
        with self._lock:
            for gpu in self._gpus:
                power_w = self._sample_power(gpu, strict=False)
                if power_w is not None and gpu.last_sample_s is not None:
                    snapshot.integrated_j[gpu.index] = gpu.integrated_j
                    snapshot.integrated_s[gpu.index] = gpu.last_sample_s
                    snapshot.variance_j2[gpu.index] = gpu.variance_j2
                    snapshot.gap_s2[gpu.index] = gpu.gap_s2
                else:
                    snapshot.integrated_j[gpu.index] = None
                raw = self._remember(gpu, strict=False)
                if raw is not None:
                    snapshot.counter[gpu.index] = raw
                    snapshot.counter_s[gpu.index] = gpu.last_raw_s or self._clock.now_s()
        return dataclasses.replace(snapshot, time_s=self._clock.now_s())

    # -- windows -----------------------------------------------------------------------------------------------------

    def _ready(self) -> bool:
        return self._initialized

    def _readings(self, start: Snapshot, end: Snapshot) -> list[EnergyReading]:
        """One reading per GPU, in J; raises :class:`IncompleteWindowError` (with the other GPUs' readings) when a
        GPU could not be read at an edge or stopped answering inside the window."""
        duration_s = end.time_s - start.time_s
        readings: list[EnergyReading] = []
        problems: list[str] = []
        failed_at: list[float] = []
        for gpu in self._gpus:
            reading = self._reading(gpu, start, end, duration_s)
            failed_inside = gpu.failed_at_s is not None and gpu.failed_at_s <= end.time_s
            if reading is not None and not failed_inside:
                readings.append(reading)
                continue
            when_s = gpu.failed_at_s if gpu.failed_at_s is not None else end.time_s
            failed_at.append(when_s)
            offset_s = when_s - start.time_s
            when = f"{offset_s:.3f} s into the window" if offset_s >= 0 else f"{-offset_s:.3f} s before the window"
            problems.append(
                f"GPU {gpu.index} ({gpu.device.uuid}) stopped answering {self._vendor} ({gpu.failure or 'no reading'}) "
                f"{when}: its energy for the window is unknown, not zero"
            )
        if problems:
            raise IncompleteWindowError(
                f"{self.name} meter: " + "; ".join(problems), readings, None, min(failed_at) if failed_at else None
            )
        return readings

    def _polled_note(self, prefix: str) -> str:
        note = self._library.power_note if self._library is not None else ""
        return (
            f"{prefix}: power polled at random intervals averaging {self._poll_interval_s * 1000:.0f} ms and "
            f"integrated (trapezoid); bounds: {SAMPLING_BOUND_SIGMAS:g} estimated standard errors of the sampling"
            + (f". {note}" if note else "")
        )

    def _polled_reading(self, gpu: GpuState, start: Snapshot, end: Snapshot, note: str) -> EnergyReading | None:
        start_j, end_j = start.integrated_j.get(gpu.index), end.integrated_j.get(gpu.index)
        if start_j is None or end_j is None:
            return None
        energy_j = end_j - start_j
        variance_j2 = gpu.variance_j2_between(
            end.variance_j2[gpu.index] - start.variance_j2[gpu.index], end.gap_s2[gpu.index] - start.gap_s2[gpu.index]
        )
        lower_j, upper_j = bounds(energy_j, variance_j2)
        return EnergyReading(
            f"gpu:{gpu.index}",
            energy_j,
            self.polled_source,
            self.name,
            note,
            lower_j=lower_j,
            upper_j=upper_j,
            start_s=start.integrated_s[gpu.index],
            end_s=end.integrated_s[gpu.index],
        )

    def _reading(self, gpu: GpuState, start: Snapshot, end: Snapshot, duration_s: float) -> EnergyReading | None:
        """``gpu``'s reading for the window, None when it could not be read at both edges."""
        if not gpu.has_counter:
            return self._polled_reading(gpu, start, end, self._polled_note("no energy counter on this GPU"))
        if gpu.index not in start.counter or gpu.index not in end.counter:
            return None
        delta = end.counter[gpu.index] - start.counter[gpu.index]
        note = ""
        if delta < 0:
            delta += gpu.counter_modulus
            note = "energy counter wrapped around during the window"
        energy_j = gpu.ticks_j(delta)
        if energy_j > plausible_j(gpu.power_limit_w, duration_s):
            message = (
                f"GPU {gpu.index}'s energy counter jumped by {energy_j:.3g} J in {duration_s:.2f} s "
                "(counter reset, e.g. a driver reload)"
            )
            fallback = self._polled_reading(gpu, start, end, self._polled_note(f"{message}; instead"))
            if fallback is None:
                raise MeterError(f"{self.name} meter: {message}, and no power samples to fall back on")
            logger.warning("%s; using integrated polled power for this window", message)
            return fallback
        return EnergyReading(
            f"gpu:{gpu.index}",
            energy_j,
            self.counter_source,
            self.name,
            note,
            start_s=start.counter_s[gpu.index],
            end_s=end.counter_s[gpu.index],
        )

    # -- past intervals ----------------------------------------------------------------------------------------------

    def energy_between(self, start_s: float, end_s: float) -> list[IntervalReading]:
        """Each GPU's energy between two instants on the meter's clock, read back from its record (J, bounded).

        A GPU whose record does not reach past both edges (the interval lies outside every window and poll), or
        whose counter jumped implausibly within it (a reset), gives no reading.
        """
        if not self._initialized or end_s <= start_s:
            return []
        with self._lock:
            records = [
                (gpu, gpu.record.copy(), (gpu.variance_record.copy(), gpu.gap_record.copy()), list(gpu.resets_s))
                for gpu in self._gpus
            ]
        readings: list[IntervalReading] = []
        for gpu, record, spread, resets_s in records:
            reading = interval_reading(
                gpu, (record, *spread), resets_s, (start_s, end_s), self.source_of(gpu), self.name, self._polled_note
            )
            if reading is not None:
                readings.append(reading)
        return readings

    # -- description and shutdown ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """GPUs measured (name, uuid, bus id, power limit, counter availability, source), driver and polling set-up."""
        discovered = bool(self._gpus)
        selection = selection_text(self._requested, self._server, self._server_found, self._visible_count, discovered)
        polled = any(not g.has_counter for g in self._gpus)
        library = self._library if self._library is not None else self._library_factory()
        return {
            "library": library.bindings,
            "selection": selection,
            "gpu_ids": [gpu.index for gpu in self._gpus] if discovered else self._requested,
            "driver_version": self._driver_version,
            "poll_interval_s": self._poll_interval_s,
            # Polled GPUs are sampled at random intervals (uniform 0.5-1.5 x the period) so nothing aliases.
            "poll_jitter": "uniform 0.5-1.5 x poll_interval_s" if polled else None,
            "sampling_bound_sigmas": SAMPLING_BOUND_SIGMAS,
            # Counter readings are exact at window edges; only polled power (no counter) has an update period.
            "update_period_s": self._poll_interval_s if polled else None,
            "timeline": str(self.timeline_path),
            "server_processes": None
            if self._server is None
            else {"port": self._server.port, "pids": sorted(self._server.pids), "found": self._server.found},
            "gpus": [gpu_identity(gpu, self._matched_by.get(gpu.index), self.source_of(gpu)) for gpu in self._gpus],
        }

    def _shutdown(self) -> None:
        if self._initialized:
            self._initialized = False
            if self._library is not None:
                self._library.close()

    def close(self) -> None:
        """Stop the poller, write ``timeline.csv`` and close the library."""
        if self._stop_polling():
            self._drop_open_windows()
            self._timeline.flush()
            logger.debug("%s meter: %d timeline rows in %s", self.name, self._timeline.rows_written, self.timeline_path)
        self._shutdown()
