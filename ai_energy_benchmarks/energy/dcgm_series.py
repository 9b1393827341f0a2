"""The energy of one GPU over one window from its scraped DCGM samples, with bounds from the sampling.

Samples are ``(time_s, value)``: Unix seconds of the scrape and the value scraped. A value scraped at ``t`` may be
up to ``lag_s`` old (the exporter's own collect interval), so it reflects the GPU at some instant in
``[t - lag_s, t]``. For a window ``[t0, t1]``:

- **upper bound**: the energy between the last sample surely before the window start and the first surely after
  its end (the outer samples);
- **lower bound**: the energy between the first and last samples surely inside the window (the inner samples);
- **central figure**: the cumulative energy interpolated linearly at both edges (constant power between samples).

The energy counter (``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION``, mJ since boot) is unwrapped first: a value below the
previous one is a reset (exporter or driver restart, or a wrap). The energy after a reset is counted from the new
value (the counter restarted from 0 within the gap); the part of the gap before the restart is not read, so it is
estimated from the power on either side and the bounds widen to cover it (lower: the new value alone; upper: twice
the higher neighbouring power over the whole gap). The power gauge (``DCGM_FI_DEV_POWER_USAGE``, W) is the fallback:
trapezoid integration, each gap bounded by its two samples' lower and higher power widened by the series' mean
change between samples.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from dataclasses import dataclass

Samples = list[tuple[float, float]]

#: A reset gap's upper bound assumes the power in it stayed below this many times the higher neighbouring power.
RESET_GAP_POWER_FACTOR = 2.0


@dataclass(frozen=True)
class Span:
    """One GPU's energy over one window (J) with its bounds, and what the samples said about it."""

    energy_j: float
    lower_j: float
    upper_j: float
    #: Median gap (s) between the series' samples around the window: the scrape interval seen.
    scrape_interval_s: float
    #: Duration (s) between the first and last samples inside the window: the part read, not interpolated.
    inside_s: float
    #: Counter resets (or wraps) inside the span of samples that covers the window.
    resets: int = 0


def scrape_interval_s(samples: Samples) -> float | None:
    """The median gap (s) between consecutive samples; None with fewer than two."""
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples) if b[0] > a[0]]
    return statistics.median(gaps) if gaps else None


@dataclass(frozen=True)
class _Cumulative:
    times_s: list[float]
    energy_j: list[float]
    #: Per sample index i (the gap from i-1 to i was a reset): how far below and above the estimate it may be (J).
    reset_slack: dict[int, tuple[float, float]]


def _rate_w(times: list[float], values_j: list[float], i: int) -> float | None:
    """Mean power (W) of the gap ending at sample ``i`` (None if outside the samples)."""
    if i < 1 or i >= len(times) or times[i] <= times[i - 1]:
        return None
    return (values_j[i] - values_j[i - 1]) / (times[i] - times[i - 1])


def unwrap_counter(samples: Samples) -> _Cumulative:
    """Cumulative energy (J) at each sample from a counter in mJ that may reset (see the module docstring)."""
    times = [t for t, _ in samples]
    raw_j = [v / 1000.0 for _, v in samples]
    energy = [0.0] * len(samples)
    slack: dict[int, tuple[float, float]] = {}
    for i in range(1, len(samples)):
        step_j = raw_j[i] - raw_j[i - 1]
        if step_j >= 0:
            energy[i] = energy[i - 1] + step_j
            continue
        known_j = raw_j[i]  # the counter restarted from 0 inside the gap
        gap_s = times[i] - times[i - 1]
        neighbours = [
            r
            for r in (
                _rate_w(times, raw_j, i - 1)
                if i - 1 not in slack and i >= 2 and raw_j[i - 1] >= raw_j[i - 2]
                else None,
                _rate_w(times, raw_j, i + 1) if i + 1 < len(samples) and raw_j[i + 1] >= raw_j[i] else None,
            )
            if r is not None and r >= 0
        ]
        estimate_j = max(known_j, gap_s * sum(neighbours) / len(neighbours)) if neighbours else known_j
        ceiling_j = known_j + gap_s * RESET_GAP_POWER_FACTOR * max(neighbours) if neighbours else float("inf")
        ceiling_j = max(ceiling_j, estimate_j)
        energy[i] = energy[i - 1] + estimate_j
        slack[i] = (estimate_j - known_j, ceiling_j - estimate_j)
    return _Cumulative(times, energy, slack)


