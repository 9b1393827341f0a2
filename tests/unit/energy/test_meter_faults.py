"""Meters that cannot measure exactly must say so: polled power is an estimate with honest bounds, a GPU that stops
answering gives null (never 0 or a negative figure), and idle power is divided by the meter's own interval.

Every check runs the real meters against the simulated NVML (ai_energy_benchmarks.testing.fake_nvml), whose power
traces have an exact integral, and aggregates with the real ``aggregate``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.config.schema import BenchmarkConfig, MetricsConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.energy.base import EnergyReading, IntervalReading, MeterSet, WindowMeasurement
from ai_energy_benchmarks.energy.nvml import POLLED_SOURCE, NvmlMeter
from ai_energy_benchmarks.results.aggregate import aggregate
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml, step_trace, write_fake_nvidia_smi

_J_PER_WH = 3600.0


def square_wave(period_s: float, low_w: float, high_w: float, duration_s: float) -> Any:
    """``low_w`` for the first half of every period, ``high_w`` for the second (exactly integrable)."""
    half_s = period_s / 2.0
    steps = [(k * half_s, high_w if k % 2 else low_w) for k in range(1, round(duration_s / half_s) + 1)]
    return step_trace(low_w, steps)


class ConstantCpuMeter:
    """A stand-in CPU meter (an estimate of 10 W), so that totals have another class to shrink to."""

    name = "cpu-model"

    def __init__(self, delay_s: float = 0.0) -> None:
        self._open: dict[str, float] = {}
        self._delay_s = delay_s  # a slow meter: its start and stop take this long

    def prepare(self) -> None:
        pass

    def start_window(self, name: str) -> None:
        time.sleep(self._delay_s)
        self._open[name] = time.perf_counter()

    def stop_window(self, name: str) -> tuple[list[EnergyReading], float | None]:
        seconds = time.perf_counter() - self._open.pop(name)
        time.sleep(self._delay_s)
        return [EnergyReading("cpu", 10.0 * seconds, "estimated:test-cpu-model", self.name)], None

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def build(
    windows: list[WindowMeasurement],
    meters: MeterSet,
    *,
    model_info: dict[str, Any] | None = None,
    steady: dict[str, list[IntervalReading]] | None = None,
) -> dict[str, Any]:
    repetitions = sorted({w.repetition for w in windows if w.repetition is not None})
    records = [
        RequestRecord(
            index=i,
            num_prompts=1,
            start_s=0.0,
            end_s=0.1,
            prompt_tokens=5,
            completion_tokens=1 if phase == "prefill" else 10,
            phase=phase,
            repetition=rep,
        )
        for i, (phase, rep) in enumerate((p, r) for r in repetitions for p in ("prefill", "generate"))
    ]
    return aggregate(
        config=BenchmarkConfig(backend={"model": "m"}),
        prompt_set=PromptSet(prompts=["a"], source="test", num_requested=1, num_available=1),
        records=records,
        windows=windows,
        model_info=model_info or {},
        meters_info=meters.describe(),
        environment={},
        provenance={},
        timestamps={},
        status="completed",
        gpu_ids_used=[0],
        steady_state_readings=steady,
    ).to_dict()


# -- polled power: an estimate, sampled without aliasing, with bounds that hold ---------------------------------------


@pytest.fixture(scope="module")
def square_wave_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The issue's case: a 50 ms square wave (100/400 W) on a GPU without the energy counter, polled every 50 ms
    on average: an idle window, two repetitions and a steady-state interval read back afterwards."""
    fake = FakeNvml([FakeGpu(power=square_wave(0.05, 100.0, 400.0, 60.0), has_energy_counter=False)])
    with fake:
        meter = NvmlMeter(MetricsConfig(), tmp_path_factory.mktemp("polled"), gpu_ids=[0], poll_seed=20251130)
        meters = MeterSet([meter])
        meters.prepare()
        try:
            with meters.window("idle", kind="idle"):
                time.sleep(1.0)
            for rep in (0, 1):
                with meters.window(f"generate-{rep}", kind="generate", repetition=rep):
                    started = time.perf_counter()
                    time.sleep(1.5)
            steady_from, steady_to = started + 0.3, started + 1.2
            steady = meters.energy_between(steady_from, steady_to)
        finally:
            meters.close()
    model_info = {
        "http": {"steady_state": [{"label": "generate-1", "reached": True, "duration_s": 0.9, "output_tokens": 10}]}
    }
    result = build(meters.windows, meters, model_info=model_info, steady={"generate-1": steady})
    readings = {w.name: w.readings[0] for w in meters.windows}
    truth = {name: fake.energy_j(0, r.start_s or 0.0, r.end_s or 0.0) for name, r in readings.items()}
    yield {
        "result": result,
        "readings": readings,
        "truth": truth,
        "steady_truth": fake.energy_j(0, steady_from, steady_to),
        "steady": steady,
    }


