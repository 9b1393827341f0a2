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

    try:  # where CodeCarbon binds pynvml: codecarbon.core.gpu_nvidia since 3.1, codecarbon.core.gpu on 3.0.x
        from codecarbon.core import gpu_nvidia as cc_gpu
    except ImportError:
        from codecarbon.core import gpu as cc_gpu

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
        "pynvml_is_fake": cc_gpu.pynvml is fake.module,
        # 3.0.x has no nvidia-smi check (None); later releases must find the simulated nvidia-smi.
        "nvidia_system": cc_gpu.is_nvidia_system() if hasattr(cc_gpu, "is_nvidia_system") else None,
        "describe": codecarbon.describe(),
        "codecarbon": [r.to_dict() for r in cc_readings],
        "nvml": [r.to_dict() for r in nv_readings],
        "truth_codecarbon_j": fake.energy_j(0, cc_start, cc_stop),
        "truth_nvml_j": fake.energy_j(0, nv_start, nv_stop),
        "codecarbon_window_s": cc_stop - cc_start,
        "nvml_window_s": nv_stop - nv_start,
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
    result["stderr"] = done.stderr
    return result


def averages_power_without_counter(codecarbon_version: str) -> bool:
    """CodeCarbon 3.3.2 and later average power samples on a GPU without the energy counter; 3.0.x-3.3.1 read 0 kWh
    (its issue #1316). Both are supported (pyproject.toml) and tested (.ci/compat-matrix)."""
    parts = tuple(int(p) for p in codecarbon_version.split(".")[:3] if p.isdigit())
    return parts >= (3, 3, 2)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_child(tmp_path_factory.mktemp("codecarbon_gpu"), has_counter=True)


def test_codecarbon_detects_the_simulated_gpu(measured: dict[str, Any]) -> None:
    assert measured["pynvml_is_fake"] is True
    assert measured["nvidia_system"] is not False
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
    # The two windows nest (CodeCarbon's edges are outside NVML's), so their energies differ by the edge calls'
    # durations (tens of ms on a loaded machine): compare the average power each read over its own window.
    cc_power_w = cc_gpu["energy_j"] / measured["codecarbon_window_s"]
    nv_power_w = nv_gpu["energy_j"] / measured["nvml_window_s"]
    agreement = (cc_power_w - nv_power_w) / nv_power_w
    print(f"NvmlMeter: {nv_gpu['energy_j']:.4f} J ({nv_error:+.4%}); CodeCarbon vs NvmlMeter {agreement:+.4%}")
    assert abs(nv_error) < TOLERANCE
    assert abs(agreement) < TOLERANCE


def test_fake_nvidia_smi_is_executable(tmp_path: Path) -> None:
    path = write_fake_nvidia_smi(tmp_path)
    assert subprocess.run([str(path), "--help"], capture_output=True, check=True).returncode == 0
    listing = subprocess.run([str(path), "-L"], capture_output=True, text=True, check=True).stdout
    assert listing.startswith("GPU 0: ")


def test_codecarbon_without_a_counter_is_not_labelled_measured(tmp_path: Path) -> None:
    """On a GPU without the counter, CodeCarbon 3.3.2+ averages ~1 s power samples (an estimate) and older releases
    read 0 kWh (no GPU reading at all, so the result says missing, not 0); neither is a counter measurement."""
    result = run_child(tmp_path, has_counter=False)
    cc_gpu = [r for r in result["codecarbon"] if r["device"] == "gpu"]
    if averages_power_without_counter(result["describe"]["version"]):
        (reading,) = cc_gpu
        assert reading["source"] == "estimated:codecarbon-nvml-power-average"
        assert reading["is_measured"] is False
        assert "averaged" in reading["note"]
        assert reading["energy_j"] > 0
    else:
        assert cc_gpu == []
        assert result["describe"]["sources"]["gpu"] == "not-measured:codecarbon-gpu-without-energy-counter"
        assert "issue #1316" in result["stderr"]
        assert "metrics.type=[codecarbon, nvml]" in result["stderr"]
    (nv_gpu,) = result["nvml"]
    assert nv_gpu["source"] == "estimated:nvml-power-integrated"
    assert nv_gpu["energy_j"] == pytest.approx(result["truth_nvml_j"], rel=TOLERANCE)


