"""The counter record that past intervals are read back from (ai_energy_benchmarks.energy.record)."""

from __future__ import annotations

import pytest

from ai_energy_benchmarks.energy.record import CumulativeRecord


def record_of(samples: list[tuple[float, float]], max_samples: int = 1000) -> CumulativeRecord:
    record = CumulativeRecord(max_samples)
    for time_s, energy_j in samples:
        record.add(time_s, energy_j)
    return record


# A device at 10 W from 0 to 1 s, then 30 W: the counter read every 0.25 s.
STEP = [(0.0, 0.0), (0.25, 2.5), (0.5, 5.0), (0.75, 7.5), (1.0, 10.0), (1.25, 17.5), (1.5, 25.0), (1.75, 32.5)]


def test_interval_between_reads_is_bounded_and_interpolated() -> None:
    estimate = record_of(STEP).interval(0.6, 1.4)
    assert estimate is not None
    assert estimate.lower_j == pytest.approx(17.5 - 7.5)  # reads inside: 0.75 s -> 1.25 s
    assert estimate.upper_j == pytest.approx(25.0 - 5.0)  # reads around: 0.5 s -> 1.5 s
    # 0.6-1.0 s at 10 W (4 J) + 1.0-1.4 s at 30 W (12 J) = 16 J; interpolation puts 0.25-s segments' mean power
    # on the edges: 0.6-0.75 s at 10 W and 1.25-1.4 s at 30 W are exact here, so is the total.
    assert estimate.energy_j == pytest.approx(16.0)
    assert estimate.edge_spacing_s == pytest.approx(0.25)
    assert (estimate.covering_from_s, estimate.covering_to_s) == (0.5, 1.5)
    assert estimate.mostly_read  # reads inside span 0.5 s of the 0.8 s interval


def test_edges_on_reads_are_exact() -> None:
    estimate = record_of(STEP).interval(0.5, 1.5)
    assert estimate is not None
    assert estimate.energy_j == estimate.lower_j == estimate.upper_j == pytest.approx(20.0)
    assert estimate.edge_spacing_s == 0.0


def test_an_interval_between_two_reads_is_mostly_interpolation() -> None:
    estimate = record_of(STEP).interval(1.3, 1.4)
    assert estimate is not None
    assert estimate.lower_j == 0.0 and estimate.upper_j == pytest.approx(7.5)
    assert estimate.energy_j == pytest.approx(3.0)
    assert not estimate.mostly_read


def test_an_interval_the_record_does_not_reach_gives_none() -> None:
    record = record_of(STEP)
    assert record.interval(-0.1, 0.5) is None  # starts before the first read
    assert record.interval(1.5, 2.0) is None  # ends after the last read
    assert record.interval(1.0, 1.0) is None  # empty


def test_out_of_order_samples_are_ignored() -> None:
    record = record_of([(0.0, 0.0), (1.0, 5.0), (0.5, 99.0), (1.0, 99.0), (2.0, 10.0)])
    assert list(record.times_s) == [0.0, 1.0, 2.0] and list(record.energies_j) == [0.0, 5.0, 10.0]


@pytest.mark.parametrize("max_samples", [4, 5, 10, 11])
def test_thinning_bounds_memory_and_keeps_the_span_and_the_newest_read(max_samples: int) -> None:
    record = record_of([(float(i), 2.0 * i) for i in range(100)], max_samples=max_samples)
    assert len(record) <= max_samples
    assert (record.times_s[0], record.times_s[-1]) == (0.0, 99.0)  # the whole span, newest reading included
    estimate = record.interval(10.0, 90.0)
    assert estimate is not None
    assert estimate.energy_j == pytest.approx(160.0)  # constant 2 W: interpolation is exact at any spacing
    assert estimate.lower_j <= 160.0 <= estimate.upper_j
