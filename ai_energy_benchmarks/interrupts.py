"""Signals that stop a run (SIGINT, SIGTERM): never lost, never half-applied.

The command line installs :func:`install_handlers`. From then on the first SIGINT or SIGTERM raises
:class:`~ai_energy_benchmarks.exceptions.Interrupted` in the main thread and is also *recorded*, because Python can
lose the exception: a signal handled while a finaliser (``__del__``, a weakref callback) runs, as happens during
heavy imports such as ``import torch``, has its exception printed as "ignored" and dropped. The runner calls
:func:`check` between stages and between requests, so a signal whose exception was lost still stops the run.

Two more rules keep the written results and the exit code in agreement:

- :func:`deferred` holds signals back over a short section that must not be torn (a measured window's edges, the
  report and CSV row being written) and delivers them when the section ends;
- :func:`settle` marks the run's results as written. A signal that arrives after that no longer changes the run:
  it is recorded (see :func:`received`) and the command exits with the code the written status implies. The next
  :func:`begin_run` (a sweep's next point) raises it.

A library caller that installs nothing keeps Python's own behaviour (SIGINT raises ``KeyboardInterrupt``, SIGTERM
ends the process); :func:`deferred` still holds SIGINT back over the sections it guards.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ai_energy_benchmarks.exceptions import Interrupted

_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


class _State:
    #: The first stopping signal received by our handler (None: none yet).
    received: int | None = None
    #: The current run's results are written: a signal no longer changes them.
    settled: bool = False
    #: :func:`ignore_from_now` is registered to run at interpreter exit.
    exit_hook: bool = False


def install_handlers() -> None:
    """Make SIGINT and SIGTERM stop the run cleanly (partial report written); a second one exits at once.

    At interpreter exit they are ignored (:func:`ignore_from_now`), so the exit code stays the one chosen.
    """
    for signum in _SIGNALS:
        signal.signal(signum, _handle)
    if not _State.exit_hook:
        _State.exit_hook = True
        atexit.register(ignore_from_now)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _State.settled:
        if _State.received is None:
            _State.received = signum
        return
    if _State.received is not None:  # a second signal while the first is being handled: leave now
        os._exit(128 + signum)
    _State.received = signum
    raise Interrupted(signum)


def received() -> int | None:
    """The signal number our handler received (None if none): also one whose exception Python dropped."""
    return _State.received


def check() -> None:
    """Raise :class:`Interrupted` if a stopping signal arrived and the run has not settled (a no-op otherwise)."""
    if _State.received is not None and not _State.settled:
        raise Interrupted(_State.received)


def begin_run() -> None:
    """A new run starts: it is not settled; a signal received before it (e.g. between sweep points) stops it."""
    _State.settled = False
    check()


def settle() -> None:
    """The run's results are written: later signals are recorded, not raised."""
    _State.settled = True


def ignore_from_now() -> None:
    """The process is exiting: ignore further SIGINT/SIGTERM (when our handlers are in force).

    Python resets its handlers to the default action late in its shut-down, so a signal then would kill the
    process and replace the exit code the written results imply; an ignored signal keeps it.
    """
    if handlers_installed():
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def handlers_installed() -> bool:
    """True when :func:`install_handlers` is in force for SIGINT."""
    return signal.getsignal(signal.SIGINT) is _handle


@contextmanager
def deferred() -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM back over the body and deliver them (to the handler in force before) when it ends.

    Yields the list of signals caught so far (the body may look at it). Only the main thread receives signals;
    elsewhere, and when nested, this does nothing. A handler that is not a Python function (the default action for
    SIGTERM, or an ignored signal) is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    caught: list[int] = []
    previous: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    hold._aieb_hold = True  # type: ignore[attr-defined]
    for signum in _SIGNALS:
        handler = signal.getsignal(signum)
        if callable(handler) and not getattr(handler, "_aieb_hold", False):  # not nested
            previous[signum] = handler
            signal.signal(signum, hold)
    try:
        yield caught
    finally:
        for number, restored in previous.items():
            signal.signal(number, restored)
        for number in caught:
            if number in previous:
                previous[number](number, None)


__all__ = [
    "begin_run",
    "check",
    "deferred",
    "handlers_installed",
    "ignore_from_now",
    "install_handlers",
    "received",
    "settle",
]
