"""The NVML meter against the simulated GPU (ai_energy_benchmarks.testing.fake_nvml), checked against ground truth.

One module-scoped scenario measures nested and overlapping windows (1.05-1.6 s) on six simulated GPUs at once. The
meter and the simulated GPUs share a simulated clock (ai_energy_benchmarks.testing.clock): every read, poll and
window edge happens at a time the scenario chose, so no verdict depends on how busy the machine is.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.amdsmi import COUNTER_SOURCE as AMD_COUNTER_SOURCE
from ai_energy_benchmarks.energy.amdsmi import POLLED_SOURCE as AMD_POLLED_SOURCE
from ai_energy_benchmarks.energy.amdsmi import AmdSmiMeter
from ai_energy_benchmarks.energy.base import EnergyMeter, EnergyReading, IntervalEnergyMeter, IntervalReading
from ai_energy_benchmarks.energy.devices.base import GpuDevice
from ai_energy_benchmarks.energy.devices.nvml import NvmlLibrary
from ai_energy_benchmarks.energy.nvml import COUNTER_SOURCE, POLLED_SOURCE, TIMELINE_COLUMNS, NvmlMeter
from ai_energy_benchmarks.energy.registry import create_meters
from ai_energy_benchmarks.exceptions import MeterError
from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi
from ai_energy_benchmarks.testing.fake_nvml import (
    FakeGpu,
    FakeNvml,
    PiecewiseLinearTrace,
    constant_trace,
    ramp_trace,
    step_trace,
)

TOLERANCE = 0.005  # the acceptance bound: 0.5% of ground truth for windows >= 1 s

# GPU 2's counter wraps 0.8 s after the simulation starts: at NVML's real modulus, 2**64 mJ (200 W = 200,000 mJ/s), or
# at a 32-bit AMD accumulator of 15.3 µJ ticks.
NVML_MODULUS_MJ = 2**64
AMD_MODULUS_TICKS = 2**32
AMD_RESOLUTION_UJ = 15.3
WRAP_AT_S = 0.8


def _sine(t_s: float) -> float:
    return 150.0 + 50.0 * math.sin(2.0 * math.pi * t_s / 0.7)


@dataclass(frozen=True)
class Vendor:
    """What differs between the simulated vendors; everything else runs through the same GPU meter code."""

    name: str
    counter_source: str
    polled_source: str
    #: A simulated GPU: power, whether it has a counter, the counter's offset from zero (mJ or ticks).
    gpu: Callable[..., Any]
    #: The simulated library (gpus, clock) and the meter (config, output_dir, gpu_ids, clock).
    fake: Callable[..., Any]
    meter: Callable[..., Any]
    #: Counter value (its own units) of GPU i at an instant, and how to make it restart from about 0 (driver reload).
    counter: Callable[[Any, int, float], int]
    reset: Callable[[Any, int], None]
    wrap_offset: int
    power_note: str
    driver_version: str
    gpu_name: str
    power_limit_w: float
    timeline: dict[str, str]


def _nvml_reset(fake: Any, index: int) -> None:
    fake.gpus[index].counter_offset_mj = -fake.counter_mj(index) + 1234


def _amd_reset(fake: Any, index: int) -> None:
    fake.gpus[index].counter_offset_ticks = -fake.counter_ticks(index) + 1234


VENDORS = {
    "nvml": Vendor(
        "nvml",
        COUNTER_SOURCE,
        POLLED_SOURCE,
        lambda power, counter=True, offset=0: FakeGpu(
            power=power, has_energy_counter=counter, counter_offset_mj=offset
        ),
        lambda gpus, clock: FakeNvml(gpus, clock=clock),
        lambda config, out, ids, clock: NvmlMeter(config, out, gpu_ids=ids, clock=clock),
        lambda fake, i, at: fake.counter_mj(i, at),
        _nvml_reset,
        NVML_MODULUS_MJ - round(200_000 * WRAP_AT_S),
        "about 1 s on Ampere",
        "550.54.15",
        "NVIDIA H100 80GB HBM3 (simulated)",
        700.0,
        {"sm_clock_mhz": "1980", "mem_clock_mhz": "2619", "temperature_c": "45", "utilization_pct": "87"},
    ),
    "amdsmi": Vendor(
        "amdsmi",
        AMD_COUNTER_SOURCE,
        AMD_POLLED_SOURCE,
        lambda power, counter=True, offset=0: FakeAmdGpu(
            power=power,
            has_energy_counter=counter,
            counter_offset_ticks=offset,
            counter_modulus=AMD_MODULUS_TICKS,
            counter_resolution_uj=AMD_RESOLUTION_UJ,
        ),
        lambda gpus, clock: FakeAmdSmi(gpus, clock=clock),
        lambda config, out, ids, clock: AmdSmiMeter(
            config, out, gpu_ids=ids, clock=clock, counter_modulus=AMD_MODULUS_TICKS
        ),
        lambda fake, i, at: fake.counter_ticks(i, at),
        _amd_reset,
        AMD_MODULUS_TICKS - round(200e6 * WRAP_AT_S / AMD_RESOLUTION_UJ),
        "AMD SMI reports socket power",
        "6.8.5",
        "AMD Instinct MI300X (simulated)",
        750.0,
        {"sm_clock_mhz": "2100", "mem_clock_mhz": "1300", "temperature_c": "55", "utilization_pct": "90"},
    ),
}


def _scenario_gpus(vendor: Vendor) -> list[Any]:
    gpu = vendor.gpu
    return [
        # 0: constant 150 W
        gpu(150.0),
        # 1: stepped and ramped: 100 W, ramp to 300 W over 0.3-0.8 s, drop to 50 W at 1.45 s, 250 W at 1.9 s
        gpu(
            PiecewiseLinearTrace(
                [(0.0, 100.0), (0.3, 100.0), (0.8, 300.0), (1.45, 300.0), (1.45, 50.0), (1.9, 50.0), (1.9, 250.0)]
            )
        ),
        # 2: 200 W, the counter wraps inside the first windows
        gpu(200.0, offset=vendor.wrap_offset),
        # 3: no energy counter: polled fallback, 80 W ramping to 260 W over 3 s
        gpu(ramp_trace(80.0, 260.0, 0.0, 3.0), counter=False),
        # 4: present but not selected
        gpu(400.0),
        # 5: constant 100 W; its counter is reset (driver reload) during window "late"
        gpu(100.0),
        # 6: an arbitrary callable (numerically integrated ground truth)
        gpu(_sine),
    ]


SELECTED = [0, 1, 2, 3, 5, 6]


@dataclass
class Scenario:
    vendor: Vendor
    clock: SimulatedClock
    fake: Any
    meter: Any
    output_dir: Path
    edges: dict[str, tuple[float, float]] = field(default_factory=dict)  # window -> (start, stop) on the clock, s
    readings: dict[str, dict[str, EnergyReading]] = field(default_factory=dict)
    edge_uncertainty_s: float = 0.0
    # Past intervals read back after the windows closed: name -> (start, stop) in the simulation's elapsed seconds.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    interval_readings: dict[str, dict[str, IntervalReading]] = field(default_factory=dict)

    def truth_j(self, window: str, gpu: int) -> float:
        """The exact energy between the meter's own counter reads at the window's edges (the reading's ``start_s`` /
        ``end_s``), so the check does not depend on how long the edge calls took on a busy machine; the edges
        themselves are checked against the calls' times in the tests."""
        reading = self.readings[window].get(f"gpu:{gpu}")
        if reading is not None and reading.start_s is not None and reading.end_s is not None:
            return self.fake.energy_j(gpu, reading.start_s, reading.end_s)
        start, stop = self.edges[window]
        return self.fake.energy_j(gpu, start, stop)


