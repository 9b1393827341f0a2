"""Result schema, aggregation, statistics and writers."""

from ai_energy_benchmarks.results.aggregate import SCHEMA_VERSION, aggregate
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.results.writers import append_csv_row, flatten_for_csv, write_json_atomic

__all__ = [
    "SCHEMA_VERSION",
    "aggregate",
    "append_csv_row",
    "flatten_for_csv",
    "format_summary",
    "write_json_atomic",
]
