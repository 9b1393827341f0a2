"""What a sweep reports as it goes (events) and at the end (each point's outcome, the files written)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ai_energy_benchmarks.results.model import BenchmarkResult
from ai_energy_benchmarks.sweeps.grid import SweepPoint


@dataclass
class SweepEvent:
    """Progress of a sweep, for the caller to show.

    ``kind``: ``start`` (the point begins), ``done`` (completed), ``failed`` (its run failed; the sweep goes on),
    ``skip`` (already completed earlier). ``finished`` counts points done, skipped or failed so far; ``elapsed_s``
    is the time since this invocation started (s); ``eta_s`` estimates the time left from the points run so far.
    ``result`` is the point's report as our readers see it (typed).
    """

    kind: str
    point: SweepPoint
    total: int
    finished: int
    elapsed_s: float
    eta_s: float | None = None
    duration_s: float | None = None
    run_dir: Path | None = None
    result: BenchmarkResult | None = None
    message: str = ""

    @property
    def left(self) -> int:
        """Points not finished yet."""
        return self.total - self.finished


@dataclass
class PointOutcome:
    """What became of one point: its run directory, status and report (None when it never produced one).

    ``status``: ``completed``, ``failed``, or after an interrupt ``interrupted`` (the point that was running) and
    ``not run`` (the points after it).
    """

    point: SweepPoint
    run_dir: Path
    status: str
    report: BenchmarkResult | None = None
    ran_now: bool = False
    message: str = ""


@dataclass
class SweepOutcome:
    """The sweep's points and the files written (summary CSV and Markdown, manifest, plot when drawn)."""

    directory: Path
    points: list[PointOutcome]
    files: dict[str, Path] = field(default_factory=dict)
    best: PointOutcome | None = None

    @property
    def all_completed(self) -> bool:
        """True when every point of the grid has a completed run."""
        return all(outcome.status == "completed" for outcome in self.points)


__all__ = ["PointOutcome", "SweepEvent", "SweepOutcome"]
