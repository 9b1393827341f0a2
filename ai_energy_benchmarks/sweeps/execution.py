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
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ai_energy_benchmarks.config.redact import redact_override, redact_text
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError
from ai_energy_benchmarks.reporting import require_matplotlib
from ai_energy_benchmarks.reporting.runs import REPORT_FILE
from ai_energy_benchmarks.results.model import BenchmarkResult, parse_report
from ai_energy_benchmarks.runner import create_benchmark
from ai_energy_benchmarks.sweeps import summary
from ai_energy_benchmarks.sweeps.grid import SweepParam, SweepPoint, build_grid
from ai_energy_benchmarks.sweeps.outcome import PointOutcome, SweepEvent, SweepOutcome

logger = logging.getLogger(__name__)

RESULTS_CSV = "benchmark_results.csv"

#: Config keys that say where a run writes, not what it measures: left out when deciding whether a finished
#: point still matches the sweep's configuration.
_LOCATION_KEYS = ("output_dir", "reporter")

ProgressCallback = Callable[[str, int, int], None]


def _json_safe(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, sort_keys=True))


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 of a resolved config without the keys that only say where results go (``output_dir``, ``reporter``)."""
    measured = {key: value for key, value in _json_safe(config).items() if key not in _LOCATION_KEYS}
    return hashlib.sha256(json.dumps(measured, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_report(run_dir: Path) -> BenchmarkResult | None:
    """The report in ``run_dir`` as our readers see it, or None when it is missing, unreadable or not a report."""
    try:
        report = json.loads((run_dir / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    try:
        return parse_report(report)
    except ValidationError as exc:
        logger.warning("%s: not a benchmark report (%s)", run_dir / REPORT_FILE, exc.errors()[0].get("msg"))
        return None


class Sweep:
    """A grid of benchmark runs over ``params``, on a base config (a YAML file or a packaged preset).

    ``overrides`` apply to every point (before the point's own); ``output_dir`` is the sweep directory (default:
    ``<the base config's output_dir>/sweep``). ``slo_p99_s`` / ``slo_ttft_p99_s`` are latency objectives (s) on
    the p99 end-to-end latency and the p99 time to first token; the summary marks the points meeting all that are
    given. ``plot=False`` skips the figure (and the need for matplotlib).
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
        self.directory.mkdir(parents=True, exist_ok=True)
        emit = on_event or (lambda event: None)
        started = time.monotonic()
        total = len(self.points)
        outcomes: list[PointOutcome] = []
        durations: list[float] = []
        plan = [(point, *self.completed_report(point)) for point in self.points]
        to_run = sum(1 for _, report, _ in plan if report is None)
        logger.info("sweep of %d points in %s: %d to run", total, self.directory, to_run)

        def eta() -> float | None:
            if not durations:
                return None
            remaining = sum(1 for _, report, _ in plan[len(outcomes) :] if report is None)
            return sum(durations) / len(durations) * remaining if remaining else None

        def event(
            kind: str, point: SweepPoint, report: BenchmarkResult | None, message: str, duration_s: float | None = None
        ) -> SweepEvent:
            return SweepEvent(
                kind=kind,
                point=point,
                total=total,
                finished=len(outcomes),
                elapsed_s=time.monotonic() - started,
                eta_s=eta(),
                duration_s=duration_s,
                run_dir=self.run_dir(point),
                result=report,
                message=message,
            )

        try:
            for point, report, reason in plan:
                if report is not None:
                    outcomes.append(PointOutcome(point, self.run_dir(point), "completed", report, message=reason))
                    emit(event("skip", point, report, f"{reason} in {self.run_dir(point)}"))
                    continue
                emit(event("start", point, None, reason))
                point_started = time.monotonic()
                outcome = self._run_point(point, progress)
                outcomes.append(outcome)
                durations.append(time.monotonic() - point_started)
                kind = "done" if outcome.status == "completed" else "failed"
                emit(event(kind, point, outcome.report, outcome.message, durations[-1]))
        except KeyboardInterrupt:
            finished = {outcome.point.index for outcome in outcomes}
            rest = [p for p in self.points if p.index not in finished]
            stopped = [
                PointOutcome(p, self.run_dir(p), "interrupted" if i == 0 else "not run") for i, p in enumerate(rest)
            ]
            summary.write_outputs(self, outcomes + stopped, plot=False)
            raise
        return summary.write_outputs(self, outcomes, plot=self.plot)

    def _run_point(self, point: SweepPoint, progress: ProgressCallback | None) -> PointOutcome:
        run_dir = self.run_dir(point)
        runner = self._runner(point, progress)
        logger.info("sweep point %d/%d (%s) -> %s", point.index, len(self.points), point.label, run_dir)
        try:
            result = runner.run()
        except BenchmarkError as exc:
            message = redact_text(str(exc))
            logger.warning("sweep point %d (%s) failed: %s", point.index, point.label, message)
            return PointOutcome(point, run_dir, "failed", read_report(run_dir), ran_now=True, message=message)
        except Exception as exc:  # an unforeseen failure of one point must not lose the others
            message = redact_text(f"unexpected {type(exc).__name__}: {exc}")
            # The traceback only at debug level: its text may hold what the message redacts.
            logger.warning("sweep point %d (%s) failed: %s", point.index, point.label, message)
            logger.debug("sweep point %d failed", point.index, exc_info=True)
            return PointOutcome(point, run_dir, "failed", read_report(run_dir), ran_now=True, message=message)
        status = str(result.get("status"))
        message = "" if status == "completed" else "no request succeeded"
        return PointOutcome(point, run_dir, status, parse_report(result), ran_now=True, message=message)

    # -- summary (sweeps/summary.py) ----------------------------------------------------------------------------------

    def meets_slo(self, report: BenchmarkResult | None) -> bool | None:
        """Whether a report meets every latency objective given (None when none is given)."""
        return summary.meets_slo(self, report)

    def summary_rows(self, outcomes: Sequence[PointOutcome]) -> list[dict[str, Any]]:
        """One row per point (see :func:`ai_energy_benchmarks.sweeps.summary.summary_rows`)."""
        return summary.summary_rows(self, outcomes)


__all__ = ["RESULTS_CSV", "Sweep", "config_fingerprint", "read_report"]
