"""The HTTP backend through the runner: whole benchmarks, labels, partial reports and steady-state energy.

Against the local fake server: fast, no vLLM needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, fake_server, loaded, make_config, run_all, runner_config
from repo_paths import REPO_ROOT

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.exceptions import BackendError
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


# -- through the runner --------------------------------------------------------------------------------------------
def test_runner_end_to_end_with_the_fake_server(server: FakeOpenAIServer, tmp_path: Path) -> None:
    config = runner_config(
        tmp_path,
        server.url + "/v1",
        backend={"concurrency": 4},
        scenario={
            "num_samples": 12,
            "generate_kwargs": {"max_new_tokens": 6, "min_new_tokens": 6},
            "warmup_runs": 2,
            "repetitions": 2,
        },
        name="http-fake",
    )
    result = BenchmarkRunner(config).run()
    assert result["status"] == "completed"
    assert result["summary"]["successful_prompts"] == 24 and result["summary"]["total_completion_tokens"] == 144
    http = result["model"]["http"]
    assert [run["label"] for run in http["runs"]] == [
        "warmup",
        "prefill-0",
        "generate-0",
        "prefill-1",
        "generate-1",
    ]
    assert http["runs"][1]["output_tokens"] == 12  # prefill: one token per prompt
    assert http["measured"]["ok"] == 24 and len(http["steady_state"]) == 2
    lines = (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 48 and first["error_class"] is None and len(first["chunk_times_s"]) >= 1


def test_set_phase_is_the_only_source_of_a_runs_label(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", scenario={"warmup_runs": 1, "measure_prefill": True})
    with loaded(config) as backend:
        backend.set_phase("generate-0")
        run_all(backend, ["a", "b"], config)
        backend.set_phase("custom")
        run_all(backend, ["c"], config)
        run_all(backend, ["d"], config)  # no name given: never guessed, named by its position
        labels = [run["label"] for run in backend.describe()["http"]["runs"]]
    assert labels == ["generate-0", "custom", "run-2"]


def test_runner_writes_a_partial_report_when_a_hopeless_run_stops(server: FakeOpenAIServer, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"text": f"[fault:http_500] {i}"}) + "\n" for i in range(10)))
    config = runner_config(
        tmp_path,
        server.url,
        backend={"max_consecutive_failures": 3},
        scenario={"dataset_name": str(prompts), "num_samples": 10, "warmup_runs": 0, "measure_prefill": False},
    )
    with pytest.raises(BackendError, match="3 requests failed in a row"):
        BenchmarkRunner(config).run()
    report = json.loads((tmp_path / "out" / "benchmark_report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert report["model"]["http"]["errors_by_class"] == {hc.HTTP_5XX: 3}
    assert report["model"]["http"]["runs"][0]["requests_not_sent"] == 7


def test_client_capacity_benchmark_runs(tmp_path: Path) -> None:
    script = REPO_ROOT / "benchmarks" / "client_capacity.py"
    out = tmp_path / "capacity.json"
    command = [sys.executable, str(script), "--concurrency", "2", "--requests", "40", "--rounds", "1"]
    command += ["--drift-requests", "20", "--drift-rate", "200", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| 2 | ai_energy_benchmarks |" in result.stdout and "schedule drift at 200 requests/s" in result.stdout
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["rows"][0]["cpu_ratio"] > 0 and figures["drift"]["count"] == 20


def test_runner_with_meters_reports_steady_state_energy_as_an_estimate(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    config = runner_config(
        tmp_path,
        server.url + "/v1",
        backend={"concurrency": 4},
        scenario={
            "num_samples": 40,
            "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8},
            "warmup_runs": 1,
            "measure_prefill": False,
        },
        metrics={},  # CodeCarbon, the default meter
        name="http-energy",
    )
    result = BenchmarkRunner(config).run()
    energy = result["energy"]
    # A server on this host with backend.device auto: no GPU is claimed as the server's.
    assert result["model"]["energy_scope"]["server_on_this_host"] is True
    assert energy["sources"]["gpu"] == "none:no-gpu-metered"
    steady = energy["steady_state"]
    assert steady["source"] == "estimated:time-share-of-window"
    (window,) = steady["windows"]
    assert window["label"] == "generate-0" and window["reached"] is True
    assert 0 < window["share_of_window"] <= 1
    assert window["energy_wh"] == pytest.approx(energy["total_energy_wh"] * window["share_of_window"])
    assert steady["joules_per_output_token"] == pytest.approx(window["energy_wh"] * 3600 / window["output_tokens"])


STEADY_NVML_RUN = """
import json, os, sys, threading, time
from pathlib import Path
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml, ramp_trace
from ai_energy_benchmarks.testing.fake_powercap import FakePowercap
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.runner import BenchmarkRunner