def _timed(clock: SimulatedClock, call: Callable[[], Any]) -> tuple[float, float, Any]:
    before = clock.now_s()
    result = call()
    after = clock.now_s()
    return (before + after) / 2.0, after - before, result


@pytest.fixture(scope="module", params=sorted(VENDORS))
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Windows: outer [0, 1.6 s], inner [0.3, 1.35 s] nested in it, late [1.35, 2.45 s] overlapping outer's end; the
    same scenario for each simulated vendor (NVML, AMD SMI), through the same GPU meter."""
    vendor = VENDORS[request.param]
    output_dir = tmp_path_factory.mktemp(vendor.name)
    clock = SimulatedClock()
    fake = vendor.fake(_scenario_gpus(vendor), clock)
    with fake:
        meter = vendor.meter(MetricsConfig(), output_dir, SELECTED, clock)
        meter.prepare()
        run = Scenario(vendor, clock, fake, meter, output_dir)
        starts: dict[str, float] = {}
        widest = 0.0

        def start(name: str) -> None:
            nonlocal widest
            starts[name], width, _ = _timed(clock, lambda: meter.start_window(name))
            widest = max(widest, width)

        def stop(name: str) -> None:
            nonlocal widest
            stop_s, width, (readings, emissions) = _timed(clock, lambda: meter.stop_window(name))
            widest = max(widest, width)
            assert emissions is None
            run.edges[name] = (starts[name], stop_s)
            run.readings[name] = {r.device: r for r in readings}

        origin = fake.start_s

        def sleep_until(elapsed_s: float) -> None:  # the poller's reads on the way happen at their own times
            clock.advance_to(origin + elapsed_s)

        start("outer")
        sleep_until(0.3)
        start("inner")
        sleep_until(1.35)
        stop("inner")
        start("late")
        sleep_until(1.6)
        stop("outer")
        # Driver reload: GPU 5's counter restarts from (about) zero while "late" is open.
        vendor.reset(fake, 5)
        sleep_until(2.45)
        stop("late")
        run.edge_uncertainty_s = widest
        # Intervals never opened as windows, known only afterwards (as the HTTP backend's steady state is):
        # "mid" crosses inner's edges and GPU 1's ramp; "span" crosses GPU 5's counter reset and GPU 1's steps.
        run.intervals = {"mid": (0.52, 1.27), "span": (1.1, 2.3)}
        for name, (begin, end) in run.intervals.items():
            readings = meter.energy_between(origin + begin, origin + end)  # the clock the meter and the fake share
            run.interval_readings[name] = {r.device: r for r in readings}
        meter.close()
        yield run


def _relative_error(measured: float, truth: float) -> float:
    return (measured - truth) / truth


@pytest.mark.parametrize("window", ["outer", "inner", "late"])
@pytest.mark.parametrize("gpu", [0, 1, 2, 6])
def test_counter_windows_match_ground_truth(scenario: Scenario, window: str, gpu: int) -> None:
    reading = scenario.readings[window][f"gpu:{gpu}"]
    truth = scenario.truth_j(window, gpu)
    error = _relative_error(reading.energy_j, truth)
    print(f"gpu {gpu} window {window}: {reading.energy_j:.4f} J vs truth {truth:.4f} J ({error:+.4%})")
    assert reading.source == scenario.vendor.counter_source
    assert reading.meter == scenario.vendor.name
    assert reading.is_measured
    assert abs(error) < TOLERANCE
    # Exact in fact, up to the counter's whole millijoules (or 15.3 µJ ticks) at each edge ...
    assert abs(reading.energy_j - truth) < 2e-3
    # ... read at the window's edges (on the simulated clock the edge calls take no time).
    assert scenario.edge_uncertainty_s == 0.0
    assert (reading.start_s, reading.end_s) == scenario.edges[window]


def test_nested_and_overlapping_windows_are_consistent(scenario: Scenario) -> None:
    outer, inner, late = (scenario.edges[w] for w in ("outer", "inner", "late"))
    assert outer[0] < inner[0] < inner[1] <= late[0] < outer[1] < late[1]
    assert all(scenario.edges[w][1] - scenario.edges[w][0] >= 1.0 for w in scenario.edges)
    for gpu in (0, 1, 6):
        # The inner window is part of the outer one; their counter readings account for the outer's remainder, to
        # the counter's whole millijoules (four edge reads).
        outer_r, inner_r = scenario.readings["outer"][f"gpu:{gpu}"], scenario.readings["inner"][f"gpu:{gpu}"]
        assert None not in (outer_r.start_s, outer_r.end_s, inner_r.start_s, inner_r.end_s)
        remainder = scenario.fake.energy_j(gpu, outer_r.start_s, inner_r.start_s) + scenario.fake.energy_j(
            gpu, inner_r.end_s, outer_r.end_s
        )
        assert outer_r.energy_j - inner_r.energy_j == pytest.approx(remainder, abs=4e-3)


def test_counter_wraparound(scenario: Scenario) -> None:
    outer = scenario.edges["outer"]
    counter = scenario.vendor.counter
    assert counter(scenario.fake, 2, outer[1]) < counter(scenario.fake, 2, outer[0]), "the counter must wrap"
    for window in ("outer", "inner"):
        reading = scenario.readings[window]["gpu:2"]
        assert "wrapped" in reading.note
        assert reading.energy_j == pytest.approx(scenario.truth_j(window, 2), rel=TOLERANCE)
    assert scenario.readings["late"]["gpu:2"].note == ""


def test_stepped_trace_really_steps(scenario: Scenario) -> None:
    # The windows see different mean powers on GPU 1, so the check above is not a constant in disguise.
    means = {
        w: scenario.readings[w]["gpu:1"].energy_j / (scenario.edges[w][1] - scenario.edges[w][0])
        for w in scenario.edges
    }
    assert max(means.values()) - min(means.values()) > 30.0


@pytest.mark.parametrize("window", ["outer", "inner", "late"])
def test_gpu_without_counter_uses_polled_power(scenario: Scenario, window: str) -> None:
    reading = scenario.readings[window]["gpu:3"]
    truth = scenario.truth_j(window, 3)
    error = _relative_error(reading.energy_j, truth)
    print(f"gpu 3 (no counter) window {window}: {reading.energy_j:.4f} J vs truth {truth:.4f} J ({error:+.4%})")
    assert reading.source == scenario.vendor.polled_source
    assert reading.source == f"estimated:{scenario.vendor.name}-power-integrated"
    assert not reading.is_measured
    assert "no energy counter" in reading.note and "averaging 50 ms" in reading.note
    assert scenario.vendor.power_note in reading.note
    assert abs(error) < TOLERANCE
    assert reading.lower_j is not None and reading.upper_j is not None
    assert reading.lower_j <= truth <= reading.upper_j


def test_counter_reset_falls_back_to_polled_power(scenario: Scenario) -> None:
    reading = scenario.readings["late"]["gpu:5"]
    truth = scenario.truth_j("late", 5)
    assert reading.source == scenario.vendor.polled_source
    assert "counter reset" in reading.note
    assert reading.energy_j == pytest.approx(truth, rel=TOLERANCE)
    assert scenario.readings["outer"]["gpu:5"].source == scenario.vendor.counter_source


def test_only_selected_gpus_are_read(scenario: Scenario) -> None:
    for readings in scenario.readings.values():
        assert sorted(readings) == [f"gpu:{i}" for i in SELECTED]
    assert scenario.fake.device_calls(4) == 0
    if scenario.vendor.name == "nvml":
        assert ("nvmlDeviceGetHandleByIndex", 4) not in scenario.fake.calls
    for gpu in SELECTED:
        assert scenario.fake.device_calls(gpu) > 0


def test_describe_reports_gpus_driver_and_sources(scenario: Scenario) -> None:
    info = scenario.meter.describe()
    assert info["selection"] == f"gpu_ids {SELECTED} of 7 visible"
    vendor = scenario.vendor
    assert info["driver_version"] == vendor.driver_version
    assert info["poll_interval_s"] == 0.05
    gpus = {g["index"]: g for g in info["gpus"]}
    assert sorted(gpus) == SELECTED
    assert gpus[0]["name"] == vendor.gpu_name
    assert gpus[0]["uuid"] == scenario.fake.gpus[0].uuid and gpus[0]["uuid"] != gpus[1]["uuid"]
    assert gpus[0]["power_limit_w"] == vendor.power_limit_w
    if vendor.name == "nvml":
        assert gpus[0]["uuid"].startswith("GPU-")
        assert gpus[0]["bus_id"] == "00000000:17:00.0" and gpus[6]["bus_id"] == "00000000:1D:00.0"
    else:
        assert gpus[0]["bus_id"] == "0000:0c:00.0" and gpus[6]["bus_id"] == "0000:6c:00.0"
    assert gpus[0]["energy_counter"] is True and gpus[0]["source"] == vendor.counter_source
    assert gpus[3]["energy_counter"] is False and gpus[3]["source"] == vendor.polled_source


def test_timeline_csv(scenario: Scenario) -> None:
    path = scenario.output_dir / "timeline.csv"
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == TIMELINE_COLUMNS
        rows = list(reader)
    by_gpu: dict[int, list[dict[str, str]]] = {}
    for row in rows:
        by_gpu.setdefault(int(row["gpu"]), []).append(row)
    assert sorted(by_gpu) == SELECTED
    for gpu, gpu_rows in by_gpu.items():
        elapsed = [float(r["elapsed_s"]) for r in gpu_rows]
        assert elapsed == sorted(elapsed)
        rate_hz = (len(elapsed) - 1) / (elapsed[-1] - elapsed[0])
        assert rate_hz >= 10.0, f"GPU {gpu} polled at {rate_hz:.1f} Hz"
        assert elapsed[-1] - elapsed[0] > 2.0
        for row in gpu_rows:
            assert {key: row[key] for key in scenario.vendor.timeline} == scenario.vendor.timeline
            assert float(row["timestamp_unix_s"]) == pytest.approx(time.time(), abs=3600)
    assert {float(r["power_w"]) for r in by_gpu[0]} == {150.0}
    ramp = [float(r["power_w"]) for r in by_gpu[3]]
    assert 80.0 <= ramp[0] < ramp[-1] <= 260.0


# --- set-up, selection and errors (no windows of any length) ---------------------------------------------------------


def test_registry_creates_the_meter(tmp_path: Path) -> None:
    meters = create_meters(MetricsConfig(type="nvml"), tmp_path, [0])
    assert len(meters) == 1 and isinstance(meters[0], NvmlMeter)
    assert isinstance(meters[0], EnergyMeter)


def test_all_visible_gpus_when_none_selected(tmp_path: Path) -> None:
    with FakeNvml([FakeGpu(100.0), FakeGpu(200.0)]) as fake:
        meter = NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=None)
        meter.prepare()
        try:
            meter.start_window("w")
            time.sleep(0.05)
            readings, _ = meter.stop_window("w")
            assert [r.device for r in readings] == ["gpu:0", "gpu:1"]
            assert meter.describe()["selection"] == "all visible GPUs (2)"
        finally:
            meter.close()
        assert fake.init_count == 0, "close() must shut NVML down"
    assert (tmp_path / "timeline.csv").is_file()


def test_missing_pynvml_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    with pytest.raises(MeterError, match=r"pip install nvidia-ml-py") as caught:
        NvmlMeter(MetricsConfig(), tmp_path).prepare()
    assert caught.value.exit_code == 2  # a missing optional dependency, as for torch


def test_permission_denied_on_init(tmp_path: Path) -> None:
    with FakeNvml(permission_denied=True), pytest.raises(MeterError, match=r"NVML: permission denied.*/dev/nvidia"):
        NvmlMeter(MetricsConfig(), tmp_path).prepare()


def test_permission_denied_on_reads(tmp_path: Path) -> None:
    with FakeNvml([FakeGpu(), FakeGpu(permission_denied=True)]) as fake:
        with pytest.raises(MeterError, match=r"permission denied reading GPU 1's energy counter"):
            NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=[0, 1]).prepare()
        assert fake.init_count == 0, "a failed prepare() must shut NVML down"


def test_nvml_unavailable(tmp_path: Path) -> None:
    with FakeNvml(driver_missing=True), pytest.raises(MeterError, match=r"NVML is unavailable .*no NVIDIA driver"):
        NvmlMeter(MetricsConfig(), tmp_path).prepare()


def test_gpu_index_out_of_range(tmp_path: Path) -> None:
    with FakeNvml([FakeGpu(), FakeGpu()]) as fake:
        with pytest.raises(MeterError, match=r"GPU index 2 out of range: 2 GPU\(s\) visible \(indices 0-1\)"):
            NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=[0, 2]).prepare()
        assert fake.init_count == 0


def test_nvml_device_adapter_reads_identity_and_throttle_reasons() -> None:
    """The vendor layer's NVML adapter: identity (UUID, name, bus id), limits, clocks and why clocks are held."""
    with FakeNvml([FakeGpu(uuid="GPU-abc", throttle_reasons_mask=0x4 | 0x40), FakeGpu(sm_clock_mhz=1410)]):
        library = NvmlLibrary()
        library.open()
        try:
            assert library.count() == 2 and library.driver_version() == "550.54.15"
            first, second = library.device(0), library.device(1)
            assert isinstance(first, GpuDevice)
            assert (first.uuid, first.bus_id, first.counter_modulus) == ("GPU-abc", "00000000:17:00.0", 2**64)
            assert first.throttle_reasons() == ["sw_power_cap", "hw_thermal_slowdown"]
            assert second.throttle_reasons() == []
            assert second.clocks_mhz() == (1410, 2619) and second.power_limit_w() == 700.0
            assert second.temperature_c() == 45 and second.utilization_pct() == 87
        finally:
            library.close()


