"""ai_energy_benchmarks 0.0.4's reporters (``Reporter``, ``csv_reporter.CSVReporter``), kept for code written
against it (docs/compat-0.0.4.md). Our runs write their own reports (results/writers.py)."""

from ai_energy_benchmarks.reporters.base import Reporter

__all__ = ["Reporter"]
