"""The result keys outside users read (DESIGN.md, Contracts), written out here independently of the code under test."""

from __future__ import annotations

#: ``summary`` keys AIEnergyScore's aggregator reads.
SUMMARY_KEYS = (
    "total_prompts",
    "successful_prompts",
    "failed_prompts",
    "total_duration_seconds",
    "avg_latency_seconds",
    "avg_time_to_first_token",
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "throughput_tokens_per_second",
)

#: ``energy`` keys every report carries (None when energy was not measured).
ENERGY_KEYS = (
    "gpu_energy_wh",
    "cpu_energy_wh",
    "ram_energy_wh",
    "total_energy_wh",
    "energy_wh",
    "emissions_g_co2eq",
    "emissions_kg_co2eq",
)
