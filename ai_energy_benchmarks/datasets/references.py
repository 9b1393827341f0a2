"""Each prompt's reference answer (``scenario.scorer.answer_column``), read from the same rows as the prompts.

The rows are read in the same order as :mod:`.loader` reads the prompts (blank JSON Lines skipped, a folder's files
in name order), so the n-th reference belongs to the n-th prompt. A null or empty cell is a prompt without a
reference (its answer is not scored); a column missing from a record is an error naming the setting.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.exceptions import DatasetError, one_line

_SETTING = "set scenario.scorer.answer_column"


def _value(row: Any, column: str, where: str) -> Any:
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: a scorer needs records with a '{column}' column, got {type(row).__name__}")
    if column not in row:
        raise DatasetError(
            f"{where}: reference column '{column}' not found (columns: {', '.join(map(str, row))}); {_SETTING}"
        )
    value = row[column]
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _jsonl(path: Path, column: str) -> list[Any]:
    values = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                values.append(_value(json.loads(line), column, f"{path}:{number}"))
    return values


def _json(path: Path, column: str) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return _jsonl(path, column)
    if isinstance(data, dict) and isinstance(data.get(column), list):
        return [_value({column: v}, column, str(path)) for v in data[column]]
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of records or JSON Lines")
    return [_value(row, column, f"{path}[{i}]") for i, row in enumerate(data)]


def _csv(path: Path, column: str) -> list[Any]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is not None and column not in reader.fieldnames:
            raise DatasetError(
                f"{path}: reference column '{column}' not found (columns: {', '.join(reader.fieldnames)}); {_SETTING}"
            )
        return [_value(row, column, f"{path}:{reader.line_num}") for row in reader]


def _parquet(path: Path, column: str) -> list[Any]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=[column])
    except Exception as exc:
        raise DatasetError(f"{path}: cannot read reference column '{column}' ({one_line(exc)}); {_SETTING}") from None
    return [_value({column: v}, column, str(path)) for v in table.column(column).to_pylist()]


def _file(path: Path, column: str) -> list[Any]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl(path, column)
    if suffix == ".json":
        return _json(path, column)
    if suffix == ".csv":
        return _csv(path, column)
    if suffix == ".parquet":
        return _parquet(path, column)
    raise DatasetError(f"{path}: a {suffix} file has no columns, so no reference answers; use jsonl, csv or parquet")


def read_references(path: Path, column: str, supported: tuple[str, ...]) -> list[Any]:
    """The ``column`` value of every record of a local file or folder (``supported``: the suffixes read)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in supported and p.is_file())
        return [value for file in files for value in _file(file, column)]
    return _file(path, column)


def hub_references(data: Any, name: str, column: str) -> list[Any]:
    """The ``column`` of a loaded hub dataset."""
    if column not in data.column_names:
        raise DatasetError(
            f"{name}: reference column '{column}' not found (columns: {', '.join(data.column_names)}); {_SETTING}"
        )
    return [_value({column: v}, column, f"hub:{name}") for v in data[column]]


__all__ = ["hub_references", "read_references"]