# --- which GPUs: device ordinals through CUDA_VISIBLE_DEVICES, matched by index or UUID --------------------------


def _one_second(fake: FakeNvml, clock: SimulatedClock, meter: NvmlMeter) -> dict[str, EnergyReading]:
    meter.prepare()
    try:
        meter.start_window("w")
        clock.advance(1.0)
        readings, _ = meter.stop_window("w")
    finally:
        meter.close()
    return {r.device: r for r in readings}


def test_cuda_visible_devices_reordering_meters_the_model_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With CUDA_VISIBLE_DEVICES=2,0, cuda:0 is NVML's GPU 2: that one is metered (it drew 300 J, GPU 0 would
    have drawn 100 J), and the report says how it was matched."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    clock = SimulatedClock()
    with FakeNvml([FakeGpu(100.0), FakeGpu(200.0), FakeGpu(300.0)], clock=clock) as fake:
        meter = NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=[0], clock=clock)
        readings = _one_second(fake, clock, meter)
    assert list(readings) == ["gpu:2"] and readings["gpu:2"].energy_j == pytest.approx(300.0, abs=2e-3)
    (gpu,) = meter.describe()["gpus"]
    assert gpu["uuid"] == fake.gpus[2].uuid
    assert gpu["matched_by"] == "device ordinal 0 = CUDA_VISIBLE_DEVICES entry 0 (2) -> NVML index 2"


