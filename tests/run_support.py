"""Builders several test files share: the runner's small keyword-built config (the way AIEnergyScore builds its
config), and a result aggregated from hand-built windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.config.parser import (
    BackendConfig,
    BenchmarkConfig,
    MetricsConfig,
    ReporterConfig,
    ScenarioConfig,
)
from ai_energy_benchmarks.config.schema import BenchmarkConfig as TypedBenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.energy.base import EnergyReading, WindowMeasurement
from ai_energy_benchmarks.results.aggregate import aggregate

#: Tokens each prompt generates in :func:`make_config`'s runs.
NEW_TOKENS = 8


def make_config(out: Path, num_samples: int = 12, batch_size: int = 1, **scenario: Any) -> BenchmarkConfig:
    """A small benchmark built by keyword, the way AIEnergyScore builds its config."""
    return BenchmarkConfig(
        name="test-run",
        output_dir=str(out),
        backend=BackendConfig(type="pytorch", model="packaged:tiny-llama", device="cpu", no_weights=True),
        scenario=ScenarioConfig(
            dataset_name="packaged:quickstart",
            text_column_name="text",
            num_samples=num_samples,
            reasoning=False,
            reasoning_params=None,
            input_shapes={"batch_size": batch_size},
            generate_kwargs={"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS},
            warmup_runs=1,
            **scenario,
        ),
        metrics=MetricsConfig(
            enabled=True,
            type="codecarbon",
            project_name="tests",
            output_dir=str(out / "codecarbon"),
            country_iso_code="USA",
            region="california",
        ),
        reporter=ReporterConfig(type="csv", output_file=str(out / "results.csv")),
    )


def reading(device: str, joules: float, source: str, meter: str) -> EnergyReading:
    return EnergyReading(device=device, energy_j=joules, source=source, meter=meter)


def build(
    windows: list[WindowMeasurement],
    gpu_ids: list[int] | None = None,
    model_info: dict[str, Any] | None = None,
    meters_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config = TypedBenchmarkConfig(backend={"model": "m"})
    records = [
        RequestRecord(index=i, num_prompts=1, start_s=float(i), end_s=i + 0.5, prompt_tokens=5, completion_tokens=10)
        for i in range(4)
    ]
    return aggregate(
        config=config,
        prompt_set=PromptSet(prompts=["a"] * 4, source="test", num_requested=4, num_available=4),
        records=records,
        windows=windows,
        model_info=model_info or {},
        meters_info=meters_info or {"m": {}},
        environment={},
        provenance={},
        timestamps={},
        status="completed",
        gpu_ids_used=gpu_ids,
    ).to_dict()
