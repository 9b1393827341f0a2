"""The backend protocol (the per-request record every backend produces lives in ``ai_energy_benchmarks.records``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from ai_energy_benchmarks.records import RequestRecord  # re-exported: its home was here


@runtime_checkable
class Backend(Protocol):
    """What the runner needs from a backend."""

    def load(self) -> None:
        """Load the model or connect to the server (never inside a measured window)."""

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Run ``prompts``; yield one record per request (or batch) as it completes."""

    def synchronize(self) -> None:
        """Wait until queued device work is done (called at every window edge)."""

    def metered_gpu_ids(self) -> list[int] | None:
        """GPU indices the meters must read: the ones this backend runs on; [] for none; None when unknown (all)."""

    def describe(self) -> dict[str, Any]:
        """The model and device as actually loaded (for the report)."""

    def close(self) -> None:
        """Release the model or connection."""

    # Optional, looked up with getattr by the runner: ``prepare_prompts(prompts)`` (formatting done before any
    # window), ``render(prompt)`` (what is sent, for prompts.jsonl), ``set_phase(label)`` (names the next pass),
    # ``splits_phases`` (False when a prefill pass is not comparable, e.g. fixed-duration load),
    # ``steady_state_intervals()`` (window label -> perf_counter (start, end) of a sub-interval at full load, whose
    # energy the meters read back where they can).
