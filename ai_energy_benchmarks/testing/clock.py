"""A simulated clock for meter tests: time moves only when the test advances it.

Pass one :class:`SimulatedClock` to a meter (``clock=``) and to the simulated hardware (``FakeNvml(clock=...)``,
``FakeAmdSmi(clock=...)``): counters are then read at exactly the times the test chose, and the meter's background
poller runs at its own scheduled times on the same time line, one poll after another, whatever the machine's load::

    clock = SimulatedClock()
    with FakeNvml([FakeGpu(power=150.0)], clock=clock) as fake:
        meter = NvmlMeter(MetricsConfig(), out, gpu_ids=[0], clock=clock)
        meter.prepare()
        meter.start_window("w")
        clock.advance(2.0)          # the poller's reads happen inside, at their own simulated times
        readings, _ = meter.stop_window("w")   # exactly 300 J

:meth:`SimulatedClock.advance` is a small discrete-event loop: it moves time to the earliest deadline of a thread
waiting on the clock, lets that thread run until it waits again (or ends), and repeats up to the target time.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

__all__ = ["SimulatedClock"]

# How often (real s) a sleeping thread looks at its stop event: a meter's close() waits at most this long for it.
_STOP_CHECK_S = 0.01


class SimulatedClock:
    """A :class:`~ai_energy_benchmarks.energy.clock.Clock` whose time moves only through :meth:`advance`.

    ``start_s`` is the first reading (s). ``handshake_timeout_s`` (real seconds) bounds how long :meth:`advance`
    waits for a woken thread to finish its step; a thread that takes longer is a bug, reported as an error.
    """

    def __init__(self, start_s: float = 1000.0, *, handshake_timeout_s: float = 60.0) -> None:
        self._now_s = float(start_s)
        self._cond = threading.Condition()
        self._sleeping: dict[int, float] = {}  # token -> deadline (s)
        self._busy: set[int] = set()  # tokens of clock threads running between two waits
        self._tokens = itertools.count(1)
        self._local = threading.local()
        self._handshake_timeout_s = handshake_timeout_s

    def now_s(self) -> float:
        """The simulated time (s)."""
        with self._cond:
            return self._now_s

    def _token(self) -> int:
        token: int | None = getattr(self._local, "token", None)
        if token is None:
            token = next(self._tokens)
            self._local.token = token
        return token

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start ``target`` in a daemon thread; :meth:`advance` waits for it whenever it is not waiting on the clock."""
        token = next(self._tokens)
        with self._cond:
            self._busy.add(token)

        def run() -> None:
            self._local.token = token
            try:
                target()
            finally:
                with self._cond:
                    self._busy.discard(token)
                    self._sleeping.pop(token, None)
                    self._cond.notify_all()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def wait_until(self, stop: threading.Event, deadline_s: float) -> bool:
        """Sleep until :meth:`advance` reaches ``deadline_s`` (False) or ``stop`` is set (True)."""
        token = self._token()
        with self._cond:
            if stop.is_set():
                self._busy.discard(token)
                self._cond.notify_all()
                return True
            if deadline_s <= self._now_s:
                return False
            self._busy.discard(token)
            self._sleeping[token] = deadline_s
            self._cond.notify_all()
            while True:
                if token not in self._sleeping:  # woken by advance(), which marked it busy
                    return False
                if stop.is_set():
                    del self._sleeping[token]
                    self._cond.notify_all()
                    return True
                self._cond.wait(_STOP_CHECK_S)

    def _await_idle(self) -> None:
        """Wait (holding the condition) until no clock thread is between two waits."""
        give_up = time.monotonic() + self._handshake_timeout_s
        while self._busy:
            left = give_up - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"SimulatedClock: {len(self._busy)} thread(s) did not wait on the clock again within "
                    f"{self._handshake_timeout_s:g} s"
                )
            self._cond.wait(min(left, 0.1))

    def advance_to(self, target_s: float) -> None:
        """Move time to ``target_s``, running every clock thread whose deadline falls on the way, in time order."""
        with self._cond:
            if target_s < self._now_s:
                raise ValueError(f"SimulatedClock: cannot go back from {self._now_s} s to {target_s} s")
            while True:
                self._await_idle()
                due = [deadline for deadline in self._sleeping.values() if deadline <= target_s]
                if not due:
                    self._now_s = target_s
                    return
                self._now_s = max(self._now_s, min(due))
                for token, deadline in list(self._sleeping.items()):
                    if deadline <= self._now_s:
                        del self._sleeping[token]
                        self._busy.add(token)
                self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (see :meth:`advance_to`)."""
        if seconds < 0:
            raise ValueError("SimulatedClock: cannot advance by a negative time")
        self.advance_to(self.now_s() + seconds)