def _within(value: float, bounds: list[float] | tuple[float, float] | None) -> bool:
    assert bounds is not None, "bounds must be given"
    return bounds[0] <= value <= bounds[1]


def test_polled_power_is_labelled_an_estimate_and_flagged(square_wave_run: dict[str, Any]) -> None:
    energy = square_wave_run["result"]["energy"]
    assert energy["sources"]["gpu"] == POLLED_SOURCE == "estimated:nvml-power-integrated"
    assert "gpu-estimated" in energy["flags"]
    assert energy["all_measured"] is False
    for reading in square_wave_run["readings"].values():
        assert not reading.is_measured
        assert "about 1 s on Ampere" in reading.note and "random intervals" in reading.note


def test_polled_totals_and_repetitions_lie_within_their_bounds(square_wave_run: dict[str, Any]) -> None:
    result, truth = square_wave_run["result"], square_wave_run["truth"]
    total_truth_wh = (truth["generate-0"] + truth["generate-1"]) / _J_PER_WH
    bounds = result["energy"]["energy_bounds_wh"]["gpu"]
    reported = result["energy"]["gpu_energy_wh"]
    print(f"total {reported:.5f} Wh, bounds {bounds}, truth {total_truth_wh:.5f} Wh")
    assert _within(total_truth_wh, bounds)
    assert _within(reported, bounds)
    # The bounds say something: narrower than +-60%, the error aliasing gave.
    assert bounds[1] - bounds[0] < 1.2 * total_truth_wh
    for row in result["repetitions"]:
        rep_truth_wh = truth[row["window"]] / _J_PER_WH
        print(f"{row['window']}: {row['gpu_energy_wh']:.5f} Wh {row['energy_bounds_wh']['gpu']} vs {rep_truth_wh}")
        assert _within(rep_truth_wh, row["energy_bounds_wh"]["gpu"])


def test_polled_idle_power_lies_within_its_bounds(square_wave_run: dict[str, Any]) -> None:
    idle = square_wave_run["result"]["energy"]["idle_baseline"]
    reading = square_wave_run["readings"]["idle"]
    truth_w = square_wave_run["truth"]["idle"] / (reading.end_s - reading.start_s)
    print(f"idle {idle['power_w']['gpu']:.2f} W, bounds {idle['power_bounds_w']['gpu']}, truth {truth_w:.2f} W")
    assert truth_w == pytest.approx(250.0, rel=0.05)
    assert _within(truth_w, idle["power_bounds_w"]["gpu"])


def test_polled_steady_state_lies_within_its_bounds(square_wave_run: dict[str, Any]) -> None:
    steady = square_wave_run["result"]["energy"]["steady_state"]
    (row,) = steady["windows"]
    gpu = row["devices"]["gpu"]
    truth_wh = square_wave_run["steady_truth"] / _J_PER_WH
    print(f"steady {gpu['energy_wh']:.5f} Wh [{gpu['lower_wh']:.5f}, {gpu['upper_wh']:.5f}] vs {truth_wh:.5f}")
    assert gpu["source"].startswith("estimated:")
    assert steady["is_measured"] is False
    assert gpu["lower_wh"] <= truth_wh <= gpu["upper_wh"]


def test_jittered_polling_does_not_lock_onto_one_phase(square_wave_run: dict[str, Any]) -> None:
    # Polling every 50 ms exactly would see one level of the 50 ms wave for seconds on end. The meter's record
    # holds every power sample's integral: both levels must appear among its samples.
    readings = square_wave_run["readings"]
    mean_w = [r.energy_j / (r.end_s - r.start_s) for r in readings.values()]
    print("mean powers", mean_w)
    assert all(150.0 < w < 350.0 for w in mean_w)


# -- idle power over the meter's own interval --------------------------------------------------------------------


