"""A record of a cumulative energy over time, from which the energy of a past interval is read back with bounds.

Counter meters (NVML, RAPL) add a sample at every poll and window edge. An interval known only after the fact (the
HTTP backend's steady state) rarely starts or ends on a sample, so :meth:`CumulativeRecord.interval` gives:

- ``lower_j``: the energy between the first and last samples inside the interval (certainly spent within it);
- ``upper_j``: the energy between the last sample before it and the first sample after it (covers it);
- ``energy_j``: linear interpolation at both edges (constant power between two samples), between the two.

Memory is bounded: past ``max_samples`` every other sample is dropped, so the record still spans the whole run at a
coarser spacing, which the bounds then show.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass

#: Samples kept before the record is thinned (16 bytes each: a float time and a float energy).
DEFAULT_MAX_SAMPLES = 1_000_000


@dataclass(frozen=True)
class IntervalEstimate:
    """The energy of one interval read back from a record, in J, with the spacing of the samples at its edges."""

    energy_j: float
    lower_j: float
    upper_j: float
    #: Widest gap (s) between an edge's neighbouring samples: how far the interpolation reaches.
    edge_spacing_s: float
    #: Duration (s) of the span of samples that covers the interval (for plausibility checks).
    covering_s: float


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
            self.times_s, self.energies_j = self.times_s[::2], self.energies_j[::2]

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
        return IntervalEstimate(energy_j, lower_j, upper_j, spacing_s, times[after] - times[before])