def test_cuda_visible_devices_by_uuid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimulatedClock()
    gpus = [FakeGpu(100.0, uuid="GPU-aaaa-0"), FakeGpu(200.0, uuid="GPU-bbbb-1"), FakeGpu(300.0, uuid="GPU-cccc-2")]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-cccc,GPU-bbbb-1")
    with FakeNvml(gpus, clock=clock) as fake:
        readings = _one_second(fake, clock, NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=None, clock=clock))
    assert {device: round(r.energy_j) for device, r in readings.items()} == {"gpu:2": 300, "gpu:1": 200}
    for value, message in (
        ("GPU-dddd", r"CUDA_VISIBLE_DEVICES=GPU-dddd: GPU-dddd matches no GPU by UUID"),
        ("GPU-", r"GPU- matches 3 GPUs by UUID"),
        ("MIG-1234", r"MIG-1234 is a MIG instance; GPU energy counters belong to the whole GPU"),
        ("1", r"device ordinal 1 is not visible to this process \(CUDA_VISIBLE_DEVICES=1: 1 GPU\(s\) visible\)"),
        ("7", r"CUDA_VISIBLE_DEVICES=7: entry 7 names no GPU \(3 visible to it on this host\)"),
    ):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        with FakeNvml(gpus) as fake, pytest.raises(MeterError, match=message):
            NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=[0, 1] if value == "1" else None).prepare()
        assert fake.init_count == 0


