"""Sweeps: a grid of benchmark runs (``grid``), run resumably by the runner (``execution``), summarised
(``summary``: table, manifest and the energy vs latency figure). Sits above the runner and ``reporting``.

    from ai_energy_benchmarks.sweeps import Sweep, parse_param
"""

from ai_energy_benchmarks.sweeps.execution import RESULTS_CSV, Sweep, config_fingerprint, read_report
from ai_energy_benchmarks.sweeps.grid import SweepParam, SweepPoint, build_grid, parse_param
from ai_energy_benchmarks.sweeps.outcome import PointOutcome, SweepEvent, SweepOutcome
from ai_energy_benchmarks.sweeps.summary import MANIFEST, PLOT, SUMMARY_CSV, SUMMARY_MD

__all__ = [
    "MANIFEST",
    "PLOT",
    "RESULTS_CSV",
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "PointOutcome",
    "Sweep",
    "SweepEvent",
    "SweepOutcome",
    "SweepParam",
    "SweepPoint",
    "build_grid",
    "config_fingerprint",
    "parse_param",
    "read_report",
]
