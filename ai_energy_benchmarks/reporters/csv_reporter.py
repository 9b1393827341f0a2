"""ai_energy_benchmarks 0.0.4's ``CSVReporter``: one row per ``report(results)`` call, in 0.0.4's layout.

0.0.4's layout: the results dict flattened with ``_`` between nested keys (``summary_total_prompts``,
``energy_gpu_energy_wh``), lists written as comma-joined text, then a ``timestamp`` column (UTC, ISO 8601); the header
is written when the file is new. Our runs write their own CSV row (``reporter.output_file``, one fixed set of columns
for every run); this class is for code that calls 0.0.4's reporter itself (docs/compat-0.0.4.md).
"""

from __future__ import annotations

import csv
import logging
import os
from datetime import datetime, timezone
from typing import Any

from ai_energy_benchmarks.reporters.base import Reporter

logger = logging.getLogger(__name__)


class CSVReporter(Reporter):
    """Appends 0.0.4-style rows to ``output_file`` (its directory is created at once, as in 0.0.4)."""

    def __init__(self, output_file: str) -> None:
        self.output_file = output_file
        os.makedirs(os.path.dirname(os.path.abspath(output_file)), exist_ok=True)

    def report(self, results: dict[str, Any]) -> None:
        """Append ``results`` as one row (a header first when the file is new)."""
        row = self._flatten_dict(results)
        row["timestamp"] = datetime.now(timezone.utc).isoformat()
        new_file = not os.path.exists(self.output_file)
        with open(self.output_file, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        logger.info("results written to %s", self.output_file)

    def validate(self) -> bool:
        """Whether the output directory exists (created if needed) and is writable."""
        directory = os.path.dirname(os.path.abspath(self.output_file))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError:
            return False
        return os.access(directory, os.W_OK)

    def _flatten_dict(self, data: dict[str, Any], parent_key: str = "", sep: str = "_") -> dict[str, Any]:
        """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a_b": 1, "c": "1,2"}``."""
        flat: dict[str, Any] = {}
        for key, value in data.items():
            name = f"{parent_key}{sep}{key}" if parent_key else str(key)
            if isinstance(value, dict):
                flat.update(self._flatten_dict(value, name, sep))
            elif isinstance(value, list):
                flat[name] = ",".join(map(str, value))
            else:
                flat[name] = value
        return flat
