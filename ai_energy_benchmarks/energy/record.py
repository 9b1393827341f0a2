"""A record of a cumulative energy over time, from which the energy of a past interval is read back with bounds.

Counter meters (NVML, RAPL) add a sample at every poll and window edge. An interval known only after the fact (the
HTTP backend's steady state) rarely starts or ends on a sample, so :meth:`CumulativeRecord.interval` gives:

- ``lower_j``: the energy between the first and last samples inside the interval;
- ``upper_j``: the energy between the last sample before it and the first sample after it;
- ``energy_j``: linear interpolation at both edges (constant power between two samples), between the two.

The bounds are exact relative to the times the counter was read; a counter that the hardware itself updates with
a lag (RAPL's and NVML's update at their own rate, milliseconds apart) shifts them by that lag. When the samples
inside the interval span less than half of it, the figure is mostly interpolation: :attr:`IntervalEstimate.mostly_read`
is False and meters label it an estimate (:data:`INTERPOLATED_SOURCE`).

Memory is bounded: past ``max_samples`` every other sample is dropped, so the record still spans the whole run at a
coarser spacing, which the bounds then show.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass

#: Samples kept before the record is thinned (16 bytes each: a float time and a float energy).
DEFAULT_MAX_SAMPLES = 1_000_000
#: The source label of an interval figure that is mostly interpolation between two distant counter reads.
INTERPOLATED_SOURCE = "estimated:interpolated-counter-record"


@dataclass(frozen=True)
class IntervalEstimate:
    """The energy of one interval read back from a record, in J, with the spacing of the samples at its edges."""

    energy_j: float
    lower_j: float
    upper_j: float
    #: Widest gap (s) between an edge's neighbouring samples: how far the interpolation reaches.
    edge_spacing_s: float
    #: Times (s) of the last sample before the interval and the first after it: the span that covers it.
    covering_from_s: float
    covering_to_s: float
    #: Duration (s) between the first and last samples inside the interval: the part read, not interpolated.
    inside_s: float
    #: Duration (s) of the interval itself.
    duration_s: float

    @property
    def covering_s(self) -> float:
        """Duration (s) of the span of samples that covers the interval (for plausibility checks)."""
        return self.covering_to_s - self.covering_from_s

    @property
    def mostly_read(self) -> bool:
        """True when counter reads inside the interval span at least half of it (the rest is interpolated)."""
        return self.inside_s >= 0.5 * self.duration_s


class CumulativeRecord:
    """Samples ``(time_s, energy_j)`` of a non-decreasing cumulative energy; times are ``time.perf_counter()``.

    Not thread-safe by itself: the meter that owns it adds and copies under its own lock.
    """

    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        if max_samples < 4:
            raise ValueError("max_samples must be at least 4")
        self._max_samples = max_samples
        self.times_s = array("d")
        self.energies_j = array("d")

    def __len__(self) -> int:
        return len(self.times_s)

    def add(self, time_s: float, energy_j: float) -> None:
        """Append a sample; a sample not later than the last one is ignored (the record stays time-ordered)."""
        if self.times_s and time_s <= self.times_s[-1]:
            return
        self.times_s.append(time_s)
        self.energies_j.append(energy_j)
        if len(self.times_s) > self._max_samples:
            # Every other sample, always keeping the first and the newest, so the record still spans the whole run.
            last = len(self.times_s) - 1
            times, energies = self.times_s[0:last:2], self.energies_j[0:last:2]
            times.append(self.times_s[last])
            energies.append(self.energies_j[last])
            self.times_s, self.energies_j = times, energies

    def copy(self) -> CumulativeRecord:
        """An independent copy (take it under the owner's lock, then read it without holding the lock)."""
        duplicate = CumulativeRecord(self._max_samples)
        duplicate.times_s, duplicate.energies_j = self.times_s[:], self.energies_j[:]
        return duplicate

    def interval(self, start_s: float, end_s: float) -> IntervalEstimate | None:
        """The energy between ``start_s`` and ``end_s``; None unless samples exist at or beyond both edges."""
        times, values = self.times_s, self.energies_j
        if end_s <= start_s:
            return None
        before = bisect.bisect_right(times, start_s) - 1  # last sample at or before the start
        after = bisect.bisect_left(times, end_s)  # first sample at or after the end
        if before < 0 or after >= len(times):
            return None
        first_inside = bisect.bisect_left(times, start_s)
        last_inside = bisect.bisect_right(times, end_s) - 1

        def at(time_s: float, low: int) -> float:
            if times[low] == time_s or low + 1 >= len(times):
                return float(values[low])
            share = (time_s - times[low]) / (times[low + 1] - times[low])
            return float(values[low] + share * (values[low + 1] - values[low]))

        energy_j = at(end_s, last_inside) - at(start_s, before)
        upper_j = float(values[after] - values[before])
        lower_j = float(values[last_inside] - values[first_inside]) if first_inside <= last_inside else 0.0
        spacing_s = max(times[first_inside] - times[before], times[after] - times[last_inside])
        inside_s = times[last_inside] - times[first_inside] if first_inside <= last_inside else 0.0
        return IntervalEstimate(
            energy_j, lower_j, upper_j, spacing_s, times[before], times[after], inside_s, end_s - start_s
        )
