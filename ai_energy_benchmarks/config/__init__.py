"""Configuration: typed schema, YAML loading with composition and overrides, and the compatibility names."""

from ai_energy_benchmarks.config.loader import load_config, resolve_config_path
from ai_energy_benchmarks.config.schema import (
    BackendConfig,
    BenchmarkConfig,
    GenerateKwargs,
    InputShapes,
    MetricsConfig,
    ReporterConfig,
    ScenarioConfig,
)

__all__ = [
    "BackendConfig",
    "BenchmarkConfig",
    "GenerateKwargs",
    "InputShapes",
    "MetricsConfig",
    "ReporterConfig",
    "ScenarioConfig",
    "load_config",
    "resolve_config_path",
]
