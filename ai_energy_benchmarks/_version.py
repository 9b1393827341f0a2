"""The package version, single-sourced from VERSION.txt through the package metadata."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

_DIST_NAME = "ai-energy-benchmarks"


def _read_version() -> str:
    source_tree_file = Path(__file__).resolve().parent.parent / "VERSION.txt"
    try:
        installed = metadata.version(_DIST_NAME)
    except metadata.PackageNotFoundError:
        installed = None
    # An editable or source-tree import prefers the file the build reads from, so a bump is seen at once.
    if source_tree_file.is_file():
        return source_tree_file.read_text(encoding="utf-8").strip()
    if installed is not None:
        return installed
    return "0+unknown"


__version__: str = _read_version()
