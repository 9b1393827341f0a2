"""Aggregation inputs covering every block of the result, and the dicts the pre-model code built from them.

``tests/data/aggregate_golden/<scenario>.json`` holds what ``aggregate()`` returned for each scenario *before* it
returned a typed ``BenchmarkResult`` (written by ``python tests/result_scenarios.py`` at that commit, 1.1 schema):
tests/unit/results/test_result_model.py checks that today's ``aggregate(...).to_dict()`` gives exactly those keys,
in that order, with those values. ``csv_rows.json`` holds the pre-model ``runner.csv_row`` of each (with a report
path added);
``fresh_run_report.json`` and ``fresh_run_results.csv`` are what a real run of the packaged tiny model wrote with the
pre-model code (``tests/unit/test_runner.py``'s ``make_config(num_samples=4, repetitions=2)``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.energy.base import EnergyReading, IntervalReading, WindowMeasurement
from ai_energy_benchmarks.results.aggregate import aggregate

try:
    from ai_energy_benchmarks.records import RequestRecord
except ImportError:  # before RequestRecord moved out of backends
    from ai_energy_benchmarks.backends.base import RequestRecord  # type: ignore[no-redef]

GOLDEN_DIR = Path(__file__).parent / "data" / "aggregate_golden"


def _r(device: str, joules: float, source: str, meter: str, **kw: Any) -> EnergyReading:
    return EnergyReading(device=device, energy_j=joules, source=source, meter=meter, **kw)


def _records(phase: str = "generate", repetition: int = 0, n: int = 4, **kw: Any) -> list[RequestRecord]:
    return [
        RequestRecord(
            index=i,
            num_prompts=1,
            start_s=float(i),
            end_s=i + 0.5,
            first_token_s=i + 0.1,
            prompt_tokens=5,
            completion_tokens=10 if phase == "generate" else 1,
            phase=phase,
            repetition=repetition,
            **kw,
        )
        for i in range(n)
    ]


def _build(
    windows: list[WindowMeasurement],
    records: list[RequestRecord],
    *,
    gpu_ids: list[int] | None = None,
    model_info: dict[str, Any] | None = None,
    meters_info: dict[str, Any] | None = None,
    steady: dict[str, list[IntervalReading]] | None = None,
    status: str = "completed",
    config: dict[str, Any] | None = None,
) -> Any:
    return aggregate(
        config=BenchmarkConfig(**(config or {"backend": {"model": "m"}})),
        prompt_set=PromptSet(prompts=["a"] * 4, source="test", num_requested=4, num_available=4),
        records=records,
        windows=windows,
        model_info=model_info if model_info is not None else {"name": "m", "device": "cpu"},
        meters_info={"codecarbon": {"update_period_s": 1.0}} if meters_info is None else meters_info,
        environment={"python": "3.x"},
        provenance={"config_sha256": "abc", "config_source": "test"},
        timestamps={"started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00"},
        status=status,
        gpu_ids_used=gpu_ids,
        warnings=["a warning from the runner"],
        steady_state_readings=steady,
    )


def three_meters() -> Any:
    window = WindowMeasurement(
        name="generate-0",
        duration_s=12.0,
        repetition=0,
        readings=[
            _r("gpu:0", 300.0, "measured:nvml-energy-counter", "nvml"),
            _r("gpu", 318.0, "measured:codecarbon-nvml-energy-counter", "codecarbon"),
            _r("cpu", 16.0, "estimated:codecarbon-cpu-load", "codecarbon"),
            _r("cpu:0", 20.0, "measured:rapl", "rapl"),
            _r("ram", 40.0, "estimated:codecarbon-ram", "codecarbon"),
        ],
        emissions_kg=374.0 / 3.6e6 * 0.400,
        emissions_energy_j=374.0,
    )
    return _build([window], _records(), gpu_ids=[0])


def idle_and_repetitions() -> Any:
    idle = WindowMeasurement(
        name="idle",
        duration_s=5.0,
        kind="idle",
        readings=[
            _r("gpu:0", 250.0, "measured:nvml-energy-counter", "nvml", start_s=0.0, end_s=5.0),
            _r("ram", 20.0, "estimated:codecarbon-ram", "codecarbon"),
        ],
    )
    gens = [
        WindowMeasurement(
            name=f"generate-{rep}",
            duration_s=2.0 + rep * 0.1,
            repetition=rep,
            readings=[
                _r("gpu:0", 300.0 + 7 * rep, "measured:nvml-power-polled", "nvml", lower_j=290.0, upper_j=320.0 + rep),
                _r("ram", 8.0, "estimated:codecarbon-ram", "codecarbon"),
            ],
        )
        for rep in range(3)
    ]
    records = [r for rep in range(3) for r in _records(repetition=rep)]
    return _build([idle, *gens], records, gpu_ids=[0], meters_info={"nvml": {"update_period_s": 0.1}})


def phases_with_negative_decode() -> Any:
    pre = WindowMeasurement(
        name="prefill-0",
        duration_s=1.0,
        kind="prefill",
        repetition=0,
        readings=[
            _r("gpu:0", 120.0, "measured:nvml-energy-counter", "nvml"),
            _r("cpu", 30.0, "estimated:codecarbon-cpu-load", "codecarbon"),
        ],
    )
    gen = WindowMeasurement(
        name="generate-0",
        duration_s=3.0,
        repetition=0,
        readings=[
            _r("gpu:0", 400.0, "measured:nvml-energy-counter", "nvml"),
            _r("cpu", 20.0, "estimated:codecarbon-cpu-load", "codecarbon"),
        ],
    )
    records = _records("prefill") + _records()
    return _build([pre, gen], records, gpu_ids=[0])


def remote_server_with_steady_state() -> Any:
    window = WindowMeasurement(
        name="g-0",
        duration_s=4.0,
        repetition=0,
        readings=[
            _r("cpu:0", 40.0, "measured:rapl", "rapl"),
            _r("ram", 12.0, "estimated:codecarbon-ram", "codecarbon"),
        ],
    )
    interval = [IntervalReading("cpu:0", 20.0, "measured:rapl", "rapl", lower_j=19.0, upper_j=21.0)]
    info = {
        "energy_scope": {"server_on_this_host": False, "note": "the endpoint is not on this host"},
        "http": {
            "steady_state": [
                {"label": "g-0", "reached": True, "duration_s": 2, "output_tokens": 30},
                {"label": "g-9", "reached": False},
            ],
            "runs": [
                {
                    "label": "g-0",
                    "prometheus": {
                        "cross_check": {
                            "agrees": False,
                            "server_output_tokens": 41,
                            "client_output_tokens": 40,
                            "note": "n",
                        }
                    },
                }
            ],
            "errors_by_class": {"http_5xx": 1},
            "measured": {"ttft_s": {"median": 0.1, "p99": 0.2}},
        },
    }
    failed = RequestRecord(
        index=9,
        num_prompts=1,
        start_s=5.0,
        end_s=5.1,
        prompt_tokens=5,
        completion_tokens=0,
        error="boom",
        error_class="http_5xx",
    )
    records = [*_records(), failed]
    return _build([window], records, gpu_ids=[], model_info=info, steady={"g-0": interval})


def unmetered_all_failed() -> Any:
    records = [
        RequestRecord(
            index=i, num_prompts=2, start_s=0.0, end_s=1.0, prompt_tokens=0, completion_tokens=0, error="down"
        )
        for i in range(2)
    ]
    window = WindowMeasurement(name="generate-0", duration_s=1.5, repetition=0)
    return _build([window], records, meters_info={}, status="failed", model_info={"synthetic": True, "note": "syn"})


def incomplete_gpu_and_reasoning() -> Any:
    first = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        repetition=0,
        readings=[
            _r("gpu:0", 300.0, "measured:nvml-energy-counter", "nvml"),
            _r("gpu:1", 310.0, "measured:nvml-energy-counter", "nvml"),
        ],
    )
    second = WindowMeasurement(
        name="generate-1",
        duration_s=0.5,
        repetition=1,
        readings=[_r("gpu:0", -5.0, "measured:nvml-energy-counter", "nvml")],
        errors=["meter 'nvml' lost gpu:1"],
    )
    records = [
        *_records(reasoning_tokens=4, reasoning_tokens_from="usage"),
        *_records(repetition=1, reasoning_tokens=3, reasoning_tokens_from="chunks"),
    ]
    return _build([first, second], records, gpu_ids=[0, 1], meters_info={"nvml": {"update_period_s": None}})


SCENARIOS: dict[str, Callable[[], Any]] = {
    f.__name__: f
    for f in (
        three_meters,
        idle_and_repetitions,
        phases_with_negative_decode,
        remote_server_with_steady_state,
        unmetered_all_failed,
        incomplete_gpu_and_reasoning,
    )
}


def as_dict(result: Any) -> dict[str, Any]:
    """The dict ``run()`` returns for ``result`` (a dict before the typed model, a ``BenchmarkResult`` after)."""
    return result if isinstance(result, dict) else result.to_dict()


if __name__ == "__main__":  # regenerate the golden files (only ever from the pre-model code, see the docstring)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, scenario in SCENARIOS.items():
        text = json.dumps(as_dict(scenario()), indent=1)
        (GOLDEN_DIR / f"{name}.json").write_text(text + "\n", encoding="utf-8")
        print(name, len(text), file=sys.stderr)
