"""Compatibility module: the names AIEnergyScore (and older callers) import.

``from ai_energy_benchmarks.config.parser import BenchmarkConfig, BackendConfig, ScenarioConfig, MetricsConfig,
ReporterConfig`` keeps working; every class is constructible by keyword and coerces command-line strings.
"""

from __future__ import annotations

import os
from typing import Any

from ai_energy_benchmarks.config.loader import load_config
from ai_energy_benchmarks.config.schema import (
    BackendConfig,
    BenchmarkConfig,
    MetricsConfig,
    ReporterConfig,
    ScenarioConfig,
)


class ConfigParser:
    """Loads a YAML config file into a :class:`BenchmarkConfig` (kept for callers of the old API)."""

    def load_config(
        self, config_path: str | os.PathLike[str], overrides: dict[str, Any] | list[str] | None = None
    ) -> BenchmarkConfig:
        """Load and validate ``config_path`` with optional overrides."""
        return load_config(config_path, overrides)


def parse_config(
    config_path: str | os.PathLike[str], overrides: dict[str, Any] | list[str] | None = None
) -> BenchmarkConfig:
    """Load and validate ``config_path`` with optional overrides."""
    return load_config(config_path, overrides)


__all__ = [
    "BackendConfig",
    "BenchmarkConfig",
    "ConfigParser",
    "MetricsConfig",
    "ReporterConfig",
    "ScenarioConfig",
    "parse_config",
]
