"""Where sweeps lived before they moved beside the runner (``ai_energy_benchmarks.sweeps``): the same names, kept
importable from here for code written against this path. New code imports ``ai_energy_benchmarks.sweeps``.

This is the one import from ``reporting`` up to a higher layer; tests/unit/test_import_graph.py allows it by name.
"""

from ai_energy_benchmarks.sweeps import (
    MANIFEST,
    PLOT,
    SUMMARY_CSV,
    SUMMARY_MD,
    PointOutcome,
    Sweep,
    SweepEvent,
    SweepOutcome,
    SweepParam,
    SweepPoint,
    build_grid,
    config_fingerprint,
    parse_param,
    read_report,
)

__all__ = [
    "MANIFEST",
    "PLOT",
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
