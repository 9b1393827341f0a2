"""The command line's console: logging and progress display on stderr, the progress bar, the sweep's event lines,
signal handling, and errors turned into one line and an exit code. The commands themselves are in ``cli.py``.

Imports only the standard library, click and the package's leaves, so that ``--help`` stays instant.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ai_energy_benchmarks.exceptions import BenchmarkError, Interrupted

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: stdout was closed by its reader (``... | head -1``): 128 + SIGPIPE, the code of a Unix tool stopped by SIGPIPE.
EXIT_STDOUT_CLOSED = 141


def stdout_closed() -> bool:
    """True when stdout is a pipe whose reader has gone (``| head -1`` read what it wanted and exited)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() here, or no real file behind stdout
        return False


def exit_stdout_closed() -> None:
    """Exit quietly with :data:`EXIT_STDOUT_CLOSED`; stdout now leads nowhere, so that Python's last flush at exit
    raises nothing either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_STDOUT_CLOSED)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    if verbose < 2:
        for noisy in ("codecarbon", "urllib3", "filelock", "httpx", "datasets", "transformers"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    _setup_progress_lines(not quiet and not stderr_is_terminal())


def drop_warnings_the_summary_repeats() -> None:
    """Log records marked ``in_result_warnings`` reach the result's warnings, which the summary prints: not twice."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not getattr(record, "in_result_warnings", False))


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _setup_progress_lines(enabled: bool) -> None:
    """Progress lines (the runner's ``ai_energy_benchmarks.progress`` logger) on stderr, timestamped: shown when
    stderr is no terminal (CI, log files, nohup) and not --quiet; a terminal gets the progress bar instead."""
    progress = logging.getLogger("ai_energy_benchmarks.progress")
    for handler in list(progress.handlers):
        progress.removeHandler(handler)
    progress.propagate = not enabled
    progress.setLevel(logging.WARNING)  # on a terminal the bar shows progress; log lines would break it up
    if enabled:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s progress: %(message)s", datefmt="%H:%M:%S"))
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM stop the run cleanly (meters stopped, partial report written); a second one exits at once.

    A signal that arrives once the results are written no longer changes them (see ai_energy_benchmarks.interrupts).
    """
    from ai_energy_benchmarks import interrupts

    interrupts.install_handlers()


def note_late_signal() -> None:
    """Say so when a signal arrived after the results were written (they stand; the exit code follows them)."""
    from ai_energy_benchmarks import interrupts

    signum = interrupts.received()
    if signum is not None:
        click.echo(
            f"note: {signal.Signals(signum).name} arrived after the results were written; they stand as written",
            err=True,
        )


@contextmanager
def errors_to_exit_codes(verbose: int) -> Iterator[None]:
    try:
        yield
    except BenchmarkError as exc:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        click.echo(f"error: {exc}", err=True)
        partial = getattr(exc, "partial_report", None)
        if partial:
            click.echo(f"partial report (what was measured before the failure): {partial}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        if stdout_closed():
            raise  # the reader of our output went away: not an error of the benchmark (see cli._DefaultRunGroup)
        _unexpected(verbose)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        partial = getattr(exc, "partial_report", None)
        where = f"; partial report: {partial}" if partial else "; nothing had been measured yet"
        click.echo(f"interrupted by {signal.Signals(signum).name}{where}", err=True)
        sys.exit(128 + signum)
    except Exception:  # a bug or an unforeseen failure: still one clear line, details with -v
        _unexpected(verbose)


def _unexpected(verbose: int) -> None:
    """Report the exception being handled in one line (the traceback with -v) and exit 1."""
    exc = sys.exc_info()[1]
    if verbose:
        traceback.print_exc(file=sys.stderr)
    detail = "" if verbose else " (run with -v for the traceback)"
    click.echo(f"error: unexpected {type(exc).__name__}: {exc}{detail}", err=True)
    sys.exit(1)


def progress_bar(enabled: bool) -> tuple[Callable[[str, int, int], None] | None, Callable[[], None]]:
    """A progress callback drawing a tqdm bar on stderr (None when disabled), and a closer."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        size = os.terminal_size((0, 0))
    # A terminal that reports no size (a bare pty) still gets a bar of a usual size.
    width = None if size.columns > 0 else 80
    height = None if size.lines > 0 else 24

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            # Loading and the idle baseline are stages without prompts: their name and the time spent.
            shape = {"bar_format": "{desc} {elapsed}"} if stage in ("load", "idle") else {"unit": "prompt"}
            desc = {"load": "loading the model", "idle": "idle baseline"}.get(stage, stage)
            bar = bars[stage] = tqdm(
                total=total, desc=desc, file=sys.stderr, leave=False, ncols=width, nrows=height, **shape
            )
        bar.n = done
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def sweep_event_line(event: Any) -> str:
    """One stderr line per sweep event: which point, how many are left, elapsed time and an estimate of the rest."""
    head = f"sweep: point {event.point.index}/{event.total} [{event.point.label}]"
    clock = f"elapsed {_clock(event.elapsed_s)}"
    if event.eta_s is not None:
        clock += f", about {_clock(event.eta_s)} to go"
    if event.kind == "start":
        why = "" if event.message == "not run yet" else f" ({event.message})"
        return f"{head} running{why}: {event.finished} finished, {event.left} left; {clock}"
    if event.kind == "skip":
        return f"{head} skipped: {event.message}; {event.finished} finished, {event.left} left; {clock}"
    if event.kind == "done":
        result = event.result
        latency = result.latency.latency_s if result and result.latency else None

        def fmt(value: Any) -> str:
            return "n/a" if value is None else f"{value:.4g}"

        return (
            f"{head} completed in {event.duration_s:.1f} s:"
            f" {fmt(result.energy.joules_per_output_token if result else None)} J/output"
            f" token, latency p50 {fmt(latency and latency.p50)} s, p99 {fmt(latency and latency.p99)} s;"
            f" {event.finished} finished, {event.left} left; {clock}"
        )
    return f"{head} FAILED: {event.message}; {event.finished} finished, {event.left} left; {clock}"
