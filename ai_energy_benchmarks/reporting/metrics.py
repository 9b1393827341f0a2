"""The key figures ``compare`` puts side by side, each read from a typed report with its 95% interval and its
samples' statistics (mean, standard deviation, count) where the report has them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ai_energy_benchmarks.reporting.runs import prompts_per_second, source_kind
from ai_energy_benchmarks.results.model import BenchmarkResult, Statistics

Interval = tuple[float, float]
#: A figure's samples as a report summarises them: mean, sample standard deviation, count.
Sample = tuple[float, float, int]
Reader = Callable[[BenchmarkResult], float | None]
StatisticsOf = Callable[[BenchmarkResult], Statistics | None]

#: Two-sided p-value below which a difference is marked significant.
SIGNIFICANCE_LEVEL = 0.05
#: The test, as the outputs name it.
TEST_NAME = "Welch's t-test (unequal variances, Welch-Satterthwaite df), two-sided"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def repetitions(report: BenchmarkResult) -> int:
    """Measured passes over the prompts: the repetition rows, else the configured count, else 1."""
    if report.repetitions:
        return len(report.repetitions)
    return report.config.repetitions or 1


def _per_pass(key: str, device: str | None = None) -> Reader:
    """``energy.<key>`` divided by the number of repetitions (one pass over the prompts).

    With ``device``, None when that device's energy was not read at all (a 0 by absence is no figure).
    """

    def value(report: BenchmarkResult) -> float | None:
        if device is not None and source_kind(report.energy.sources.get(device)) == "absent":
            return None
        total = _number(getattr(report.energy, key))
        return None if total is None else total / repetitions(report)

    return value


def _repetition_statistics(key: str) -> StatisticsOf:
    def statistics(report: BenchmarkResult) -> Statistics | None:
        block = report.repetition_statistics
        return None if block is None else getattr(block, key)

    return statistics


def _latency_statistics(key: str) -> StatisticsOf:
    def statistics(report: BenchmarkResult) -> Statistics | None:
        return None if report.latency is None else getattr(report.latency, key)

    return statistics


def _interval(of: StatisticsOf, scale: Reader | None = None) -> Callable[[BenchmarkResult], Interval | None]:
    """The 95% interval ``(ci95_low, ci95_high)`` of a statistics block, optionally scaled."""

    def interval(report: BenchmarkResult) -> Interval | None:
        block = of(report)
        low, high = (None, None) if block is None else (_number(block.ci95_low), _number(block.ci95_high))
        if low is None or high is None:
            return None
        factor = 1.0 if scale is None else scale(report)
        if factor is None:
            return None
        return (low * factor, high * factor)

    return interval


def _sample(of: StatisticsOf, scale: Reader | None = None) -> Callable[[BenchmarkResult], Sample | None]:
    """``(mean, std, count)`` of a statistics block (mean and std optionally scaled)."""

    def sample(report: BenchmarkResult) -> Sample | None:
        block = of(report)
        if block is None:
            return None
        centre, spread, count = _number(block.mean), _number(block.std), _number(block.count)
        if centre is None or spread is None or count is None or count < 2:
            return None
        factor = 1.0 if scale is None else scale(report)
        if factor is None:
            return None
        return (centre * factor, abs(spread * factor), int(count))

    return sample


def _per_1000_queries_factor(report: BenchmarkResult) -> float | None:
    """Converts energy per repetition (Wh) into Wh per 1,000 successful queries."""
    successful = report.summary.successful_prompts
    if not successful:
        return None
    return 1000.0 / (successful / repetitions(report))


def _energy(key: str) -> Reader:
    return lambda report: _number(getattr(report.energy, key))


def _latency(block: str, key: str) -> Reader:
    def value(report: BenchmarkResult) -> float | None:
        statistics = _latency_statistics(block)(report)
        return None if statistics is None else _number(getattr(statistics, key))

    return value


def _quality(key: str) -> Reader:
    """``quality.<key>`` (None for a run without a scorer, or where the figure is null)."""

    def value(report: BenchmarkResult) -> float | None:
        return None if report.quality is None else _number(getattr(report.quality, key))

    return value


def _quality_interval(key: str) -> Callable[[BenchmarkResult], Interval | None]:
    """``quality.<key>_ci95`` where both ends are finite (an unbounded end gives no interval)."""

    def interval(report: BenchmarkResult) -> Interval | None:
        bounds = None if report.quality is None else getattr(report.quality, f"{key}_ci95")
        if not bounds or len(bounds) != 2:
            return None
        low, high = _number(bounds[0]), _number(bounds[1])
        return None if low is None or high is None else (low, high)

    return interval


@dataclass(frozen=True)
class Metric:
    """A key figure: how to read it (with its 95% interval and its samples' statistics) from a report, its unit,
    and which way is better."""

    key: str
    label: str
    unit: str
    better: str
    value: Reader
    interval: Callable[[BenchmarkResult], Interval | None] = field(default=lambda report: None)
    sample: Callable[[BenchmarkResult], Sample | None] = field(default=lambda report: None)


def _with_statistics(
    key: str, label: str, unit: str, better: str, value: Reader, of: StatisticsOf, scale: Reader | None = None
) -> Metric:
    return Metric(key, label, unit, better, value, _interval(of, scale), _sample(of, scale))


_TOTAL = _repetition_statistics("total_energy_wh")

#: The figures compared, in table order. Energy per pass and per token carry repetition CIs.
METRICS: tuple[Metric, ...] = (
    _with_statistics(
        "energy_per_pass_wh", "energy per pass over the prompts", "Wh", "lower", _per_pass("total_energy_wh"), _TOTAL
    ),
    _with_statistics(
        "wh_per_1000_queries",
        "energy per 1,000 queries",
        "Wh",
        "lower",
        _energy("total_wh_per_1000_queries"),
        _TOTAL,
        _per_1000_queries_factor,
    ),
    _with_statistics(
        "joules_per_output_token",
        "energy per output token",
        "J",
        "lower",
        _energy("joules_per_output_token"),
        _repetition_statistics("joules_per_output_token"),
    ),
    _with_statistics(
        "gpu_energy_per_pass_wh",
        "GPU energy per pass",
        "Wh",
        "lower",
        _per_pass("gpu_energy_wh", "gpu"),
        _repetition_statistics("gpu_energy_wh"),
    ),
    Metric(
        "joules_per_correct_answer",
        "energy per correct answer",
        "J",
        "lower",
        _quality("joules_per_correct_answer"),
        _quality_interval("joules_per_correct_answer"),
    ),
    Metric(
        "wh_per_1000_correct_answers",
        "energy per 1,000 correct answers",
        "Wh",
        "lower",
        _quality("wh_per_1000_correct_answers"),
        _quality_interval("wh_per_1000_correct_answers"),
    ),
    Metric("accuracy", "accuracy (scored answers)", "", "higher", _quality("accuracy"), _quality_interval("accuracy")),
    Metric("total_energy_wh", "total energy (all repetitions)", "Wh", "lower", _energy("total_energy_wh")),
    Metric("emissions_g_per_pass", "emissions per pass", "g CO2eq", "lower", _per_pass("emissions_g_co2eq")),
    _with_statistics(
        "output_tokens_per_second",
        "output throughput",
        "tokens/s",
        "higher",
        lambda report: _number(report.summary.throughput_output_tokens_per_second),
        _repetition_statistics("output_tokens_per_second"),
    ),
    Metric("prompts_per_second", "prompts per second", "1/s", "higher", prompts_per_second),
    _with_statistics(
        "latency_mean_s",
        "end-to-end latency, mean",
        "s",
        "lower",
        _latency("latency_s", "mean"),
        _latency_statistics("latency_s"),
    ),
    Metric("latency_p50_s", "end-to-end latency, p50", "s", "lower", _latency("latency_s", "p50")),
    Metric("latency_p99_s", "end-to-end latency, p99", "s", "lower", _latency("latency_s", "p99")),
    _with_statistics(
        "ttft_mean_s",
        "time to first token, mean",
        "s",
        "lower",
        _latency("ttft_s", "mean"),
        _latency_statistics("ttft_s"),
    ),
    Metric("ttft_p50_s", "time to first token, p50", "s", "lower", _latency("ttft_s", "p50")),
    Metric("ttft_p99_s", "time to first token, p99", "s", "lower", _latency("ttft_s", "p99")),
)

__all__ = ["METRICS", "SIGNIFICANCE_LEVEL", "TEST_NAME", "Interval", "Metric", "Sample", "repetitions"]
