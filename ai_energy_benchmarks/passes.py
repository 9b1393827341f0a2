"""Helpers of the runner's measured passes: windows a signal does not tear, interruptible sleeps, and why a run whose
passes all ran must still fail."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from ai_energy_benchmarks import interrupts
from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.energy.base import MeterSet, WindowMeasurement


def failed_passes(windows: list[WindowMeasurement], records: list[RequestRecord]) -> list[str]:
    """Why a run whose passes all ran must still fail: each measured pass (window) without one successful request."""
    reasons = []
    for window in windows:
        if window.kind not in ("prefill", "generate"):
            continue
        mine = [r for r in records if r.phase == window.kind and r.repetition == window.repetition]
        if not any(r.ok for r in mine):
            reasons.append(
                f"measured pass '{window.name}': none of its {sum(r.num_prompts for r in mine)} requests succeeded"
            )
    if not any(w.kind in ("prefill", "generate") for w in windows):
        reasons.append("no measured pass ran")
    return reasons


@contextmanager
def untorn_window(meter_set: MeterSet, name: str, **kwargs: Any) -> Iterator[None]:
    """``meter_set.window(...)`` whose opening and closing a signal does not tear: one that arrives while the meters
    start or stop is delivered once the window is open, or once it is closed and recorded."""
    stack = ExitStack()
    try:
        with interrupts.deferred():
            stack.enter_context(meter_set.window(name, **kwargs))
        yield
    except BaseException:
        with interrupts.deferred():
            if not stack.__exit__(*sys.exc_info()):
                raise
    else:
        with interrupts.deferred():
            stack.close()


def sleep_checked(duration_s: float) -> None:
    """Sleep ``duration_s`` seconds in short steps, stopping at once for a signal whose exception was dropped."""
    end_s = time.monotonic() + duration_s
    while (left_s := end_s - time.monotonic()) > 0:
        time.sleep(min(left_s, 0.1))
        interrupts.check()


__all__ = ["failed_passes", "sleep_checked", "untorn_window"]
