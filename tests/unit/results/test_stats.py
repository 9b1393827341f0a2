"""Student's t quantiles for every n, and Welch's t-test, against published values and independent arithmetic."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from welch_reference import EXAMPLE_1, EXAMPLE_2, mean_std, welch_by_hand

from ai_energy_benchmarks.results import stats

# Quantiles of Student's t published with at least 9 significant digits. (dof, p, t)
# - William Shaw's table of t quantiles (King's College London, "tquantiles.csv"), as quoted in Boost.Math's
#   test_students_t.cpp spot tests;
# - the 0.975 quantiles printed by R's qt() and SAS's TINV() (e.g. SAS TINV(0.975, 32) = 2.0369333435), which every
#   t table with more than three decimals reproduces.
PUBLISHED = [
    (2, 0.01, -6.96455673428326),
    (5, 0.01, -3.36492999890721),
    (1, 0.00001, -31830.988607907),
    (25, 0.00001, -5.2410429995425),
    (1, 0.000005, -63661.97723),
    (5, 0.000005, -17.89686614),
    (25, 0.000005, -5.510848412),
    (10, 0.05, -1.812461123),
    (10, 0.95, 1.812461123),
    (10, 0.999999, 9.751995491),
    (5, 0.3, -0.559429644),
    (5, 0.9, 1.475884049),
    (3, 0.025, -3.1824463052837),
    (1, 0.975, 12.7062047362),
    (2, 0.975, 4.30265272975),
    (4, 0.975, 2.77644510520),
    (5, 0.975, 2.57058183661),
    (10, 0.975, 2.22813885196),
    (11, 0.975, 2.20098516009),
    (30, 0.975, 2.04227245630),
    (31, 0.975, 2.03951344640),
    (32, 0.975, 2.03693334346),
    (60, 0.975, 2.00029782201),
    (100, 0.975, 1.98397151845),
    (1000, 0.975, 1.96233908083),
]


@pytest.mark.parametrize(("dof", "p", "expected"), PUBLISHED)
def test_t_quantiles_match_a_published_table_to_1e_6(dof: int, p: float, expected: float) -> None:
    assert stats.student_t_quantile(p, dof) == pytest.approx(expected, rel=1e-6)


def test_t_quantiles_match_the_closed_forms_for_1_2_and_4_degrees_of_freedom() -> None:
    """Exact formulas (Cauchy for 1 dof; Hill 1970 for 2 and 4 dof), independent of the incomplete beta."""
    for p in (1e-6, 0.001, 0.01, 0.05, 0.2, 0.3, 0.45, 0.55, 0.7, 0.9, 0.975, 0.995, 0.999999):
        assert stats.student_t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
        assert stats.student_t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
        alpha = 4 * p * (1 - p)
        q = math.cos(math.acos(math.sqrt(alpha)) / 3) / math.sqrt(alpha)
        four = math.copysign(2 * math.sqrt(q - 1), p - 0.5)
        assert stats.student_t_quantile(p, 4) == pytest.approx(four, rel=1e-8)


def test_t_quantile_and_cdf_are_inverse_and_fall_towards_the_normal_for_every_dof() -> None:
    previous = math.inf
    for dof in range(1, 1001):
        t = stats.t_critical_95(dof)
        assert stats.student_t_cdf(t, dof) == pytest.approx(0.975, abs=1e-12)
        assert 1.959963984540054 < t < previous  # strictly decreasing towards z(0.975), never equal to it
        previous = t


@pytest.mark.parametrize(
    ("count", "dof_quantile", "too_narrow_before"), [(32, 2.03951344640, 0.039), (101, 1.98397151845, 0.012)]
)
def test_confidence_interval_uses_student_t_past_30_degrees_of_freedom(
    count: int, dof_quantile: float, too_narrow_before: float
) -> None:
    values = [float(i % 7) + 0.25 * i for i in range(count)]
    described = stats.describe(values)
    expected_half_width = dof_quantile * statistics_stdev(values) / math.sqrt(count)
    assert described["ci95_half_width"] == pytest.approx(expected_half_width, rel=1e-6)
    # The old 1.96 cut-off made this interval narrower by the figure.
    normal_half_width = 1.96 * statistics_stdev(values) / math.sqrt(count)
    narrower = 1 - normal_half_width / float(described["ci95_half_width"] or 0)
    assert narrower == pytest.approx(too_narrow_before, abs=5e-4)


def statistics_stdev(values: list[float]) -> float:
    import statistics

    return statistics.stdev(values)


# -- Welch's t-test -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "published"), [EXAMPLE_1, EXAMPLE_2])
def test_welch_matches_hand_computation_and_the_published_example(
    a: list[float], b: list[float], published: tuple[float, float, float]
) -> None:
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    t, dof, p = welch_by_hand(mean_a, std_a, len(a), mean_b, std_b, len(b))

    result = stats.welch_t_test(mean_b, std_b, len(b), mean_a, std_a, len(a))  # tests a - b
    assert result is not None
    assert result.t == pytest.approx(t, rel=1e-12)
    assert result.dof == pytest.approx(dof, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-7)
    published_t, published_dof, published_p = published
    assert round(result.t, 2) == published_t
    assert round(result.dof, 2) == pytest.approx(published_dof, abs=0.011)
    assert round(result.p_value, 3) == published_p
    assert "Welch" in result.test


def test_welch_needs_two_values_and_some_spread() -> None:
    assert stats.welch_t_test(1.0, 0.5, 1, 2.0, 0.5, 5) is None
    assert stats.welch_t_test(1.0, 0.0, 4, 2.0, 0.0, 5) is None
    same = stats.welch_t_test(1.0, 0.5, 4, 1.0, 0.5, 4)
    assert same is not None and same.t == 0.0 and same.p_value == pytest.approx(1.0)


def test_stats_is_a_leaf_module() -> None:
    source = Path(stats.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "functools", "math", "collections", "dataclasses"}
