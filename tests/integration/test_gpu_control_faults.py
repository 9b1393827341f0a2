"""Power-limit runs through the real CLI on simulated GPUs whose settings outlive the process (a state file, as a real
GPU keeps them): a sweep over ``gpu.power_limit_w`` whose measured energy follows the limit, and runs that end
normally, fail, are refused, get SIGINT/SIGTERM at random (seeded) points or are killed outright (SIGKILL). After
each, the device must hold its original limit again (for SIGKILL: after the next run or ``gpu restore``).

Each run is ``tests/gpu_control_child.py`` (the simulated GPU and a streaming test server in the run's own process);
the tests synchronise on the run's log lines, never on sleeps (a seeded random delay only moves the signal's point).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.energy.gpu_restore import RECORD_DIR
from ai_energy_benchmarks.testing.fake_gpu_control import read_state_file

CHILD = Path(__file__).resolve().parents[1] / "gpu_control_child.py"
DEMAND_W = 450.0
ORIGINAL_W = {"nvml": 700.0, "amdsmi": 750.0}
HANG_TIMEOUT_S = 600  # a guard against a hung process only


def write_config(tmp_path: Path, vendor: str, prompts: int = 12, dataset: str = "packaged:quickstart") -> Path:
    config = {
        "name": "power-limit",
        "output_dir": str(tmp_path / "out"),
        "backend": {
            "type": "vllm",
            "model": "fake-model",
            "endpoint": "http://127.0.0.1:9/v1",
            "device": "cuda",
            "device_ids": [0],
            "concurrency": 2,
        },
        "scenario": {
            "dataset_name": dataset,
            "num_samples": prompts,
            "warmup_runs": 0,
            "measure_prefill": False,
            "repetitions": 2,
            "generate_kwargs": {"max_new_tokens": 16, "min_new_tokens": 16},
        },
        "metrics": {"type": vendor},
        "reporter": {"output_file": str(tmp_path / "results.csv")},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def start(tmp_path: Path, vendor: str, *args: str, allowed: bool = True) -> subprocess.Popen[str]:
    command = [sys.executable, str(CHILD), vendor, str(tmp_path / "device.json"), "1" if allowed else "0"]
    return subprocess.Popen(
        [*command, str(DEMAND_W), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "AIEB_STATE_DIR": str(tmp_path / "state")},
    )


def run_args(tmp_path: Path, vendor: str, *extra: str, **config: Any) -> list[str]:
    return [
        "run",
        "-v",
        "--config",
        str(write_config(tmp_path, vendor, **config)),
        "backend.endpoint={ENDPOINT}",
        *extra,
    ]


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=HANG_TIMEOUT_S)
    return proc.returncode, stdout, stderr


def device_limit_w(tmp_path: Path) -> float:
    (state,) = read_state_file(tmp_path / "device.json").values()
    return float(state["power_limit_w"])


def records(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / RECORD_DIR).glob("*.json"))


def report(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "benchmark_report.json").read_text(encoding="utf-8"))


def mean_gpu_power_w(data: dict[str, Any]) -> float:
    """The GPU's mean power over the measured windows: the measured energy over the windows' length."""
    readings = [r for r in data["energy"]["readings"] if r["device"] == "gpu:0"]
    return sum(r["energy_j"] for r in readings) / sum(r["end_s"] - r["start_s"] for r in readings)


def test_a_power_limit_sweep_measures_energy_that_follows_the_limit(tmp_path: Path) -> None:
    """The ML.ENERGY question: what a lower limit saves. Demand 450 W: held at 300 and 400 W, unheld at 500 W."""
    sweep_dir = tmp_path / "sweep"
    args = ["sweep", "-v", "--config", str(write_config(tmp_path, "nvml")), "--param", "gpu.power_limit_w=300,400,500"]
    proc = start(tmp_path, "nvml", *args, "--output-dir", str(sweep_dir), "--no-plot", "backend.endpoint={ENDPOINT}")
    code, _, stderr = finish(proc)
    assert code == 0, stderr[-3000:]
    with (sweep_dir / "summary.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["gpu.power_limit_w"] for row in rows] == ["300", "400", "500"]
    powers = []
    for row in rows:
        data = report(Path(row["run_dir"]))
        (gpu,) = data["gpu_control"]["gpus"]
        limit = float(row["gpu.power_limit_w"])
        assert (gpu["requested_power_limit_w"], gpu["enforced_power_limit_w"], gpu["original_power_limit_w"]) == (
            limit,
            limit,
            700.0,
        )
        assert data["energy"]["sources"]["gpu"] == "measured:nvml-energy-counter"
        powers.append(mean_gpu_power_w(data))
    assert powers == pytest.approx([300.0, 400.0, DEMAND_W], rel=0.01)
    assert device_limit_w(tmp_path) == 700.0 and records(tmp_path) == []
    assert stderr.count("restored power limit 700 W") == 3


@pytest.mark.parametrize("vendor", ["nvml", "amdsmi"])
def test_restored_after_a_normal_run_and_after_a_failing_run(tmp_path: Path, vendor: str) -> None:
    code, stdout, stderr = finish(start(tmp_path, vendor, *run_args(tmp_path, vendor, "gpu.power_limit_w=400")))
    assert code == 0, stderr[-3000:]
    name = {"nvml": "NVML", "amdsmi": "AMD SMI"}[vendor]
    shown = f"gpu setting   {name} GPU 0: power limit 400 W requested, 400 W enforced ({ORIGINAL_W[vendor]:g} W before)"
    assert shown in stdout
    assert mean_gpu_power_w(report(tmp_path / "out")) == pytest.approx(400.0, rel=0.01)
    assert device_limit_w(tmp_path) == ORIGINAL_W[vendor] and records(tmp_path) == []
    # Every request answered HTTP 500: the run fails (exit code 1) after the limit was set.
    prompts = tmp_path / "failing.jsonl"
    prompts.write_text("".join(json.dumps({"text": f"[fault:http_500] {i}"}) + "\n" for i in range(4)), "utf-8")
    failing = run_args(tmp_path, vendor, "gpu.power_limit_w=350", f"output_dir={tmp_path / 'failed'}", prompts=4)
    code, _, stderr = finish(start(tmp_path, vendor, *failing, f"scenario.dataset_name={prompts}"))
    assert code == 1, stderr[-3000:]
    assert report(tmp_path / "failed")["status"] == "failed"
    assert report(tmp_path / "failed")["gpu_control"]["gpus"][0]["enforced_power_limit_w"] == 350.0
    assert f"restored power limit {ORIGINAL_W[vendor]:g} W" in stderr
    assert device_limit_w(tmp_path) == ORIGINAL_W[vendor] and records(tmp_path) == []


def test_no_permission_exits_2_before_anything_is_measured(tmp_path: Path) -> None:
    args = run_args(tmp_path, "nvml", "gpu.power_limit_w=300")
    code, _, stderr = finish(start(tmp_path, "nvml", *args, allowed=False))
    assert code == 2
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: gpu: NVML refused to set GPU 0's power limit (Insufficient Permissions): setting GPU power limits and "
        "clocks needs root or the CAP_SYS_ADMIN capability (run as root, e.g. `sudo -E`, or start the container with "
        "--cap-add SYS_ADMIN)"
    ]
    assert "measuring window" not in stderr and not (tmp_path / "out" / "benchmark_report.json").exists()
    assert device_limit_w(tmp_path) == 700.0 and records(tmp_path) == []


#: Log lines a signal may follow (a seeded choice among them, then a seeded delay of up to 0.15 s).
MARKERS = [
    "connected to",
    "power limit 700 W -> requested",
    "power limit 750 W -> requested",
    "measuring window 'generate-0'",
    "measure generate-0: 12/12",
    "measuring window 'generate-1'",
    "report written to",
]


@pytest.mark.parametrize("vendor", ["nvml", "amdsmi"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_signal_at_a_random_point_restores_the_limit(tmp_path: Path, vendor: str, signum: int, seed: int) -> None:
    rng = random.Random(f"{seed}-{vendor}-{int(signum)}")
    markers = [m for m in MARKERS if "-> requested" not in m or str(int(ORIGINAL_W[vendor])) in m]
    marker, delay_s = rng.choice(markers), rng.uniform(0.0, 0.15)
    proc = start(tmp_path, vendor, *run_args(tmp_path, vendor, "gpu.power_limit_w=300"))
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            time.sleep(delay_s)  # moves the signal's point; no verdict depends on it
            proc.send_signal(signum)
            break
    else:
        pytest.fail(f"the run ended before {marker!r}:\n{''.join(seen)}")
    # The rest through the same reader: lines it has buffered already would be lost to communicate().
    rest = proc.stderr.read()
    proc.communicate(timeout=HANG_TIMEOUT_S)
    code = proc.returncode
    stderr = "".join(seen) + rest
    # Interrupted (128 + signal), or completed when the signal came after the report was written.
    assert code in (128 + signum, 0), stderr[-3000:]
    assert device_limit_w(tmp_path) == ORIGINAL_W[vendor], f"{marker!r} + {delay_s:.3f} s:\n{stderr[-3000:]}"
    assert records(tmp_path) == []
    if "-> requested" in stderr:
        assert f"restored power limit {ORIGINAL_W[vendor]:g} W" in stderr
    # (the test server in the run's process may log a traceback for a request the interrupted run dropped)
    assert f'Traceback (most recent call last):\n  File "{CHILD}' not in stderr


def kill_when_measuring(tmp_path: Path, vendor: str) -> None:
    proc = start(tmp_path, vendor, *run_args(tmp_path, vendor, "gpu.power_limit_w=300"))
    assert proc.stderr is not None
    for line in proc.stderr:
        if "measuring window 'generate-0'" in line:
            proc.kill()  # SIGKILL: nothing in the process runs
            break
    proc.communicate(timeout=HANG_TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL
    assert device_limit_w(tmp_path) == 300.0  # left as the killed run set it
    assert len(records(tmp_path)) == 1


@pytest.mark.parametrize("vendor", ["nvml", "amdsmi"])
def test_after_sigkill_the_next_run_restores_first(tmp_path: Path, vendor: str) -> None:
    kill_when_measuring(tmp_path, vendor)
    code, _, stderr = finish(start(tmp_path, vendor, *run_args(tmp_path, vendor, "gpu.power_limit_w=400")))
    assert code == 0, stderr[-3000:]
    assert "restoring the settings a killed run (PID" in stderr
    (gpu,) = report(tmp_path / "out")["gpu_control"]["gpus"]
    assert gpu["original_power_limit_w"] == ORIGINAL_W[vendor]  # the true original, not the killed run's 300 W
    assert device_limit_w(tmp_path) == ORIGINAL_W[vendor] and records(tmp_path) == []


@pytest.mark.parametrize("vendor", ["nvml", "amdsmi"])
def test_after_sigkill_gpu_restore_puts_the_limit_back(tmp_path: Path, vendor: str) -> None:
    kill_when_measuring(tmp_path, vendor)
    code, stdout, stderr = finish(start(tmp_path, vendor, "gpu", "restore"))
    assert code == 0, stderr[-3000:]
    assert stdout.startswith("restored GPU 0 (")
    assert stdout.rstrip().endswith(f"power limit {ORIGINAL_W[vendor]:g} W")
    assert device_limit_w(tmp_path) == ORIGINAL_W[vendor] and records(tmp_path) == []
    code, stdout, _ = finish(start(tmp_path, vendor, "gpu", "restore"))
    assert code == 0 and stdout.startswith("nothing to restore")
