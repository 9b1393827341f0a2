"""Power traces for simulated hardware: power as a function of elapsed seconds, with the exact energy integral.

Piecewise-linear traces (constants, steps, ramps) integrate in closed form; a plain callable is integrated
numerically (composite Simpson, steps of at most 1 ms). Shared by the simulated NVML and AMD SMI libraries.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["PiecewiseLinearTrace", "PowerSpec", "PowerTrace", "as_trace", "constant_trace", "ramp_trace", "step_trace"]

# Numerical integration step for traces given as plain callables (seconds).
_SIMPSON_MAX_STEP_S = 1e-3


# --------------------------------------------------------------------------------------------------------------------
# Power traces
# --------------------------------------------------------------------------------------------------------------------


@runtime_checkable
class PowerTrace(Protocol):
    """Power as a function of elapsed time, with its exact integral."""

    def power_w(self, t_s: float) -> float:
        """Power in W at ``t_s`` seconds after the simulation started."""

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Energy in J drawn between ``t0_s`` and ``t1_s`` (seconds since the simulation started)."""


class PiecewiseLinearTrace:
    """Power that is linear between ``(t_s, power_w)`` points, constant before the first and after the last.

    Two points at the same time make a step (the later point applies from that instant on). The integral is
    computed in closed form, so the ground truth is exact.
    """

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        if not points:
            raise ValueError("a trace needs at least one (t_s, power_w) point")
        times = [float(t) for t, _ in points]
        if any(b < a for a, b in itertools.pairwise(times)):
            raise ValueError("trace points must be in time order")
        self._times = times
        self._powers = [float(w) for _, w in points]
        # Cumulative energy (J) at each point, counted from the first point.
        self._cumulative = [0.0]
        for i in range(len(times) - 1):
            dt = times[i + 1] - times[i]
            self._cumulative.append(self._cumulative[-1] + dt * (self._powers[i] + self._powers[i + 1]) / 2.0)

    def power_w(self, t_s: float) -> float:
        """Power in W at ``t_s``."""
        i = bisect.bisect_right(self._times, t_s) - 1
        if i < 0:
            return self._powers[0]
        if i == len(self._times) - 1:
            return self._powers[-1]
        t_a, t_b = self._times[i], self._times[i + 1]
        w_a, w_b = self._powers[i], self._powers[i + 1]
        return w_a + (w_b - w_a) * (t_s - t_a) / (t_b - t_a)

    def _antiderivative(self, t_s: float) -> float:
        """Energy in J from the first point to ``t_s`` (negative before it)."""
        i = bisect.bisect_right(self._times, t_s) - 1
        if i < 0:
            return self._powers[0] * (t_s - self._times[0])
        dt = t_s - self._times[i]
        if i == len(self._times) - 1:
            return self._cumulative[i] + self._powers[i] * dt
        slope = (self._powers[i + 1] - self._powers[i]) / (self._times[i + 1] - self._times[i])
        return self._cumulative[i] + self._powers[i] * dt + slope * dt * dt / 2.0

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Exact energy in J between ``t0_s`` and ``t1_s``."""
        return self._antiderivative(t1_s) - self._antiderivative(t0_s)


def constant_trace(power_w: float) -> PiecewiseLinearTrace:
    """A constant draw of ``power_w`` W."""
    return PiecewiseLinearTrace([(0.0, power_w)])


def step_trace(initial_w: float, steps: Sequence[tuple[float, float]]) -> PiecewiseLinearTrace:
    """``initial_w`` W, then each ``(t_s, power_w)`` step from ``t_s`` seconds on."""
    points = [(0.0, initial_w)]
    level = initial_w
    for t_s, power_w in steps:
        points += [(t_s, level), (t_s, power_w)]
        level = power_w
    return PiecewiseLinearTrace(points)


def ramp_trace(start_w: float, end_w: float, start_s: float, end_s: float) -> PiecewiseLinearTrace:
    """``start_w`` W until ``start_s``, a linear ramp to ``end_w`` W at ``end_s``, then constant."""
    return PiecewiseLinearTrace([(start_s, start_w), (end_s, end_w)])


class _CallableTrace:
    """A trace given as a plain function of elapsed seconds; integrated numerically (composite Simpson).

    Counter reads integrate from 0, so the running integral is cached and extended incrementally.
    """

    def __init__(self, function: Callable[[float], float]) -> None:
        self._function = function
        self._lock = threading.Lock()
        self._cached_t_s = 0.0
        self._cached_j = 0.0

    def power_w(self, t_s: float) -> float:
        return float(self._function(t_s))

    def _simpson(self, t0_s: float, t1_s: float) -> float:
        if t1_s == t0_s:
            return 0.0
        n = max(2, math.ceil(abs(t1_s - t0_s) / _SIMPSON_MAX_STEP_S))
        n += n % 2
        h = (t1_s - t0_s) / n
        total = self.power_w(t0_s) + self.power_w(t1_s)
        total += 4.0 * sum(self.power_w(t0_s + k * h) for k in range(1, n, 2))
        total += 2.0 * sum(self.power_w(t0_s + k * h) for k in range(2, n, 2))
        return total * h / 3.0

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        if t0_s == 0.0 and t1_s >= 0.0:
            with self._lock:
                if t1_s >= self._cached_t_s:
                    self._cached_j += self._simpson(self._cached_t_s, t1_s)
                    self._cached_t_s = t1_s
                    return self._cached_j
        return self._simpson(t0_s, t1_s)


PowerSpec = float | Callable[[float], float] | PowerTrace


def as_trace(power: PowerSpec) -> PowerTrace:
    if isinstance(power, PowerTrace):
        return power
    if isinstance(power, int | float):
        return constant_trace(float(power))
    if callable(power):
        return _CallableTrace(power)
    raise TypeError(f"power must be a number (W), a callable of elapsed seconds, or a PowerTrace; got {power!r}")
