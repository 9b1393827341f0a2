"""Reading a run directory: the report, the per-request records and the power timeline.

A run directory is what one benchmark writes into its ``output_dir``: ``benchmark_report.json`` (the result schema
of ``docs/results.md``), ``requests.jsonl`` (one record per request or batch; times in ``time.perf_counter()``
seconds), ``prompts.jsonl``, ``resolved_config.yaml`` and, with the NVML meter, ``timeline.csv``.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ai_energy_benchmarks.reporting import ReportError
from ai_energy_benchmarks.results.model import SCHEMA_VERSION, BenchmarkResult, as_result, parse_report

logger = logging.getLogger(__name__)

REPORT_FILE = "benchmark_report.json"
REQUESTS_FILE = "requests.jsonl"
TIMELINE_FILE = "timeline.csv"

DEVICES = ("gpu", "cpu", "ram")


@dataclass
class Run:
    """One benchmark run: its directory and its report, typed (0.0.4's zero-filled keys null again, a schema 1.0
    report's keys renamed to today's)."""

    directory: Path
    report: BenchmarkResult
    label: str = ""
    _requests: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def report_path(self) -> Path:
        """Path of ``benchmark_report.json``."""
        return self.directory / REPORT_FILE

    @property
    def status(self) -> str:
        """``completed``, ``failed`` or ``interrupted``."""
        return self.report.status or "unknown"

    def requests(self) -> list[dict[str, Any]]:
        """The records of ``requests.jsonl`` (empty when the file is absent); read once, then cached."""
        if self._requests is None:
            self._requests = read_requests(self.directory / REQUESTS_FILE)
        return self._requests

    def timeline(self) -> list[dict[str, float | int | None]]:
        """The rows of ``timeline.csv`` (empty when no timeline was recorded)."""
        return read_timeline(self.directory / TIMELINE_FILE)


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Read the run at ``path``: a run directory or its ``benchmark_report.json``.

    Raises :class:`ReportError` (exit code 2) naming the path when there is no readable report.
    """
    path = Path(path)
    report_path = path if path.is_file() else path / REPORT_FILE
    if not path.exists():
        raise ReportError(f"{path}: no such run directory")
    if not report_path.is_file():
        raise ReportError(f"{path}: not a run directory (no {REPORT_FILE} in it)")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{report_path}: cannot read the report ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ReportError(f"{report_path}: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or "summary" not in report or "config" not in report:
        raise ReportError(f"{report_path}: not a benchmark report (no 'summary' and 'config' keys)")
    check_schema_version(report, report_path)
    try:
        typed = parse_report(report)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ReportError(f"{report_path}: not a benchmark report ({where}: {first['msg']})") from None
    directory = report_path.parent
    return Run(directory=directory, report=typed, label=label or directory.name)


def check_schema_version(report: Mapping[str, Any], where: Path | str) -> None:
    """Refuse a report whose ``schema_version`` this version cannot read.

    A reader knows its own major version: a minor version only adds keys, so ``1.x`` reads as ``1.0`` (the keys it
    does not know are left out, with a warning for a newer minor version). Another major version, or none, is a
    :class:`ReportError`.
    """
    version = report.get("schema_version")
    major, _, minor = str(SCHEMA_VERSION).partition(".")
    match = re.fullmatch(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    if match is None or match.group(1) != major:
        found = "no schema_version" if version is None else f"schema_version {version!r}"
        raise ReportError(
            f"{where}: {found}, but this version of ai_energy_benchmarks reads reports of schema {major}.x "
            f"(it writes {SCHEMA_VERSION}); use the version that wrote the report"
        )
    if int(match.group(2)) > int(minor):
        logger.warning(
            "%s: schema_version %s is newer than %s: figures it added are not shown", where, version, SCHEMA_VERSION
        )


def unique_labels(paths: list[Path]) -> list[str]:
    """Short, distinct labels for run directories: the directory name, with parents added until they differ."""
    resolved = [p.resolve() for p in paths]
    depth = 1
    while True:
        labels = ["/".join(p.parts[-depth:]) for p in resolved]
        if len(set(labels)) == len(labels) or depth >= max(len(p.parts) for p in resolved):
            return labels
        depth += 1


def read_requests(path: Path) -> list[dict[str, Any]]:
    """JSON Lines records; a line that is not JSON is skipped with a warning (a partial write).

    Raises :class:`ReportError` (exit code 2) for a file that is not UTF-8 text (a binary or otherwise damaged file;
    only its last line may be cut short, as by an interrupted write).
    """
    if not path.is_file():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise ReportError(f"{path}: a binary file (NUL byte at offset {data.index(0)}), not JSON Lines")
    lines = data.split(b"\n")
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if number < len(lines) - (1 if lines[-1] == b"" else 0):
                raise ReportError(
                    f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x}), not a requests.jsonl this tool "
                    "wrote"
                ) from None
            logger.warning("%s:%d: a cut-short last line, skipped", path, number)
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            logger.warning("%s:%d: not JSON, skipped", path, number)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _number(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_timeline(path: Path) -> list[dict[str, float | int | None]]:
    """Rows of an NVML ``timeline.csv``: ``elapsed_s`` (s), ``gpu`` (index), ``power_w`` (W) and the other columns.

    Numeric cells become floats (``gpu`` an int); empty or unreadable cells become None. Missing file: ``[]``.
    """
    if not path.is_file():
        return []
    rows: list[dict[str, float | int | None]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, float | int | None] = {key: _number(value) for key, value in raw.items() if key}
            gpu = row.get("gpu")
            row["gpu"] = int(gpu) if gpu is not None else None
            rows.append(row)
    return rows


def dig(data: Any, dotted: str, default: Any = None) -> Any:
    """``data["a"]["b"]["c"]`` for ``"a.b.c"``, or ``default`` where any step is missing or not a mapping."""
    current = data
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return default
        current = current[part]
    return default if current is None else current


def source_kind(source: str | None) -> str:
    """``measured``, ``estimated`` or ``absent`` for an energy source label such as ``estimated:codecarbon-ram``."""
    if source and source.startswith("measured:"):
        return "measured"
    if source and source.startswith("estimated:"):
        return "estimated"
    return "absent"


def generate_records(requests: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The successful records of the measured generate passes (prefill passes and failures left out)."""
    for row in requests:
        if row.get("phase", "generate") == "generate" and row.get("error") is None:
            yield row


def latency_samples(requests: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-request samples in seconds: ``ttft_s``, ``latency_s`` (end to end) and ``itl_s``.

    ITL (inter-token latency) is the gap between consecutive streamed chunks, from ``chunk_times_s``; it is empty
    when the backend recorded no chunk times (a chunk may carry several tokens).
    """
    samples: dict[str, list[float]] = {"ttft_s": [], "latency_s": [], "itl_s": []}
    for row in generate_records(requests):
        for key in ("ttft_s", "latency_s"):
            value = row.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                samples[key].append(float(value))
        chunks = row.get("chunk_times_s")
        if isinstance(chunks, list) and len(chunks) >= 2:
            times = [float(t) for t in chunks if isinstance(t, (int, float))]
            samples["itl_s"].extend(later - earlier for earlier, later in itertools.pairwise(times))
    return samples


def prompts_per_second(report: BenchmarkResult | Mapping[str, Any] | None) -> float | None:
    """Successful prompts per measured second (each prompt of a batch counts, unlike ``requests_per_second``)."""
    if report is None:
        return None
    summary = (report if isinstance(report, BenchmarkResult) else as_result(report)).summary
    if not summary.total_duration_seconds:
        return None
    return float(summary.successful_prompts) / float(summary.total_duration_seconds)


__all__ = [
    "DEVICES",
    "REPORT_FILE",
    "REQUESTS_FILE",
    "TIMELINE_FILE",
    "Run",
    "check_schema_version",
    "dig",
    "generate_records",
    "latency_samples",
    "load_run",
    "prompts_per_second",
    "read_requests",
    "read_timeline",
    "source_kind",
    "unique_labels",
]
