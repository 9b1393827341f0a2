"""The adaptive load sweep of an HTTP server: ``synchronous`` and ``throughput`` first, then request rates spread
between their measured request throughputs, stopping at the first rate that over-saturates the server.

    sweep = AdaptiveSweep(config_path="server.yaml", rates=5, slo_p99_s=2.0)
    outcome = sweep.run(on_event=print)
    outcome.stop.reason      # why it stopped: every rate ran, or which rate over-saturated the server and how

Each point is an ordinary sweep point (``backend.load_profile``, ``backend.concurrency``, ``backend.request_rate``
overrides) run by :class:`~ai_energy_benchmarks.sweeps.execution.Sweep` in its own run directory with its own energy
windows, so resuming works as for a grid: the two first points' reports give the same rates again, and completed
points are skipped. The summary (``adaptive_summary``) gives J/token, goodput and latency percentiles per rate and
the energy-latency Pareto front.

A rate over-saturates the server (:func:`.saturation.saturation`) when its queue grows (the achieved completion rate
falls well short of the offered rate, or the server's ``num_requests_waiting`` gauge rises through the run when
scraped) or when the time to first token diverges (p50 or p99 several times the previous point's).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.config.redact import redact_override
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.sweeps.execution import ProgressCallback, Sweep
from ai_energy_benchmarks.sweeps.grid import SweepParam, SweepPoint
from ai_energy_benchmarks.sweeps.outcome import PointOutcome, SweepEvent, SweepOutcome
from ai_energy_benchmarks.sweeps.saturation import PointLoad, SaturationLimits, StopReason, point_load, saturation

logger = logging.getLogger(__name__)

#: The load profiles a rate point may use.
RATE_PROFILES = ("constant", "poisson")
#: The keys the adaptive sweep sets on every point (a common override of one is read, then left to the points).
LOAD_KEYS = ("backend.load_profile", "backend.concurrency", "backend.request_rate")
_DROPPED_KEYS = (*LOAD_KEYS, "backend.arrival")


@dataclass
class AdaptiveOutcome(SweepOutcome):
    """A sweep outcome with the rates derived and why the sweep stopped."""

    rates_per_s: list[float] = field(default_factory=list)
    stop: StopReason | None = None
    loads: dict[str, PointLoad] = field(default_factory=dict)


def spread_rates(synchronous_per_s: float, throughput_per_s: float, count: int) -> list[float]:
    """``count`` request rates evenly spread strictly between the two measured throughputs (req/s), 3 significant
    digits (stable directory names); none when the throughput is not above the synchronous rate."""
    if count < 1 or not throughput_per_s > synchronous_per_s > 0:
        return []
    step = (throughput_per_s - synchronous_per_s) / (count + 1)
    rates = [float(f"{synchronous_per_s + step * i:.3g}") for i in range(1, count + 1)]
    return sorted(set(rates))


class AdaptiveSweep:
    """The adaptive load sweep of the HTTP server a base config names (see the module docstring).

    ``rates``: how many request rates to spread between the synchronous and throughput points; ``rate_profile``:
    ``constant`` or ``poisson`` arrivals at each rate. The throughput and rate points keep ``backend.concurrency``
    of the base config (with ``overrides``) as their limit of requests in flight. ``slo_p99_s`` / ``slo_ttft_p99_s``
    as for :class:`Sweep`; ``sweep_options`` are passed to every :class:`Sweep` it runs.
    """

    def __init__(
        self,
        config_path: str | Path | None = None,
        config_name: str | None = None,
        overrides: Sequence[str] = (),
        output_dir: str | Path | None = None,
        rates: int = 5,
        rate_profile: str = "constant",
        slo_p99_s: float | None = None,
        slo_ttft_p99_s: float | None = None,
        plot: bool = True,
        limits: SaturationLimits | None = None,
        **sweep_options: Any,
    ) -> None:
        from ai_energy_benchmarks.reporting import require_matplotlib
        from ai_energy_benchmarks.runner import create_benchmark

        if plot:
            require_matplotlib()
        if not 1 <= rates <= 100:
            raise ConfigError(f"--rates: give 1 to 100 request rates, got {rates}")
        if rate_profile not in RATE_PROFILES:
            raise ConfigError(f"--rate-profile: '{rate_profile}' is not one of {', '.join(RATE_PROFILES)}")
        self.rates, self.rate_profile, self.limits = rates, rate_profile, limits or SaturationLimits()
        self.config_path = None if config_path is None else str(config_path)
        self.config_name = config_name
        base = create_benchmark(config_path=self.config_path, overrides=list(overrides), config_name=config_name)
        backend = base.config.backend
        if backend.type != "vllm":
            raise ConfigError(
                f"--load adaptive sweeps the load on a server: backend.type must be vllm, got '{backend.type}'"
            )
        self.concurrency = int(getattr(backend, "concurrency", 1))
        if self.concurrency < 2:
            raise ConfigError(
                "--load adaptive: the throughput point keeps backend.concurrency requests in flight, which is "
                f"{self.concurrency}; set it to the most the server should see (e.g. backend.concurrency=64)"
            )
        dropped = [o for o in overrides if o.partition("=")[0].strip().lstrip("+") in _DROPPED_KEYS]
        if dropped:
            logger.info("the adaptive sweep sets the load itself; read, then left to its points: %s", dropped)
        self.overrides = [o for o in overrides if o not in dropped]
        self.directory = Path(output_dir) if output_dir is not None else Path(base.config.output_dir) / "sweep"
        self.slo_p99_s, self.slo_ttft_p99_s, self.plot = slo_p99_s, slo_ttft_p99_s, plot
        self.sweep_options = sweep_options
        #: No grid: the points are chosen as the sweep goes (``params`` is read by the summary).
        self.params: list[SweepParam] = []

    @property
    def public_overrides(self) -> list[str]:
        """The common overrides as they may be shown and written (secrets redacted)."""
        return [redact_override(override) for override in self.overrides]

    # -- points ---------------------------------------------------------------------------------------------------
    def _point(self, index: int, name: str, profile: str, concurrency: int, rate: float | None) -> SweepPoint:
        settings = (
            ("backend.load_profile", profile),
            ("backend.concurrency", str(concurrency)),
            ("backend.request_rate", "null" if rate is None else f"{rate:g}"),
        )
        return SweepPoint(index=index, settings=settings, name=name)

    def first_points(self) -> list[SweepPoint]:
        """The synchronous and the throughput point."""
        return [
            self._point(1, "01-synchronous", "synchronous", 1, None),
            self._point(2, "02-throughput", "throughput", self.concurrency, None),
        ]

    def rate_points(self, rates: Sequence[float]) -> list[SweepPoint]:
        """One point per request rate (req/s), in increasing order."""
        return [
            self._point(3 + i, f"{3 + i:02d}-{self.rate_profile}-{rate:g}", self.rate_profile, self.concurrency, rate)
            for i, rate in enumerate(rates)
        ]

    def sweep(self, points: Sequence[SweepPoint], plot: bool = False) -> Sweep:
        """The :class:`Sweep` that runs ``points`` in this sweep's directory."""
        return Sweep(
            [],
            config_path=self.config_path,
            config_name=self.config_name,
            overrides=self.overrides,
            output_dir=self.directory,
            slo_p99_s=self.slo_p99_s,
            slo_ttft_p99_s=self.slo_ttft_p99_s,
            plot=plot,
            points=points,
            **self.sweep_options,
        )

    def validate(self) -> None:
        """Check the first points' and a rate point's configs (nothing is run); raise the first error."""
        self.sweep([*self.first_points(), *self.rate_points([1.0])]).validate()

    def load_of(self, outcome: PointOutcome) -> PointLoad | None:
        """What a completed point's run says about the load it met (None for a point without a report)."""
        if outcome.status != "completed" or outcome.report is None:
            return None
        return point_load(outcome.report, outcome.run_dir, self.slo_ttft_p99_s, self.slo_p99_s)

    # -- running --------------------------------------------------------------------------------------------------
    def run(
        self, on_event: Callable[[SweepEvent], None] | None = None, progress: ProgressCallback | None = None
    ) -> AdaptiveOutcome:
        """Run the synchronous and throughput points, then the rates one by one until one over-saturates the
        server; write the summary (``adaptive_summary``) and return every point's outcome and why it stopped."""
        from ai_energy_benchmarks.sweeps import adaptive_summary

        self.validate()
        emit = on_event or (lambda event: None)
        outcomes: list[PointOutcome] = []
        planned = 2 + self.rates
        started, durations = time.monotonic(), list[float]()

        def run_points(points: Sequence[SweepPoint]) -> list[PointOutcome]:
            def relay(event: SweepEvent) -> None:
                # Counts, elapsed time and the estimate over the whole adaptive sweep, not this one stage.
                finished = len(outcomes) + event.finished
                if event.duration_s is not None:
                    durations.append(event.duration_s)
                eta = (
                    sum(durations) / len(durations) * (planned - finished) if durations and planned > finished else None
                )
                elapsed = time.monotonic() - started
                emit(dataclasses.replace(event, total=planned, finished=finished, elapsed_s=elapsed, eta_s=eta))

            try:
                ran = self.sweep(points).run(on_event=relay, progress=progress).points
            except KeyboardInterrupt:
                adaptive_summary.write(self, outcomes, [], None, plot=False)
                raise
            outcomes.extend(ran)
            return ran

        first = run_points(self.first_points())
        loads = {o.point.name: load for o in first if (load := self.load_of(o)) is not None}
        synchronous, throughput = (loads.get(p.name) for p in self.first_points())
        rates: list[float] = []
        stop: StopReason
        if synchronous is None or throughput is None:
            failed = next(o for o in first if o.point.name not in loads)
            stop = StopReason(
                "point_failed", f"{failed.point.name} did not complete: {failed.message}", failed.point.name, True
            )
        else:
            rates = spread_rates(
                synchronous.request_throughput_per_s or 0.0, throughput.request_throughput_per_s or 0.0, self.rates
            )
            planned = 2 + len(rates)
            stop = StopReason("completed", f"all {len(rates)} rates ran without over-saturating the server")
            if not rates:
                stop = StopReason(
                    "no_headroom",
                    f"the throughput point's {throughput.request_throughput_per_s or 0:.3g} req/s is not above the "
                    f"synchronous point's {synchronous.request_throughput_per_s or 0:.3g} req/s: no rate between them",
                )
            previous = synchronous
            for point in self.rate_points(rates):
                (outcome,) = run_points([point])
                load = self.load_of(outcome)
                if load is None:
                    stop = StopReason(
                        "point_failed", f"{point.name} did not complete: {outcome.message}", point.name, True
                    )
                    break
                loads[point.name] = load
                found = saturation(load, previous, self.limits)
                if found is not None:
                    stop = dataclasses.replace(found, point=point.name, early=point.index < 2 + len(rates))
                    logger.info("adaptive sweep stops at %s: %s", point.name, found.reason)
                    break
                previous = load
        return adaptive_summary.write(self, outcomes, rates, stop, plot=self.plot, loads=loads)


__all__ = [
    "RATE_PROFILES",
    "AdaptiveOutcome",
    "AdaptiveSweep",
    "spread_rates",
]
