"""The time source of the counter meters: when they read, how their background poller waits, and its thread.

Meters take a :class:`Clock` (default :data:`SYSTEM_CLOCK`: ``time.perf_counter()`` seconds, the clock of the
measured windows). Simulated hardware and its tests pass one clock to both the meter and the simulation
(:class:`ai_energy_benchmarks.testing.clock.SimulatedClock`), so every read, poll and window edge happens at a time
the test chose and a check's verdict does not depend on how busy the machine is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Seconds on one monotonic time line, and waiting and polling threads on it."""

    def now_s(self) -> float:
        """The current time (s)."""

    def wait_until(self, stop: threading.Event, deadline_s: float) -> bool:
        """Block until ``deadline_s`` (s on this clock) or until ``stop`` is set; True when ``stop`` is set."""

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start ``target`` in a daemon thread that waits on this clock (the meters' background pollers)."""


class SystemClock:
    """``time.perf_counter()`` and real waits."""

    def now_s(self) -> float:
        """``time.perf_counter()`` (s)."""
        return time.perf_counter()

    def wait_until(self, stop: threading.Event, deadline_s: float) -> bool:
        """``stop.wait`` until ``deadline_s``."""
        return stop.wait(max(0.0, deadline_s - time.perf_counter()))

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A started daemon thread running ``target``."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread


#: The clock meters use unless told otherwise.
SYSTEM_CLOCK = SystemClock()
