"""The fields of 0.0.4's config sections (``config/parser.py``): set in any order and remembered, read back typed as
the run reads them, 0.0.4's defaults for fields never set, and the dicts whose keys also read as attributes
(:class:`AttrDict`). The section classes themselves, and ``ConfigParser``, are in ``config/parser.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from ai_energy_benchmarks.config.schema import BenchmarkConfig as TypedBenchmarkConfig
from ai_energy_benchmarks.config.schema import to_plain

#: 0.0.4's defaults, read back for a field that was never set (the run uses the typed config's defaults).
DEFAULTS_0_0_4: dict[str | None, dict[str, Any]] = {
    None: {"name": "benchmark", "output_dir": "./benchmark_output"},
    "backend": {
        "type": "vllm",
        "device": "cuda",
        "device_ids": [0],
        "model": "openai/gpt-oss-120b",
        "endpoint": "http://localhost:8000/v1",
        "task": "text-generation",
    },
    "scenario": {
        "dataset_name": "AIEnergyScore/text_generation",
        "text_column_name": "text",
        "num_samples": 10,
        "truncation": True,
        "reasoning": False,
        "reasoning_params": None,
        "input_shapes": {"batch_size": 1},
        "generate_kwargs": {"max_new_tokens": 100, "min_new_tokens": 50},
    },
    "metrics": {
        "type": "codecarbon",
        "enabled": True,
        "project_name": "ai_energy_benchmarks",
        "output_dir": "./emissions",
        "country_iso_code": "USA",
        "region": None,
    },
    "reporter": {"type": "csv", "output_file": "./results/benchmark_results.csv"},
}

#: Fields whose value is a mapping: kept as an :class:`AttrDict` (item and attribute access, changes kept).
_MAPPING_FIELDS = frozenset({"generate_kwargs", "input_shapes", "reasoning_params"})
#: Placeholders that let one field be typed on its own (never part of a config that runs).
_PLACEHOLDER_MODEL = "placeholder-model"
_PLACEHOLDER_ENDPOINT = "http://localhost:8000/v1"


def _typed_value(section: str | None, name: str, value: Any, backend_values: Mapping[str, Any]) -> Any:
    """``value`` of ``section.name`` typed as the run reads it; ``value`` itself when it cannot be typed alone."""
    backend: dict[str, Any] = {"model": _PLACEHOLDER_MODEL}
    if "type" in backend_values:
        backend["type"] = backend_values["type"]
    data: dict[str, Any] = {"backend": backend}
    if section is None:
        data[name] = value
    elif section == "backend":
        backend[name] = value
    else:
        data[section] = {name: value}
    if backend.get("type") == "vllm" and "endpoint" not in backend:
        backend["endpoint"] = _PLACEHOLDER_ENDPOINT
    try:
        typed: Any = TypedBenchmarkConfig.model_validate(data)
    except (ValidationError, ValueError, TypeError):
        return value
    owner = typed if section is None else getattr(typed, section)
    return getattr(owner, name, value)


class AttrDict(dict[str, Any]):
    """A dict (0.0.4's ``generate_kwargs``, ``input_shapes``, ``reasoning_params``) whose known keys also read as
    attributes, typed as the run reads them (``generate_kwargs.max_new_tokens``)."""

    def __init__(self, data: Mapping[str, Any] | None = None, path: tuple[str, str] = ("scenario", "")) -> None:
        super().__init__(to_plain(data) if data is not None else {})
        self._path = path

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key not in self:
            raise AttributeError(key)
        section, field = self._path
        typed = _typed_value(section, field, dict(self), {})
        if isinstance(typed, Mapping):
            return typed.get(key, self[key])
        return getattr(typed, key, self[key])

    def __deepcopy__(self, memo: dict[int, Any]) -> AttrDict:
        return AttrDict(copy.deepcopy(dict(self), memo), self._path)


class LegacySection:
    """One 0.0.4 config section: fields set in any order, remembered, validated later (see the module docstring)."""

    _section: ClassVar[str | None] = None

    def __init__(self, **fields: Any) -> None:
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_handed_out", {})
        for name, value in fields.items():
            setattr(self, name, value)

    # -- fields ------------------------------------------------------------------------------------------------
    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        return DEFAULTS_0_0_4[cls._section]

    def _wrap(self, name: str, value: Any) -> Any:
        if name in _MAPPING_FIELDS and isinstance(value, Mapping) and not isinstance(value, BaseModel):
            return AttrDict(value, (self._section or "", name))
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        self._values[name] = self._wrap(name, value)
        self._handed_out.pop(name, None)

    def __delattr__(self, name: str) -> None:
        if name not in self._values:
            raise AttributeError(name)
        del self._values[name]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self.__dict__.get("_values", {})
        if name in values:
            value = values[name]
            if isinstance(value, (AttrDict, LegacySection)):
                return value
            typed = _typed_value(self._section, name, value, self._backend_values())
            return value if typed == value and type(typed) is type(value) else typed  # the stored list stays live
        defaults = self._defaults()
        if name not in defaults:
            raise AttributeError(f"{type(self).__name__} has no field '{name}'")
        handed_out = self.__dict__["_handed_out"]
        if name not in handed_out:
            # A mutable default handed out is kept: a change made to it in place counts as setting the field.
            handed_out[name] = self._wrap(name, copy.deepcopy(defaults[name]))
        return handed_out[name]

    def _backend_values(self) -> Mapping[str, Any]:
        return self._values if self._section == "backend" else {}

    def is_set(self, name: str) -> bool:
        """Whether ``name`` was given (or a default handed out was changed in place)."""
        return name in self.set_fields()

    def set_fields(self) -> dict[str, Any]:
        """The fields given so far, as plain data (a default handed out and changed in place counts as given)."""
        data = {name: to_plain(value) for name, value in self._values.items()}
        for name, value in self._handed_out.items():
            if isinstance(value, (dict, list)) and to_plain(value) != self._defaults()[name]:
                data[name] = to_plain(value)
        return data

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.set_fields().items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, LegacySection)
        return self.set_fields() == other.set_fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as 0.0.4's dataclasses


__all__ = ["DEFAULTS_0_0_4", "AttrDict", "LegacySection"]
