"""Writers: the JSON report (atomic), the CSV row (appended under a file lock), JSON Lines."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.exceptions import BenchmarkError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


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


@contextmanager
def exclusive_lock(lock_path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``lock_path`` over the body; yield False (holding nothing) when ``blocking`` is
    False and another process holds it.

    The lock file is removed before the lock is released, so no empty ``*.lock`` file is left behind. That is safe
    because a process that waited on a file that was removed meanwhile sees that the path now names another file
    (or none) and starts over: whoever holds a lock holds the one on the file the path names. Where ``fcntl`` is
    missing (Windows), :mod:`filelock` is used and its file stays.
    """
    if fcntl is None:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        lock = FileLock(str(lock_path), timeout=-1 if blocking else 0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        except BaseException:
            os.close(fd)
            raise
        try:
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            break
        os.close(fd)  # the holder we waited for removed this file: lock the one the path names now
    try:
        yield True
    finally:
        with suppress(OSError):
            os.unlink(lock_path)  # while still holding it (see above)
        os.close(fd)


def csv_lock_path(path: Path) -> Path:
    """The lock file that serialises appends to the CSV at ``path`` (beside it, removed after each append)."""
    return path.with_name(path.name + ".lock")


@dataclass(frozen=True)
class CsvAppend:
    """Where a CSV row went: ``path``; ``refused`` maps each file that could not take it to the reason."""

    path: Path
    refused: dict[str, str]


#: How many ``<stem>.N<suffix>`` files beside a damaged CSV are tried before giving up.
MAX_SIDE_FILES = 99


def append_csv_row(path: Path, row: Mapping[str, Any]) -> Path:
    """Append ``row`` to the CSV at ``path`` under a file lock; return the file the row went to.

    See :func:`append_csv_row_to` (which also says why a file was passed over).
    """
    return append_csv_row_to(path, row).path


def append_csv_row_to(path: Path, row: Mapping[str, Any]) -> CsvAppend:
    """Append ``row`` to the CSV at ``path`` under a file lock, so concurrent runs never tear rows.

    A new file gets a header. A UTF-8 byte order mark is kept and not read as part of the first column; a missing
    final newline is added before the row. If the file's header lacks some of the row's columns, the file is first
    rewritten atomically with the union of both (old columns first, new ones after; missing values left empty), so
    every row stays aligned with the header.

    An existing row is never changed. A file that cannot take the row without that (not UTF-8, not readable as
    CSV, a header naming a column twice, or a header to widen over a row longer than it) is left as it is and the
    row goes to the first of ``<stem>.1<suffix>``, ``<stem>.2<suffix>``, ... beside it that can take it; a warning
    names both files.
    """
    refused: dict[str, str] = {}
    for attempt in range(MAX_SIDE_FILES + 1):
        candidate = path if attempt == 0 else path.with_name(f"{path.stem}.{attempt}{path.suffix}")
        with exclusive_lock(csv_lock_path(candidate)):
            reason = _append_if_possible(candidate, row)
        if reason is None:
            if refused:
                logger.warning(
                    "%s cannot take this run's row (%s); the row is written to %s instead",
                    path,
                    refused[str(path)],
                    candidate,
                )
            return CsvAppend(candidate, refused)
        refused[str(candidate)] = reason
    raise BenchmarkError(
        f"{path}: cannot take the CSV row ({refused[str(path)]}) and neither can {MAX_SIDE_FILES} files beside it"
    )


def _append_if_possible(path: Path, row: Mapping[str, Any]) -> str | None:
    """Append ``row`` (caller holds the lock); return None, or why the file cannot take it (file unchanged)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(row)
    values = {k: "" if v is None else v for k, v in row.items()}
    raw = path.read_bytes() if path.is_file() else b""
    if not raw:
        _append_text(path, _csv_text([columns, [values[c] for c in columns]], "\n"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"it is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x})"
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom) :]
    try:
        parsed = list(csv.reader(io.StringIO(body, newline="")))
    except csv.Error as exc:
        return f"it cannot be read as CSV: {exc}"
    header = parsed[0] if parsed else []
    if not header or not any(cell.strip() for cell in header):
        return "its first line is not a header"
    if len(set(header)) != len(header):
        twice = sorted({c for c in header if header.count(c) > 1})
        return f"its header names a column twice ({', '.join(twice)})"
    newline = "\r\n" if "\r\n" in body else "\n"
    union = header + [c for c in columns if c not in header]
    if union != header:
        rows = parsed[1:]
        longer = next((n for n, r in enumerate(rows, start=2) if len(r) > len(header)), None)
        if longer is not None:
            return f"its header would have to be widened, but row {longer} has more fields than the header"
        logger.warning(
            "%s: header differs from this version's columns; rewriting it with the union of both (%d new columns)",
            path,
            len(union) - len(header),
        )
        padded = [r + [""] * (len(union) - len(r)) if r else r for r in rows]
        write_text_atomic(path, bom + _csv_text([union, *padded], newline))
        body = "x\n"  # just rewritten: it ends with a newline
    separator = "" if body.endswith(("\n", "\r")) else newline
    _append_text(path, separator + _csv_text([[values.get(c, "") for c in union]], newline))
    return None


def _csv_text(rows: Iterable[Iterable[Any]], newline: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerows(rows)
    return buffer.getvalue()


def _append_text(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def repoint_csv_report(csv_path: Path, old_report: str, new_report: str, finished_at: str) -> int:
    """In the CSV at ``csv_path``, point the ``report`` cell of the row written at ``finished_at`` for
    ``old_report`` at ``new_report`` (its report was moved); return how many rows changed.

    Only that cell changes; a file that cannot be read as UTF-8 CSV is left alone (logged).
    """
    if not csv_path.is_file():
        return 0
    with exclusive_lock(csv_lock_path(csv_path)):
        try:
            text = csv_path.read_bytes().decode("utf-8")
            bom = "\ufeff" if text.startswith("\ufeff") else ""
            body = text[len(bom) :]
            parsed = list(csv.reader(io.StringIO(body, newline="")))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            logger.warning("%s: cannot point its row at the moved report %s: %s", csv_path, new_report, exc)
            return 0
        if not parsed or "report" not in parsed[0] or "timestamp" not in parsed[0]:
            return 0
        report_at, time_at = parsed[0].index("report"), parsed[0].index("timestamp")
        changed = 0
        for cells in parsed[1:]:
            mine = len(cells) > max(report_at, time_at) and cells[time_at] == finished_at
            if mine and cells[report_at] == old_report:
                cells[report_at] = new_report
                changed += 1
        if changed:
            write_text_atomic(csv_path, bom + _csv_text(parsed, "\r\n" if "\r\n" in body else "\n"))
        return changed
