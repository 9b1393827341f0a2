"""A server on this host has its own GPUs metered: those NVML (or AMD SMI) lists its processes on.

The server is a real process: the package's test server (or a plain socket listener) in a subprocess, with a child
process of its own as vLLM's workers are children of its API server. The simulated NVML lists the server's PID on
GPU 1 and its child's on GPU 3; the runner, the HTTP backend and the NVML meter are the real ones.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, runner_config

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.amdsmi import AmdSmiMeter
from ai_energy_benchmarks.energy.devices.processes import server_processes
from ai_energy_benchmarks.energy.nvml import NvmlMeter
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml
from ai_energy_benchmarks.testing.sse_server import refused_port

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="finds processes through Linux's /proc")

POWERS_W = (100.0, 200.0, 300.0, 400.0)

# The server process: the package's test server (or a bare listening socket), one child process, and both PIDs
# and the port on stdout; it runs until its stdin closes.
_SERVER = """
import socket, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
if sys.argv[1] == "sse":
    from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer
    port = FakeOpenAIServer(models=[sys.argv[2]]).start().port
else:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
print(port, child.pid, flush=True)
sys.stdin.read()
child.stdin.close()
child.wait()
"""


@dataclass
class LocalServer:
    port: int
    pid: int
    child_pid: int


def _serve(kind: str) -> Iterator[LocalServer]:
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, kind, MODEL],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert process.stdout is not None
        port, child_pid = (int(part) for part in process.stdout.readline().split())
        yield LocalServer(port, process.pid, child_pid)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


@pytest.fixture
def sse_server() -> Iterator[LocalServer]:
    yield from _serve("sse")


@pytest.fixture
def listener() -> Iterator[LocalServer]:
    yield from _serve("socket")


def test_the_listening_process_and_its_children_are_found(listener: LocalServer) -> None:
    found = server_processes(listener.port)
    assert found.listening == {listener.pid}
    assert {listener.pid, listener.child_pid} <= found.pids
    assert os.getpid() not in found.pids  # the client (this process) is not the server
    assert found.found == f"PID {listener.pid} listening on port {listener.port} and its 1 descendant process(es)"
    nobody = server_processes(refused_port())
    assert not nobody.pids and "no process of this user was found listening on port" in nobody.found


def _gpus(server: LocalServer) -> list[FakeGpu]:
    processes = {1: (server.pid,), 3: (server.child_pid,)}
    return [FakeGpu(power, processes=processes.get(i, ())) for i, power in enumerate(POWERS_W)]


def _run(tmp_path: Path, server: LocalServer, **backend: Any) -> dict[str, Any]:
    config = runner_config(
        tmp_path,
        f"http://127.0.0.1:{server.port}/v1",
        backend={"concurrency": 2, **backend},
        scenario={"num_samples": 4, "warmup_runs": 0, "measure_prefill": False},
        metrics={"type": "nvml"},
    )
    return BenchmarkRunner(config).run()


def test_a_local_servers_own_gpus_are_metered(tmp_path: Path, sse_server: LocalServer) -> None:
    """backend.device auto, no device_ids (AIEnergyScore's vLLM path): the server runs on GPUs 1 (its API process)
    and 3 (its child, a worker); only those are metered, and the GPU energy is what they drew."""
    with FakeNvml(_gpus(sse_server)) as fake:
        result = _run(tmp_path, sse_server)
    listed = result["energy"]["gpus"]
    assert [g["device"] for g in listed] == ["gpu:1", "gpu:3"]
    assert [g["uuid"] for g in listed] == [fake.gpus[1].uuid, fake.gpus[3].uuid]
    assert listed[0]["matched_by"] == (
        f"server process (PID {sse_server.pid} listening on port {sse_server.port} and its 1 descendant "
        f"process(es)): PID {sse_server.pid} on NVML index 1"
    )
    assert listed[1]["matched_by"].endswith(f": PID {sse_server.child_pid} on NVML index 3")
    # each reading is its own GPU's draw (200 W and 400 W; the others draw 100 W and 300 W) over the meter's reads;
    # the reads run on the machine's clock, so its timing between a read and its timestamp is allowed for (5%)
    for reading in result["energy"]["readings"]:
        index = int(reading["device"].split(":")[1])
        assert index in (1, 3)
        duration_s = reading["end_s"] - reading["start_s"]
        assert reading["energy_j"] == pytest.approx(POWERS_W[index] * duration_s, rel=0.05)
    assert result["energy"]["gpu_energy_j"] == pytest.approx(sum(r["energy_j"] for r in result["energy"]["readings"]))
    assert result["meters"]["nvml"]["selection"].startswith("the local server's GPUs (PID")
    assert result["model"]["energy_scope"]["server_gpus_metered"] is None  # found by the meter, listed above


def test_named_device_ids_win_over_the_process_list(tmp_path: Path, sse_server: LocalServer) -> None:
    with FakeNvml(_gpus(sse_server)):
        result = _run(tmp_path, sse_server, device="cuda", device_ids=[2])
    assert [g["device"] for g in result["energy"]["gpus"]] == ["gpu:2"]
    assert result["meters"]["nvml"]["server_processes"] is None


def test_a_server_on_no_listed_gpu_falls_back_to_every_visible_gpu(
    tmp_path: Path, listener: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A server whose processes NVML does not list (another PID namespace: a container) is not guessed at: every
    visible GPU is metered, and the report and the log say why."""
    clock = SimulatedClock()
    found = server_processes(listener.port)
    with FakeNvml([FakeGpu(p) for p in POWERS_W], clock=clock), caplog.at_level(logging.WARNING):
        meter = NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=None, clock=clock)
        meter.meter_server(found)
        meter.prepare()
        meter.close()
    gpus = meter.describe()["gpus"]
    assert [g["index"] for g in gpus] == [0, 1, 2, 3]
    assert gpus[0]["matched_by"] == (
        f"all visible GPUs, the server's own not known (NVML lists none of the server's processes ({found.found}) "
        "on any GPU): NVML index 0"
    )
    assert "the local server's own GPUs are not known" in caplog.text


def test_amd_smi_process_list_finds_the_servers_dies(tmp_path: Path, listener: LocalServer) -> None:
    clock = SimulatedClock()
    gpus = [FakeAmdGpu(p, processes=(listener.child_pid,) if i == 2 else ()) for i, p in enumerate(POWERS_W)]
    with FakeAmdSmi(gpus, clock=clock):
        meter = AmdSmiMeter(MetricsConfig(), tmp_path, gpu_ids=None, clock=clock)
        meter.meter_server(server_processes(listener.port))
        meter.prepare()
        meter.start_window("w")
        clock.advance(1.0)
        readings, _ = meter.stop_window("w")
        meter.close()
    assert [r.device for r in readings] == ["gpu:2"] and readings[0].energy_j == pytest.approx(300.0, abs=1e-3)
    assert meter.describe()["gpus"][0]["matched_by"].endswith(f"PID {listener.child_pid} on AMD SMI index 2")