def test_idle_power_is_divided_by_the_meters_interval_not_the_harness_timer(tmp_path: Path) -> None:
    """A slow second meter makes the NVML meter's interval longer than the harness's timer, deterministically:
    the idle power must still be the GPU's 150 W, not 150 W x (meter interval / timer)."""
    with FakeNvml([FakeGpu(power=150.0)]):
        nvml = NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=[0])
        meters = MeterSet([nvml, ConstantCpuMeter(delay_s=0.05)])
        meters.prepare()
        try:
            with meters.window("idle", kind="idle"):
                time.sleep(0.2)
            with meters.window("generate-0", kind="generate", repetition=0):
                time.sleep(0.2)
        finally:
            meters.close()
    idle_window = meters.windows[0]
    gpu_reading = next(r for r in idle_window.readings if r.device == "gpu:0")
    assert gpu_reading.meter_duration_s is not None
    assert gpu_reading.meter_duration_s > idle_window.duration_s + 0.09  # the slow meter's start and stop
    baseline = build(meters.windows, meters)["energy"]["idle_baseline"]
    assert baseline["power_w"]["gpu"] == pytest.approx(150.0, rel=1e-3)
    # The GPU draws 150 W throughout: nothing of the workload's energy is active.
    assert abs(baseline["active_energy_wh"]["gpu"]) < 1e-3 * 150.0 * 0.3 / _J_PER_WH


def test_idle_power_uses_the_readings_interval() -> None:
    """Hand-built: the meter read the idle window over 10.026 s, the harness timed 10 s."""
    idle = WindowMeasurement(
        name="idle",
        duration_s=10.0,
        kind="idle",
        readings=[EnergyReading("gpu:0", 1002.6, "measured:nvml-energy-counter", "nvml", start_s=100.0, end_s=110.026)],
    )
    generate = WindowMeasurement(
        name="generate-0",
        duration_s=20.0,
        repetition=0,
        readings=[
            EnergyReading("gpu:0", 300.0 * 20.052, "measured:nvml-energy-counter", "nvml", start_s=200.0, end_s=220.052)
        ],
    )
    baseline = build([idle, generate], MeterSet([]))["energy"]["idle_baseline"]
    assert baseline["power_w"]["gpu"] == pytest.approx(100.0, rel=1e-12)
    assert baseline["active_energy_wh"]["gpu"] == pytest.approx(200.0 * 20.052 / _J_PER_WH, rel=1e-12)


# -- a GPU that stops answering mid-run -----------------------------------------------------------------------------


