"""Turn pydantic validation errors into one-line messages: where, which key, what was expected, what was found."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from ai_energy_benchmarks.config.redact import redact_text, redact_value

_EXPECTED_BY_TYPE = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _section_model(root: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config section model found at ``path`` below ``root``, if the path leads to one."""
    model: type[BaseModel] | None = root
    for part in path:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def did_you_mean(word: str, choices: list[str]) -> str:
    """A " (did you mean 'x'?)" hint, or an empty string when nothing is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_error(root: type[BaseModel], error: Any) -> str:
    """One readable clause for one pydantic error entry (a secret value, or a URL's credentials, never shown)."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    path = ".".join(str(p) for p in loc)
    got = redact_value(str(loc[-1]) if loc else "", error.get("input"))
    if kind == "extra_forbidden":
        hint = (error.get("ctx") or {}).get("hint")  # given by a section that knows its keys (a backend's model)
        if isinstance(hint, str):
            return f"{path}: unknown key{hint}"
        parent = _section_model(root, loc[:-1])
        choices = list(parent.model_fields) if parent is not None else []
        return f"{path}: unknown key{did_you_mean(str(loc[-1]), choices)}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind in _EXPECTED_BY_TYPE:
        return f"{path}: expected {_EXPECTED_BY_TYPE[kind]}, got {_short(got)}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "one of the allowed values")
        return f"{path}: expected {expected}, got {_short(got)}"
    message = redact_text(str(error.get("msg", "invalid value")))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    where = f"{path}: " if path else ""
    if kind in ("value_error", "assertion_error") and isinstance(got, dict):
        return f"{where}{message}"
    if message[1:2].islower():  # "Input should ..." -> "input should ...", but keep "GPU indices ..."
        message = message[:1].lower() + message[1:]
    return f"{where}{message}, got {_short(got)}"


def format_validation_error(root: type[BaseModel], exc: ValidationError, prefix: str = "") -> str:
    """All errors of ``exc`` as one line, prefixed with ``prefix`` (usually the config file)."""
    clauses = [describe_error(root, err) for err in exc.errors()]
    head = f"{prefix}: " if prefix else ""
    return head + "; ".join(clauses)


__all__ = ["did_you_mean", "format_validation_error"]
