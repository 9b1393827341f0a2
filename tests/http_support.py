"""Shared helpers of the HTTP backend's tests (the fake server, configs, a loaded backend)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

MODEL = "fake-model"
SECRET = "sk-test-0123456789-very-secret"


def make_config(
    endpoint: str, tokens: int = 8, scenario: dict[str, Any] | None = None, **backend: Any
) -> BenchmarkConfig:
    scenario_data: dict[str, Any] = {
        "generate_kwargs": {"max_new_tokens": tokens, "min_new_tokens": tokens},
        "warmup_runs": 0,
        "measure_prefill": False,
    }
    scenario_data.update(scenario or {})
    return BenchmarkConfig.model_validate(
        {
            "backend": {"type": "vllm", "model": MODEL, "endpoint": endpoint, **backend},
            "scenario": scenario_data,
            "metrics": {"enabled": False},
        }
    )


def runner_config(
    tmp_path: Path,
    endpoint: str,
    *,
    backend: dict[str, Any] | None = None,
    scenario: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    name: str = "http-run",
    steady_hardware: dict[str, Any] | None = None,
) -> BenchmarkConfig:
    """A whole benchmark against ``endpoint``: output in ``tmp_path/out``, energy off unless ``metrics`` says.

    Steady-hardware waits are off unless ``steady_hardware`` says (on a simulated GPU with a GPU meter they would
    wait ``window_s`` of real time; tests/unit/energy/test_steady_hardware.py tests them on a simulated clock)."""
    return BenchmarkConfig.model_validate(
        {
            "name": name,
            "output_dir": str(tmp_path / "out"),
            "backend": {"type": "vllm", "model": MODEL, "endpoint": endpoint, **(backend or {})},
            "scenario": scenario or {},
            "metrics": metrics if metrics is not None else {"enabled": False},
            "reporter": {"output_file": str(tmp_path / "results.csv")},
            "steady_hardware": steady_hardware if steady_hardware is not None else {"enabled": False},
        }
    )


def fake_server() -> Iterator[FakeOpenAIServer]:
    """The usual fake server (serving MODEL and another model), for a ``server`` fixture."""
    with FakeOpenAIServer(models=[MODEL, "other-model"]) as fake:
        yield fake


@contextmanager
def loaded(config: BenchmarkConfig) -> Iterator[OpenAIHTTPBackend]:
    backend = OpenAIHTTPBackend(config)
    backend.load()
    try:
        yield backend
    finally:
        backend.close()


def run_all(backend: OpenAIHTTPBackend, prompts: list[str], config: BenchmarkConfig) -> list[RequestRecord]:
    return sorted(backend.run(prompts, config.scenario.generate_kwargs.as_kwargs()), key=lambda r: r.index)