_NESTED_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from ai_energy_benchmarks.testing.clock import SimulatedClock
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    # The simulated GPU runs on a simulated clock: CodeCarbon reads its counter (in the edge calls and from its own
    # scheduler thread) at exactly the simulated times of the window edges, however busy the machine is.
    clock = SimulatedClock()
    fake = FakeNvml([FakeGpu(power=lambda t: 100.0 + 50.0 * (int(t * 4) % 2))], clock=clock)  # square wave 100/150 W
    fake.install()

    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter

    meter = CodeCarbonMeter(MetricsConfig(), Path(sys.argv[1]), gpu_ids=[0])
    meter.prepare()
    edges = {}

    def edge(key, call):  # the simulated instant of the call: CodeCarbon reads the counter inside it
        edges[key] = clock.now_s()
        return call()

    edge("outer_start", lambda: meter.start_window("outer"))
    clock.advance(0.6)
    edge("inner_start", lambda: meter.start_window("inner"))
    clock.advance(1.2)
    edge("overlap_start", lambda: meter.start_window("overlap"))
    clock.advance(0.3)
    inner, _ = edge("inner_stop", lambda: meter.stop_window("inner"))
    clock.advance(0.9)
    outer, _ = edge("outer_stop", lambda: meter.stop_window("outer"))
    overlap, _ = edge("overlap_stop", lambda: meter.stop_window("overlap"))
    meter.close()

    def gpu(readings):
        return next(r.energy_j for r in readings if r.device == "gpu")

    def truth(window):
        return fake.energy_j(0, edges[window + "_start"], edges[window + "_stop"])

    print(json.dumps({w: [gpu(r), truth(w)] for w, r in (("outer", outer), ("inner", inner), ("overlap", overlap))}))
    """
)


def run_script(work: Path, script: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter with the simulated nvidia-smi first on PATH; its last line is JSON."""
    write_fake_nvidia_smi(work / "bin")
    env = dict(os.environ)
    env["PATH"] = f"{work / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-c", script, str(work / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(work),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_codecarbon_windows_nest_and_overlap(tmp_path: Path) -> None:
    """One CodeCarbon task per segment between window edges: nested and overlapping windows match ground truth
    (on a simulated clock, so the edge calls take no time and the truth is one number per window)."""
    result = run_script(tmp_path, _NESTED_CHILD)
    for window in ("outer", "inner", "overlap"):
        measured, truth = result[window]
        print(f"CodeCarbon {window}: {measured:.4f} J vs truth {truth:.4f} J")
        assert measured == pytest.approx(truth, rel=TOLERANCE), window
    assert result["outer"][0] > result["inner"][0]


EDGES = 60
_EDGES_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    fake = FakeNvml([FakeGpu(power=150.0)])
    fake.install()

    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter

    meter = CodeCarbonMeter(MetricsConfig(), Path(sys.argv[1]), gpu_ids=[0])
    meter.prepare()

    def edge(call):  # the call's span: CodeCarbon reads the counter somewhere inside it
        before = time.perf_counter()
        result = call()
        return (before, time.perf_counter()), result

    start, _ = edge(lambda: meter.start_window("run"))
    for i in range(EDGES // 2):  # one short window per request, as a per-request breakdown would open
        meter.start_window(f"request-{i}")
        time.sleep(0.01)
        meter.stop_window(f"request-{i}")
    time.sleep(0.3)
    stop, (readings, emissions_kg) = edge(lambda: meter.stop_window("run"))
    meter.start_window("plain")  # no edge inside: CodeCarbon's own emissions over its own energy
    time.sleep(0.3)
    plain, plain_kg = meter.stop_window("plain")
    meter.close()
    gpu = next(r for r in readings if r.device == "gpu")
    print(json.dumps({
        "gpu_j": gpu.energy_j, "source": gpu.source,
        "between_edges_j": fake.energy_j(0, start[1], stop[0]), "over_edges_j": fake.energy_j(0, start[0], stop[1]),
        "kg_per_j": emissions_kg / sum(r.energy_j for r in readings),
        "plain_kg_per_j": plain_kg / sum(r.energy_j for r in plain),
    }))
    """
).replace("EDGES", str(EDGES))


def test_codecarbon_window_edges_lose_no_gpu_energy(tmp_path: Path) -> None:
    """Each window edge ends one CodeCarbon task and starts the next; the GPU energy between the two tasks' counter
    readings (2-13 ms of CodeCarbon bookkeeping per edge) still counts: a window with 60 edges inside matches truth
    (CodeCarbon reads the counter somewhere inside each edge's call: truth lies between the energy between the two
    outer calls and the energy over them)."""
    result = run_script(tmp_path, _EDGES_CHILD)
    low, high = result["between_edges_j"], result["over_edges_j"]
    print(f"CodeCarbon over {EDGES} edges: {result['gpu_j']:.3f} J vs truth {low:.3f}-{high:.3f} J")
    assert result["source"] == "measured:codecarbon-nvml-energy-counter"
    assert low * (1 - TOLERANCE) <= result["gpu_j"] <= high * (1 + TOLERANCE)
    # The energy added back carries emissions at the grid intensity CodeCarbon applies to the rest.
    assert result["kg_per_j"] == pytest.approx(result["plain_kg_per_j"], rel=1e-6)


_VISIBLE_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from ai_energy_benchmarks.testing.clock import SimulatedClock
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    clock = SimulatedClock()
    fake = FakeNvml([FakeGpu(power=100.0), FakeGpu(power=250.0)], clock=clock)
    fake.install()

    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter

    meter = CodeCarbonMeter(MetricsConfig(), Path(sys.argv[1]), gpu_ids=[0])  # cuda:0
    meter.prepare()
    meter.start_window("w")
    clock.advance(2.0)
    readings, _ = meter.stop_window("w")
    meter.close()
    gpu = next(r.energy_j for r in readings if r.device == "gpu")
    print(json.dumps({"gpu_j": gpu, "describe": meter.describe()}))
    """
)


def test_codecarbon_meters_the_gpu_cuda_visible_devices_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CodeCarbon reads GPUs by NVML index (its issue #567): with CUDA_VISIBLE_DEVICES=1, cuda:0 is NVML's GPU 1,
    which drew 250 W (GPU 0 drew 100 W), and that is the GPU CodeCarbon is given."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    result = run_script(tmp_path, _VISIBLE_CHILD)
    assert result["describe"]["gpu_ids"] == [1]
    assert result["describe"]["matched_by"] == ["device ordinal 0 = CUDA_VISIBLE_DEVICES entry 0 (1) -> NVML index 1"]
    # the report's energy.gpus is built from this list (CodeCarbon does not say the UUID)
    (gpu,) = result["describe"]["gpus"]
    assert (gpu["index"], gpu["uuid"]) == (1, None)
    assert gpu["matched_by"] == "device ordinal 0 = CUDA_VISIBLE_DEVICES entry 0 (1) -> NVML index 1"
    assert result["gpu_j"] == pytest.approx(250.0 * 2.0, rel=TOLERANCE)


_SERVER_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from ai_energy_benchmarks.testing.clock import SimulatedClock
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    clock = SimulatedClock()
    processes = {1: (4242,), 3: (4343,)}
    fake = FakeNvml(
        [FakeGpu(power=p, processes=processes.get(i, ())) for i, p in enumerate((100.0, 200.0, 300.0, 400.0))],
        clock=clock,
    )
    fake.install()

    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.devices.processes import ServerProcesses
    from ai_energy_benchmarks.energy.registry import create_meters

    server = ServerProcesses(8000, frozenset({4242, 4343}), frozenset({4242}), "PID 4242 listening on port 8000")
    (meter,) = create_meters(MetricsConfig(), Path(sys.argv[1]), None, server)
    meter.prepare()
    meter.start_window("w")
    clock.advance(2.0)
    readings, _ = meter.stop_window("w")
    meter.close()
    gpu = next(r.energy_j for r in readings if r.device == "gpu")
    print(json.dumps({"gpu_j": gpu, "describe": meter.describe()}))
    """
)


def test_codecarbon_reads_a_local_servers_own_gpus(tmp_path: Path) -> None:
    """A local server whose processes NVML lists on GPUs 1 and 3: CodeCarbon is given those two (200 + 400 W), not
    every GPU of the host (1000 W)."""
    result = run_script(tmp_path, _SERVER_CHILD)
    assert result["describe"]["gpu_ids"] == [1, 3]
    assert [g["matched_by"] for g in result["describe"]["gpus"]] == [
        "server process (PID 4242 listening on port 8000): PID 4242 on NVML index 1",
        "server process (PID 4242 listening on port 8000): PID 4343 on NVML index 3",
    ]
    assert result["gpu_j"] == pytest.approx(600.0 * 2.0, rel=TOLERANCE)
