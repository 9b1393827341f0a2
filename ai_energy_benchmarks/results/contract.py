"""ai_energy_benchmarks 0.0.4's result contract: the keys AIEnergyScore reads keep 0.0.4's types and meanings.

0.0.4 always returned numbers in these keys (0.0 when it had nothing), and its callers format them (``:.2f``),
convert them (``float()``) and compare them (``> 0``). Our own figures are null when a quantity was not measured
(a remote server's GPU, a run in which every request failed); those nulls live in our own keys (``HONEST_KEYS``),
and the 0.0.4 key beside is filled with 0.0, listed in ``<block>.zero_filled`` and named in a warning, so neither a
0.0.4 caller crashes nor a reader of ours mistakes the 0.0 for a measurement (:func:`honest` reads it back as None).

Meanings are 0.0.4's too: ``summary.throughput_tokens_per_second`` is prompt + output tokens per second (ours by an
explicit name: ``throughput_output_tokens_per_second``), ``energy.energy_wh`` is the GPU energy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: 0.0.4 key -> our own key holding the same quantity, null when it is unknown (per result block).
HONEST_KEYS: dict[str, dict[str, str]] = {
    "summary": {
        "avg_latency_seconds": "mean_latency_s",
        "avg_time_to_first_token": "mean_ttft_s",
        "throughput_tokens_per_second": "throughput_total_tokens_per_second",
    },
    "energy": {
        "gpu_energy_wh": "gpu_energy_j",
        "cpu_energy_wh": "cpu_energy_j",
        "ram_energy_wh": "ram_energy_j",
        "total_energy_wh": "total_energy_j",
        "energy_wh": "gpu_energy_j",
        "emissions_g_co2eq": "emissions_estimated_g_co2eq",
        "emissions_kg_co2eq": "emissions_estimated_g_co2eq",
    },
}


def apply_0_0_4_types(result: dict[str, Any]) -> list[str]:
    """Fill the 0.0.4 keys of ``result`` that are null with 0.0, record them in ``<block>.zero_filled`` and return
    one warning per block that had any (``result`` is changed in place)."""
    energy = result.get("energy")
    if isinstance(energy, dict) and "emissions_estimated_g_co2eq" not in energy:
        energy["emissions_estimated_g_co2eq"] = energy.get("emissions_g_co2eq")
    warnings: list[str] = []
    for block, keys in HONEST_KEYS.items():
        data = result.get(block)
        if not isinstance(data, dict):
            continue
        filled = [key for key in keys if data.get(key) is None]
        for key in filled:
            data[key] = 0.0
        data["zero_filled"] = filled
        if filled:
            honest_keys = sorted({f"{block}.{keys[key]}" for key in filled})
            warnings.append(
                f"{', '.join(f'{block}.{k}' for k in filled)} read 0.0 only because 0.0.4's result keys are never "
                f"null: the quantity is unknown (null in {', '.join(honest_keys)}), not zero"
            )
    return warnings


def honest(result: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` of a result, None where it is a 0.0.4 key filled with 0.0 (unknown, not zero).

    Reports written before the contract was applied (no ``zero_filled`` list) are read as they are.
    """
    block_name, _, key = path.partition(".")
    block = result.get(block_name)
    if not isinstance(block, Mapping):
        return None
    if key in (block.get("zero_filled") or ()):
        return None
    node: Any = block
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def reader_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a written report for our readers (``report``, ``compare``, ``sweep``): 0.0.4 keys filled with 0.0
    read as None again, and a schema 1.0 report's keys renamed to today's (its ``summary.throughput_tokens_per_second``
    and repetitions' ``throughput_tokens_per_second`` counted output tokens only)."""
    view: dict[str, Any] = copy.deepcopy(dict(report))
    for block in HONEST_KEYS:
        data = view.get(block)
        if isinstance(data, dict):
            for key in data.get("zero_filled") or ():
                data[key] = None
    if view.get("schema_version") == "1.0":
        summary = view.get("summary")
        if isinstance(summary, dict):
            summary["throughput_output_tokens_per_second"] = summary.get("throughput_tokens_per_second")
            summary["throughput_tokens_per_second"] = summary.get("throughput_total_tokens_per_second")
        for row in view.get("repetitions") or ():
            if isinstance(row, dict) and "throughput_tokens_per_second" in row:
                row["output_tokens_per_second"] = row.pop("throughput_tokens_per_second")
        statistics = view.get("repetition_statistics")
        if isinstance(statistics, dict) and "throughput_tokens_per_second" in statistics:
            statistics["output_tokens_per_second"] = statistics.pop("throughput_tokens_per_second")
    return view
