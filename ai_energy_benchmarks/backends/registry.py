"""Backend registry: ``backend.type`` name -> (config model, factory).

Built-in backends are registered below; third parties add theirs through the ``ai_energy_benchmarks.backends``
entry-point group. The entry point's name is the ``backend.type``; its object is a :class:`BackendSpec`::

    # my_backend/plugin.py
    from ai_energy_benchmarks.backends.base import Backend
    from ai_energy_benchmarks.backends.registry import BackendSpec
    from ai_energy_benchmarks.config.schema import BackendConfig

    class MyConfig(BackendConfig):          # the keys every backend has (type, model, device, device_ids, seed)
        type: Literal["mine"] = "mine"
        temperature_scale: float = 1.0      # ... plus your own, validated and reported like ours

    class MyBackend(Backend): ...           # run, describe, close, set_phase (see backends/base.py)

    spec = BackendSpec(config_model=MyConfig, factory=MyBackend, description="my accelerator")

    # pyproject.toml
    [project.entry-points."ai_energy_benchmarks.backends"]
    mine = "my_backend.plugin:spec"

The factory is called with the whole validated :class:`BenchmarkConfig` (``config.backend`` is a ``MyConfig``) and
must load nothing (the runner calls :meth:`Backend.load` outside the measured windows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from ai_energy_benchmarks.backends.base import Backend
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.pytorch_config import PyTorchConfig
from ai_energy_benchmarks.config.backend import BackendConfig
from ai_energy_benchmarks.exceptions import ConfigError

if TYPE_CHECKING:
    from ai_energy_benchmarks.config.schema import BenchmarkConfig

#: The entry-point group plugins register backends in.
ENTRY_POINT_GROUP = "ai_energy_benchmarks.backends"

BackendFactory = Callable[["BenchmarkConfig"], Backend]


@dataclass(frozen=True)
class BackendSpec:
    """A backend type: its config model (a :class:`BackendConfig` subclass) and the factory that builds it."""

    config_model: type[BackendConfig]
    factory: BackendFactory
    description: str = ""


_SPECS: dict[str, BackendSpec] = {}


def register_backend(
    name: str, config_model: type[BackendConfig], factory: BackendFactory, description: str = ""
) -> None:
    """Make ``backend.type: name`` validate with ``config_model`` and create a backend with ``factory``."""
    _SPECS[name] = _checked(name, BackendSpec(config_model, factory, description), "register_backend")


def _checked(name: str, spec: object, where: str) -> BackendSpec:
    if not isinstance(spec, BackendSpec):
        raise ConfigError(
            f"backend.type: backend '{name}' ({where}) is a {type(spec).__name__}, not a BackendSpec "
            "(see ai_energy_benchmarks.backends.registry)"
        )
    if not (isinstance(spec.config_model, type) and issubclass(spec.config_model, BackendConfig)):
        raise ConfigError(f"backend.type: backend '{name}' ({where}): its config_model is not a BackendConfig subclass")
    if not callable(spec.factory):
        raise ConfigError(f"backend.type: backend '{name}' ({where}): its factory is not callable")
    return spec


def _pytorch(config: BenchmarkConfig) -> Backend:
    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend

    return PyTorchBackend(config)


def _openai_http(config: BenchmarkConfig) -> Backend:
    from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend

    return OpenAIHTTPBackend(config)


register_backend("pytorch", PyTorchConfig, _pytorch, "a local model, with PyTorch + transformers")
register_backend("vllm", OpenAIHTTPConfig, _openai_http, "an OpenAI-compatible server (vLLM, SGLang, TGI, ...)")
_BUILTIN = tuple(_SPECS)


def builtin_config_models() -> dict[str, type[BackendConfig]]:
    """The config models of the backend types that come with the package, by name."""
    return {name: _SPECS[name].config_model for name in _BUILTIN}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The installed plugins' entry points by name (read on every call: a plugin installed meanwhile counts)."""
    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Every backend type: the registered ones and the installed plugins' (not loaded)."""
    return sorted(set(_SPECS) | set(_entry_points()))


def loaded_config_models() -> dict[str, type[BackendConfig]]:
    """The config models of the backend types registered or loaded so far (no plugin is loaded for this)."""
    return {name: spec.config_model for name, spec in _SPECS.items()}


def backend_spec(name: str) -> BackendSpec:
    """The :class:`BackendSpec` of backend type ``name``, loading its plugin on first use.

    Raises:
        ConfigError: one line, when no backend has that name or its plugin cannot be loaded.
    """
    spec = _SPECS.get(name)
    if spec is not None:
        return spec
    entry = _entry_points().get(name)
    if entry is None:
        raise ConfigError(f"backend.type: unknown backend '{name}' (available: {', '.join(available_backends())})")
    where = f"entry point '{entry.value}' in group {ENTRY_POINT_GROUP}"
    try:
        loaded = entry.load()
    except Exception as exc:
        raise ConfigError(
            f"backend.type: cannot load backend '{name}' ({where}): {type(exc).__name__}: {exc}"
        ) from None
    _SPECS[name] = spec = _checked(name, loaded, where)
    return spec


def create_backend(config: BenchmarkConfig) -> Backend:
    """The backend ``config.backend.type`` names (not yet loaded)."""
    return backend_spec(config.backend.type).factory(config)


__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendFactory",
    "BackendSpec",
    "available_backends",
    "backend_spec",
    "builtin_config_models",
    "create_backend",
    "loaded_config_models",
    "register_backend",
]