def _numbers(tree: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _numbers(value, f"{path}[{i}]")
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield path, float(tree)


@pytest.fixture(scope="module")
def lost_gpu_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two repetitions of prefill + generate; every NVML call fails from the middle of generate-1 on."""
    fake = FakeNvml([FakeGpu(power=200.0)])
    with fake:
        meters = MeterSet(
            [NvmlMeter(MetricsConfig(), tmp_path_factory.mktemp("lost"), gpu_ids=[0]), ConstantCpuMeter()]
        )
        meters.prepare()
        try:
            for rep in (0, 1):
                with meters.window(f"prefill-{rep}", kind="prefill", repetition=rep):
                    time.sleep(0.15)
                with meters.window(f"generate-{rep}", kind="generate", repetition=rep):
                    if rep == 1:
                        fake.lost_after_s = fake.elapsed_s() + 0.15
                    time.sleep(0.3)
        finally:
            meters.close()
    return {"result": build(meters.windows, meters), "lost_at_s": fake.lost_after_s, "origin_s": meters.origin_s}


def test_lost_gpu_energy_is_null_and_flagged(lost_gpu_run: dict[str, Any]) -> None:
    energy = lost_gpu_run["result"]["energy"]
    assert energy["gpu_energy_j"] is None
    assert energy["sources"]["gpu"] is None
    assert "gpu-incomplete" in energy["flags"] and "meter-error" in energy["flags"]
    assert "gpu-zero-while-used" not in energy["flags"]


def test_lost_gpu_is_reported_with_meter_device_and_time(lost_gpu_run: dict[str, Any]) -> None:
    warnings = lost_gpu_run["result"]["warnings"]
    (failure,) = [w for w in warnings if "stopped answering NVML" in w]
    print(failure)
    assert "meter 'nvml'" in failure and "window 'generate-1'" in failure
    assert "GPU 0 (GPU-" in failure and "GPU is lost" in failure
    # The time of the first failed read, relative to the start of the meters (and of the window).
    after_s = float(failure.split("first failure ")[1].split(" s after")[0])
    assert 0.0 < after_s < 5.0
    assert not any("no energy counter" in w for w in warnings)


def test_lost_gpu_does_not_shrink_any_derived_figure(lost_gpu_run: dict[str, Any]) -> None:
    result = lost_gpu_run["result"]
    energy = result["energy"]
    for key in ("total_energy_j", "joules_per_output_token", "total_wh_per_1000_queries", "gpu_wh_per_1000_queries"):
        assert energy[key] is None, key
    decode = result["phases"]["decode"]
    assert decode["gpu_energy_wh"] is None and decode["energy_wh"] is None
    assert result["phases"]["generate"]["energy_wh"] is None
    lost_rep = result["repetitions"][1]
    assert lost_rep["gpu_energy_wh"] is None and lost_rep["total_energy_wh"] is None
    # The repetition before the failure keeps its figure (the meter's interval includes its edges' reads).
    first = result["repetitions"][0]
    assert first["gpu_energy_wh"] >= 200.0 * first["duration_s"] * 0.999 / _J_PER_WH


def test_no_energy_anywhere_is_negative(lost_gpu_run: dict[str, Any]) -> None:
    result = lost_gpu_run["result"]
    for path, value in _numbers({"energy": result["energy"], "phases": result["phases"]}):
        if "energy" in path and "bounds" not in path:
            assert value >= 0.0, path


def test_a_negative_decode_energy_is_null_and_flagged() -> None:
    def window(name: str, kind: str, joules: float) -> WindowMeasurement:
        reading = EnergyReading("gpu:0", joules, "measured:nvml-energy-counter", "nvml")
        return WindowMeasurement(name=name, duration_s=1.0, kind=kind, repetition=0, readings=[reading])

    result = build([window("prefill-0", "prefill", 50.0), window("generate-0", "generate", 40.0)], MeterSet([]))
    assert result["phases"]["decode"]["gpu_energy_wh"] is None
    assert "negative-energy" in result["energy"]["flags"]
    assert any("decode gpu energy would be negative" in w for w in result["warnings"])


# -- CodeCarbon's GPU figure when the GPU stops answering ---------------------------------------------------------

_CODECARBON_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    fake = FakeNvml([FakeGpu(power=200.0)])
    fake.install()  # before CodeCarbon is imported: it binds pynvml at import time

    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.base import MeterSet
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter

    meters = MeterSet([CodeCarbonMeter(MetricsConfig(), Path(sys.argv[1]), gpu_ids=[0])])
    meters.prepare()
    for rep in (0, 1):
        with meters.window(f"prefill-{rep}", kind="prefill", repetition=rep):
            time.sleep(0.3)
        with meters.window(f"generate-{rep}", kind="generate", repetition=rep):
            if rep == 1:
                fake.lost_after_s = fake.elapsed_s() + 0.2
            time.sleep(0.5)
    meters.close()
    print(json.dumps([
        {
            "name": w.name, "duration_s": w.duration_s, "kind": w.kind, "repetition": w.repetition,
            "errors": w.errors, "emissions_kg": w.emissions_kg,
            "readings": [{k: v for k, v in r.to_dict().items() if k not in ("energy_wh", "is_measured")}
                         for r in w.readings],
        }
        for w in meters.windows
    ]))
    """
)


def test_codecarbon_does_not_read_a_lost_gpu_as_zero(tmp_path: Path) -> None:
    """In the issue, CodeCarbon (reading the same NVML) gave 0 Wh `estimated:codecarbon-nvml-power-average` and a
    negative decode energy: its GPU figure must be null for the window the GPU died in, and said why."""
    write_fake_nvidia_smi(tmp_path / "bin")
    env = dict(os.environ)
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-c", _CODECARBON_CHILD, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    windows = [
        WindowMeasurement(
            name=w["name"],
            duration_s=w["duration_s"],
            kind=w["kind"],
            repetition=w["repetition"],
            readings=[EnergyReading(**r) for r in w["readings"]],
            errors=w["errors"],
            emissions_kg=w["emissions_kg"],
        )
        for w in json.loads(done.stdout.strip().splitlines()[-1])
    ]
    assert [r.device for r in windows[1].readings] == ["cpu", "ram", "gpu"]  # generate-0: the GPU answered
    result = build(windows, MeterSet([]))
    energy = result["energy"]
    assert energy["gpu_energy_j"] is None and energy["sources"]["gpu"] is None
    assert "gpu-incomplete" in energy["flags"] and "meter-error" in energy["flags"]
    assert "gpu-zero-while-used" not in energy["flags"]
    assert energy["total_energy_j"] is None and energy["joules_per_output_token"] is None
    assert result["phases"]["decode"]["gpu_energy_wh"] is None
    (failure,) = [w for w in result["warnings"] if "CodeCarbon cannot read GPU 0" in w]
    assert "meter 'codecarbon'" in failure and "window 'generate-1'" in failure and "GPU is lost" in failure
    assert "s after the meters started" in failure
    # CPU and RAM of the same window are kept.
    assert energy["cpu_energy_j"] is not None and energy["cpu_energy_j"] > 0
