"""The HTTP backend's event loop thread and the hand-off of records from it to the thread iterating ``run()``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ai_energy_benchmarks.backends.base import RequestRecord

T = TypeVar("T")

#: Longest wait before completed records are handed to the thread iterating ``run()`` (s).
HANDOFF_INTERVAL_S = 0.01


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="aieb-http-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coroutine`` on the loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result."""
        return self.submit(coroutine).result(timeout_s)

    def stop(self) -> None:
        """Stop the loop and join the thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class Handoff:
    """Passes records from the event loop thread to the thread iterating ``run()``, in batches.

    Waking the consumer for every record would cost a thread switch per request; instead records wait at most
    :data:`HANDOFF_INTERVAL_S`, and the end of the run is handed over at once (so no measured window is lengthened).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[list[RequestRecord] | None] = queue.SimpleQueue()
        self._pending: list[RequestRecord] = []
        self._scheduled = False

    def put(self, record: RequestRecord) -> None:
        """Queue ``record`` (event loop thread)."""
        self._pending.append(record)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_later(HANDOFF_INTERVAL_S, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []

    def close(self) -> None:
        """Hand over what is pending and the end mark (event loop thread)."""
        self._flush()
        self._queue.put(None)

    def get(self) -> list[RequestRecord] | None:
        """The next batch of records, or None at the end (consumer thread; blocks)."""
        return self._queue.get()
