"""CodeCarbon reads the simulated GPU through pynvml, and agrees with ground truth and with our NVML meter.

CodeCarbon detects GPUs once per process (``nvidia-smi --help``, then ``import pynvml``; ``nvmlInit()`` at import
time of its GPU module), so the check runs in a fresh interpreter that installs the simulated ``pynvml`` before
CodeCarbon is imported, with a simulated ``nvidia-smi`` first on ``PATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.testing.fake_nvml import write_fake_nvidia_smi

TOLERANCE = 0.005
WINDOW_S = 2.0
POWER_W = 150.0

_CHILD = (
    textwrap.dedent(
        """
    import json, sys, time
    from pathlib import Path

    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    fake = FakeNvml([FakeGpu(power=POWER_W, has_energy_counter=HAS_COUNTER)])
    fake.install()  # before CodeCarbon is imported: it binds pynvml and calls nvmlInit() at import time

    from codecarbon.core import gpu_nvidia

    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter
    from ai_energy_benchmarks.energy.nvml import NvmlMeter

    out = Path(sys.argv[1])
    codecarbon = CodeCarbonMeter(MetricsConfig(), out / "codecarbon", gpu_ids=[0])
    codecarbon.prepare()
    nvml = NvmlMeter(MetricsConfig(), out / "nvml", gpu_ids=[0])
    nvml.prepare()
    energy_reads_before = fake.calls[("nvmlDeviceGetTotalEnergyConsumption", 0)]

    def timed(call):
        before = time.perf_counter()
        result = call()
        return (before + time.perf_counter()) / 2.0, result

    cc_start, _ = timed(lambda: codecarbon.start_window("w"))
    nv_start, _ = timed(lambda: nvml.start_window("w"))
    time.sleep(WINDOW_S)
    nv_stop, (nv_readings, _) = timed(lambda: nvml.stop_window("w"))
    cc_stop, (cc_readings, emissions) = timed(lambda: codecarbon.stop_window("w"))
    codecarbon.close()
    nvml.close()
    print(json.dumps({
        "pynvml_is_fake": gpu_nvidia.pynvml is fake.module,
        "nvidia_system": gpu_nvidia.is_nvidia_system(),
        "describe": codecarbon.describe(),
        "codecarbon": [r.to_dict() for r in cc_readings],
        "nvml": [r.to_dict() for r in nv_readings],
        "truth_codecarbon_j": fake.energy_j(0, cc_start, cc_stop),
        "truth_nvml_j": fake.energy_j(0, nv_start, nv_stop),
        "codecarbon_window_s": cc_stop - cc_start,
        "energy_reads_in_window": fake.calls[("nvmlDeviceGetTotalEnergyConsumption", 0)] - energy_reads_before,
    }))
    """
    )
    .replace("POWER_W", repr(POWER_W))
    .replace("WINDOW_S", repr(WINDOW_S))
)


def run_child(work: Path, has_counter: bool) -> dict[str, Any]:
    write_fake_nvidia_smi(work / "bin")
    env = dict(os.environ)
    env["PATH"] = f"{work / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.replace("HAS_COUNTER", repr(has_counter)), str(work / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(work),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_child(tmp_path_factory.mktemp("codecarbon_gpu"), has_counter=True)


def test_codecarbon_detects_the_simulated_gpu(measured: dict[str, Any]) -> None:
    assert measured["pynvml_is_fake"] is True
    assert measured["nvidia_system"] is True
    assert measured["describe"]["sources"]["gpu"] == "measured:codecarbon-nvml-energy-counter"
    assert measured["describe"]["gpu_ids"] == [0]


def test_codecarbon_gpu_energy_matches_ground_truth(measured: dict[str, Any]) -> None:
    (gpu,) = [r for r in measured["codecarbon"] if r["device"] == "gpu"]
    truth = measured["truth_codecarbon_j"]
    error = (gpu["energy_j"] - truth) / truth
    print(f"CodeCarbon: {gpu['energy_j']:.4f} J vs truth {truth:.4f} J ({error:+.4%})")
    assert measured["codecarbon_window_s"] >= WINDOW_S
    assert truth == pytest.approx(POWER_W * measured["codecarbon_window_s"], rel=1e-9)
    assert gpu["source"] == "measured:codecarbon-nvml-energy-counter"
    assert gpu["is_measured"] is True
    assert abs(error) < TOLERANCE
    # The counter, not a power sample, was read at the window's edges (by CodeCarbon and by our meter).
    assert measured["energy_reads_in_window"] >= 2


def test_codecarbon_and_nvml_meter_agree(measured: dict[str, Any]) -> None:
    (cc_gpu,) = [r for r in measured["codecarbon"] if r["device"] == "gpu"]
    (nv_gpu,) = measured["nvml"]
    assert nv_gpu["device"] == "gpu:0"
    assert nv_gpu["source"] == "measured:nvml-energy-counter"
    nv_error = (nv_gpu["energy_j"] - measured["truth_nvml_j"]) / measured["truth_nvml_j"]
    agreement = (cc_gpu["energy_j"] - nv_gpu["energy_j"]) / nv_gpu["energy_j"]
    print(f"NvmlMeter: {nv_gpu['energy_j']:.4f} J ({nv_error:+.4%}); CodeCarbon vs NvmlMeter {agreement:+.4%}")
    assert abs(nv_error) < TOLERANCE
    assert abs(agreement) < TOLERANCE


def test_fake_nvidia_smi_is_executable(tmp_path: Path) -> None:
    path = write_fake_nvidia_smi(tmp_path)
    assert subprocess.run([str(path), "--help"], capture_output=True, check=True).returncode == 0
    listing = subprocess.run([str(path), "-L"], capture_output=True, text=True, check=True).stdout
    assert listing.startswith("GPU 0: ")


def test_codecarbon_without_a_counter_is_labelled_an_estimate(tmp_path: Path) -> None:
    """CodeCarbon averages ~1 s power samples on a GPU without the counter: not a counter measurement."""
    result = run_child(tmp_path, has_counter=False)
    (cc_gpu,) = [r for r in result["codecarbon"] if r["device"] == "gpu"]
    assert cc_gpu["source"] == "estimated:codecarbon-nvml-power-average"
    assert cc_gpu["is_measured"] is False
    assert "averaged" in cc_gpu["note"]
    (nv_gpu,) = result["nvml"]
    assert nv_gpu["source"] == "estimated:nvml-power-integrated"
    assert nv_gpu["energy_j"] == pytest.approx(result["truth_nvml_j"], rel=TOLERANCE)


_NESTED_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    fake = FakeNvml([FakeGpu(power=lambda t: 100.0 + 50.0 * (int(t * 4) % 2))])  # square wave 100/150 W
    fake.install()

    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter

    meter = CodeCarbonMeter(MetricsConfig(), Path(sys.argv[1]), gpu_ids=[0])
    meter.prepare()
    edges = {}

    def edge(key, call):
        before = time.perf_counter()
        result = call()
        edges[key] = (before + time.perf_counter()) / 2.0
        return result

    edge("outer_start", lambda: meter.start_window("outer"))
    time.sleep(0.6)
    edge("inner_start", lambda: meter.start_window("inner"))
    time.sleep(1.2)
    edge("overlap_start", lambda: meter.start_window("overlap"))
    time.sleep(0.3)
    inner, _ = edge("inner_stop", lambda: meter.stop_window("inner"))
    time.sleep(0.9)
    outer, _ = edge("outer_stop", lambda: meter.stop_window("outer"))
    overlap, _ = edge("overlap_stop", lambda: meter.stop_window("overlap"))
    meter.close()

    def gpu(readings):
        return next(r.energy_j for r in readings if r.device == "gpu")

    print(json.dumps({
        "outer": [gpu(outer), fake.energy_j(0, edges["outer_start"], edges["outer_stop"])],
        "inner": [gpu(inner), fake.energy_j(0, edges["inner_start"], edges["inner_stop"])],
        "overlap": [gpu(overlap), fake.energy_j(0, edges["overlap_start"], edges["overlap_stop"])],
    }))
    """
)


def test_codecarbon_windows_nest_and_overlap(tmp_path: Path) -> None:
    """One CodeCarbon task per segment between window edges: nested and overlapping windows match ground truth."""
    write_fake_nvidia_smi(tmp_path / "bin")
    env = dict(os.environ)
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-c", _NESTED_CHILD, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for window in ("outer", "inner", "overlap"):
        measured, truth = result[window]
        assert measured == pytest.approx(truth, rel=TOLERANCE), window
    assert result["outer"][0] > result["inner"][0]
