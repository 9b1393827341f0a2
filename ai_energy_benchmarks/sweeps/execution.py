"""Running a sweep: every point's config validated first, each point run in its own directory by the runner,
points already completed with the same configuration skipped (resume), then the summary written.

    sweep = Sweep(
        params=[parse_param("scenario.input_shapes.batch_size=1,2,4")],
        config_path="my.yaml",
        slo_p99_s=0.5,
    )
    outcome = sweep.run(on_event=print)

Every grid point is the base config with the point's ``key=value`` overrides (any dotted key the config accepts:
``scenario.input_shapes.batch_size`` on PyTorch, ``backend.concurrency`` or ``backend.request_rate`` on the HTTP
backend, ...). Its run directory is ``<sweep dir>/<point name>``. A point whose directory already holds a completed
``benchmark_report.json`` measured with the same configuration is skipped, so an interrupted sweep resumes where it
stopped when the same command is run again.

Who runs the points is the sweep's executor (:class:`SweepExecutor`): :class:`LocalExecutor` (the default) runs
them one after another in this process; ``sweeps.ray_executor.RayExecutor`` runs each as a task on a Ray cluster.
Either way each point is :func:`run_point` of its :class:`PointJob`, and the summary is the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.config.redact import redact_override
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError
from ai_energy_benchmarks.reporting import require_matplotlib
from ai_energy_benchmarks.results.model import BenchmarkResult
from ai_energy_benchmarks.runner import create_benchmark
from ai_energy_benchmarks.sweeps import summary
from ai_energy_benchmarks.sweeps.executor import (
    LocalExecutor,
    PointJob,
    ProgressCallback,
    SweepExecutor,
    read_report,
    run_point,
)
from ai_energy_benchmarks.sweeps.grid import SweepParam, SweepPoint, build_grid
from ai_energy_benchmarks.sweeps.outcome import PointOutcome, SweepEvent, SweepOutcome

logger = logging.getLogger(__name__)

RESULTS_CSV = "benchmark_results.csv"

#: Config keys that say where a run writes, not what it measures: left out when deciding whether a finished
#: point still matches the sweep's configuration.
_LOCATION_KEYS = ("output_dir", "reporter")


def _json_safe(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, sort_keys=True))


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 of a resolved config without the keys that only say where results go (``output_dir``, ``reporter``)."""
    measured = {key: value for key, value in _json_safe(config).items() if key not in _LOCATION_KEYS}
    return hashlib.sha256(json.dumps(measured, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Sweep:
    """A grid of benchmark runs over ``params``, on a base config (a YAML file or a packaged preset).

    ``overrides`` apply to every point (before the point's own); ``output_dir`` is the sweep directory (default:
    ``<the base config's output_dir>/sweep``). ``slo_p99_s`` / ``slo_ttft_p99_s`` are latency objectives (s) on
    the p99 end-to-end latency and the p99 time to first token; the summary marks the points meeting all that are
    given. ``plot=False`` skips the figure (and the need for matplotlib). ``executor`` runs the points
    (default :class:`LocalExecutor`; see ``sweeps.ray_executor`` for a Ray cluster).
    """

    def __init__(
        self,
        params: Sequence[SweepParam],
        config_path: str | Path | None = None,
        config_name: str | None = None,
        overrides: Sequence[str] = (),
        output_dir: str | Path | None = None,
        slo_p99_s: float | None = None,
        slo_ttft_p99_s: float | None = None,
        plot: bool = True,
        executor: SweepExecutor | None = None,
        points: Sequence[SweepPoint] | None = None,
    ) -> None:
        if plot:
            require_matplotlib()
        self.params = list(params)
        # ``points``: run these instead of the grid of ``params`` (the adaptive sweep chooses its own).
        self.points = list(points) if points is not None else build_grid(self.params)
        self.config_path = None if config_path is None else str(config_path)
        self.config_name = config_name
        self.overrides = list(overrides)
        for slo, name in ((slo_p99_s, "--slo-p99-s"), (slo_ttft_p99_s, "--slo-ttft-p99-s")):
            if slo is not None and not slo > 0:
                raise ConfigError(f"{name}: a latency objective must be a positive number of seconds, got {slo}")
        self.slo_p99_s = slo_p99_s
        self.slo_ttft_p99_s = slo_ttft_p99_s
        self.plot = plot
        self.executor: SweepExecutor = executor if executor is not None else LocalExecutor()
        swept = {param.key for param in self.params} | {key for point in self.points for key, _ in point.settings}
        for override in self.overrides:
            key = override.partition("=")[0].strip()
            if key in swept:
                raise ConfigError(
                    f"{key} is both swept (--param) and overridden ({redact_override(override)}); keep one"
                )
            if key == "output_dir":
                raise ConfigError("output_dir: use --output-dir for the sweep directory (each point gets its own)")
        self._user_sets_reporter = any(o.partition("=")[0].strip().startswith("reporter.") for o in self.overrides)
        if output_dir is None:
            base = create_benchmark(config_path=self.config_path, overrides=self.overrides, config_name=config_name)
            output_dir = Path(base.config.output_dir) / "sweep"
        self.directory = Path(output_dir)

    @property
    def public_overrides(self) -> list[str]:
        """The common overrides as they may be shown and written (secrets redacted)."""
        return [redact_override(override) for override in self.overrides]

    # -- per-point configuration --------------------------------------------------------------------------------------

    def run_dir(self, point: SweepPoint) -> Path:
        """The run directory of ``point``."""
        return self.directory / point.name

    def point_overrides(self, point: SweepPoint) -> list[str]:
        """Every override for ``point``: the common ones, the point's, and where it writes."""
        where = [f"output_dir={self.run_dir(point)}"]
        if not self._user_sets_reporter:
            where.append(f"reporter.output_file={self.directory / RESULTS_CSV}")
        return [*self.overrides, *point.overrides, *where]

    def job(self, point: SweepPoint, total: int | None = None, absolute: bool = False) -> PointJob:
        """What running ``point`` takes, as plain data; ``absolute``: every path made absolute (for a worker that
        may start in another directory, or on another node sharing the storage)."""
        if not absolute:
            config_path, overrides, run_dir = self.config_path, self.point_overrides(point), self.run_dir(point)
        else:
            config_path = None if self.config_path is None else str(Path(self.config_path).resolve())
            run_dir = self.run_dir(point).resolve()
            overrides = [*self.overrides, *point.overrides, f"output_dir={run_dir}"]
            if not self._user_sets_reporter:
                overrides.append(f"reporter.output_file={self.directory.resolve() / RESULTS_CSV}")
        return PointJob(
            point=point,
            total=len(self.points) if total is None else total,
            config_path=config_path,
            config_name=self.config_name,
            overrides=tuple(overrides),
            run_dir=run_dir,
        )

    def _runner(self, point: SweepPoint, progress: ProgressCallback | None = None) -> Any:
        try:
            return create_benchmark(
                config_path=self.config_path,
                overrides=self.point_overrides(point),
                config_name=self.config_name,
                progress=progress,
            )
        except ConfigError as exc:
            raise ConfigError(f"sweep point {point.index} ({point.label}): {exc}") from None

    def validate(self) -> None:
        """Build and check every point's config (nothing is loaded or run); raise the first error, naming the point."""
        for point in self.points:
            runner = self._runner(point)
            try:
                runner.check()
            except BenchmarkError as exc:
                raise type(exc)(f"sweep point {point.index} ({point.label}): {exc}") from None

    def completed_report(self, point: SweepPoint) -> tuple[BenchmarkResult | None, str]:
        """The point's earlier report when it completed with the current configuration; else None and why."""
        report = read_report(self.run_dir(point))
        if report is None:
            return None, "not run yet"
        if report.status != "completed":
            return None, f"its earlier run is '{report.status}'"
        recorded = report.provenance.get("config")
        if not isinstance(recorded, Mapping):
            return None, "its earlier report records no configuration"
        current = self._runner(point).config.to_public_dict()
        if config_fingerprint(recorded) != config_fingerprint(current):
            return None, "the configuration changed since it ran"
        return report, "already completed"

    # -- running ------------------------------------------------------------------------------------------------------

    def run(
        self,
        on_event: Callable[[SweepEvent], None] | None = None,
        progress: ProgressCallback | None = None,
    ) -> SweepOutcome:
        """Run the points not completed yet, then write the summary; return every point's outcome.

        A point whose run fails is recorded as failed and the sweep goes on. An interrupt (KeyboardInterrupt)
        stops it: the summary of what is finished is written, then the interrupt propagates; rerunning resumes.
        """
        self.validate()
        outcomes = self.run_points(self.points, on_event, progress)
        return summary.write_outputs(self, outcomes, plot=self.plot)

    def run_points(
        self,
        points: Sequence[SweepPoint],
        on_event: Callable[[SweepEvent], None] | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[PointOutcome]:
        """Run those of ``points`` not completed yet with this sweep's executor; their outcomes, in their order.

        The points need not be the grid's (an adaptive sweep passes the ones it chose; validate them first). On an
        interrupt the summary of ``points`` so far is written (points begun and unfinished ``interrupted``, the
        others ``not run``) and the interrupt propagates.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        emit = on_event or (lambda event: None)
        started = time.monotonic()
        total = len(points)
        done: dict[int, PointOutcome] = {}
        begun: set[int] = set()
        ran: list[float] = []  # when each point run now finished (monotonic s)
        plan = [(point, *self.completed_report(point)) for point in points]
        reasons = {point.index: reason for point, _, reason in plan}
        to_run = [point for point, report, _ in plan if report is None]
        logger.info(
            "sweep of %d points in %s: %d to run (%s executor)", total, self.directory, len(to_run), self.executor.name
        )
        first_start: list[float] = []

        def eta() -> float | None:
            remaining = sum(1 for point in to_run if point.index not in done)
            if not ran or not remaining:
                return None
            return (ran[-1] - first_start[0]) / len(ran) * remaining

        def event(
            kind: str, point: SweepPoint, report: BenchmarkResult | None, message: str, duration_s: float | None = None
        ) -> SweepEvent:
            return SweepEvent(
                kind=kind,
                point=point,
                total=total,
                finished=len(done),
                elapsed_s=time.monotonic() - started,
                eta_s=eta(),
                duration_s=duration_s,
                run_dir=self.run_dir(point),
                result=report,
                message=message,
            )

        def on_start(point: SweepPoint) -> None:
            begun.add(point.index)
            if not first_start:
                first_start.append(time.monotonic())
            emit(event("start", point, None, reasons[point.index]))

        def on_done(outcome: PointOutcome, duration_s: float) -> None:
            done[outcome.point.index] = outcome
            ran.append(time.monotonic())
            kind = "done" if outcome.status == "completed" else "failed"
            emit(event(kind, outcome.point, outcome.report, outcome.message, duration_s))

        for point, report, reason in plan:
            if report is not None:
                done[point.index] = PointOutcome(point, self.run_dir(point), "completed", report, message=reason)
                emit(event("skip", point, report, f"{reason} in {self.run_dir(point)}"))
        try:
            if to_run:
                self.executor.execute(self, to_run, on_start, on_done, progress)
        except KeyboardInterrupt:
            stopped = [
                done.get(p.index) or PointOutcome(p, self.run_dir(p), "interrupted" if p.index in begun else "not run")
                for p in points
            ]
            summary.write_outputs(self, stopped, plot=False)
            raise
        missing = [point.label for point in to_run if point.index not in done]
        if missing:
            raise BenchmarkError(f"the {self.executor.name} executor returned without running: {'; '.join(missing)}")
        return [done[point.index] for point in points]

    # -- summary (sweeps/summary.py) ----------------------------------------------------------------------------------

    def meets_slo(self, report: BenchmarkResult | None) -> bool | None:
        """Whether a report meets every latency objective given (None when none is given)."""
        return summary.meets_slo(self, report)

    def summary_rows(self, outcomes: Sequence[PointOutcome]) -> list[dict[str, Any]]:
        """One row per point (see :func:`ai_energy_benchmarks.sweeps.summary.summary_rows`)."""
        return summary.summary_rows(self, outcomes)


__all__ = [
    "RESULTS_CSV",
    "LocalExecutor",
    "PointJob",
    "Sweep",
    "SweepExecutor",
    "config_fingerprint",
    "read_report",
    "run_point",
]
