"""A sweep's grid: the swept keys and values, and the points of their Cartesian product (named for directories)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ai_energy_benchmarks.config.redact import redact_override
from ai_energy_benchmarks.exceptions import ConfigError

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class SweepParam:
    """One swept config key and its values (as written on the command line; typed by the config schema)."""

    key: str
    values: tuple[str, ...]


def parse_param(text: str) -> SweepParam:
    """``KEY=V1,V2,...`` -> :class:`SweepParam`. Raises :class:`ConfigError` for a malformed specification."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--param {text!r}: expected KEY=V1,V2,... (e.g. scenario.input_shapes.batch_size=1,2,4)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(f"--param {text!r}: '{key}' is not a dotted config key")
    if key == "output_dir" or key.startswith("reporter."):
        raise ConfigError(f"--param {text!r}: the sweep sets {key} itself (each point has its own run directory)")
    values = tuple(value.strip() for value in raw.split(","))
    if not raw.strip() or any(not value for value in values):
        raise ConfigError(f"--param {text!r}: give at least one value, and no empty value")
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise ConfigError(f"--param {text!r}: value(s) repeated: {', '.join(duplicates)}")
    return SweepParam(key=key, values=values)


def public_value(key: str, value: str) -> str:
    """A swept or overridden value as it may be shown (secrets redacted, see ``redact_override``)."""
    return redact_override(f"{key}={value}").partition("=")[2]


@dataclass(frozen=True)
class SweepPoint:
    """One point of the grid: its 1-based index, the (key, value) pairs it sets and its directory name."""

    index: int
    settings: tuple[tuple[str, str], ...]
    name: str

    @property
    def public_settings(self) -> tuple[tuple[str, str], ...]:
        """The settings as they may be shown and written: a secret's value, or a URL's credentials, redacted."""
        return tuple((key, public_value(key, value)) for key, value in self.settings)

    @property
    def label(self) -> str:
        """Short human label, e.g. ``batch_size=4`` or ``batch_size=4, concurrency=8`` (secrets redacted)."""
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.public_settings)

    @property
    def overrides(self) -> list[str]:
        """The point's ``key=value`` overrides."""
        return [f"{key}={value}" for key, value in self.settings]


def build_grid(params: Sequence[SweepParam]) -> list[SweepPoint]:
    """The Cartesian product of the parameters' values (the first parameter varies slowest).

    Directory names use each key's last component (the full key where two parameters share it) and the value,
    with characters other than letters, digits and ``._+-`` replaced; a name two points would share gets a short
    hash of the point's settings.
    """
    if not params:
        raise ConfigError("a sweep needs at least one --param KEY=V1,V2,...")
    keys = [param.key for param in params]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ConfigError(f"--param given twice for {', '.join(repeated)}: list all its values in one --param")
    short = [key.rsplit(".", 1)[-1] for key in keys]
    short = [s if short.count(s) == 1 else key for s, key in zip(short, keys, strict=True)]
    points = []
    for index, values in enumerate(itertools.product(*(param.values for param in params)), start=1):
        settings = tuple(zip(keys, values, strict=True))
        shown = [public_value(key, value) for key, value in settings]  # a directory name holds no secret
        name = "__".join(f"{_SAFE.sub('_', s)}-{_SAFE.sub('_', v)}" for s, v in zip(short, shown, strict=True))
        points.append(SweepPoint(index=index, settings=settings, name=name))
    names = [point.name for point in points]
    return [
        SweepPoint(
            index=point.index,
            settings=point.settings,
            name=point.name
            + (
                "-" + hashlib.sha256(json.dumps(point.settings).encode()).hexdigest()[:8]
                if names.count(point.name) > 1
                else ""
            ),
        )
        for point in points
    ]


__all__ = ["SweepParam", "SweepPoint", "build_grid", "parse_param", "public_value"]
