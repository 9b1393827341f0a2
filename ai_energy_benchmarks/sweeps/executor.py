"""Who runs a sweep's points: the executor interface, the local executor (the default), and what running one point
takes (:class:`PointJob`, run by :func:`run_point` in this process or on a Ray worker).

``sweeps.execution.Sweep`` decides which points to run (resume) and writes the summary; an executor only runs the
points it is given and says when each begins and ends. ``sweeps.ray_executor.RayExecutor`` is the other one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from ai_energy_benchmarks.config.redact import redact_text
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError
from ai_energy_benchmarks.reporting.runs import REPORT_FILE
from ai_energy_benchmarks.results.model import BenchmarkResult, parse_report
from ai_energy_benchmarks.runner import create_benchmark
from ai_energy_benchmarks.sweeps.grid import SweepPoint
from ai_energy_benchmarks.sweeps.outcome import PointOutcome

if TYPE_CHECKING:
    from ai_energy_benchmarks.sweeps.execution import Sweep

logger = logging.getLogger("ai_energy_benchmarks.sweeps.execution")

#: ``progress(stage, done, total)``: a running point's progress (the runner's callback).
ProgressCallback = Callable[[str, int, int], None]


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


@dataclass(frozen=True)
class PointJob:
    """Everything needed to run one point, anywhere: plain data (a Ray worker receives it pickled).

    ``overrides`` are the point's full overrides (common, the point's, and where it writes); ``run_dir`` is its run
    directory; ``total`` the number of points of the sweep (for the log line).
    """

    point: SweepPoint
    total: int
    config_path: str | None
    config_name: str | None
    overrides: tuple[str, ...]
    run_dir: Path


def run_point(job: PointJob, progress: ProgressCallback | None = None) -> PointOutcome:
    """Run one point with the runner and return its outcome; a failure of the run is a ``failed`` outcome."""
    point, run_dir = job.point, job.run_dir
    logger.info("sweep point %d/%d (%s) -> %s", point.index, job.total, point.label, run_dir)
    try:
        runner = create_benchmark(
            config_path=job.config_path, overrides=list(job.overrides), config_name=job.config_name, progress=progress
        )
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


#: ``on_start(point)``: the point has begun running. ``on_done(outcome, duration_s)``: it has finished.
StartCallback = Callable[[SweepPoint], None]
DoneCallback = Callable[[PointOutcome, float], None]


class SweepExecutor(Protocol):
    """Runs a sweep's points (those not completed yet); the sweep does the rest (resume, events, summary).

    ``execute`` calls ``on_start`` when a point begins and ``on_done`` when it has finished (each exactly once per
    point, finishing in any order), and returns when every point has finished. On KeyboardInterrupt it stops what
    it started and lets the interrupt propagate.
    """

    name: str

    def execute(
        self,
        sweep: Sweep,
        points: Sequence[SweepPoint],
        on_start: StartCallback,
        on_done: DoneCallback,
        progress: ProgressCallback | None = None,
    ) -> None: ...


class LocalExecutor:
    """The default executor: the points one after another, in this process (its GPUs, its environment)."""

    name = "local"

    def execute(
        self,
        sweep: Sweep,
        points: Sequence[SweepPoint],
        on_start: StartCallback,
        on_done: DoneCallback,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Run ``points`` in order (see :class:`SweepExecutor`)."""
        for point in points:
            on_start(point)
            started = time.monotonic()
            outcome = run_point(sweep.job(point, len(sweep.points)), progress)
            on_done(outcome, time.monotonic() - started)


def make_executor(
    name: str,
    address: str | None = None,
    resource: str | None = None,
    gpus_per_point: float | None = None,
    max_retries: int = 3,
) -> SweepExecutor:
    """The executor called ``name`` (``local`` or ``ray``; Ray imported only for ``ray``). The Ray options are
    refused with ``local``, where they would silently do nothing."""
    if name == "local":
        given = [
            option
            for option, value in (
                ("--ray-address", address),
                ("--ray-resource", resource),
                ("--ray-gpus-per-point", gpus_per_point),
            )
            if value is not None
        ]
        if given:
            raise ConfigError(f"{', '.join(given)}: only with --executor ray")
        return LocalExecutor()
    if name == "ray":
        from ai_energy_benchmarks.sweeps.ray_executor import RayExecutor

        return RayExecutor(address=address, resource=resource, gpus_per_point=gpus_per_point, max_retries=max_retries)
    raise ConfigError(f"--executor {name}: unknown executor (local or ray)")


__all__ = [
    "DoneCallback",
    "LocalExecutor",
    "PointJob",
    "ProgressCallback",
    "StartCallback",
    "SweepExecutor",
    "make_executor",
    "read_report",
    "run_point",
]