# --- the simulation itself -------------------------------------------------------------------------------------------


def test_piecewise_traces_integrate_exactly() -> None:
    assert constant_trace(150.0).energy_j(0.5, 2.5) == pytest.approx(300.0, rel=1e-12)
    steps = step_trace(100.0, [(1.0, 300.0), (2.0, 50.0)])
    assert steps.power_w(0.99) == 100.0 and steps.power_w(1.0) == 300.0 and steps.power_w(5.0) == 50.0
    assert steps.energy_j(0.5, 2.5) == pytest.approx(50.0 + 300.0 + 25.0, rel=1e-12)
    ramp = ramp_trace(100.0, 200.0, 1.0, 2.0)
    assert ramp.power_w(1.5) == pytest.approx(150.0)
    assert ramp.energy_j(0.0, 3.0) == pytest.approx(100.0 + 150.0 + 200.0, rel=1e-12)
    with pytest.raises(ValueError, match="time order"):
        PiecewiseLinearTrace([(1.0, 1.0), (0.0, 1.0)])


def test_callable_trace_integrates_to_far_below_0_1_percent() -> None:
    fake = FakeNvml([FakeGpu(power=_sine)])
    origin = fake.start_s
    # Closed form of the sine trace over [0.1, 1.6] s.
    period = 0.7
    exact = 150.0 * 1.5 - 50.0 * period / (2 * math.pi) * (
        math.cos(2 * math.pi * 1.6 / period) - math.cos(2 * math.pi * 0.1 / period)
    )
    assert fake.energy_j(0, origin + 0.1, origin + 1.6) == pytest.approx(exact, rel=1e-9)


