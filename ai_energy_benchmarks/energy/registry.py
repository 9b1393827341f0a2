"""Meter registry keyed by ``metrics.type``; third parties add meters through the
``ai_energy_benchmarks.meters`` entry-point group (a callable ``(MetricsConfig, output_dir, gpu_ids) -> meter``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyMeter
from ai_energy_benchmarks.exceptions import ConfigError

MeterFactory = Callable[[MetricsConfig, Path, "list[int] | None"], EnergyMeter]

_FACTORIES: dict[str, MeterFactory] = {}


def register_meter(name: str, factory: MeterFactory) -> None:
    """Make ``metrics.type: name`` create a meter with ``factory``."""
    _FACTORIES[name] = factory


def _codecarbon(config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None) -> EnergyMeter:
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter

    return CodeCarbonMeter(config, output_dir, gpu_ids)


register_meter("codecarbon", _codecarbon)


def _factory(name: str) -> MeterFactory:
    if name in _FACTORIES:
        return _FACTORIES[name]
    for entry in metadata.entry_points(group="ai_energy_benchmarks.meters"):
        if entry.name == name:
            factory: MeterFactory = entry.load()
            register_meter(name, factory)
            return factory
    raise ConfigError(f"metrics.type: unknown meter '{name}' (available: {', '.join(sorted(_FACTORIES))})")


def create_meters(config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None) -> list[EnergyMeter]:
    """The meters ``config`` asks for (none when metrics are disabled)."""
    if not config.enabled:
        return []
    return [_factory(config.type)(config, output_dir, gpu_ids)]
