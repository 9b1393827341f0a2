"""The CSV row of one run: the same columns for every run, so that rows from different runs always align."""

from __future__ import annotations

import json
from typing import Any

_CSV_ENERGY_KEYS = (
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


def csv_row(result: dict[str, Any]) -> dict[str, Any]:
    """The CSV columns for one run: the same columns for every run, so rows always align."""
    config, energy = result["config"], result["energy"]
    row: dict[str, Any] = {
        "timestamp": result["timestamps"]["finished_at"],
        "schema_version": result["schema_version"],
        "status": result["status"],
        "name": config["name"],
        "backend": config["backend"],
        "model": config["model"],
        "dataset": config["dataset"],
        "num_samples": config["num_samples"],
        "batch_size": config["batch_size"],
        "repetitions": config["repetitions"],
        "device_ids": json.dumps(config["device_ids"]),
        "generate_kwargs": json.dumps(config["generate_kwargs"], sort_keys=True),
    }
    row.update({k: v for k, v in result["summary"].items() if k != "zero_filled"})
    for key in _CSV_ENERGY_KEYS:
        row[key] = energy.get(key)
    # 0.0.4's keys that hold 0.0 only because they may not be null (results/contract.py): unknown, not zero.
    row["zero_filled"] = " ".join(
        [f"summary.{k}" for k in result["summary"].get("zero_filled") or []]
        + [f"energy.{k}" for k in energy.get("zero_filled") or []]
    )
    for device in ("gpu", "cpu", "ram"):
        row[f"{device}_energy_source"] = (energy.get("sources") or {}).get(device)
    row["synthetic_model"] = bool(result["model"].get("synthetic"))
    row["prompts_sha256"] = result["dataset"]["prompts_sha256"]
    row["config_sha256"] = result["provenance"]["config_sha256"]
    row["report"] = result.get("files", {}).get("report")
    return row


__all__ = ["csv_row"]
