"""Backend registry keyed by ``backend.type``; third parties add backends through the
``ai_energy_benchmarks.backends`` entry-point group (a callable ``(BenchmarkConfig) -> Backend``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

from ai_energy_benchmarks.backends.base import Backend
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import ConfigError

BackendFactory = Callable[[BenchmarkConfig], Backend]

_FACTORIES: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``backend.type: name`` create a backend with ``factory``."""
    _FACTORIES[name] = factory


def _pytorch(config: BenchmarkConfig) -> Backend:
    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend

    return PyTorchBackend(config)


def _vllm(config: BenchmarkConfig) -> Backend:
    from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend

    return OpenAIHTTPBackend(config)


register_backend("pytorch", _pytorch)
register_backend("vllm", _vllm)


def available_backends() -> list[str]:
    """Backend types registered so far (entry-point backends appear once used)."""
    return sorted(_FACTORIES)


def create_backend(config: BenchmarkConfig) -> Backend:
    """The backend ``config.backend.type`` names (not yet loaded)."""
    name = config.backend.type
    factory = _FACTORIES.get(name)
    if factory is None:
        for entry in metadata.entry_points(group="ai_energy_benchmarks.backends"):
            if entry.name == name:
                factory = entry.load()
                break
    if factory is None:
        raise ConfigError(f"backend.type: unknown backend '{name}' (available: {', '.join(sorted(_FACTORIES))})")
    return factory(config)
