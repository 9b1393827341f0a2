"""The ``backend`` section: the keys every backend shares, and the choice of a backend's own model by ``type``.

Each backend owns its config model, a subclass of :class:`BackendConfig` (the built-in ones live beside their
backends: ``backends/pytorch_config.py``, ``backends/http_config.py``; a plugin's in its own package). The models are
joined as a union discriminated by ``type``: the name is looked up in the backend registry
(:mod:`ai_energy_benchmarks.backends.registry`, which also reads the ``ai_energy_benchmarks.backends`` entry points),
so a plugin's type is as valid as a built-in one. The registry is reached by name, at validation time: the config
package imports no backend module (imports flow from backends to config).
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import logging
import re
from typing import Any, ClassVar, TypeVar

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ai_energy_benchmarks.config.coerce import Section, int_list, to_plain

logger = logging.getLogger(__name__)

#: The backend type of a ``backend`` section that names none.
DEFAULT_BACKEND_TYPE = "pytorch"

_Model = TypeVar("_Model", bound="BackendConfig")


class BackendConfig(Section):
    """How the model is run. The keys below are shared by every backend type; each type adds its own keys (the
    sections that follow; a plugin's, in its own documentation). A key of another backend type is an error, unless it
    holds that type's default."""

    # BackendConfig(type=..., ...) and BackendConfig.model_validate({...}) build the model of the named type (a
    # PyTorchConfig for type="pytorch"); a plugin's config model subclasses this class.

    #: Keys of other backend types this one accepts and ignores whatever their value (so that one file can switch
    #: backends with ``type: ${BENCHMARK_BACKEND}``, as 0.0.4's configs do).
    ignored_keys: ClassVar[frozenset[str]] = frozenset()

    type: str = Field(
        DEFAULT_BACKEND_TYPE,
        description="Backend: `pytorch` (local transformers model), `vllm` (a vLLM, SGLang, TGI or other "
        "OpenAI-compatible server over HTTP), or the name a plugin registers in the `ai_energy_benchmarks.backends` "
        "entry-point group.",
    )
    model: str = Field(
        ...,
        min_length=1,
        description="Hub id, local path, or `packaged:NAME` for an architecture shipped with the package "
        "(e.g. `packaged:tiny-llama`). For a server, the model name it serves.",
    )
    device: str = Field("auto", description="`auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`.")
    device_ids: list[int] = Field(
        default_factory=lambda: [0],
        description="GPU indices to place the model on and to meter when the device is CUDA "
        "(accepts `[0, 1]` or the string `'0, 1'`).",
    )
    seed: int = Field(42, ge=0, description="Seed for random weight initialisation, sampling and arrival times.")

    def __new__(cls, *args: Any, **data: Any) -> Any:
        # BackendConfig(type="vllm", ...) builds the model of that type (the 0.0.4 keyword API builds every backend
        # through this one name). Python then runs __init__ again on the result with the same keys: harmless.
        if cls is BackendConfig and data:
            model = backend_config_model(to_plain(data).get("type", DEFAULT_BACKEND_TYPE))
            if model is not BackendConfig:
                return model(**data)
        return super().__new__(cls)

    @classmethod
    def of(cls: builtins.type[_Model], value: BackendConfig) -> _Model:
        """``value`` typed as this backend's model (a backend reads its own settings through this)."""
        if not isinstance(value, cls):
            raise TypeError(f"backend settings of type '{value.type}' are not a {cls.__name__}")
        return value

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Validate ``obj`` into the model of its ``type`` (when called on :class:`BackendConfig` itself)."""
        if cls is BackendConfig and not isinstance(obj, BackendConfig):
            obj = to_plain(obj)
            if isinstance(obj, dict):
                return backend_config_model(obj.get("type", DEFAULT_BACKEND_TYPE)).model_validate(obj, *args, **kwargs)
        return super().model_validate(obj, *args, **kwargs)

    @model_validator(mode="before")
    @classmethod
    def _keys_of_other_backends(cls, data: Any) -> Any:
        """A key of another backend type: ignored when it holds that backend's default (or is in ``ignored_keys``),
        else an error naming the backend it applies to. Any other unknown key: an error with a "did you mean"."""
        data = to_plain(data)
        if cls is BackendConfig or not isinstance(data, dict):
            return data
        own = set(cls.model_fields)
        this_type = data.get("type", cls.model_fields["type"].default)
        unknown = []
        for key in [k for k in data if k not in own]:
            if key in cls.ignored_keys:
                logger.debug("backend.%s is ignored by backend type '%s'", key, this_type)
                del data[key]
                continue
            owners = {name: model for name, model in _known_models().items() if key in model.model_fields}
            if not owners:
                unknown.append(key)
            elif all(_is_default(model, key, data[key]) for model in owners.values()):
                del data[key]
            else:
                names = " or ".join(f"'{name}'" for name in sorted(owners))
                raise ValueError(f"{key} applies to backend type {names} only, not '{this_type}'")
        if unknown:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    {
                        "type": PydanticCustomError(
                            "extra_forbidden", "unknown key{hint}", {"hint": _hint(key, sorted(own))}
                        ),
                        "loc": (key,),
                        "input": data[key],
                    }
                    for key in unknown
                ],
            )
        return data

    @field_validator("device_ids", mode="before")
    @classmethod
    def _coerce_device_ids(cls, value: Any) -> Any:
        return int_list(value)

    @field_validator("device_ids")
    @classmethod
    def _check_device_ids(cls, value: list[int]) -> list[int]:
        if any(i < 0 for i in value):
            raise ValueError("GPU indices must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("GPU indices must not repeat")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("must be one of auto, cpu, cuda, cuda:N, mps")
        return value


def _hint(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_default(model: type[BackendConfig], key: str, value: Any) -> bool:
    """Whether ``value`` (coerced as ``model`` would) is ``model``'s default for ``key``, or null."""
    if value is None:
        return True
    field = model.model_fields[key]
    try:
        coerced = TypeAdapter(Any if field.annotation is None else field.annotation).validate_python(value)
    except ValidationError:
        return False
    default = field.get_default(call_default_factory=True, validated_data={})
    return bool(coerced == default)


def _registry() -> Any:
    return importlib.import_module("ai_energy_benchmarks.backends.registry")


def _known_models() -> dict[str, type[BackendConfig]]:
    """The config models of the backend types loaded so far (built-in ones, and plugins already used)."""
    models: dict[str, type[BackendConfig]] = _registry().loaded_config_models()
    return models


def builtin_config_models() -> dict[str, type[BackendConfig]]:
    """The config models of the backend types that come with the package, by name."""
    models: dict[str, type[BackendConfig]] = _registry().builtin_config_models()
    return models


def backend_config_model(name: Any) -> type[BackendConfig]:
    """The config model of backend type ``name`` (a built-in or an entry-point plugin).

    Raises:
        ValidationError: at ``type``, listing the available backend types, when no backend has that name.
    """
    registry = _registry()
    loaded: dict[str, type[BackendConfig]] = registry.loaded_config_models()
    if isinstance(name, str) and name in loaded:  # without reading the installed plugins' entry points
        return loaded[name]
    available: list[str] = registry.available_backends()
    if isinstance(name, str) and name in available:
        try:
            model: type[BackendConfig] = registry.backend_spec(name).config_model
        except Exception as exc:  # a plugin that cannot be loaded: one line at backend.type
            raise ValidationError.from_exception_data(
                "BackendConfig",
                [
                    {
                        "type": PydanticCustomError("backend_plugin", str(exc).removeprefix("backend.type: ")),
                        "loc": ("type",),
                        "input": name,
                    }
                ],
            ) from None
        return model
    expected = " or ".join(", ".join(f"'{n}'" for n in available).rsplit(", ", 1))
    raise ValidationError.from_exception_data(
        "BackendConfig",
        [
            {
                "type": PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected}),
                "loc": ("type",),
                "input": name,
            }
        ],
    )


def validate_backend(value: Any) -> Any:
    """``value`` as the config model of its ``type``: what ``BenchmarkConfig.backend`` validates with."""
    value = to_plain(value)
    if isinstance(value, dict):
        return backend_config_model(value.get("type", DEFAULT_BACKEND_TYPE)).model_validate(value)
    return value


__all__ = [
    "DEFAULT_BACKEND_TYPE",
    "BackendConfig",
    "backend_config_model",
    "builtin_config_models",
    "validate_backend",
]
