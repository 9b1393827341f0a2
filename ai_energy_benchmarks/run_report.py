"""A run's report files, beside the runner: ``resolved_config.yaml``, ``requests.jsonl``, ``prompts.jsonl``, then
the CSV row and ``benchmark_report.json`` written together (a signal meanwhile is delivered afterwards)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ai_energy_benchmarks import interrupts
from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import BenchmarkError, Interrupted
from ai_energy_benchmarks.results.columns import csv_row
from ai_energy_benchmarks.results.writers import (
    append_csv_row_to,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)
from ai_energy_benchmarks.run_dir import PROMPTS_FILE, REPORT_FILE, REQUESTS_FILE, RESOLVED_CONFIG_FILE

logger = logging.getLogger("ai_energy_benchmarks.runner")  # the runner's messages, logged under its name


def model_info(backend: Backend) -> dict[str, Any]:
    """The backend's description, with its energy scope (typed) under ``energy_scope`` where it has one."""
    info = backend.describe()
    scope = backend.energy_scope()
    if scope is not None:
        info["energy_scope"] = scope.to_dict()
    return info


def write_reports(
    run_dir: Path,
    config: BenchmarkConfig,
    result: dict[str, Any],
    records: list[RequestRecord],
    sent_prompts: list[dict[str, Any]],
    on_written: Callable[[dict[str, Any]], None],
) -> None:
    """Write the run's files into ``run_dir`` and its row into ``reporter.output_file``; ``result`` gains their
    paths under ``files``. ``on_written(result)`` is called once the report and the row are written, before the
    run is marked settled. A file that cannot be written is a :class:`BenchmarkError`; a signal whose exception
    Python dropped marks a completed run ``interrupted`` and is raised (:class:`Interrupted`) once it is written."""
    try:
        _write_report_files(run_dir, config, result, records, sent_prompts, on_written)
    except OSError as exc:
        raise BenchmarkError(
            f"cannot write the results to {run_dir} ({exc.strerror or exc}); the measured result is "
            "still returned to Python callers"
        ) from exc


def _write_report_files(
    out: Path,
    config: BenchmarkConfig,
    result: dict[str, Any],
    records: list[RequestRecord],
    sent_prompts: list[dict[str, Any]],
    on_written: Callable[[dict[str, Any]], None],
) -> None:
    report_path = out / REPORT_FILE
    csv_path = Path(config.reporter.output_file)
    result["files"] = {
        "report": str(report_path),
        "requests": str(out / REQUESTS_FILE),
        "prompts": str(out / PROMPTS_FILE),
        "resolved_config": str(out / RESOLVED_CONFIG_FILE),
        "csv": str(csv_path),
    }
    write_text_atomic(
        out / RESOLVED_CONFIG_FILE,
        f"# resolved config, sha256 {result['provenance']['config_sha256']}\n"
        + yaml.safe_dump(config.to_public_dict(), sort_keys=False),
    )
    write_jsonl_atomic(out / REQUESTS_FILE, (r.to_dict() for r in records))
    write_jsonl_atomic(out / PROMPTS_FILE, sent_prompts)
    # The CSV row and the report are written together: a signal arriving meanwhile is delivered afterwards, so
    # the two never disagree and the status written is the one the command's exit code follows.
    dropped: int | None = None
    with interrupts.deferred():
        if result["status"] == "completed":
            dropped = interrupts.received()  # a signal whose exception Python dropped: the run was stopped
            if dropped is not None:
                result["status"] = "interrupted"
        appended = append_csv_row_to(csv_path, csv_row(result))
        if appended.refused:
            result["files"]["csv"] = str(appended.path)
            result["warnings"].append(
                f"the results CSV {csv_path} cannot take a row ({appended.refused[str(csv_path)]}): this run's "
                f"row is in {appended.path}"
            )
        write_json_atomic(report_path, result)
        on_written(result)
        interrupts.settle()
    logger.info("report written to %s", report_path)
    if dropped is not None:
        stop = Interrupted(dropped)
        stop.partial_report = str(report_path)  # type: ignore[attr-defined]
        raise stop


__all__ = ["model_info", "write_reports"]