out = Path(sys.argv[1])
out.mkdir(parents=True)
with_rapl = sys.argv[2:] == ["rapl"]
# 40 prompts; the last one stalls 1.5 s mid-stream, so the window ends with a long drain after the steady state.
prompts = [f"prompt {i}" for i in range(39)] + ["prompt 39 [fault:stall_mid:1.5]"]
(out / "prompts.txt").write_text("\\n".join(prompts) + "\\n", encoding="utf-8")
# Power falls steadily (900 W to 100 W over 10 s), so the steady state, early in the window, draws more than the
# window's mean: a time share of the window's energy underestimates it.
trace = ramp_trace(900.0, 100.0, 0.0, 10.0)
# With RAPL: a simulated CPU package drawing a tenth of the GPU's power, its counter written every 2 ms (atomically).
tree = FakePowercap(out / "powercap", dram=False)
stop = threading.Event()

def drive_cpu(origin_s):
    while not stop.wait(0.002):
        path = tree.energy_file(0)
        path.with_name("tmp").write_text(f"{round(trace.energy_j(0.0, time.perf_counter() - origin_s) * 1e5)}\\n")
        os.replace(path.with_name("tmp"), path)

with FakeNvml([FakeGpu(power=trace)]) as fake, FakeOpenAIServer(
    models=["fake-model"], token_delay_s=0.01
) as server:
    driver = threading.Thread(target=drive_cpu, args=(fake.start_s,), daemon=True)
    driver.start()
    config = BenchmarkConfig.model_validate({
        "name": "steady-nvml",
        "output_dir": str(out / "run"),
        "backend": {"type": "vllm", "model": "fake-model", "endpoint": server.url + "/v1",
                    "device": "cuda", "device_ids": [0], "concurrency": 4},
        "scenario": {"dataset_name": str(out / "prompts.txt"), "num_samples": 40,
                     "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8}, "measure_prefill": False},
        "metrics": {"type": ["nvml", "rapl", "codecarbon"] if with_rapl else ["nvml", "codecarbon"],
                    "rapl_root": str(tree.root)},
        "reporter": {"output_file": str(out / "results.csv")},
        "steady_hardware": {"enabled": False},
    })
    result = BenchmarkRunner(config).run()
    stop.set()
    steady = result["model"]["http"]["steady_state"][0]
    truth_j = fake.energy_j(0, steady["start_s"], steady["end_s"])  # the fake keeps perf_counter time, as the meters
summary = format_summary(result)
print(json.dumps({"truth_j": truth_j, "cpu_truth_j": truth_j / 10, "energy": result["energy"], "summary": summary}))
"""


def run_steady_script(tmp_path: Path, *options: str) -> dict[str, Any]:
    """Run STEADY_NVML_RUN in a fresh interpreter (the simulated NVML must be in place before CodeCarbon loads)."""
    done = subprocess.run(
        [sys.executable, "-c", STEADY_NVML_RUN, str(tmp_path / "out"), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_steady_state_gpu_energy_is_measured_over_the_interval(tmp_path: Path) -> None:
    """With NVML on a (simulated) server GPU, the steady state's GPU energy is read back from the counter record
    over the steady interval itself: it matches the truth (within its bounds) where the time share of the window
    does not. CodeCarbon's CPU and RAM stay time-share estimates, and the report and console say which is which."""
    out = run_steady_script(tmp_path)
    energy = out["energy"]
    steady = energy["steady_state"]
    (window,) = steady["windows"]
    assert window["share_of_window"] < 0.75  # the drain is a good part of the window
    gpu, cpu = window["devices"]["gpu"], window["devices"]["cpu"]
    truth_wh = out["truth_j"] / 3600.0
    assert gpu["source"] == "measured:nvml-energy-counter"
    assert gpu["energy_wh"] == pytest.approx(truth_wh, rel=0.005)
    assert gpu["lower_wh"] <= truth_wh * (1 + 1e-4) and truth_wh <= gpu["upper_wh"] * (1 + 1e-4)
    time_share_wh = energy["gpu_energy_wh"] * window["share_of_window"]
    assert time_share_wh < truth_wh * 0.97  # what the estimate alone would have said
    assert cpu["source"] == "estimated:time-share-of-window" and cpu["lower_wh"] is None
    assert window["devices"]["ram"]["source"] == "estimated:time-share-of-window"
    assert window["energy_wh"] == pytest.approx(sum(d["energy_wh"] for d in window["devices"].values()))
    assert steady["is_measured"] is False  # CPU and RAM are estimates
    assert steady["source"] == "estimated:time-share-of-window+measured:nvml-energy-counter"
    assert "gpu measured over the interval; cpu, ram ESTIMATE: time share of the window" in out["summary"]


def test_steady_state_cpu_energy_is_measured_over_the_interval_with_rapl(tmp_path: Path) -> None:
    """With RAPL reading the (simulated) CPU package as well, the steady state's GPU and CPU energy are both read
    back over the interval; only CodeCarbon's RAM model stays a time-share estimate."""
    out = run_steady_script(tmp_path, "rapl")
    energy = out["energy"]
    assert energy["sources"]["cpu"] == "measured:rapl"
    (window,) = energy["steady_state"]["windows"]
    cpu = window["devices"]["cpu"]
    cpu_truth_wh = out["cpu_truth_j"] / 3600.0
    assert cpu["source"] == "measured:rapl"
    assert cpu["energy_wh"] == pytest.approx(cpu_truth_wh, rel=0.02)  # the counter moves in 2 ms steps here
    assert cpu["lower_wh"] <= cpu_truth_wh * 1.01 and cpu_truth_wh <= cpu["upper_wh"] * 1.01
    assert window["devices"]["gpu"]["source"] == "measured:nvml-energy-counter"
    assert window["devices"]["ram"]["source"] == "estimated:time-share-of-window"
    assert "gpu, cpu measured over the interval; ram ESTIMATE: time share of the window" in out["summary"]


def test_idle_baseline_of_a_gpu_at_constant_power(tmp_path: Path) -> None:
    """A (simulated) server GPU that draws 60 W whatever it does: the idle baseline finds 60 W, the measured energy
    is 60 W x the measured duration, and nothing of it is active energy (figures from the setup, not the formula)."""
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    with FakeNvml([FakeGpu(power=60.0)]), FakeOpenAIServer(models=[MODEL], token_delay_s=0.002) as fake:
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            backend={"device": "cuda", "device_ids": [0], "concurrency": 2},
            scenario={"num_samples": 6, "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8}},
            metrics={"type": "nvml", "idle_seconds": 0.5},
        )
        result = BenchmarkRunner(config).run()
    energy, baseline = result["energy"], result["energy"]["idle_baseline"]
    measured_s = result["summary"]["total_duration_seconds"]
    assert energy["sources"]["gpu"] == "measured:nvml-energy-counter"
    assert baseline["power_w"]["gpu"] == pytest.approx(60.0, rel=0.002)
    assert energy["gpu_energy_wh"] == pytest.approx(60.0 * measured_s / 3600, rel=0.01)
    assert abs(baseline["active_energy_wh"]["gpu"]) < 0.01 * energy["gpu_energy_wh"]
    assert baseline["idle_share"] == pytest.approx(1.0, abs=0.01)
