"""Small statistics helpers (no numpy needed): mean, sample std, percentiles, Student's t intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence

# Two-sided 95% Student's t critical values by degrees of freedom (1..30); beyond 30 the normal 1.96 is close.
_T95 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, None for no values."""
    return sum(values) / len(values) if values else None


def stdev(values: Sequence[float]) -> float | None:
    """Sample standard deviation (n - 1), None for fewer than two values."""
    if len(values) < 2:
        return None
    centre = sum(values) / len(values)
    return math.sqrt(sum((v - centre) ** 2 for v in values) / (len(values) - 1))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def t_critical_95(dof: int) -> float:
    """Two-sided 95% Student's t critical value for ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError("degrees of freedom must be >= 1")
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, std, 95% CI half-width and bounds, coefficient of variation, min, p50, p90, p99, max."""
    count = len(values)
    centre = mean(values)
    spread = stdev(values)
    half_width = spread * t_critical_95(count - 1) / math.sqrt(count) if spread is not None else None
    return {
        "count": count,
        "mean": centre,
        "std": spread,
        "ci95_half_width": half_width,
        "ci95_low": None if half_width is None or centre is None else centre - half_width,
        "ci95_high": None if half_width is None or centre is None else centre + half_width,
        "cv": None if spread is None or not centre else spread / centre,
        "min": min(values) if values else None,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }
