"""ai_energy_benchmarks: measure the energy, carbon and speed of AI inference.

The public API is kept light at import time: torch, transformers and datasets are only imported when a
benchmark actually runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ai_energy_benchmarks._version import __version__
from ai_energy_benchmarks.exceptions import (
    BackendError,
    BenchmarkError,
    ConfigError,
    DatasetError,
    MeterError,
)

if TYPE_CHECKING:
    from ai_energy_benchmarks.config.parser import BenchmarkConfig, ConfigParser
    from ai_energy_benchmarks.runner import BenchmarkRunner

#: ai_energy_benchmarks 0.0.4's top-level names, imported on first use (``import ai_energy_benchmarks`` stays light).
_LAZY_NAMES = {
    "BenchmarkRunner": "ai_energy_benchmarks.runner",
    "BenchmarkConfig": "ai_energy_benchmarks.config.parser",
    "ConfigParser": "ai_energy_benchmarks.config.parser",
}


def __getattr__(name: str) -> Any:
    """``from ai_energy_benchmarks import BenchmarkRunner, BenchmarkConfig, ConfigParser`` (0.0.4's exports)."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'ai_energy_benchmarks' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def create_benchmark(
    config_path: str | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    config_name: str | None = None,
) -> BenchmarkRunner:
    """Build a ready-to-run benchmark from a YAML file or a packaged preset.

    Args:
        config_path: path to a YAML config file.
        overrides: nested dict (``{"backend": {"model": "gpt2"}}``) or dotted ``key=value`` strings.
        config_name: name of a packaged preset (``quickstart``, ``text_generation``), used when no path is given.

    Returns:
        A :class:`~ai_energy_benchmarks.runner.BenchmarkRunner`; call ``.run()`` to measure.
    """
    from ai_energy_benchmarks.runner import create_benchmark as _create

    return _create(config_path=config_path, overrides=overrides, config_name=config_name)


__all__ = [
    "BackendError",
    "BenchmarkConfig",
    "BenchmarkError",
    "BenchmarkRunner",
    "ConfigError",
    "ConfigParser",
    "DatasetError",
    "MeterError",
    "__version__",
    "create_benchmark",
]
