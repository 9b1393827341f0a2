"""The GPUs metered are the model's, identified by UUID (issue 17's "done when").

Four simulated GPUs with different UUIDs and power draws; the visible-devices variables reorder them. A PyTorch
backend whose model "runs" on ``cuda:0`` and ``cuda:1`` (the real backend's ``metered_gpu_ids``; only loading and
generation are replaced, no torch needed) goes through the real runner with the real meters: the report's
``energy.gpus`` lists exactly the UUIDs of the model's devices, and the GPU energy equals what those GPUs drew.

The simulated GPUs run on a simulated clock that only the model's generation moves (0.1 s per prompt, inside the
measured windows), so what each GPU drew in the windows is exactly its energy since the simulation started, whatever
the machine's load.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.pytorch import PyTorchBackend
from ai_energy_benchmarks.backends.pytorch_config import PyTorchConfig
from ai_energy_benchmarks.backends.registry import _SPECS, BackendSpec
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

#: Four GPUs, each drawing its own constant power (W): a reading from the wrong GPU is off by 100 W or more.
POWERS_W = (100.0, 200.0, 300.0, 400.0)
NVIDIA_UUIDS = tuple(f"GPU-{c * 8}-0000-4000-8000-00000000000{i}" for i, c in enumerate("abcd"))
AMD_UUIDS = tuple(f"{c * 8}-0000-4000-8000-00000000000{i}" for i, c in enumerate("abcd"))


class SimulatedCudaModel(PyTorchBackend):
    """The PyTorch backend with the model "loaded" on ``cuda:0`` (no torch): which GPUs it asks to be metered is the
    real backend's answer (``metered_gpu_ids``). Each prompt takes 0.1 s of the simulated GPUs' clock."""

    clock = SimulatedClock()

    def load(self) -> None:
        self._device = "cuda:0"

    def prepare_prompts(self, prompts: list[str]) -> None:
        pass

    def render(self, prompt: str) -> str:
        return prompt

    def synchronize(self) -> None:
        pass

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        for index, _ in enumerate(prompts):
            self.clock.advance(0.1)
            yield RequestRecord(index, 1, 0.0, 0.01, prompt_tokens=3, completion_tokens=2)

    def describe(self) -> dict[str, Any]:
        return {"model": self._backend.model, "device": self._device, "synthetic": False}

    def close(self) -> None:
        pass


@pytest.fixture
def simulated_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_SPECS, "pytorch", BackendSpec(PyTorchConfig, SimulatedCudaModel))
    monkeypatch.setattr(SimulatedCudaModel, "clock", SimulatedClock())


def _run(tmp_path: Path, meter: str) -> dict[str, Any]:
    config = BenchmarkConfig.model_validate(
        {
            "name": "identity",
            "output_dir": str(tmp_path / "out"),
            "backend": {"type": "pytorch", "model": "gpt2", "device": "cuda", "device_ids": [0, 1]},
            "scenario": {"num_samples": 3, "repetitions": 2, "warmup_runs": 0, "measure_prefill": False},
            "metrics": {"type": meter},
            "reporter": {"output_file": str(tmp_path / "results.csv")},
            "steady_hardware": {"enabled": False},  # only the model's generation moves the simulated clock
        }
    )
    return BenchmarkRunner(config).run()


def _truth_j(fake: Any, devices: list[str]) -> dict[str, float]:
    """What each GPU drew since the simulation started: all of it inside the measured windows (only the model's
    generation moves the simulated clock)."""
    now_s = SimulatedCudaModel.clock.now_s()
    return {device: fake.energy_j(int(device.split(":")[1]), fake.start_s, now_s) for device in devices}


@pytest.mark.usefixtures("simulated_pytorch")
def test_cuda_visible_devices_reordered_meters_the_models_gpus_by_uuid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA_VISIBLE_DEVICES=2,0: cuda:0 is NVML's GPU 2 and cuda:1 its GPU 0. Those are metered (not GPUs 0 and 1),
    the report names them by UUID, and the GPU energy is what they drew (400 W together, not 300 W)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    gpus = [FakeGpu(power, uuid=uuid) for power, uuid in zip(POWERS_W, NVIDIA_UUIDS, strict=True)]
    with FakeNvml(gpus, clock=SimulatedCudaModel.clock) as fake:
        result = _run(tmp_path, "nvml")
    listed = result["energy"]["gpus"]
    assert [g["uuid"] for g in listed] == [NVIDIA_UUIDS[2], NVIDIA_UUIDS[0]]
    assert [g["device"] for g in listed] == ["gpu:2", "gpu:0"]
    assert listed[0]["matched_by"] == "device ordinal 0 = CUDA_VISIBLE_DEVICES entry 0 (2) -> NVML index 2"
    assert listed[1]["matched_by"] == "device ordinal 1 = CUDA_VISIBLE_DEVICES entry 1 (0) -> NVML index 0"
    assert all(g["bus_id"] and g["name"] and g["source"] == "measured:nvml-energy-counter" for g in listed)
    assert {r["device"] for r in result["energy"]["readings"]} == {"gpu:2", "gpu:0"}
    truth = _truth_j(fake, ["gpu:2", "gpu:0"])
    # 6 prompts x 0.1 s at 300 + 100 W: 240 J (GPUs 0 and 1 would have drawn 180 J); the counter counts whole mJ
    assert sum(truth.values()) == pytest.approx(240.0)
    assert result["energy"]["gpu_energy_j"] == pytest.approx(sum(truth.values()), abs=4e-3)
    assert result["meters"]["nvml"]["gpus"][0]["uuid"] == NVIDIA_UUIDS[2]


@pytest.mark.usefixtures("simulated_pytorch")
def test_cuda_visible_devices_by_uuid_meters_those_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{NVIDIA_UUIDS[3][:12]},{NVIDIA_UUIDS[1]}")
    gpus = [FakeGpu(power, uuid=uuid) for power, uuid in zip(POWERS_W, NVIDIA_UUIDS, strict=True)]
    with FakeNvml(gpus, clock=SimulatedCudaModel.clock) as fake:
        result = _run(tmp_path, "nvml")
    assert [g["uuid"] for g in result["energy"]["gpus"]] == [NVIDIA_UUIDS[3], NVIDIA_UUIDS[1]]
    truth = _truth_j(fake, ["gpu:3", "gpu:1"])
    assert sum(truth.values()) == pytest.approx(360.0)  # 6 x 0.1 s at 400 + 200 W
    assert result["energy"]["gpu_energy_j"] == pytest.approx(sum(truth.values()), abs=4e-3)


@pytest.mark.usefixtures("simulated_pytorch")
@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"HIP_VISIBLE_DEVICES": "3,1"}, (3, 1)),
        # ROCm applies ROCR_VISIBLE_DEVICES first; HIP_VISIBLE_DEVICES indexes what it left (dies 1, 2, 3).
        ({"ROCR_VISIBLE_DEVICES": "1,2,3", "HIP_VISIBLE_DEVICES": "2,0"}, (3, 1)),
    ],
)
def test_amd_visible_devices_meter_the_models_gpus_by_uuid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: tuple[int, int]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    gpus = [FakeAmdGpu(power, uuid=uuid) for power, uuid in zip(POWERS_W, AMD_UUIDS, strict=True)]
    with FakeAmdSmi(gpus, clock=SimulatedCudaModel.clock) as fake:
        result = _run(tmp_path, "amdsmi")
    listed = result["energy"]["gpus"]
    assert [g["uuid"] for g in listed] == [AMD_UUIDS[i] for i in expected]
    assert [g["device"] for g in listed] == [f"gpu:{i}" for i in expected]
    assert all(g["source"] == "measured:amdsmi-energy-counter" for g in listed)
    assert {r["device"] for r in result["energy"]["readings"]} == {f"gpu:{i}" for i in expected}
    truth = _truth_j(fake, [f"gpu:{i}" for i in expected])
    assert sum(truth.values()) == pytest.approx(360.0)  # 6 x 0.1 s at 400 + 200 W
    # the accumulator counts whole ticks (about 15 µJ): far below a millijoule per window
    assert result["energy"]["gpu_energy_j"] == pytest.approx(sum(truth.values()), abs=1e-3)
