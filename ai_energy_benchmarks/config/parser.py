"""ai_energy_benchmarks 0.0.4's config names, as code written against it (AIEnergyScore among it) uses them.

``BenchmarkConfig``, ``BackendConfig``, ``ScenarioConfig``, ``MetricsConfig`` and ``ReporterConfig`` here are 0.0.4's
mutable classes: built with no arguments or by keyword, their fields set one by one in any order
(``config.backend.type = "vllm"`` before ``endpoint`` is set). Nothing is validated on assignment. Each object
remembers which fields were set; when a :class:`~ai_energy_benchmarks.runner.BenchmarkRunner` is built from it (or
:meth:`BenchmarkConfig.validate` is called), those fields, and only those, are validated into the typed config
(:class:`ai_energy_benchmarks.config.schema.BenchmarkConfig`); a field never set takes the typed config's default.

Reading a field returns what was set, typed the way the run will read it (``device_ids="0, 1"`` reads ``[0, 1]``,
``reasoning="False"`` reads ``False``; a value that cannot be typed reads as given and is refused at validation);
reading a field that was never set returns 0.0.4's default (:data:`DEFAULTS_0_0_4`), which the run does not use
when ours differs (docs/compat-0.0.4.md lists both).

``ConfigParser`` keeps 0.0.4's static methods. Our own API is :mod:`ai_energy_benchmarks.config` (typed, validated
at once); these names are a compatibility layer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ai_energy_benchmarks.config.loader import build_config, load_config, load_config_data
from ai_energy_benchmarks.config.parser_fields import DEFAULTS_0_0_4, AttrDict, LegacySection
from ai_energy_benchmarks.config.schema import BenchmarkConfig as TypedBenchmarkConfig
from ai_energy_benchmarks.config.schema import to_plain
from ai_energy_benchmarks.exceptions import ConfigError


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """A config file that does not exist (both our :class:`ConfigError` and the built-in, as 0.0.4 raised)."""


class ConfigValueError(ConfigError, ValueError):
    """An invalid config from :meth:`ConfigParser.validate_config` (a ValueError, as in 0.0.4, and a ConfigError)."""


class BackendConfig(LegacySection):
    """0.0.4's backend section (type, model, device, device_ids, endpoint, task) plus every key of ours."""

    _section = "backend"

    def set_fields(self) -> dict[str, Any]:
        """As for every section; with an ``endpoint`` and no ``type``, the type is 0.0.4's default, ``vllm`` (the only
        type an endpoint means); ``task: text-generation`` (0.0.4's only task) is left out."""
        data = super().set_fields()
        if data.get("task") == "text-generation":
            del data["task"]
        if "type" not in data and data.get("endpoint"):
            data = {"type": "vllm", **data}
        return data


class ScenarioConfig(LegacySection):
    """0.0.4's scenario section plus every key of ours."""

    _section = "scenario"


class MetricsConfig(LegacySection):
    """0.0.4's metrics section plus every key of ours."""

    _section = "metrics"


class ReporterConfig(LegacySection):
    """0.0.4's reporter section."""

    _section = "reporter"


_SECTIONS: dict[str, type[LegacySection]] = {
    "backend": BackendConfig,
    "scenario": ScenarioConfig,
    "metrics": MetricsConfig,
    "reporter": ReporterConfig,
}


class BenchmarkConfig(LegacySection):
    """0.0.4's whole config: ``BenchmarkConfig()`` then fields set one by one, or every section by keyword.

    A section may be given as its class here, as a typed section of :mod:`ai_energy_benchmarks.config.schema` or as
    a mapping. :meth:`to_typed_config` (called by the runner) validates what was set.
    """

    _section = None

    def __init__(self, **fields: Any) -> None:
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_handed_out", {})
        for name, section_cls in _SECTIONS.items():
            self._values[name] = section_cls()
        for name, value in fields.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        section_cls = _SECTIONS.get(name)
        if section_cls is None or name.startswith("_"):
            super().__setattr__(name, value)
            return
        if isinstance(value, section_cls):
            section = value
        elif isinstance(value, BaseModel):
            section = section_cls(**value.model_dump(exclude_unset=True))
        elif isinstance(value, Mapping):
            section = section_cls(**{str(k): v for k, v in value.items()})
        else:
            raise TypeError(f"{name}: expected a {section_cls.__name__} or a mapping, got {type(value).__name__}")
        self._values[name] = section

    def __delattr__(self, name: str) -> None:
        if name in _SECTIONS:
            self._values[name] = _SECTIONS[name]()
            return
        super().__delattr__(name)

    def set_fields(self) -> dict[str, Any]:
        """Everything given so far as nested plain data (sections with nothing set left out)."""
        data: dict[str, Any] = {}
        for name, value in self._values.items():
            if isinstance(value, LegacySection):
                fields = value.set_fields()
                if fields:
                    data[name] = fields
            else:
                data[name] = to_plain(value)
        return data

    def to_typed_config(self, origin: str = "python") -> TypedBenchmarkConfig:
        """The typed, validated config of the fields that were set.

        Raises:
            ConfigError: one line naming ``origin``, the key path, what was expected and what was found.
        """
        return build_config(self.set_fields(), origin)

    def validate(self) -> bool:
        """Validate what was set (raises :class:`ConfigError`); True when valid."""
        self.to_typed_config()
        return True

    def to_public_dict(self) -> dict[str, Any]:
        """The typed config as plain data with secrets redacted (see the typed config's ``to_public_dict``)."""
        return self.to_typed_config().to_public_dict()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> BenchmarkConfig:
        """A config whose set fields are ``data`` (nested mappings, as a YAML file holds them)."""
        return cls(**{str(k): v for k, v in to_plain(data).items()})


