"""Data shipped with the package: ``packaged:NAME`` names ``ai_energy_benchmarks/data/<folder>/NAME.jsonl``.

One lookup for the packaged prompt sets (``data/prompts``), conversation sets (``data/conversations``) and traces
(``data/traces``): the names a folder offers, the file a ``packaged:NAME`` value names, or else a local file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ai_energy_benchmarks.exceptions import DatasetError

PACKAGED_PREFIX = "packaged:"


def packaged_dir(folder: str) -> Path:
    """The packaged data folder ``ai_energy_benchmarks/data/<folder>``."""
    return Path(str(resources.files("ai_energy_benchmarks") / "data" / folder))


def packaged_names(folder: str) -> list[str]:
    """The names usable as ``packaged:NAME`` for the ``.jsonl`` files of ``data/<folder>``, sorted."""
    return sorted(p.stem for p in packaged_dir(folder).glob("*.jsonl"))


def packaged_file(name: str, folder: str, key: str, what: str) -> Path:
    """``data/<folder>/<name>.jsonl``.

    Raises:
        DatasetError: ``<key>: no packaged <what> '<name>' (available: ...)`` when there is none.
    """
    path = packaged_dir(folder) / f"{name}.jsonl"
    if not path.is_file():
        raise DatasetError(f"{key}: no packaged {what} '{name}' (available: {', '.join(packaged_names(folder))})")
    return path


def packaged_or_local_file(value: str, folder: str, key: str, what: str) -> Path:
    """The file the setting ``key`` names: ``packaged:NAME`` (see :func:`packaged_file`) or a local path (``~``
    expanded).

    Raises:
        DatasetError: an unknown packaged name, or ``<key>: file '<value>' not found``.
    """
    if value.startswith(PACKAGED_PREFIX):
        return packaged_file(value[len(PACKAGED_PREFIX) :], folder, key, what)
    path = Path(value).expanduser()
    if not path.is_file():
        raise DatasetError(f"{key}: file '{value}' not found")
    return path


__all__ = ["PACKAGED_PREFIX", "packaged_dir", "packaged_file", "packaged_names", "packaged_or_local_file"]