def _power_cumulative(samples: Samples) -> tuple[_Cumulative, float]:
    """The trapezoid integral (J) of power samples (W) at each sample, and the series' mean change between
    samples (W) that widens each gap's bounds."""
    times = [t for t, _ in samples]
    energy = [0.0] * len(samples)
    changes: list[float] = []
    for i in range(1, len(samples)):
        energy[i] = energy[i - 1] + (times[i] - times[i - 1]) * (samples[i][1] + samples[i - 1][1]) / 2.0
        changes.append(abs(samples[i][1] - samples[i - 1][1]))
    return _Cumulative(times, energy, {}), (sum(changes) / len(changes) if changes else 0.0)


def _interpolate(times: list[float], values: list[float], at_s: float) -> float:
    j = max(0, min(bisect.bisect_right(times, at_s) - 1, len(times) - 2))
    if times[j + 1] == times[j]:
        return values[j]
    share = min(1.0, max(0.0, (at_s - times[j]) / (times[j + 1] - times[j])))
    return values[j] + share * (values[j + 1] - values[j])


def _edges(times: list[float], t0: float, t1: float, lag_s: float) -> tuple[int, int, int, int] | None:
    """Indices of the outer samples (before, after) and inner samples (first, last); None when the samples do not
    bracket the window."""
    before = bisect.bisect_right(times, t0) - 1  # t <= t0: surely before the start
    after = bisect.bisect_left(times, t1 + lag_s)  # t - lag >= t1: surely after the end
    if before < 0 or after >= len(times):
        return None
    first = bisect.bisect_left(times, t0 + lag_s)  # t - lag >= t0: surely inside (from the start)
    last = bisect.bisect_right(times, t1) - 1  # t <= t1: surely inside (to the end)
    return before, after, first, last


def counter_span(samples: Samples, t0: float, t1: float, lag_s: float = 0.0) -> Span | None:
    """Energy (J) of window ``[t0, t1]`` (Unix s) from energy-counter samples (mJ); None unless samples bracket it."""
    if len(samples) < 2:
        return None
    cumulative = unwrap_counter(samples)
    times, energy = cumulative.times_s, cumulative.energy_j
    edges = _edges(times, t0, t1, lag_s)
    if edges is None:
        return None
    before, after, first, last = edges
    resets = [i for i in cumulative.reset_slack if before < i <= after]
    upper = energy[after] - energy[before] + sum(cumulative.reset_slack[i][1] for i in resets)
    if first <= last:
        inner_resets = [i for i in resets if first < i <= last]
        lower = energy[last] - energy[first] - sum(cumulative.reset_slack[i][0] for i in inner_resets)
        inside_s = times[last] - times[first]
    else:
        lower, inside_s = 0.0, 0.0
    shifted = [t - lag_s / 2.0 for t in times]
    central = _interpolate(shifted, energy, t1) - _interpolate(shifted, energy, t0)
    lower = max(0.0, lower)
    interval = scrape_interval_s(samples[before : after + 1]) or (t1 - t0)
    return Span(min(max(central, lower), upper), lower, upper, interval, inside_s, len(resets))


def power_span(samples: Samples, t0: float, t1: float, lag_s: float = 0.0) -> Span | None:
    """Energy (J) of window ``[t0, t1]`` from power samples (W) by the trapezoid rule; None unless they bracket it."""
    if len(samples) < 2:
        return None
    cumulative, mean_change_w = _power_cumulative(samples)
    times = cumulative.times_s
    edges = _edges(times, t0, t1 + lag_s, 0.0)
    if edges is None:
        return None
    before, after, first, last = edges
    central = _interpolate(times, cumulative.energy_j, t1) - _interpolate(times, cumulative.energy_j, t0)
    lower = upper = 0.0
    for i in range(before, after):
        overlap_s = min(times[i + 1], t1) - max(times[i], t0)
        if overlap_s <= 0:
            continue
        low_w, high_w = sorted((samples[i][1], samples[i + 1][1]))
        lower += overlap_s * max(0.0, low_w - mean_change_w)
        upper += overlap_s * (high_w + mean_change_w)
    inside_s = times[last] - times[first] if first <= last else 0.0
    interval = scrape_interval_s(samples[before : after + 1]) or (t1 - t0)
    return Span(min(max(central, lower), upper), lower, upper, interval, inside_s)
