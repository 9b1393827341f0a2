"""Progress of a run as log lines: what a console that is no terminal (CI, log files, nohup) shows of a run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: ``(stage, done, total)``: a run's progress (``load``, ``idle``, ``warmup``, ``measure generate-0``, ...).
ProgressCallback = Callable[[str, int, int], None]

#: Progress lines (see :class:`ProgressLog`); the CLI shows them when stderr is not a terminal.
progress_logger = logging.getLogger("ai_energy_benchmarks.progress")


class ProgressLog:
    """A progress callback that also logs a line on the ``ai_energy_benchmarks.progress`` logger (INFO): when a
    stage starts and ends, and at most every ``interval_s`` seconds in between. Consoles that are no terminal (CI,
    log files, nohup) see the run advance through it; the CLI turns it on there. ``then`` (the caller's own
    callback, e.g. a progress bar) is called with every update."""

    def __init__(
        self,
        then: ProgressCallback | None = None,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._then = then
        self._interval_s = interval_s
        self._clock = clock
        self._stage: str | None = None
        self._stage_start_s = 0.0
        self._last_log_s = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now_s = self._clock()
        if stage != self._stage:
            self._stage, self._stage_start_s, self._last_log_s = stage, now_s, now_s
            self._log(stage, done, total, now_s)
        elif done >= total or now_s - self._last_log_s >= self._interval_s:
            self._last_log_s = now_s
            self._log(stage, done, total, now_s)
        if self._then is not None:
            self._then(stage, done, total)

    def _log(self, stage: str, done: int, total: int, now_s: float) -> None:
        elapsed_s = now_s - self._stage_start_s
        if stage in ("load", "idle"):
            what = {"load": "loading the model", "idle": "measuring the idle baseline"}[stage]
            if done >= total:
                progress_logger.info("%s: done in %.1f s", what, elapsed_s)
            else:
                progress_logger.info("%s", what)
            return
        text = f"{stage}: {done}/{total} prompts"
        if done >= total:
            text += f", done in {elapsed_s:.1f} s"
        elif done > 0:
            left_s = elapsed_s / done * (total - done)
            text += f", {elapsed_s:.0f} s elapsed, about {left_s:.0f} s left"
        progress_logger.info("%s", text)
