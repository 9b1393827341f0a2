"""The adaptive load sweep (`sweep --load adaptive`): synchronous and throughput first, rates spread between their
measured throughputs, each point its own metered run, resumable, and an early stop when the server over-saturates.

Against the package's test server with a simulated GPU (60 W whatever it does) in this process. The server
saturates deterministically: after the throughput point (driven by the sweep's own events, no sleeps) its capacity
drops to one request at a time, so the first rate is offered faster than it can be served.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.sweeps import SweepEvent
from ai_energy_benchmarks.sweeps.adaptive import AdaptiveSweep, spread_rates
from ai_energy_benchmarks.sweeps.saturation import (
    PointLoad,
    SaturationLimits,
    run_rates_per_s,
    saturation,
    waiting_growth,
)
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

GPU_POWER_W = 60.0


def load(**values: Any) -> PointLoad:
    fields: dict[str, Any] = dict.fromkeys(PointLoad.__dataclass_fields__)
    fields["held_for_slot"] = 0
    fields.update(values)
    return PointLoad(**fields)


# -- the rates and the stop criteria ----------------------------------------------------------------------------------


def test_rates_are_spread_strictly_between_the_two_throughputs() -> None:
    assert spread_rates(2.0, 10.0, 3) == [4.0, 6.0, 8.0]
    assert spread_rates(5.02, 23.8, 2) == [11.3, 17.5]  # 3 significant digits: stable directory names
    assert spread_rates(5.0, 5.0, 3) == [] and spread_rates(5.0, 4.0, 3) == []


def test_saturation_criteria() -> None:
    limits = SaturationLimits()
    calm = load(offered_rate_per_s=10.0, achieved_rate_per_s=9.5, kept_up_rate_per_s=10.0, ttft_p50_s=0.02)
    assert saturation(calm, load(ttft_p50_s=0.015, ttft_p99_s=0.03), limits) is None
    queue = saturation(
        load(offered_rate_per_s=10.0, achieved_rate_per_s=7.0, kept_up_rate_per_s=9.5, held_for_slot=3), None, limits
    )
    assert queue is not None and queue.criterion == "queue_growing"
    assert (
        "achieved 7 req/s, below 80% of the 9.5 req/s of a server keeping up with the offered 10 req/s (3 requests"
        in queue.reason
    )
    server = saturation(load(offered_rate_per_s=10.0, achieved_rate_per_s=9.9, waiting_growth=4.0), None, limits)
    assert server is not None and server.criterion == "server_queue_growing"
    previous = load(ttft_p50_s=0.05, ttft_p99_s=0.08, ttft_count=200)
    tail = load(offered_rate_per_s=10.0, achieved_rate_per_s=10.0, ttft_p50_s=0.06, ttft_p99_s=0.5, ttft_count=200)
    ttft = saturation(tail, previous, limits)
    assert ttft is not None and ttft.criterion == "ttft_diverging" and "p99 0.5 s, 6.25x" in ttft.reason
    # Below 100 requests the p99 is the slowest request or two: only the median counts.
    assert saturation(dataclasses.replace(tail, ttft_count=30), previous, limits) is None
    median = dataclasses.replace(tail, ttft_p50_s=0.2, ttft_count=30)
    assert (found := saturation(median, previous, limits)) is not None and "p50 0.2 s, 4x" in found.reason
    # A few milliseconds are noise, however many times larger.
    assert (
        saturation(load(ttft_p50_s=0.004, ttft_p99_s=0.009), load(ttft_p50_s=0.001, ttft_p99_s=0.002), limits) is None
    )


def test_the_queue_shows_as_a_run_stretched_past_its_schedule() -> None:
    def requests(starts: list[float], ends: list[float]) -> list[dict[str, Any]]:
        return [
            {"start_s": s, "end_s": e, "latency_s": e - s, "error": None, "repetition": 0}
            for s, e in zip(starts, ends, strict=True)
        ]

    def span_s(count: int) -> float:  # 10 req/s offered, evenly spaced
        return (count - 1) / 10

    sent = [i / 10 for i in range(30)]
    steady = run_rates_per_s(requests(sent, [s + 0.1 for s in sent]), span_s)
    assert steady is not None and steady[0] == pytest.approx(steady[1]) == pytest.approx(30 / 3.0)
    # Four requests stalled, then the server caught up: the run is not stretched.
    stalled = [s + (0.7 - 0.15 * (i - 8) if 8 <= i < 12 else 0.1) for i, s in enumerate(sent)]
    achieved, kept_up = run_rates_per_s(requests(sent, stalled), span_s) or (0, 0)
    assert achieved > 0.95 * kept_up
    # Served in bunches of ten every second (continuous batching, equal lengths) at 10 req/s: kept up.
    bunched = [1.0 + i // 10 for i in range(30)]
    achieved, kept_up = run_rates_per_s(
        requests(sent, [max(b, s + 0.1) for s, b in zip(sent, bunched, strict=True)]), span_s
    ) or (0, 0)
    assert achieved > 0.8 * kept_up
    # Served at 5 req/s: the queue grows, the run takes twice its schedule.
    achieved, kept_up = run_rates_per_s(requests(sent, [0.1 + i / 5 for i in range(30)]), span_s) or (0, 0)
    assert achieved == pytest.approx(30 / 5.9) and achieved < 0.6 * kept_up


def test_the_server_queue_is_read_from_the_waiting_gauge() -> None:
    samples = [{"num_requests_waiting": w} for w in (0, 0, 1, 2, 4, 6)]
    assert waiting_growth([{"prometheus": {"samples": samples}}]) == pytest.approx(5.0 - 0.0)
    assert waiting_growth([{"prometheus": {"samples": samples[:2]}}]) is None


# -- real sweeps against the test server ----------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeNvml([FakeGpu(power=GPU_POWER_W)]), FakeOpenAIServer(models=["fake-model"], token_delay_s=0.02) as fake:
        yield fake


def write_config(tmp_path: Path, endpoint: str, **backend: Any) -> Path:
    config = {
        "name": "adaptive",
        "output_dir": str(tmp_path / "out"),
        "backend": {
            "type": "vllm",
            "model": "fake-model",
            "endpoint": endpoint,
            "device": "cuda",
            "device_ids": [0],
            "concurrency": 8,
            **backend,
        },
        "scenario": {
            "num_samples": 10,
            "warmup_runs": 0,
            "measure_prefill": False,
            "generate_kwargs": {"max_new_tokens": 10, "min_new_tokens": 10},
        },
        "metrics": {"type": "nvml"},
    }
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_adaptive_sweep_runs_every_rate_and_resumes(tmp_path: Path, server: FakeOpenAIServer) -> None:
    pytest.importorskip("matplotlib")
    config = write_config(tmp_path, server.url + "/v1")
    # This test is about running and resuming; the stop criteria have tests of their own (a busy machine slowing the
    # test server must not stop this sweep early).
    never = SaturationLimits(min_achieved_share=0.0, max_ttft_growth=math.inf, min_waiting_growth=math.inf)
    outcome = AdaptiveSweep(config_path=config, rates=2, slo_p99_s=5.0, limits=never).run()
    names = [o.point.name for o in outcome.points]
    assert names[:2] == ["01-synchronous", "02-throughput"] and len(names) == 4
    assert outcome.stop is not None and outcome.stop.criterion == "completed" and not outcome.stop.early
    sync, most = (outcome.loads[n].request_throughput_per_s or 0.0 for n in names[:2])
    assert most > 2 * sync  # eight streams at once against one at a time
    assert len(outcome.rates_per_s) == 2 and all(sync < rate < most for rate in outcome.rates_per_s)
    for point in outcome.points:  # each point: its own run directory, its own measured energy window
        report = json.loads((point.run_dir / "benchmark_report.json").read_text())
        assert report["energy"]["sources"]["gpu"] == "measured:nvml-energy-counter"
        expected_wh = GPU_POWER_W * report["summary"]["total_duration_seconds"] / 3600
        assert report["energy"]["gpu_energy_wh"] == pytest.approx(expected_wh, rel=0.02)
        assert report["model"]["load"]["load_profile"] == dict(point.point.settings)["backend.load_profile"]
    rows = read_csv(outcome.files["summary_csv"])
    assert [row["profile"] for row in rows] == ["synchronous", "throughput", "constant", "constant"]
    assert [float(row["offered_rate_per_s"]) for row in rows[2:]] == outcome.rates_per_s
    assert all(float(row["achieved_rate_per_s"]) > 0 and float(row["kept_up_rate_per_s"]) > 0 for row in rows[2:])
    assert all(row["goodput_per_s"] and row["over_saturated"] == "False" for row in rows)
    # J/token falls as the load rises at constant GPU power; the throughput point is on the Pareto front.
    assert float(rows[1]["joules_per_output_token"]) < float(rows[0]["joules_per_output_token"])
    assert rows[1]["pareto_p99"] == "True"
    document = json.loads(outcome.files["summary_json"].read_text())
    assert document["adaptive"]["stop"]["criterion"] == "completed"
    assert [p["pareto_p99"] for p in document["points"]] == [row["pareto_p99"] == "True" for row in rows]
    assert outcome.files["plot"].stat().st_size > 0
    # Run again: the same rates come from the same reports, every point is skipped.
    events: list[SweepEvent] = []
    again = AdaptiveSweep(config_path=config, rates=2, slo_p99_s=5.0, limits=never).run(on_event=events.append)
    assert [e.kind for e in events] == ["skip"] * 4 and again.rates_per_s == outcome.rates_per_s


def test_adaptive_sweep_stops_when_the_server_over_saturates(tmp_path: Path, server: FakeOpenAIServer) -> None:
    config = write_config(tmp_path, server.url + "/v1")

    def on_event(event: SweepEvent) -> None:
        if event.kind == "done" and event.point.name == "02-throughput":
            server.capacity = 1  # from now on one request at a time, whatever the load

    outcome = AdaptiveSweep(config_path=config, rates=3, plot=False).run(on_event=on_event)
    stop = outcome.stop
    assert stop is not None and stop.early and stop.criterion == "queue_growing"
    first_rate = outcome.points[2].point.name
    assert stop.point == first_rate and len(outcome.points) == 3
    assert stop.values["achieved_rate_per_s"] < 0.8 * stop.values["kept_up_rate_per_s"]
    later = {p.name for p in (tmp_path / "out" / "sweep").iterdir()}
    assert first_rate in later and not any(name.startswith(("04-", "05-")) for name in later)
    rows = read_csv(tmp_path / "out" / "sweep" / "summary.csv")
    assert [row["over_saturated"] for row in rows] == ["False", "False", "True"]
    assert (
        json.loads((tmp_path / "out" / "sweep" / "sweep.json").read_text())["adaptive"]["stop"]["point"] == first_rate
    )
    summary = (tmp_path / "out" / "sweep" / "summary.md").read_text()
    assert "Stopped early: queue growing: achieved" in summary and "(over-saturated)" in summary


# -- bad usage --------------------------------------------------------------------------------------------------------


def test_adaptive_sweep_needs_a_server_and_a_concurrency_limit(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", concurrency=1)
    with pytest.raises(ConfigError, match=r"backend\.concurrency requests in flight, which is 1"):
        AdaptiveSweep(config_path=config)
    with pytest.raises(ConfigError, match=r"backend\.type must be vllm"):
        AdaptiveSweep(config_name="quickstart")
    with pytest.raises(ConfigError, match="--rates: give 1 to 100"):
        AdaptiveSweep(config_path=config, rates=0)
    # A common override of a load key is read (concurrency 8 for the throughput point), then left to the points.
    sweep = AdaptiveSweep(config_path=config, overrides=["backend.concurrency=8", "backend.request_rate=3"])
    assert sweep.concurrency == 8 and sweep.overrides == []


def test_cli_refuses_a_grid_with_the_adaptive_load(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")
    args = ["sweep", "--config", str(config), "--load", "adaptive", "--param", "backend.concurrency=1,2"]
    done = subprocess.run(
        [sys.executable, "-m", "ai_energy_benchmarks", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --load adaptive chooses its own points: drop --param (fixed settings go as KEY=VALUE)"
    )
    # --param is optional now, but a grid still needs one.
    grid = subprocess.run(
        [sys.executable, "-m", "ai_energy_benchmarks", "sweep", "--config", str(config), "--no-plot"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert grid.returncode == 2 and grid.stderr.strip().endswith("a sweep needs at least one --param KEY=V1,V2,...")


def test_cli_adaptive_sweep_prints_the_summary_and_why_it_stopped(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=["fake-model"], token_delay_s=0.01) as fake:
        config = write_config(tmp_path, fake.url + "/v1", device="cpu")
        text = config.read_text().replace("type: nvml", "enabled: false")
        config.write_text(text, encoding="utf-8")
        args = ["sweep", "--config", str(config), "--load", "adaptive", "--rates", "2", "--no-plot"]
        args += ["--slo-ttft-p99-s", "0.5", "backend.concurrency=6"]
        done = subprocess.run(
            [sys.executable, "-m", "ai_energy_benchmarks", *args], capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr
    assert "sweep: adaptive load, up to 4 points in" in done.stderr
    assert "sweep: point 4/4 [load_profile=constant, concurrency=6, request_rate=" in done.stderr
    # Why it stopped: every rate ran, or (this machine starved the test server) one over-saturated it.
    assert re.search(r"^Stopped( early)?: .+\.$", done.stdout, re.MULTILINE)
    rows = read_csv(tmp_path / "out" / "sweep" / "summary.csv")
    assert [row["concurrency"] for row in rows][:3] == ["1", "6", "6"]
    assert all(row["goodput_from"] == "the sweep's SLOs, per request" for row in rows)