def test_fake_counter_units_offset_and_wrap() -> None:
    with FakeNvml([FakeGpu(power=150.0, counter_offset_mj=5, counter_modulus_mj=1000)]) as fake:
        origin = fake.start_s
        # 150 W for 1 ms is 150 mJ; for 10 ms, 1500 mJ, which wraps at 1000 mJ (within 1 mJ: float time).
        assert abs(fake.counter_mj(0, origin + 0.001) - 155) <= 1
        assert abs(fake.counter_mj(0, origin + 0.01) - 505) <= 1
        import pynvml

        assert pynvml is fake.module
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        assert pynvml.nvmlDeviceGetPowerUsage(handle) == 150_000  # mW
        assert pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) == 700_000  # mW
        assert pynvml.nvmlDeviceGetMemoryInfo(handle).total == 80 * 1024**3
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            pynvml.nvmlDeviceGetHandleByIndex(1)
        error = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        assert isinstance(error, pynvml.NVMLError_NotSupported) and str(error) == "Not Supported"
        pynvml.nvmlShutdown()
    assert "pynvml" not in sys.modules or sys.modules["pynvml"] is not fake.module


# -- past intervals read back from the record ------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["mid", "span"])
@pytest.mark.parametrize("gpu", [0, 1, 2, 3, 6])
def test_past_interval_is_bounded_and_close_to_ground_truth(scenario: Scenario, interval: str, gpu: int) -> None:
    """The energy of an interval that was never a window: the truth lies within the reported bounds, and the
    interpolated figure is within 0.2% of it (edges fall between samples at most one 50 ms poll apart)."""
    begin, end = scenario.intervals[interval]
    origin = scenario.fake.start_s
    truth = scenario.fake.energy_j(gpu, origin + begin, origin + end)
    reading = scenario.interval_readings[interval][f"gpu:{gpu}"]
    bounds = f"[{reading.lower_j:.3f}, {reading.upper_j:.3f}]"
    print(f"gpu {gpu} {interval}: {reading.energy_j:.3f} J {bounds} vs {truth:.3f}")
    assert reading.source == (scenario.vendor.polled_source if gpu == 3 else scenario.vendor.counter_source)
    assert reading.is_measured == (gpu != 3)
    assert reading.lower_j <= truth * (1 + 1e-4) and truth <= reading.upper_j * (1 + 1e-4) + 1e-3
    assert abs(_relative_error(reading.energy_j, truth)) < 0.002
    # The bounds are one poll's energy or so on each side, not the whole window.
    assert reading.upper_j - reading.lower_j < 2 * 0.06 * 400.0
    assert "interpolated" in reading.note


def test_past_interval_across_a_counter_reset_gives_no_reading(scenario: Scenario) -> None:
    assert "gpu:5" not in scenario.interval_readings["span"]
    assert scenario.interval_readings["mid"]["gpu:5"].energy_j == pytest.approx(100.0 * 0.75, rel=0.01)


def test_interval_outside_the_record_gives_nothing(tmp_path: Path) -> None:
    with FakeNvml([FakeGpu(power=100.0)]):
        meter = NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=[0])
        assert isinstance(meter, IntervalEnergyMeter)
        assert meter.energy_between(0.0, 1.0) == []  # not prepared
        meter.prepare()
        try:
            now = time.perf_counter()
            assert meter.energy_between(now + 10.0, now + 11.0) == []  # the future is not recorded yet
            assert meter.energy_between(now - 1e6, now - 1e6 + 1.0) == []  # before the meter started
        finally:
            meter.close()
