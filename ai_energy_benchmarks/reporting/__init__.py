"""Results people look at: an HTML report of one run, a comparison of several, and parameter sweeps.

- :mod:`~ai_energy_benchmarks.reporting.runs` reads a run directory (``benchmark_report.json``, ``requests.jsonl``,
  ``timeline.csv``);
- :mod:`~ai_energy_benchmarks.reporting.plots` draws the figures (matplotlib, the optional ``[report]`` extra);
- :mod:`~ai_energy_benchmarks.reporting.html` writes the self-contained HTML page and the PNG figures beside it;
- :mod:`~ai_energy_benchmarks.reporting.compare` puts the key figures of several runs side by side;
- sweeps (a grid of runs, resumable) moved beside the runner, to :mod:`ai_energy_benchmarks.sweeps`;
  ``reporting.sweep`` re-exports their names.

Importing this package imports no plotting library: matplotlib is loaded only when a figure is drawn, and
:func:`require_matplotlib` says how to install it when it is missing.
"""

from __future__ import annotations

from ai_energy_benchmarks.exceptions import BenchmarkError, MissingDependencyError

#: The command that installs the plotting extra.
INSTALL_REPORT_EXTRA = "pip install 'ai-energy-benchmarks[report]'"


class ReportError(BenchmarkError):
    """A run directory cannot be read, or the request cannot be served (a usage error: exit code 2)."""

    exit_code = 2


class MissingExtraError(ReportError, MissingDependencyError):
    """An optional dependency (matplotlib, the ``[report]`` extra) is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`MissingExtraError`, naming the install command, unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            f"plotting needs matplotlib, which is not installed ({exc}); install it with: {INSTALL_REPORT_EXTRA}"
        ) from None


__all__ = ["INSTALL_REPORT_EXTRA", "MissingExtraError", "ReportError", "require_matplotlib"]
