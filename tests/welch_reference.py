"""Welch's t-test worked by hand for tests: textbook samples, the formulas written out, and a p-value by numerical
integration of the t density (independent of the incomplete beta function the package uses)."""

from __future__ import annotations

import math

# Wikipedia, "Welch's t-test", Examples 1 and 2: the samples and the published Welch t (first minus second), df, p.
EXAMPLE_1 = (
    [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4],
    [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4],
    (-2.46, 24.99, 0.021),
)
EXAMPLE_2 = (
    [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8],
    [
        *(21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8),
        *(20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5, 21.5, 21.8),
    ],
    (-1.57, 9.90, 0.149),
)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1), written out."""
    centre = sum(values) / len(values)
    return centre, math.sqrt(sum((x - centre) ** 2 for x in values) / (len(values) - 1))


def welch_by_hand(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int
) -> tuple[float, float, float]:
    """(t, dof, two-sided p) of mean_a - mean_b: Welch's statistic, the Welch-Satterthwaite df, p by integration."""
    se_a, se_b = std_a**2 / n_a, std_b**2 / n_b
    t = (mean_a - mean_b) / math.sqrt(se_a + se_b)
    dof = (se_a + se_b) ** 2 / (se_a**2 / (n_a - 1) + se_b**2 / (n_b - 1))
    return t, dof, two_sided_p_by_integration(t, dof)


def two_sided_p_by_integration(t: float, dof: float) -> float:
    """2 * integral of the t density from |t| to infinity, by Simpson's rule after x = 1/u - 1."""
    norm = math.gamma((dof + 1) / 2) / (math.sqrt(dof * math.pi) * math.gamma(dof / 2))

    def integrand(u: float) -> float:  # dx = -du / u^2
        if u <= 0:
            return 0.0
        x = 1 / u - 1
        return norm * (1 + x * x / dof) ** (-(dof + 1) / 2) / (u * u)

    upper = 1 / (1 + abs(t))
    steps = 20_000
    h = upper / steps
    total = integrand(0) + integrand(upper)
    total += sum((4 if k % 2 else 2) * integrand(k * h) for k in range(1, steps))
    return 2 * total * h / 3
