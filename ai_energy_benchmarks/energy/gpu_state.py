"""Per-GPU state of the GPU meter (:mod:`ai_energy_benchmarks.energy.gpu`): the unwrapped energy counter, the
integral of polled power with its sampling variance, and the record that past intervals are read back from.

Times are seconds on the meter's clock; energies in J; the counter in the device's own ticks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ai_energy_benchmarks.energy.base import IntervalReading
from ai_energy_benchmarks.energy.devices.base import GpuDevice
from ai_energy_benchmarks.energy.record import CumulativeRecord

logger = logging.getLogger(__name__)

#: Half-width of a polled figure's bounds, in estimated standard errors of the sampling (see :func:`bounds`).
SAMPLING_BOUND_SIGMAS = 4.0

# A counter difference above this many seconds at the power limit, on top of the window itself, is not energy
# the GPU can have drawn: the counter was reset (driver reload) rather than wrapped.
_COUNTER_SLACK_S = 1.0
_DEFAULT_LIMIT_W = 1000.0


def plausible_j(limit_w: float | None, duration_s: float) -> float:
    """The most energy (J) a GPU with power limit ``limit_w`` can draw in ``duration_s``, with a wide margin."""
    return 2.0 * (limit_w or _DEFAULT_LIMIT_W) * (max(duration_s, 0.0) + _COUNTER_SLACK_S)


def bounds(energy_j: float, variance_j2: float) -> tuple[float, float]:
    """Bounds (J) of a polled integral: ``SAMPLING_BOUND_SIGMAS`` standard errors each side, never below 0.

    The variance is the sum over sampling gaps of ``h**2 * dP**2 / 2`` (``h`` the gap in s, ``dP`` the change of
    power across it in W): the trapezoid's error over a gap is about ``h`` times how far the power strays between its
    two samples, estimated from how much it changed across the gap. With jittered sampling the gaps' errors are
    nearly independent, so their variances add. A window whose few samples happen to agree says little about the
    variation between them, so the variance is at least the window's squared gaps times the run's mean
    ``dP**2 / 2`` per gap (:meth:`GpuState.variance_j2_between`).
    """
    half_j = SAMPLING_BOUND_SIGMAS * math.sqrt(max(variance_j2, 0.0))
    return max(0.0, energy_j - half_j), energy_j + half_j


@dataclass
class GpuState:
    """A selected GPU, its static facts and its power integrator (guarded by the meter's lock)."""

    device: GpuDevice
    power_limit_w: float | None
    has_counter: bool
    #: Where the counter wraps (ticks) and how many mJ a tick is.
    counter_modulus: int
    resolution_mj: float
    last_sample_s: float | None = None
    last_power_w: float | None = None
    integrated_j: float = 0.0
    #: Running sampling variance (J^2) of ``integrated_j`` (see :func:`bounds`), the running sum of squared gaps
    #: (s^2), and the run's count of gaps and sum of ``dP**2 / 2`` (W^2) for the variance floor.
    variance_j2: float = 0.0
    gap_s2: float = 0.0
    gaps: int = 0
    spread_w2: float = 0.0
    power_error_logged: bool = False
    #: Cumulative energy (J) over time: the unwrapped counter, or the power integral without one.
    record: CumulativeRecord = field(default_factory=CumulativeRecord)
    #: The running sampling variance (J^2) and squared gaps (s^2) at the same times as ``record`` (polled GPUs).
    variance_record: CumulativeRecord = field(default_factory=CumulativeRecord)
    gap_record: CumulativeRecord = field(default_factory=CumulativeRecord)
    last_raw: int | None = None
    last_raw_s: float | None = None
    #: The first raw counter value: the record holds energy since then (small numbers keep float precision).
    base_raw: int | None = None
    wrap_offset: int = 0
    #: Times at which the counter was seen to restart (driver reload): no interval may span one.
    resets_s: list[float] = field(default_factory=list)
    #: When the GPU stopped answering, and the library's error; None while it answers.
    failed_at_s: float | None = None
    failure: str = ""

    @property
    def index(self) -> int:
        return self.device.index

    def ticks_j(self, ticks: int) -> float:
        """``ticks`` of the counter in J."""
        return ticks * self.resolution_mj / 1000.0

    def add_power(self, time_s: float, power_w: float) -> None:
        """Extend the trapezoid integral with a power sample taken at ``time_s``."""
        if self.last_sample_s is not None and self.last_power_w is not None:
            gap_s = time_s - self.last_sample_s
            self.integrated_j += gap_s * (power_w + self.last_power_w) / 2.0
            spread_w2 = (power_w - self.last_power_w) ** 2 / 2.0
            self.variance_j2 += gap_s * gap_s * spread_w2
            self.gap_s2 += gap_s * gap_s
            self.gaps += 1
            self.spread_w2 += spread_w2
        self.last_sample_s, self.last_power_w = time_s, power_w

    def remember(self, time_s: float, raw: int | None) -> None:
        """Append a cumulative-energy sample: the counter (``raw`` ticks) or, without one, the power integral."""
        if raw is None:
            if self.last_sample_s is not None:  # the integral is current as of the last power sample, not now
                self.record.add(self.last_sample_s, self.integrated_j)
                self.variance_record.add(self.last_sample_s, self.variance_j2)
                self.gap_record.add(self.last_sample_s, self.gap_s2)
            return
        if self.last_raw is not None and raw < self.last_raw:
            # Backwards: a wraparound of the counter's range if the wrapped difference is energy the GPU can have
            # drawn since the last read, otherwise a restart (driver reload). Continue from the last value and
            # remember when, so no interval spans it.
            wrapped_j = self.ticks_j(raw + self.counter_modulus - self.last_raw)
            if wrapped_j <= plausible_j(self.power_limit_w, time_s - (self.last_raw_s or time_s)):
                self.wrap_offset += self.counter_modulus
            else:
                self.wrap_offset += self.last_raw
                self.resets_s.append(time_s)
        if self.base_raw is None:
            self.base_raw = raw
        self.last_raw, self.last_raw_s = raw, time_s
        self.record.add(time_s, self.ticks_j(raw + self.wrap_offset - self.base_raw))

    def variance_j2_between(self, variance_j2: float, gap_s2: float) -> float:
        """The sampling variance (J^2) of an integral over gaps whose local variance sums to ``variance_j2`` and
        whose squared lengths sum to ``gap_s2``: at least the run's mean variation per gap (see :func:`bounds`)."""
        rate_w2 = self.spread_w2 / self.gaps if self.gaps else 0.0
        return max(variance_j2, gap_s2 * rate_w2)

    def failed(self, at_s: float, error: object) -> None:
        """Note that a read failed at ``at_s`` (the first failure of a run of them is kept)."""
        if self.failed_at_s is None:
            self.failed_at_s, self.failure = at_s, str(error) or type(error).__name__

    def answered(self) -> None:
        """A read succeeded: the GPU answers again."""
        self.failed_at_s, self.failure = None, ""


@dataclass(frozen=True)
class Snapshot:
    """Cumulative values at one window edge, per GPU index; a GPU that did not answer is missing."""

    time_s: float
    counter: dict[int, int] = field(default_factory=dict)
    #: When each counter value was read.
    counter_s: dict[int, float] = field(default_factory=dict)
    integrated_j: dict[int, float | None] = field(default_factory=dict)
    #: When the last power sample of each integral was taken, and the integral's sampling variance (J^2) then.
    integrated_s: dict[int, float] = field(default_factory=dict)
    variance_j2: dict[int, float] = field(default_factory=dict)
    gap_s2: dict[int, float] = field(default_factory=dict)


def interval_reading(
    gpu: GpuState,
    records: tuple[CumulativeRecord, CumulativeRecord, CumulativeRecord],
    resets_s: list[float],
    interval_s: tuple[float, float],
    source: str,
    meter: str,
    polled_note: Callable[[str], str],
) -> IntervalReading | None:
    """``gpu``'s energy over a past interval from copies of its (energy, variance, squared-gap) records, labelled
    ``source``; None when the record does not cover it or the counter restarted or jumped within it."""
    record, variance_record, gap_record = records
    start_s, end_s = interval_s
    estimate = record.interval(start_s, end_s)
    if estimate is None:
        logger.warning(
            "%s meter: GPU %d's record does not cover %.3f-%.3f s; no interval reading",
            meter,
            gpu.index,
            start_s,
            end_s,
        )
        return None
    restarted = any(estimate.covering_from_s < t <= estimate.covering_to_s for t in resets_s)
    if restarted or estimate.upper_j < 0 or estimate.upper_j > plausible_j(gpu.power_limit_w, estimate.covering_s):
        logger.warning(
            "%s meter: GPU %d's energy counter restarted or jumped (%.3g J) within %.3f-%.3f s (driver reload?); no "
            "interval reading",
            meter,
            gpu.index,
            estimate.upper_j,
            start_s,
            end_s,
        )
        return None
    what = "the energy counter" if gpu.has_counter else "the integrated polled power"
    reading = IntervalReading.from_estimate(f"gpu:{gpu.index}", estimate, source, meter, what)
    if gpu.has_counter:
        return reading
    # Polled power: widen the edge bounds by the sampling error over the span of samples that covers the interval.
    local, gaps = variance_record.interval(start_s, end_s), gap_record.interval(start_s, end_s)
    variance_j2 = gpu.variance_j2_between(
        local.upper_j if local is not None else 0.0, gaps.upper_j if gaps is not None else 0.0
    )
    lower_j, _ = bounds(estimate.lower_j, variance_j2)
    _, upper_j = bounds(estimate.upper_j, variance_j2)
    return dataclasses.replace(
        reading,
        lower_j=min(lower_j, reading.energy_j),
        upper_j=max(upper_j, reading.energy_j),
        note=f"{reading.note}; {polled_note('no energy counter on this GPU')}",
    )
