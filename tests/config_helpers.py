"""Helpers shared by tests/unit/config/test_config_*.py: an isolated working directory, the real CLI, errors."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ai_energy_benchmarks.cli import main
from ai_energy_benchmarks.config import load_config
from ai_energy_benchmarks.config.loader import build_config
from ai_energy_benchmarks.exceptions import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]

# Variables the packaged presets read; cleared so the tests see the documented defaults.
_PRESET_VARIABLES = ("BENCHMARK_BACKEND", "BENCHMARK_DEVICE", "VLLM_ENDPOINT", "RESULTS_DIR", "AIEB_OUTPUT_DIR")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in an empty directory with the presets' variables unset; restore logging the CLI reconfigures."""
    for name in _PRESET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def write(directory: Path, name: str, text: str) -> Path:
    """Write dedented ``text`` to ``directory/name`` (creating folders) and return the path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def cli(*args: str) -> Result:
    """Invoke the real command line in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit code 2, stderr exactly one line "error: ...", containing every fragment and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def config_error(path: Path, overrides: Any = None) -> str:
    """The message of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


def config_error_from_data(data: dict[str, Any]) -> str:
    """The message of the ConfigError that validating plain ``data`` raises."""
    with pytest.raises(ConfigError) as info:
        build_config(data, "python")
    return str(info.value)


MINIMAL = """\
name: mini
backend:
  type: pytorch
  model: gpt2
"""


class FakeDictConfig(Mapping[str, Any]):
    """Stands in for OmegaConf's DictConfig: a Mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class FakeListConfig(Sequence[Any]):
    """Stands in for OmegaConf's ListConfig: a Sequence that is not a list."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    def __getitem__(self, index: Any) -> Any:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)
