"""Writers: the JSON report (atomic), the CSV row (appended under a file lock), JSON Lines."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

logger = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_text_atomic(path, text)
    return path


def write_jsonl_atomic(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write one JSON object per line, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in rows)
    write_text_atomic(path, text)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_current_umask())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def flatten_for_csv(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into ``a.b.c`` columns; lists become JSON strings."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        column = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_for_csv(value, column))
        elif isinstance(value, (list, tuple)):
            flat[column] = json.dumps(value, ensure_ascii=False)
        else:
            flat[column] = value
    return flat


def append_csv_row(path: Path, row: Mapping[str, Any]) -> Path:
    """Append ``row`` to the CSV at ``path`` under a file lock, so concurrent runs never tear rows.

    A new file gets a header. If the file's header differs from the row's columns, the file is first rewritten
    atomically with the union of both (old columns first, new ones after; missing values left empty), so every
    row stays aligned with the header.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(row)
    with FileLock(str(path) + ".lock"):
        exists = path.is_file() and path.stat().st_size > 0
        if exists:
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                header = list(reader.fieldnames or [])
                if header != columns:
                    union = header + [c for c in columns if c not in header]
                    rows = list(reader)
            if header != columns:
                if union != header:
                    logger.warning(
                        "%s: header differs from this version's columns; rewriting it with the union of both "
                        "(%d new columns)",
                        path,
                        len(union) - len(header),
                    )
                    buffer = io.StringIO()
                    writer = csv.DictWriter(buffer, fieldnames=union, lineterminator="\n", restval="")
                    writer.writeheader()
                    writer.writerows(rows)
                    write_text_atomic(path, buffer.getvalue())
                columns = union
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
        if not exists:
            writer.writeheader()
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        with path.open("a", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
    return path
