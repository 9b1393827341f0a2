"""Load a benchmark config: YAML with `defaults:` composition, environment interpolation and overrides.

Environment references: shell style ``${VAR}`` / ``${VAR:-default}`` (the default also replaces an empty value),
and OmegaConf's ``${oc.env:VAR}`` / ``${oc.env:VAR,default}`` (the default replaces an unset variable only), so a
YAML file written for 0.0.4 (which AIEnergyScore loads with OmegaConf) loads unchanged.

Order of application (later wins):

1. the fragments named in the file's ``defaults:`` list (relative to the file), in order;
2. the file's own keys (or at the position of ``_self_`` in the defaults list);
3. the overrides: a nested dict or dotted ``key=value`` strings (``backend.model=gpt2``).

Environment interpolation happens on the composed document, before overrides, so an override always wins.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ai_energy_benchmarks.config.errors import format_validation_error
from ai_energy_benchmarks.config.redact import redact_override, redact_text
from ai_energy_benchmarks.config.schema import BenchmarkConfig, parse_scalar_string, to_plain
from ai_energy_benchmarks.exceptions import ConfigError

_VAR = re.compile(
    r"\$\{(?:oc\.env:\s*(?P<oc_name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:,\s*(?P<oc_default>[^}]*?))?\s*"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*?))?)\}"
)
#: Other OmegaConf interpolations (``${other.key}``, ``${resolver:...}``), which this loader does not resolve.
_UNSUPPORTED = re.compile(r"\$\{[^}]*[.:][^}]*\}")


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


_MAX_DEFAULTS_DEPTH = 16

Overrides = Mapping[str, Any] | Iterable[str] | None


def preset_dir() -> Path:
    """Directory of the packaged presets."""
    return Path(str(resources.files("ai_energy_benchmarks") / "config" / "presets"))


def list_presets() -> dict[str, str]:
    """Packaged preset names mapped to their one-line description (the file's first comment line)."""
    presets: dict[str, str] = {}
    for path in sorted(preset_dir().glob("*.yaml")):
        description = ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                description = line.lstrip("#").strip()
                break
        presets[path.stem] = description
    return presets


def resolve_config_path(config_path: str | os.PathLike[str] | None, config_name: str | None) -> Path:
    """The YAML file to load: ``config_path`` if given, else the packaged preset ``config_name``."""
    if config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    if config_name is None:
        raise ConfigError("no config given: pass --config PATH or --config-name NAME")
    name = config_name.removesuffix(".yaml")
    path = preset_dir() / f"{name}.yaml"
    if not path.is_file():
        from ai_energy_benchmarks.config.errors import did_you_mean

        names = list(list_presets())
        raise ConfigError(f"unknown preset '{config_name}'{did_you_mean(name, names)}; available: {', '.join(names)}")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "a config is YAML saved as UTF-8"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: a binary file (NUL byte at offset {text.index(chr(0))}), not a YAML config")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``; mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(to_plain(value))
    return merged


def _fragment_path(base_dir: Path, name: str, origin: Path) -> Path:
    candidate = base_dir / name
    if candidate.suffix not in (".yaml", ".yml"):
        candidate = candidate.with_name(candidate.name + ".yaml")
    if not candidate.is_file():
        raise ConfigError(f"{origin}: defaults: fragment '{name}' not found (looked for {candidate})")
    return candidate


def compose(path: Path, _depth: int = 0) -> dict[str, Any]:
    """Load ``path`` and apply its ``defaults:`` list recursively."""
    if _depth > _MAX_DEFAULTS_DEPTH:
        raise ConfigError(f"{path}: defaults: nested more than {_MAX_DEFAULTS_DEPTH} levels (a cycle?)")
    data = _read_yaml(path)
    defaults = data.pop("defaults", None)
    if defaults is None:
        return data
    if not isinstance(defaults, list):
        raise ConfigError(f"{path}: defaults: expected a list, got {type(defaults).__name__}")
    result: dict[str, Any] = {}
    self_applied = False
    for entry in defaults:
        if entry == "_self_":
            result = deep_merge(result, data)
            self_applied = True
        elif isinstance(entry, str):
            result = deep_merge(result, compose(_fragment_path(path.parent, entry, path), _depth + 1))
        elif isinstance(entry, dict) and len(entry) == 1:
            group, option = next(iter(entry.items()))
            if not isinstance(option, str):
                raise ConfigError(f"{path}: defaults: '{group}' expects a fragment name, got {option!r}")
            fragment = compose(_fragment_path(path.parent, f"{group}/{option}", path), _depth + 1)
            result = deep_merge(result, {str(group): fragment})
        else:
            raise ConfigError(f"{path}: defaults: entries are 'file', '{{group: name}}' or '_self_', got {entry!r}")
    if not self_applied:
        result = deep_merge(result, data)
    return result


def interpolate_env(value: Any, origin: str, key_path: str = "") -> Any:
    """Replace ``${VAR}``, ``${VAR:-default}``, ``${oc.env:VAR}`` and ``${oc.env:VAR,default}`` in every string of
    ``value`` from the environment.

    A string that is exactly one reference is typed like YAML ('10' -> 10, 'false' -> False, 'null' -> None).
    """
    if isinstance(value, dict):
        return {k: interpolate_env(v, origin, f"{key_path}.{k}" if key_path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_env(v, origin, f"{key_path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group("oc_name") is not None:
            name, default = match.group("oc_name"), match.group("oc_default")
            env_value = os.environ.get(name)
            if env_value is not None:
                return env_value
            if default is not None:
                return _unquote(default)
            raise ConfigError(
                f"{origin}: {key_path}: environment variable {name} is not set "
                f"(set it, or write ${{oc.env:{name},default}} to give a default)"
            )
        name, default = match.group("name"), match.group("default")
        env_value = os.environ.get(name)
        if env_value is not None and (env_value != "" or default is None):
            return env_value
        if default is not None:
            return default
        raise ConfigError(
            f"{origin}: {key_path}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}} to give a default)"
        )

    whole = _VAR.fullmatch(value) is not None
    unsupported = _UNSUPPORTED.search(_VAR.sub("", value))
    if unsupported:
        raise ConfigError(
            f"{origin}: {key_path}: interpolation {unsupported.group(0)} is not supported (only environment "
            "variables: ${VAR}, ${VAR:-default}, ${oc.env:VAR} and ${oc.env:VAR,default})"
        )
    substituted = _VAR.sub(substitute, value)
    return parse_scalar_string(substituted) if whole else substituted


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, label: str) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"override '{label}': malformed key '{dotted}'")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override '{label}': '{'.'.join(parts[: i + 1])}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _override_value(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError:
            return text
    if stripped.lower() in ("null", "none", "~"):
        return None
    return text


def apply_overrides(data: dict[str, Any], overrides: Overrides) -> tuple[dict[str, Any], list[str]]:
    """Apply a nested dict or ``key=value`` strings; return the new data and the overridden key paths."""
    if overrides is None:
        return data, []
    if isinstance(overrides, Mapping):
        plain = to_plain(overrides)
        return deep_merge(data, plain), list(_flatten_keys(plain))
    result = copy.deepcopy(data)
    keys: list[str] = []
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            shown = redact_text(item) if isinstance(item, str) else repr(item)
            raise ConfigError(f"override '{shown}': expected key=value (e.g. backend.model=gpt2)")
        key, _, raw = item.partition("=")
        key = key.strip().lstrip("+")
        _set_dotted(result, key, _override_value(raw), redact_override(item))
        keys.append(key)
    return result, keys


def _flatten_keys(data: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            yield from _flatten_keys(value, path)
        else:
            yield path


def build_config(data: Mapping[str, Any], origin: str) -> BenchmarkConfig:
    """Validate plain data into a :class:`BenchmarkConfig`, raising :class:`ConfigError` with one line."""
    try:
        return BenchmarkConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(BenchmarkConfig, exc, origin)) from None


def load_config_data(
    config_path: str | os.PathLike[str] | None = None,
    overrides: Overrides = None,
    config_name: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The composed, interpolated and overridden config as plain data, and a label of where it came from."""
    path = resolve_config_path(config_path, config_name)
    origin = str(path) if config_path is not None else f"preset '{path.stem}'"
    data = interpolate_env(compose(path), origin)
    data, override_keys = apply_overrides(data, overrides)
    if override_keys:
        origin = f"{origin} (with overrides {', '.join(override_keys)})"
    return data, origin


def load_config(
    config_path: str | os.PathLike[str] | None = None,
    overrides: Overrides = None,
    config_name: str | None = None,
) -> BenchmarkConfig:
    """Load, compose, interpolate, override and validate a config file or packaged preset.

    Raises:
        ConfigError: with a one-line message naming the file, the key path, what was expected and found.
    """
    data, origin = load_config_data(config_path, overrides, config_name)
    return build_config(data, origin)


__all__ = [
    "apply_overrides",
    "build_config",
    "compose",
    "deep_merge",
    "interpolate_env",
    "list_presets",
    "load_config",
    "load_config_data",
    "preset_dir",
    "resolve_config_path",
]
