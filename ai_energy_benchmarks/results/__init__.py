"""Result schema, aggregation, statistics and writers.

The names below are loaded on first use, so that importing a leaf such as ``results.stats`` (which backends use)
loads nothing else of the package.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SCHEMA_VERSION": "ai_energy_benchmarks.results.model",
    "aggregate": "ai_energy_benchmarks.results.aggregate",
    "BenchmarkResult": "ai_energy_benchmarks.results.model",
    "csv_row": "ai_energy_benchmarks.results.columns",
    "format_summary": "ai_energy_benchmarks.results.summary",
    "append_csv_row": "ai_energy_benchmarks.results.writers",
    "flatten_for_csv": "ai_energy_benchmarks.results.writers",
    "write_json_atomic": "ai_energy_benchmarks.results.writers",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
