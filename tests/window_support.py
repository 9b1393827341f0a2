"""Watching a run's measured windows from outside: a meter that notes when each window opens and closes, and a
tokenizer that notes when its methods are called, so a test can tell what work happened inside a window."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ai_energy_benchmarks.energy.registry import _FACTORIES as _METER_FACTORIES
from ai_energy_benchmarks.energy.registry import register_meter

#: The ``metrics.type`` of :func:`window_clock`'s meter.
WINDOW_CLOCK = "windowclock"


class _WindowClock:
    """A meter that reads nothing and notes the ``time.perf_counter()`` of each window's start and stop."""

    name = WINDOW_CLOCK
    output_files = ()
    edges_s: ClassVar[dict[str, list[float]]] = {}

    def __init__(self, config: Any, output_dir: Path, gpu_ids: list[int] | None) -> None:
        pass

    def prepare(self) -> None:
        pass

    def start_window(self, name: str) -> None:
        self.edges_s[name] = [time.perf_counter()]

    def stop_window(self, name: str) -> tuple[list[Any], float | None]:
        self.edges_s[name].append(time.perf_counter())
        return [], None

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


@contextmanager
def window_clock() -> Iterator[dict[str, list[float]]]:
    """Register the meter ``metrics.type: windowclock`` while the block runs; yields window name -> [start, stop]."""
    edges: dict[str, list[float]] = {}
    _WindowClock.edges_s = edges
    register_meter(WINDOW_CLOCK, _WindowClock)
    try:
        yield edges
    finally:
        del _METER_FACTORIES[WINDOW_CLOCK]


def inside_any(edges: dict[str, list[float]], at_s: float) -> bool:
    """Whether ``at_s`` falls inside one of the windows."""
    return any(start_s <= at_s <= stop_s for start_s, stop_s in edges.values())


def spy_on_tokenizers(monkeypatch: pytest.MonkeyPatch, *methods: str) -> list[tuple[str, float, Any]]:
    """Make every tokenizer loaded through ``AutoTokenizer`` note each outer call of ``methods`` (a call from within
    another noted call is not noted): (method, ``time.perf_counter()`` at its return, what it returned)."""
    import transformers

    calls: list[tuple[str, float, Any]] = []
    depth = [0]
    original = transformers.AutoTokenizer.from_pretrained

    def noted(name: str, method: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            try:
                returned = method(self, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                calls.append((name, time.perf_counter(), returned))
            return returned

        return call

    def from_pretrained(*args: Any, **kwargs: Any) -> Any:
        tokenizer = original(*args, **kwargs)
        base = type(tokenizer)
        tokenizer.__class__ = type("Noting", (base,), {m: noted(m, getattr(base, m)) for m in methods})
        return tokenizer

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", from_pretrained)
    return calls
