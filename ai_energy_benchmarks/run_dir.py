"""A run's directory: claimed (locked) for the run, an earlier run's files moved aside, or a directory of its own
when another run holds it. The runner's own file names live here; the meters name theirs
(:func:`ai_energy_benchmarks.energy.registry.meter_output_files`).
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ai_energy_benchmarks import interrupts
from ai_energy_benchmarks.energy.registry import meter_output_files
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError
from ai_energy_benchmarks.results.writers import exclusive_lock, repoint_csv_report, write_json_atomic

logger = logging.getLogger(__name__)

REPORT_FILE = "benchmark_report.json"
REQUESTS_FILE = "requests.jsonl"
PROMPTS_FILE = "prompts.jsonl"
RESOLVED_CONFIG_FILE = "resolved_config.yaml"
#: Held (locked) by the run writing to an output_dir; removed when it ends.
RUN_LOCK_FILE = ".benchmark_run.lock"
#: Where a run puts its files when another run holds its output_dir: ``<output_dir>/concurrent_runs/<stamp>-<pid>``.
CONCURRENT_RUNS_DIR = "concurrent_runs"

#: The runner's own files; the meters' are theirs to name (``energy.registry.meter_output_files``).
_RUN_FILES = (REPORT_FILE, REQUESTS_FILE, PROMPTS_FILE, RESOLVED_CONFIG_FILE)


def claim_run_dir(output_dir: Path, held: ExitStack) -> Path:
    """The directory this run writes to: ``output_dir`` itself, held (locked) for the run, with an earlier run's
    files moved aside; or, when another run holds it, a new directory of this run's own under it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if held.enter_context(exclusive_lock(output_dir / RUN_LOCK_FILE, blocking=False)):
        with interrupts.deferred():  # files are moved whole, and their CSV rows follow them
            _archive_previous_run(output_dir)
        return output_dir
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 1000):
        run_dir = output_dir / CONCURRENT_RUNS_DIR / (f"{stamp}-{os.getpid()}" + (f"~{attempt}" if attempt > 1 else ""))
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:
            continue
        logger.warning("another run is using %s: this run's files go to %s", output_dir, run_dir)
        return run_dir
    raise BenchmarkError(f"output_dir: cannot make a run directory under {output_dir / CONCURRENT_RUNS_DIR}")


def _archive_previous_run(out: Path) -> None:
    """Move an earlier run's files out of the way (into ``previous_runs/<its finish time>/``), never overwrite them.

    The moved report's ``files`` and the ``report`` cell of its CSV row are pointed at the new place.
    """
    report = out / REPORT_FILE
    if not report.is_file():
        return
    previous: dict[str, Any] = {}
    try:
        previous = json.loads(report.read_text(encoding="utf-8"))
        stamp = previous["timestamps"]["finished_at"]
    except (OSError, ValueError, KeyError, TypeError):
        stamp = datetime.fromtimestamp(report.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    target = out / "previous_runs" / str(stamp).replace(":", "-")
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name.split('~')[0]}~{suffix}")
    target.mkdir(parents=True)
    for name in _RUN_FILES:
        if (out / name).exists():
            (out / name).replace(target / name)
    for pattern in meter_output_files():
        for path in out.glob(pattern):
            if path.is_file():
                path.replace(target / path.name)
    logger.info("kept the previous run's files in %s", target)
    files = previous.get("files") if isinstance(previous, dict) else None
    if not isinstance(files, dict):
        return
    moved = {key: str(target / Path(value).name) for key, value in files.items() if key != "csv" and value}
    old_report = files.get("report")
    try:
        write_json_atomic(target / REPORT_FILE, previous | {"files": files | moved})
        if isinstance(files.get("csv"), str) and isinstance(old_report, str):
            repoint_csv_report(Path(files["csv"]), old_report, moved["report"], str(stamp))
    except (OSError, BenchmarkError) as exc:  # the files are kept either way
        logger.warning("cannot point the previous run's report and CSV row at %s: %s", target, exc)


def check_writable(directory: Path, key: str) -> None:
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ConfigError(f"{key}: directory '{directory}' cannot be written (check permissions)")


__all__ = [
    "CONCURRENT_RUNS_DIR",
    "PROMPTS_FILE",
    "REPORT_FILE",
    "REQUESTS_FILE",
    "RESOLVED_CONFIG_FILE",
    "RUN_LOCK_FILE",
    "check_writable",
    "claim_run_dir",
]