def as_runner_config(config: Any) -> Any:
    """What the runner builds from: a 0.0.4-style :class:`BenchmarkConfig` becomes the plain data of its set fields
    (validated by the runner, with its errors); anything else is returned as it is."""
    return config.set_fields() if isinstance(config, BenchmarkConfig) else config


def _backend_types() -> set[str]:
    from importlib import metadata

    from ai_energy_benchmarks.backends.registry import available_backends

    names = set(available_backends())
    names.update(entry.name for entry in metadata.entry_points(group="ai_energy_benchmarks.backends"))
    return names


class ConfigParser:
    """0.0.4's config loader: static methods, callable on the class or on an instance."""

    @staticmethod
    def load_config(
        config_path: str | os.PathLike[str], overrides: Mapping[str, Any] | list[str] | None = None
    ) -> BenchmarkConfig:
        """Load ``config_path`` (YAML, with ``defaults:`` and ``${VAR:-x}``) and optional overrides; validate it.

        Raises:
            FileNotFoundError: (a :class:`ConfigFileNotFoundError`) when the file does not exist.
            ConfigError: when the file's content is invalid (one line naming the file and the key).
        """
        if not os.path.exists(config_path):
            raise ConfigFileNotFoundError(f"Config file not found: {config_path}")
        data, origin = load_config_data(config_path, dict(overrides) if isinstance(overrides, Mapping) else overrides)
        config = BenchmarkConfig.from_data(data)
        config.to_typed_config(origin)  # the same errors as our loader, at load time
        return config

    @staticmethod
    def load_config_with_overrides(
        config_path: str | os.PathLike[str], overrides: Mapping[str, Any] | list[str] | None = None
    ) -> BenchmarkConfig:
        """:meth:`load_config` with ``overrides``: a nested dict (``{"scenario": {"num_samples": 20}}``) or
        ``key=value`` strings."""
        return ConfigParser.load_config(config_path, overrides)

    @staticmethod
    def validate_config(config: BenchmarkConfig | TypedBenchmarkConfig) -> bool:
        """True when ``config`` is valid; otherwise a ValueError (a :class:`ConfigValueError`) with 0.0.4's message
        for the checks 0.0.4 made, then ours for everything else."""
        backend_type = config.backend.type
        if backend_type not in _backend_types():
            raise ConfigValueError(f"Invalid backend type: {backend_type}")
        if backend_type == "vllm" and not getattr(config.backend, "endpoint", None):
            raise ConfigValueError("vLLM backend requires endpoint configuration")
        num_samples = config.scenario.num_samples
        if isinstance(num_samples, int) and not isinstance(num_samples, bool) and num_samples < 1:
            raise ConfigValueError("num_samples must be >= 1")
        metrics_type = config.metrics.type
        try:
            from ai_energy_benchmarks.energy.registry import check_meter_names

            check_meter_names([metrics_type] if isinstance(metrics_type, str) else list(metrics_type))
        except (ConfigError, TypeError):
            raise ConfigValueError(f"Invalid metrics type: {metrics_type}") from None
        if config.reporter.type != "csv":
            raise ConfigValueError(f"Invalid reporter type: {config.reporter.type}")
        if isinstance(config, BenchmarkConfig):
            try:
                config.to_typed_config()
            except ConfigError as exc:
                raise ConfigValueError(str(exc)) from None
        return True


def parse_config(
    config_path: str | os.PathLike[str], overrides: dict[str, Any] | list[str] | None = None
) -> TypedBenchmarkConfig:
    """Load and validate ``config_path`` with optional overrides (the typed config)."""
    return load_config(config_path, overrides)


__all__ = [
    "DEFAULTS_0_0_4",
    "AttrDict",
    "BackendConfig",
    "BenchmarkConfig",
    "ConfigFileNotFoundError",
    "ConfigParser",
    "ConfigValueError",
    "MetricsConfig",
    "ReporterConfig",
    "ScenarioConfig",
    "as_runner_config",
    "parse_config",
]
