"""NVML meter: NVIDIA GPU energy from the driver's cumulative energy counter, power polling as a labelled fallback.

Per selected GPU, a window's energy is the difference of ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the
driver loaded) between the window's edges (``measured:nvml-energy-counter``). GPUs without that counter (pre-Volta,
many vGPUs) are estimated by polling ``nvmlDeviceGetPowerUsage`` at random intervals averaging
``metrics.nvml_poll_interval_s`` (jittered, so a load that repeats at the polling rate is not sampled at one phase) and
integrating with the trapezoid rule (``estimated:nvml-power-integrated``), with bounds that cover the sampling error;
a power sample is also taken at each window edge. The same poller records a power, clock, temperature and utilisation
timeline, written to ``<output_dir>/timeline.csv``.

A GPU that stops answering NVML is never read as zero: the window it failed in, and every later one, gives no
reading for it, and :class:`IncompleteWindowError` says which GPU failed, with what error, and when.

Windows may nest and overlap: each open window keeps its own start snapshot. The meter also keeps a record of each
GPU's cumulative energy (the unwrapped counter, or the running power integral) at every poll and window edge, so the
energy of a past interval that was never opened as a window (the HTTP backend's steady state, known only afterwards)
can be read back with bounds: :meth:`NvmlMeter.energy_between`. All times are ``time.perf_counter()`` seconds, the
clock of the measured windows.

The bindings are nvidia-ml-py (module ``pynvml``), imported only when the meter is prepared.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyReading, IncompleteWindowError, IntervalReading, SnapshotWindows
from ai_energy_benchmarks.energy.record import CumulativeRecord
from ai_energy_benchmarks.exceptions import MeterError, MissingDependencyError

logger = logging.getLogger(__name__)

COUNTER_SOURCE = "measured:nvml-energy-counter"
#: Polled power is an estimate: the power between samples is not read, and NVML's reading is itself an average.
POLLED_SOURCE = "estimated:nvml-power-integrated"
#: Half-width of a polled figure's bounds, in estimated standard errors of the sampling (see :func:`_bounds`).
SAMPLING_BOUND_SIGMAS = 4.0

#: NVML's energy counter is an unsigned 64-bit count of millijoules.
NVML_COUNTER_MODULUS_MJ = 2**64

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
# Timeline rows kept in memory before they are appended to the file (bounds memory on long runs).
_TIMELINE_FLUSH_ROWS = 10_000

# NVML return codes (stable across driver and binding versions).
_NVML_ERROR_NOT_SUPPORTED = 3
_NVML_ERROR_NO_PERMISSION = 4
_NVML_ERROR_DRIVER_NOT_LOADED = 9
_NVML_ERROR_LIBRARY_NOT_FOUND = 12

# A counter difference above this many seconds at the power limit, on top of the window itself, is not energy
# the GPU can have drawn: the counter was reset (driver reload) rather than wrapped.
_COUNTER_SLACK_S = 1.0
_DEFAULT_LIMIT_W = 1000.0


def _plausible_j(limit_w: float | None, duration_s: float) -> float:
    """The most energy (J) a GPU with power limit ``limit_w`` can draw in ``duration_s``, with a wide margin."""
    return 2.0 * (limit_w or _DEFAULT_LIMIT_W) * (max(duration_s, 0.0) + _COUNTER_SLACK_S)


def _bounds(energy_j: float, variance_j2: float) -> tuple[float, float]:
    """Bounds (J) of a polled integral: ``SAMPLING_BOUND_SIGMAS`` standard errors each side, never below 0.

    The variance is the sum over sampling gaps of ``h**2 * dP**2 / 2`` (``h`` the gap in s, ``dP`` the change of
    power across it in W): the trapezoid's error over a gap is about ``h`` times how far the power strays between its
    two samples, estimated from how much it changed across the gap. With jittered sampling the gaps' errors are
    nearly independent, so their variances add. A window whose few samples happen to agree says little about the
    variation between them, so the variance is at least the window's squared gaps times the run's mean
    ``dP**2 / 2`` per gap (:meth:`_Gpu.variance_j2_between`).
    """
    half_j = SAMPLING_BOUND_SIGMAS * math.sqrt(max(variance_j2, 0.0))
    return max(0.0, energy_j - half_j), energy_j + half_j


_PERMISSION_HINT = (
    "the user needs read access to /dev/nvidia* (e.g. membership of the group that owns them), "
    "or the container must be started with GPU access (--gpus)"
)


class MissingBindingsError(MissingDependencyError, MeterError):
    """nvidia-ml-py is not installed: a missing optional dependency (exit code 2) raised by a meter."""


def _import_pynvml() -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise MissingBindingsError(
            f"the nvml meter needs NVIDIA's NVML bindings, which are not installed ({exc}): pip install nvidia-ml-py"
        ) from exc
    return pynvml


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


@dataclass
class _Gpu:
    """A selected GPU, its static facts and its power integrator (guarded by the meter's lock)."""

    index: int
    handle: Any
    name: str
    uuid: str
    power_limit_w: float | None
    has_counter: bool
    counter_modulus_mj: int
    last_sample_s: float | None = None
    last_power_w: float | None = None
    integrated_j: float = 0.0
    #: Running sampling variance (J^2) of ``integrated_j`` (see :func:`_bounds`), the running sum of squared gaps
    #: (s^2), and the run's count of gaps and sum of ``dP**2 / 2`` (W^2) for the variance floor.
    variance_j2: float = 0.0
    gap_s2: float = 0.0
    gaps: int = 0
    spread_w2: float = 0.0
    power_error_logged: bool = False
    #: Cumulative energy (J) over perf_counter time: the unwrapped counter, or the power integral without one.
    record: CumulativeRecord = field(default_factory=CumulativeRecord)
    #: The running sampling variance (J^2) and squared gaps (s^2) at the same times as ``record`` (polled GPUs).
    variance_record: CumulativeRecord = field(default_factory=CumulativeRecord)
    gap_record: CumulativeRecord = field(default_factory=CumulativeRecord)
    last_raw_mj: int | None = None
    last_raw_s: float | None = None
    #: The first raw counter value: the record holds energy since then (small numbers keep float precision).
    base_mj: int | None = None
    wrap_offset_mj: int = 0
    #: perf_counter times at which the counter was seen to restart (driver reload): no interval may span one.
    resets_s: list[float] = field(default_factory=list)
    #: When (perf_counter s) the GPU stopped answering, and NVML's error; None while it answers.
    failed_at_s: float | None = None
    failure: str = ""

    def remember(self, time_s: float, raw_mj: int | None) -> None:
        """Append a cumulative-energy sample: the counter (``raw_mj``) or, without one, the power integral."""
        if raw_mj is None:
            if self.last_sample_s is not None:  # the integral is current as of the last power sample, not now
                self.record.add(self.last_sample_s, self.integrated_j)
                self.variance_record.add(self.last_sample_s, self.variance_j2)
                self.gap_record.add(self.last_sample_s, self.gap_s2)
            return
        if self.last_raw_mj is not None and raw_mj < self.last_raw_mj:
            # Backwards: a wraparound of the counter's range if the wrapped difference is energy the GPU can have
            # drawn since the last read, otherwise a restart (driver reload). Continue from the last value and
            # remember when, so no interval spans it.
            wrapped_j = (raw_mj + self.counter_modulus_mj - self.last_raw_mj) / 1000.0
            if wrapped_j <= _plausible_j(self.power_limit_w, time_s - (self.last_raw_s or time_s)):
                self.wrap_offset_mj += self.counter_modulus_mj
            else:
                self.wrap_offset_mj += self.last_raw_mj
                self.resets_s.append(time_s)
        if self.base_mj is None:
            self.base_mj = raw_mj
        self.last_raw_mj, self.last_raw_s = raw_mj, time_s
        self.record.add(time_s, (raw_mj + self.wrap_offset_mj - self.base_mj) / 1000.0)

    def variance_j2_between(self, variance_j2: float, gap_s2: float) -> float:
        """The sampling variance (J^2) of an integral over gaps whose local variance sums to ``variance_j2`` and
        whose squared lengths sum to ``gap_s2``: at least the run's mean variation per gap (see :func:`_bounds`)."""
        rate_w2 = self.spread_w2 / self.gaps if self.gaps else 0.0
        return max(variance_j2, gap_s2 * rate_w2)

    def failed(self, at_s: float, error: object) -> None:
        """Note that a read failed at ``at_s`` (the first failure of a run of them is kept)."""
        if self.failed_at_s is None:
            self.failed_at_s, self.failure = at_s, str(error) or type(error).__name__

    def answered(self) -> None:
        """A read succeeded: the GPU answers again."""
        self.failed_at_s, self.failure = None, ""

    @property
    def source(self) -> str:
        return COUNTER_SOURCE if self.has_counter else POLLED_SOURCE


@dataclass(frozen=True)
class _Snapshot:
    """Cumulative values at one window edge, per GPU index; a GPU that did not answer is missing."""

    time_s: float
    counter_mj: dict[int, int] = field(default_factory=dict)
    #: When each counter value was read (perf_counter s).
    counter_s: dict[int, float] = field(default_factory=dict)
    integrated_j: dict[int, float | None] = field(default_factory=dict)
    #: When the last power sample of each integral was taken, and the integral's sampling variance (J^2) then.
    integrated_s: dict[int, float] = field(default_factory=dict)
    variance_j2: dict[int, float] = field(default_factory=dict)
    gap_s2: dict[int, float] = field(default_factory=dict)


class NvmlMeter(SnapshotWindows[_Snapshot]):
    """Energy of the selected NVIDIA GPUs through NVML, one ``gpu:N`` reading per GPU and window."""

    name = "nvml"
    #: The power/clock/temperature timeline (see :meth:`timeline_path`).
    output_files: ClassVar[tuple[str, ...]] = (TIMELINE_FILE,)

    def __init__(
        self,
        config: MetricsConfig,
        output_dir: Path,
        gpu_ids: list[int] | None = None,
        *,
        counter_modulus_mj: int = NVML_COUNTER_MODULUS_MJ,
        poll_seed: int | None = None,
    ) -> None:
        """``counter_modulus_mj``: where the energy counter wraps (NVML: 2^64 mJ; tests of a simulated short counter
        may set less). ``poll_seed`` seeds the random polling intervals (None: a fresh seed)."""
        if counter_modulus_mj <= 0:
            raise ValueError("counter_modulus_mj must be positive")
        self._counter_modulus_mj = int(counter_modulus_mj)
        self._poll_seed = poll_seed
        self._poll_interval_s = float(config.nvml_poll_interval_s)
        self._output_dir = Path(output_dir)
        self._requested = list(gpu_ids) if gpu_ids is not None else None
        self._nvml: Any = None
        self._initialized = False
        self._gpus: list[_Gpu] = []
        self._visible_count = 0
        self._driver_version = "unknown"
        self._init_windows()
        self._origin_s = 0.0
        self._rows: list[tuple[Any, ...]] = []
        self._timeline_rows_written = 0
        self._timeline_header_written = False

    @property
    def timeline_path(self) -> Path:
        """Where the power/clock/temperature/utilisation timeline is written."""
        return self._output_dir / TIMELINE_FILE

    # -- set-up ------------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Initialise NVML, check the selected GPUs, probe their counters and start the poller."""
        if self._initialized:
            return
        nvml = _import_pynvml()
        try:
            nvml.nvmlInit()
        except Exception as exc:
            raise MeterError(self._init_message(exc)) from exc
        self._nvml = nvml
        self._initialized = True
        try:
            self._discover()
        except BaseException:
            self._shutdown()
            raise
        self._origin_s = time.perf_counter()
        with self._lock:
            for gpu in self._gpus:
                self._sample_power(gpu, strict=not gpu.has_counter)
                if not gpu.has_counter:
                    gpu.remember(time.perf_counter(), None)
        polled = any(not gpu.has_counter for gpu in self._gpus)
        self._start_polling(self._poll_interval_s, random.Random(self._poll_seed) if polled else None)
        logger.debug("nvml meter ready: %s", self.describe())

    @staticmethod
    def _init_message(exc: BaseException) -> str:
        code = _code(exc)
        if code == _NVML_ERROR_NO_PERMISSION:
            return f"NVML: permission denied when initialising ({exc}); {_PERMISSION_HINT}"
        if code in (_NVML_ERROR_LIBRARY_NOT_FOUND, _NVML_ERROR_DRIVER_NOT_LOADED):
            return (
                f"NVML is unavailable ({exc}): no NVIDIA driver is loaded on this machine, or it is not visible "
                "in this container; use metrics.type: codecarbon or rapl here"
            )
        return f"NVML could not be initialised: {exc}"

    def _discover(self) -> None:
        nvml = self._nvml
        self._gpus = []
        self._visible_count = int(nvml.nvmlDeviceGetCount())
        try:
            self._driver_version = _text(nvml.nvmlSystemGetDriverVersion())
        except Exception as exc:
            logger.debug("NVML driver version unavailable: %s", exc)
        indices = self._requested if self._requested is not None else list(range(self._visible_count))
        for index in indices:
            if not 0 <= index < self._visible_count:
                visible = f"indices 0-{self._visible_count - 1}" if self._visible_count else "none"
                raise MeterError(
                    f"NVML: GPU index {index} out of range: {self._visible_count} GPU(s) visible ({visible})"
                )
        for index in dict.fromkeys(indices):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            try:
                limit_w: float | None = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
            except Exception as exc:
                logger.debug("GPU %d: enforced power limit unavailable: %s", index, exc)
                limit_w = None
            has_counter = self._probe_counter(index, handle)
            self._gpus.append(
                _Gpu(
                    index=index,
                    handle=handle,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    power_limit_w=limit_w,
                    has_counter=has_counter,
                    counter_modulus_mj=self._counter_modulus_mj,
                )
            )
            if not has_counter:
                logger.warning(
                    "GPU %d has no NVML energy counter: its energy is estimated from power polled every %.0f ms on "
                    "average and integrated (%s)",
                    index,
                    self._poll_interval_s * 1000.0,
                    POLLED_SOURCE,
                )

    def _probe_counter(self, index: int, handle: Any) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as exc:
            code = _code(exc)
            if code == _NVML_ERROR_NOT_SUPPORTED:
                return False
            if code == _NVML_ERROR_NO_PERMISSION:
                raise MeterError(
                    f"NVML: permission denied reading GPU {index}'s energy counter ({exc}); {_PERMISSION_HINT}"
                ) from exc
            raise MeterError(f"NVML: cannot read GPU {index}'s energy counter: {exc}") from exc
        return True

    # -- sampling ----------------------------------------------------------------------------------------------------

    def _sample_power(self, gpu: _Gpu, strict: bool) -> float | None:
        """Read ``gpu``'s power (W) and extend its trapezoid integral. The caller holds the lock.

        With ``strict`` a failed read raises MeterError; otherwise it is logged once and None is returned.
        """
        before = time.perf_counter()
        try:
            power_w = self._nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1000.0
        except Exception as exc:
            if not gpu.has_counter:
                gpu.failed(before, exc)
            if strict:
                hint = f"; {_PERMISSION_HINT}" if _code(exc) == _NVML_ERROR_NO_PERMISSION else ""
                raise MeterError(f"NVML: cannot read GPU {gpu.index}'s power ({exc}){hint}") from exc
            if not gpu.power_error_logged:
                gpu.power_error_logged = True
                logger.warning("NVML: cannot read GPU %d's power: %s", gpu.index, exc)
            return None
        now = (before + time.perf_counter()) / 2.0
        if gpu.last_sample_s is not None and gpu.last_power_w is not None:
            gap_s = now - gpu.last_sample_s
            gpu.integrated_j += gap_s * (power_w + gpu.last_power_w) / 2.0
            spread_w2 = (power_w - gpu.last_power_w) ** 2 / 2.0
            gpu.variance_j2 += gap_s * gap_s * spread_w2
            gpu.gap_s2 += gap_s * gap_s
            gpu.gaps += 1
            gpu.spread_w2 += spread_w2
        gpu.last_sample_s, gpu.last_power_w = now, power_w
        if not gpu.has_counter:
            gpu.answered()
        return power_w

    def _optional(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, function)(*args)
        except Exception:
            return None

    def _poll(self) -> None:
        wall_s = time.time()
        for gpu in self._gpus:
            with self._lock:
                power_w = self._sample_power(gpu, strict=False)
                elapsed_s = (gpu.last_sample_s or time.perf_counter()) - self._origin_s
                self._remember(gpu, strict=False)
            sm_clock = self._optional("nvmlDeviceGetClockInfo", gpu.handle, getattr(self._nvml, "NVML_CLOCK_SM", 1))
            mem_clock = self._optional("nvmlDeviceGetClockInfo", gpu.handle, getattr(self._nvml, "NVML_CLOCK_MEM", 2))
            temperature = self._optional(
                "nvmlDeviceGetTemperature", gpu.handle, getattr(self._nvml, "NVML_TEMPERATURE_GPU", 0)
            )
            utilization = self._optional("nvmlDeviceGetUtilizationRates", gpu.handle)
            self._rows.append(
                (
                    f"{wall_s:.3f}",
                    f"{elapsed_s:.4f}",
                    gpu.index,
                    "" if power_w is None else f"{power_w:.3f}",
                    "" if sm_clock is None else sm_clock,
                    "" if mem_clock is None else mem_clock,
                    "" if temperature is None else temperature,
                    "" if utilization is None else getattr(utilization, "gpu", ""),
                )
            )
        if len(self._rows) >= _TIMELINE_FLUSH_ROWS:
            self._flush_timeline()

    def _read_counter(self, gpu: _Gpu) -> int:
        before = time.perf_counter()
        try:
            value = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
        except Exception as exc:
            gpu.failed(before, exc)
            raise MeterError(f"NVML: cannot read GPU {gpu.index}'s energy counter: {exc}") from exc
        gpu.answered()
        return value

    def _remember(self, gpu: _Gpu, strict: bool) -> int | None:
        """Read ``gpu``'s counter (if it has one) into its record; return the raw value. The caller holds the lock."""
        if not gpu.has_counter:
            gpu.remember(time.perf_counter(), None)
            return None
        try:
            before = time.perf_counter()
            raw_mj = self._read_counter(gpu)
            gpu.remember((before + time.perf_counter()) / 2.0, raw_mj)
        except MeterError:
            if strict:
                raise
            return None
        return raw_mj

    def _snapshot(self) -> _Snapshot:
        """Every GPU's cumulative values now; a GPU that does not answer is left out (and noted on the GPU)."""
        snapshot = _Snapshot(time_s=0.0)
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
                raw_mj = self._remember(gpu, strict=False)
                if raw_mj is not None:
                    snapshot.counter_mj[gpu.index] = raw_mj
                    snapshot.counter_s[gpu.index] = gpu.last_raw_s or time.perf_counter()
        return dataclasses.replace(snapshot, time_s=time.perf_counter())

    # -- windows -----------------------------------------------------------------------------------------------------

    def _ready(self) -> bool:
        return self._initialized

    def _readings(self, start: _Snapshot, end: _Snapshot) -> list[EnergyReading]:
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
                f"GPU {gpu.index} ({gpu.uuid}) stopped answering NVML ({gpu.failure or 'no reading'}) {when}: its "
                "energy for the window is unknown, not zero"
            )
        if problems:
            raise IncompleteWindowError(
                "nvml meter: " + "; ".join(problems), readings, None, min(failed_at) if failed_at else None
            )
        return readings

    def _polled_note(self, prefix: str) -> str:
        return (
            f"{prefix}: power polled at random intervals averaging {self._poll_interval_s * 1000:.0f} ms and "
            f"integrated (trapezoid); bounds: {SAMPLING_BOUND_SIGMAS:g} estimated standard errors of the sampling. "
            "NVML documents this power reading as an average over about 1 s on Ampere and newer GPUs (except "
            "GA100), which also blurs the window's edges by up to about 1 s"
        )

    def _polled_reading(self, gpu: _Gpu, start: _Snapshot, end: _Snapshot, note: str) -> EnergyReading | None:
        start_j, end_j = start.integrated_j.get(gpu.index), end.integrated_j.get(gpu.index)
        if start_j is None or end_j is None:
            return None
        energy_j = end_j - start_j
        variance_j2 = gpu.variance_j2_between(
            end.variance_j2[gpu.index] - start.variance_j2[gpu.index], end.gap_s2[gpu.index] - start.gap_s2[gpu.index]
        )
        lower_j, upper_j = _bounds(energy_j, variance_j2)
        return EnergyReading(
            f"gpu:{gpu.index}",
            energy_j,
            POLLED_SOURCE,
            self.name,
            note,
            lower_j=lower_j,
            upper_j=upper_j,
            start_s=start.integrated_s[gpu.index],
            end_s=end.integrated_s[gpu.index],
        )

    def _reading(self, gpu: _Gpu, start: _Snapshot, end: _Snapshot, duration_s: float) -> EnergyReading | None:
        """``gpu``'s reading for the window, None when it could not be read at both edges."""
        if not gpu.has_counter:
            return self._polled_reading(gpu, start, end, self._polled_note("no energy counter on this GPU"))
        if gpu.index not in start.counter_mj or gpu.index not in end.counter_mj:
            return None
        delta_mj = end.counter_mj[gpu.index] - start.counter_mj[gpu.index]
        note = ""
        if delta_mj < 0:
            delta_mj += gpu.counter_modulus_mj
            note = "energy counter wrapped around during the window"
        energy_j = delta_mj / 1000.0
        if energy_j > _plausible_j(gpu.power_limit_w, duration_s):
            message = (
                f"GPU {gpu.index}'s energy counter jumped by {energy_j:.3g} J in {duration_s:.2f} s "
                "(counter reset, e.g. a driver reload)"
            )
            fallback = self._polled_reading(gpu, start, end, self._polled_note(f"{message}; instead"))
            if fallback is None:
                raise MeterError(f"nvml meter: {message}, and no power samples to fall back on")
            logger.warning("%s; using integrated polled power for this window", message)
            return fallback
        return EnergyReading(
            f"gpu:{gpu.index}",
            energy_j,
            COUNTER_SOURCE,
            self.name,
            note,
            start_s=start.counter_s[gpu.index],
            end_s=end.counter_s[gpu.index],
        )

    # -- past intervals ----------------------------------------------------------------------------------------------

    def energy_between(self, start_s: float, end_s: float) -> list[IntervalReading]:
        """Each GPU's energy between two ``time.perf_counter()`` instants, read back from its record (J, bounded).

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
            reading = self._interval_reading(gpu, record, spread, resets_s, start_s, end_s)
            if reading is not None:
                readings.append(reading)
        return readings

    def _interval_reading(
        self,
        gpu: _Gpu,
        record: CumulativeRecord,
        spread: tuple[CumulativeRecord, CumulativeRecord],
        resets_s: list[float],
        start_s: float,
        end_s: float,
    ) -> IntervalReading | None:
        estimate = record.interval(start_s, end_s)
        if estimate is None:
            logger.warning(
                "nvml meter: GPU %d's record does not cover %.3f-%.3f s; no interval reading", gpu.index, start_s, end_s
            )
            return None
        restarted = any(estimate.covering_from_s < t <= estimate.covering_to_s for t in resets_s)
        implausible_j = _plausible_j(gpu.power_limit_w, estimate.covering_s)
        if restarted or estimate.upper_j < 0 or estimate.upper_j > implausible_j:
            logger.warning(
                "nvml meter: GPU %d's energy counter restarted or jumped (%.3g J) within %.3f-%.3f s (driver "
                "reload?); no interval reading",
                gpu.index,
                estimate.upper_j,
                start_s,
                end_s,
            )
            return None
        what = "the energy counter" if gpu.has_counter else "the integrated polled power"
        reading = IntervalReading.from_estimate(f"gpu:{gpu.index}", estimate, gpu.source, self.name, what)
        if gpu.has_counter:
            return reading
        # Polled power: widen the edge bounds by the sampling error over the span of samples that covers the interval.
        local, gaps = spread[0].interval(start_s, end_s), spread[1].interval(start_s, end_s)
        variance_j2 = gpu.variance_j2_between(
            local.upper_j if local is not None else 0.0, gaps.upper_j if gaps is not None else 0.0
        )
        lower_j, _ = _bounds(estimate.lower_j, variance_j2)
        _, upper_j = _bounds(estimate.upper_j, variance_j2)
        return dataclasses.replace(
            reading,
            lower_j=min(lower_j, reading.energy_j),
            upper_j=max(upper_j, reading.energy_j),
            note=f"{reading.note}; {self._polled_note('no energy counter on this GPU')}",
        )

    # -- description and shutdown ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """GPUs measured (name, uuid, power limit, counter availability, source), driver and polling set-up."""
        discovered = bool(self._gpus)
        if self._requested is None:
            selection = f"all visible GPUs ({self._visible_count})" if discovered else "all visible GPUs"
        else:
            selection = f"gpu_ids {self._requested}" + (f" of {self._visible_count} visible" if discovered else "")
        return {
            "library": "nvidia-ml-py (pynvml)",
            "selection": selection,
            "gpu_ids": [gpu.index for gpu in self._gpus] if discovered else self._requested,
            "driver_version": self._driver_version,
            "poll_interval_s": self._poll_interval_s,
            # Polled GPUs are sampled at random intervals (uniform 0.5-1.5 x the period) so nothing aliases.
            "poll_jitter": "uniform 0.5-1.5 x poll_interval_s" if any(not g.has_counter for g in self._gpus) else None,
            "sampling_bound_sigmas": SAMPLING_BOUND_SIGMAS,
            # Counter readings are exact at window edges; only polled power (no counter) has an update period.
            "update_period_s": self._poll_interval_s if any(not g.has_counter for g in self._gpus) else None,
            "timeline": str(self.timeline_path),
            "gpus": [
                {
                    "index": gpu.index,
                    "name": gpu.name,
                    "uuid": gpu.uuid,
                    "power_limit_w": gpu.power_limit_w,
                    "energy_counter": gpu.has_counter,
                    "source": gpu.source,
                }
                for gpu in self._gpus
            ],
        }

    def _flush_timeline(self) -> None:
        rows, self._rows = self._rows, []
        if not rows and self._timeline_header_written:
            return
        self._output_dir.mkdir(parents=True, exist_ok=True)
        mode = "a" if self._timeline_header_written else "w"
        with self.timeline_path.open(mode, newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if not self._timeline_header_written:
                writer.writerow(TIMELINE_COLUMNS)
                self._timeline_header_written = True
            writer.writerows(rows)
        self._timeline_rows_written += len(rows)

    def _shutdown(self) -> None:
        if self._initialized:
            self._initialized = False
            try:
                self._nvml.nvmlShutdown()
            except Exception as exc:
                logger.debug("nvmlShutdown failed: %s", exc)

    def close(self) -> None:
        """Stop the poller, write ``timeline.csv`` and shut NVML down."""
        if self._stop_polling():
            self._drop_open_windows()
            self._flush_timeline()
            logger.debug("nvml meter: %d timeline rows in %s", self._timeline_rows_written, self.timeline_path)
        self._shutdown()
