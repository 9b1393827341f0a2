"""The backend contract (backends/base.py) as the runner drives it: required methods, hooks called directly; and
the meters' own files, which the runner learns from the meters.

The backend here is a real `Backend` subclass registered under its own type, with deterministic outputs; the runner,
config validation and report writing are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from ai_energy_benchmarks.backends.base import Backend, EnergyScope, RequestRecord
from ai_energy_benchmarks.backends.registry import _SPECS, register_backend
from ai_energy_benchmarks.config.schema import BackendConfig, BenchmarkConfig
from ai_energy_benchmarks.energy.registry import _FACTORIES as _METER_FACTORIES
from ai_energy_benchmarks.energy.registry import register_meter
from ai_energy_benchmarks.runner import BenchmarkRunner


class ScriptedConfig(BackendConfig):
    """`type: scripted`."""

    type: Literal["scripted"] = "scripted"
    fixed_duration: bool = Field(False, description="Every pass runs for a fixed duration (no prefill pass).")
    remote: bool = Field(False, description="The model runs on another host.")


class ScriptedBackend(Backend):
    """Answers every prompt with two tokens; keeps what the runner told it."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self.settings = ScriptedConfig.of(config.backend)
        self.calls: list[str] = []

    def set_phase(self, label: str) -> None:
        self.calls.append(f"set_phase:{label}")

    def load(self) -> None:
        self.calls.append("load")

    def prepare_prompts(self, prompts: list[str]) -> None:
        self.calls.append(f"prepare_prompts:{len(prompts)}")

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        self.calls.append(f"run:{len(prompts)}")
        for index, _prompt in enumerate(prompts):
            yield RequestRecord(index, 1, 1.0 + index, 1.5 + index, prompt_tokens=3, completion_tokens=2)

    @property
    def splits_phases(self) -> bool:
        return not self.settings.fixed_duration

    def energy_scope(self) -> EnergyScope | None:
        if not self.settings.remote:
            return None
        return EnergyScope(server_on_this_host=False, server_gpus_metered=[], note="runs elsewhere")

    def describe(self) -> dict[str, Any]:
        return {"model": self.settings.model, "calls": list(self.calls)}

    def metered_gpu_ids(self) -> list[int]:
        return []

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture(autouse=True)
def _scripted_type() -> Iterator[None]:
    register_backend("scripted", ScriptedConfig, ScriptedBackend)
    yield
    del _SPECS["scripted"]


def _config(out: Path, **backend: Any) -> BenchmarkConfig:
    return BenchmarkConfig.model_validate(
        {
            "name": "contract",
            "output_dir": str(out),
            "backend": {"type": "scripted", "model": "m", **backend},
            "scenario": {"num_samples": 3, "repetitions": 2, "warmup_runs": 1},
            "metrics": {"enabled": False},
            "reporter": {"output_file": str(out / "results.csv")},
        }
    )


def test_set_phase_is_required() -> None:
    class Unnamed(Backend):
        def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
            yield from ()

        def describe(self) -> dict[str, Any]:
            return {}

        def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="set_phase"):
        Unnamed()  # type: ignore[abstract]


def test_the_runner_names_every_pass_and_calls_each_hook(tmp_path: Path) -> None:
    result = BenchmarkRunner(_config(tmp_path)).run()
    assert result["model"]["calls"] == [
        "load",
        "prepare_prompts:3",
        "set_phase:warmup",
        "run:1",
        "set_phase:prefill-0",
        "run:3",
        "set_phase:generate-0",
        "run:3",
        "set_phase:prefill-1",
        "run:3",
        "set_phase:generate-1",
        "run:3",
    ]
    assert "energy_scope" not in result["model"]  # the default: the model runs here
    assert result["summary"]["total_completion_tokens"] == 2 * 3 * 2  # generate passes of both repetitions
    rows = [json.loads(line) for line in (tmp_path / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and all("sent" not in row for row in rows)  # render() by default cannot say


def test_a_backend_that_cannot_split_phases_gets_no_prefill_pass(tmp_path: Path) -> None:
    result = BenchmarkRunner(_config(tmp_path, fixed_duration=True)).run()
    assert [c for c in result["model"]["calls"] if c.startswith("set_phase")] == [
        "set_phase:warmup",
        "set_phase:generate-0",
        "set_phase:generate-1",
    ]
    assert result["phases"] is None


def test_the_energy_scope_is_reported_from_the_typed_method(tmp_path: Path) -> None:
    result = BenchmarkRunner(_config(tmp_path, remote=True)).run()
    assert result["model"]["energy_scope"] == {
        "server_on_this_host": False,
        "server_gpus_metered": [],
        "note": "runs elsewhere",
    }


class FileMeter:
    """A meter that reads nothing and writes one file of its own per run, which it declares."""

    name = "filemeter"
    output_files = ("filemeter_*.csv",)

    def __init__(self, config: Any, output_dir: Path, gpu_ids: list[int] | None) -> None:
        self._output_dir = output_dir

    def prepare(self) -> None:
        pass

    def start_window(self, name: str) -> None:
        pass

    def stop_window(self, name: str) -> tuple[list[Any], float | None]:
        return [], None

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        runs = len(list(self._output_dir.glob("filemeter_*.csv")))
        (self._output_dir / f"filemeter_{runs}.csv").write_text("x\n", encoding="utf-8")


def test_a_meters_own_files_move_with_its_run(tmp_path: Path) -> None:
    register_meter("filemeter", FileMeter)
    try:
        config = _config(tmp_path)
        config.metrics.enabled = True
        config.metrics.type = "filemeter"
        BenchmarkRunner(config).run()
        assert [p.name for p in tmp_path.glob("filemeter_*.csv")] == ["filemeter_0.csv"]
        BenchmarkRunner(config).run()
    finally:
        del _METER_FACTORIES["filemeter"]
    (archived,) = (tmp_path / "previous_runs").iterdir()
    assert [p.name for p in archived.glob("filemeter_*.csv")] == ["filemeter_0.csv"]
    assert [p.name for p in tmp_path.glob("filemeter_*.csv")] == ["filemeter_0.csv"]  # the second run's own
