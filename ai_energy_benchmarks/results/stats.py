"""Small statistics helpers (no numpy, no scipy): mean, sample std, percentiles, Student's t and Welch's t-test.

A leaf module: it imports nothing from the package. Student's t quantiles are computed for every number of degrees
of freedom (no switch to the normal 1.96 for large samples) by inverting the t distribution's CDF, which is the
regularised incomplete beta function evaluated with its continued fraction.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Relative accuracy the continued fraction of the incomplete beta function is iterated to.
_EPS = 1e-15
#: Smallest magnitude used in the modified Lentz method (avoids dividing by zero).
_TINY = 1e-300
_MAX_ITERATIONS = 20_000


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


# -- the regularised incomplete beta function and Student's t ----------------------------------------------------------
def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz); converges fast for x < (a + 1) / (a + b + 2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, _MAX_ITERATIONS + 1):
        two_m = 2 * m
        for numerator in (
            m * (b - m) * x / ((a + two_m - 1.0) * (a + two_m)),
            -(a + m) * (a + b + m) * x / ((a + two_m) * (a + two_m + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < _EPS:
            return result
    raise ArithmeticError(f"the incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def regularized_incomplete_beta(a: float, b: float, x: float, one_minus_x: float | None = None) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1. Pass ``one_minus_x`` when 1 - x is known more precisely than x."""
    if a <= 0 or b <= 0:
        raise ValueError("the incomplete beta function needs a > 0 and b > 0")
    y = 1.0 - x if one_minus_x is None else one_minus_x
    if not 0.0 <= x <= 1.0 or not 0.0 <= y <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if x == 0.0:
        return 0.0
    if y == 0.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log(y) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def student_t_two_sided_p(t: float, dof: float) -> float:
    """P(|T| >= |t|) for Student's t with ``dof`` (> 0, not necessarily whole) degrees of freedom."""
    if dof <= 0:
        raise ValueError("degrees of freedom must be > 0")
    if math.isinf(t):
        return 0.0
    t2 = t * t
    return regularized_incomplete_beta(dof / 2.0, 0.5, dof / (dof + t2), t2 / (dof + t2))


def student_t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t with ``dof`` degrees of freedom."""
    tail = student_t_two_sided_p(t, dof) / 2.0
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, dof: float) -> float:
    """The ``p`` quantile (0 < p < 1) of Student's t with ``dof`` (> 0) degrees of freedom, to ~1e-12 relative.

    Solves P(|T| >= t) = 2 min(p, 1 - p) for t >= 0 by Newton's method on t, kept inside a bisection bracket.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p}")
    if dof <= 0:
        raise ValueError("degrees of freedom must be > 0")
    if p == 0.5:
        return 0.0
    target = 2.0 * min(p, 1.0 - p)
    low, high = 0.0, 1.0
    while student_t_two_sided_p(high, dof) > target:
        low, high = high, high * 2.0
        if high > 1e300:
            raise ArithmeticError(f"no t quantile found for p={p}, dof={dof}")
    log_norm = math.lgamma((dof + 1.0) / 2.0) - math.lgamma(dof / 2.0) - 0.5 * math.log(dof * math.pi)
    t = (low + high) / 2.0
    for _ in range(200):
        excess = student_t_two_sided_p(t, dof) - target  # decreasing in t
        if excess > 0:
            low = t
        else:
            high = t
        density = math.exp(log_norm - (dof + 1.0) / 2.0 * math.log1p(t * t / dof))
        step = excess / (2.0 * density) if density > 0 else math.inf
        candidate = t + step
        if not low < candidate < high:
            candidate = (low + high) / 2.0
        if abs(candidate - t) <= 1e-14 * max(abs(candidate), 1e-300) or high - low <= 1e-15 * high:
            t = candidate
            break
        t = candidate
    return t if p > 0.5 else -t


@functools.lru_cache(maxsize=4096)
def t_critical_95(dof: float) -> float:
    """Two-sided 95% Student's t critical value (the 0.975 quantile) for ``dof`` degrees of freedom, any dof > 0."""
    if dof < 1:
        raise ValueError("degrees of freedom must be >= 1")
    return student_t_quantile(0.975, dof)


# -- Welch's unequal-variances t-test ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WelchResult:
    """Welch's t-test of mean b - mean a: the statistic, Welch-Satterthwaite degrees of freedom, two-sided p."""

    t: float
    dof: float
    p_value: float

    #: What the test is called, for reports.
    test: str = "Welch's t-test (unequal variances, Welch-Satterthwaite df), two-sided"


def welch_t_test(
    mean_a: float, std_a: float, count_a: int, mean_b: float, std_b: float, count_b: int
) -> WelchResult | None:
    """Welch's t-test from two samples' means, sample standard deviations (n - 1) and sizes.

    None when it cannot be computed: fewer than two values on either side, or both standard deviations zero.
    """
    if count_a < 2 or count_b < 2 or std_a < 0 or std_b < 0:
        return None
    var_a, var_b = std_a * std_a / count_a, std_b * std_b / count_b
    se2 = var_a + var_b
    if se2 <= 0 or not math.isfinite(se2):
        return None
    t = (mean_b - mean_a) / math.sqrt(se2)
    dof = se2 * se2 / (var_a * var_a / (count_a - 1) + var_b * var_b / (count_b - 1))
    return WelchResult(t=t, dof=dof, p_value=student_t_two_sided_p(t, dof))


#: The standard normal's 97.5% quantile: a two-sided 95% interval is +- this many standard errors.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion (95% by default): ``(low, high)``, None when ``trials`` is 0.

    ``low = (p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``p = successes / trials``, and
    ``high`` with ``+``; it stays within [0, 1] and is 0 (1) at the edge when no (every) trial succeeded.
    """
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..{trials}, got {successes}")
    n = float(trials)
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    low = 0.0 if successes == 0 else max(0.0, (centre - spread) / denominator)
    high = 1.0 if successes == trials else min(1.0, (centre + spread) / denominator)
    return (low, high)


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, std, 95% CI half-width and bounds (Student's t for every n), coefficient of variation, min,
    p50, p90, p99, max."""
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
