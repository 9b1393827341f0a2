"""Coercion shared by every config section: command-line strings and OmegaConf containers to plain typed data.

Values may arrive as strings from a command line ('False', '0', '0, 1, 2', '10') or as OmegaConf containers; a
:class:`Section` coerces them to the declared type or rejects them with a message naming the key path, what was
expected and what was found (see :mod:`ai_energy_benchmarks.config.errors`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

_NULL_STRINGS = frozenset({"null", "none", "~"})


def to_plain(value: Any) -> Any:
    """Recursively turn mappings and sequences (e.g. OmegaConf DictConfig/ListConfig) into dict and list."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Sequence):
        return [to_plain(v) for v in value]
    return value


def parse_scalar_string(text: str) -> Any:
    """Type a command-line scalar the way YAML would ('10' -> 10, 'False' -> False, 'null' -> None)."""
    if text.strip().lower() in _NULL_STRINGS:
        return None
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(parsed, (bool, int, float)) or parsed is None:
        return parsed if text.strip() else text
    return text


def number_kind(annotation: Any) -> str | None:
    """'int' or 'float' when ``annotation`` is a number type (optionally ``| None`` or a list of them)."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = {number_kind(arg) for arg in get_args(annotation) if arg is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if get_origin(annotation) is list:
        args = get_args(annotation)
        return number_kind(args[0]) if args else None
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    return None


class Section(BaseModel):
    """Common behaviour of every config section."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_containers(cls, data: Any) -> Any:
        data = to_plain(data)
        if isinstance(data, dict):
            # 'null' / 'None' given on a command line means "not set", for keys that may be unset.
            return {
                k: (None if isinstance(v, str) and v.strip().lower() in _NULL_STRINGS and cls._optional(k) else v)
                for k, v in data.items()
            }
        return data

    @classmethod
    def _optional(cls, key: str) -> bool:
        field = cls.model_fields.get(key)
        return field is not None and type(None) in get_args(field.annotation)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would read true as 1: a count or index given as true/false is a mistake, not a number.
        field = cls.model_fields.get(info.field_name or "")
        kind = number_kind(field.annotation) if field is not None else None
        items = value if isinstance(value, list) else [value]
        if kind is not None and any(isinstance(item, bool) for item in items):
            if kind == "int":
                raise PydanticCustomError("int_type", "Input should be a valid integer")
            raise PydanticCustomError("float_type", "Input should be a valid number")
        return value


def int_list(value: Any) -> Any:
    """Accept 0, '0', '0, 1, 2', '[0,1]' and lists of int-like values for a list of ints."""
    if isinstance(value, bool):
        return value  # rejected by the int validator with a clear message
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        if not text:
            return []
        return [part.strip() for part in text.split(",")]
    return to_plain(value)


__all__ = ["Section", "int_list", "number_kind", "parse_scalar_string", "to_plain"]
