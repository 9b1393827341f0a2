"""The results CSV: damaged files never lose or damage a row, appends stay serialised, no lock file is left."""

from __future__ import annotations

import csv
import logging
import multiprocessing
from pathlib import Path

import pytest

from ai_energy_benchmarks.results.writers import append_csv_row, append_csv_row_to

ROW = {"timestamp": "2026-01-01T00:00:00+00:00", "name": "new-run", "total_energy_wh": 1.5}


def rows_of(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.reader(handle))


def test_a_file_without_a_final_newline_keeps_its_last_row(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("timestamp,name,total_energy_wh\n2025-01-01,old-run,0.5", encoding="utf-8")
    assert append_csv_row(target, ROW) == target
    assert rows_of(target) == [
        ["timestamp", "name", "total_energy_wh"],
        ["2025-01-01", "old-run", "0.5"],
        ["2026-01-01T00:00:00+00:00", "new-run", "1.5"],
    ]


def test_a_byte_order_mark_is_kept_and_not_read_as_a_column(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("\ufefftimestamp,name\r\n2025-01-01,old-run\r\n", encoding="utf-8")
    append_csv_row(target, ROW)
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbftimestamp,name,total_energy_wh\r\n")
    assert raw.count(b"timestamp") == 1
    assert rows_of(target, "utf-8-sig") == [
        ["timestamp", "name", "total_energy_wh"],
        ["2025-01-01", "old-run", ""],
        ["2026-01-01T00:00:00+00:00", "new-run", "1.5"],
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"timestamp,name\n2025-01-01,old-run,surplus\n", "row 2 has more fields than the header"),
        ("timestamp,name,total_energy_wh\n2025-01-01,café,1\n".encode("latin-1"), "it is not UTF-8 text"),
        (b"timestamp,timestamp\n1,2\n", "its header names a column twice (timestamp)"),
    ],
)
def test_a_file_that_cannot_take_the_row_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, reason: str
) -> None:
    target = tmp_path / "results.csv"
    target.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        outcome = append_csv_row_to(target, ROW)
    assert target.read_bytes() == content  # not one byte changed
    beside = tmp_path / "results.1.csv"
    assert outcome.path == beside and reason in outcome.refused[str(target)]
    assert rows_of(beside) == [list(ROW), ["2026-01-01T00:00:00+00:00", "new-run", "1.5"]]
    assert f"{target} cannot take this run's row" in caplog.text and str(beside) in caplog.text
    # The next run's row joins it there.
    assert append_csv_row(target, ROW | {"name": "third-run"}) == beside
    assert [r[1] for r in rows_of(beside)] == ["name", "new-run", "third-run"]


def _append_many(path: str, writer: int, count: int) -> None:
    for index in range(count):
        append_csv_row(Path(path), {"writer": writer, "index": index, "text": f"w{writer}-{index}\nline two"})


def test_concurrent_appenders_are_serialised_and_leave_no_lock_file(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_append_many, args=(str(target), writer, 25)) for writer in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    rows = rows_of(target)
    assert rows[0] == ["writer", "index", "text"]
    assert sorted((int(r[0]), int(r[1])) for r in rows[1:]) == [(w, i) for w in range(6) for i in range(25)]
    assert all(r[2] == f"w{r[0]}-{r[1]}\nline two" for r in rows[1:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
