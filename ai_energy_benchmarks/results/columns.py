"""The results CSV's columns: one row per run, the same columns for every run, so rows always align."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ai_energy_benchmarks.results.model import BenchmarkResult, as_result

#: The ``energy`` figures that get a column (in this order), after the ``summary`` block's.
CSV_ENERGY_KEYS = (
    "gpu_energy_wh",
    "cpu_energy_wh",
    "ram_energy_wh",
    "total_energy_wh",
    "energy_wh",
    "emissions_g_co2eq",
    "emissions_kg_co2eq",
    "carbon_intensity_g_per_kwh",
    "total_wh_per_1000_queries",
    "gpu_wh_per_1000_queries",
    "joules_per_output_token",
    "tokens_per_joule",
    "all_measured",
)


#: Schema 1.2: the ``quality`` figures that get a column (column name -> key of the ``quality`` block), last.
QUALITY_COLUMNS = {
    "scorer": "scorer",
    "scored_answers": "scored",
    "correct_answers": "correct",
    "accuracy": "accuracy",
    "joules_per_correct_answer": "joules_per_correct_answer",
    "wh_per_1000_correct_answers": "wh_per_1000_correct_answers",
}


def csv_row(result: BenchmarkResult | Mapping[str, Any]) -> dict[str, Any]:
    """The CSV columns for one run (``result``: the typed result or ``run()``'s dict)."""
    typed = as_result(result)
    config, summary, energy = typed.config, typed.summary, typed.energy
    row: dict[str, Any] = {
        "timestamp": typed.timestamps.finished_at,
        "schema_version": typed.schema_version,
        "status": typed.status,
        "name": config.name,
        "backend": config.backend,
        "model": config.model,
        "dataset": config.dataset,
        "num_samples": config.num_samples,
        "batch_size": config.batch_size,
        "repetitions": config.repetitions,
        "device_ids": json.dumps(config.device_ids),
        "generate_kwargs": json.dumps(config.generate_kwargs, sort_keys=True),
    }
    row.update({k: v for k, v in summary.to_dict().items() if k != "zero_filled"})
    for key in CSV_ENERGY_KEYS:
        row[key] = getattr(energy, key)
    # 0.0.4's keys that hold 0.0 only because they may not be null (results/contract.py): unknown, not zero.
    row["zero_filled"] = " ".join(
        [f"summary.{k}" for k in summary.zero_filled] + [f"energy.{k}" for k in energy.zero_filled]
    )
    for device in ("gpu", "cpu", "ram"):
        row[f"{device}_energy_source"] = energy.sources.get(device)
    row["synthetic_model"] = typed.synthetic_model
    row["prompts_sha256"] = typed.dataset.prompts_sha256
    row["config_sha256"] = typed.provenance.get("config_sha256")
    row["report"] = typed.files.report if typed.files else None
    # Schema 1.2's columns, after every earlier one (empty cells for a run without a scorer).
    quality = typed.quality
    for column, key in QUALITY_COLUMNS.items():
        row[column] = getattr(quality, key) if quality is not None else None
    return row
