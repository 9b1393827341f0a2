"""Steady hardware and throttle flags, on simulated NVIDIA and AMD GPUs whose temperature follows a first-order
thermal model (testing/fake_thermal.py) on a simulated clock: the waits are advanced, not slept, so every time below
is exact and no verdict depends on the machine's load.

The GPU draws 100 W and starts at 60 °C; it cools towards 30 + 0.1 x 100 = 40 °C with a 20 s time constant, and
the libraries report whole degrees. "Steady" (tolerance 1 °C over 10 s) is reached when the rounded readings
10 s apart differ by at most 1: :func:`steady_at_s` finds that instant from the model's closed form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.config.schema import BenchmarkConfig, MetricsConfig
from ai_energy_benchmarks.config.steady import SteadyHardwareConfig
from ai_energy_benchmarks.energy import registry
from ai_energy_benchmarks.energy.amdsmi import AmdSmiMeter
from ai_energy_benchmarks.energy.base import EnergyMeter, MeterSet
from ai_energy_benchmarks.energy.gpu import GpuMeter
from ai_energy_benchmarks.energy.nvml import NvmlMeter
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.steady_hardware import CHECK_INTERVAL_S, SteadyHardware
from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml
from ai_energy_benchmarks.testing.fake_thermal import (
    AMD_POWER_CAP_BITS,
    NVML_POWER_CAP_BITS,
    FakeConditions,
    ThrottleInterval,
)
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

START_C, STEADY_C, TAU_S, WINDOW_S, TOLERANCE_C = 60.0, 40.0, 20.0, 10.0, 1.0
#: How far a wait may end from the model's steady instant: one check interval after it, or one (jittered) poll
#: before it (the first sample of the trailing window may fall just after its start).
LATE_S, EARLY_S = CHECK_INTERVAL_S + 0.01, 0.1


def reading_c(elapsed_s: float) -> int:
    """What the library reports (whole °C) ``elapsed_s`` into the cooling."""
    return round(STEADY_C + (START_C - STEADY_C) * math.exp(-elapsed_s / TAU_S))


def steady_at_s() -> float:
    """The first instant whose trailing 10 s of readings vary by at most 1 °C (the readings only fall)."""
    t = WINDOW_S
    while reading_c(t - WINDOW_S) - reading_c(t) > TOLERANCE_C:
        t += 0.001
    return t


@dataclass(frozen=True)
class Vendor:
    name: str
    gpu: Callable[..., Any]
    fake: Callable[[list[Any], SimulatedClock], Any]
    meter: Callable[[Path, SimulatedClock], GpuMeter]
    power_cap_bits: int


VENDORS = {
    "nvml": Vendor(
        "nvml",
        lambda conditions: FakeGpu(power=100.0, conditions=conditions),
        lambda gpus, clock: FakeNvml(gpus, clock=clock),
        lambda out, clock: NvmlMeter(MetricsConfig(), out, gpu_ids=[0], poll_seed=7, clock=clock),
        NVML_POWER_CAP_BITS,
    ),
    "amdsmi": Vendor(
        "amdsmi",
        lambda conditions: FakeAmdGpu(power=100.0, conditions=conditions),
        lambda gpus, clock: FakeAmdSmi(gpus, clock=clock),
        lambda out, clock: AmdSmiMeter(MetricsConfig(), out, gpu_ids=[0], poll_seed=7, clock=clock),
        AMD_POWER_CAP_BITS,
    ),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@dataclass
class Rig:
    clock: SimulatedClock
    fake: Any
    conditions: FakeConditions
    meter: GpuMeter
    meters: MeterSet


@pytest.fixture
def rig(vendor: Vendor, tmp_path: Path) -> Iterator[Rig]:
    clock = SimulatedClock()
    conditions = FakeConditions(initial_c=START_C, time_constant_s=TAU_S)
    with vendor.fake([vendor.gpu(conditions)], clock) as fake:
        meter = vendor.meter(tmp_path, clock)
        meters = MeterSet([meter])
        meters.prepare()
        yield Rig(clock, fake, conditions, meter, meters)
        meters.close()


def measure(rig: Rig, name: str, seconds: float, repetition: int = 0) -> None:
    with rig.meters.window(name, repetition=repetition):
        rig.clock.advance(seconds)


def test_the_wait_ends_when_the_gpu_is_steady_and_the_window_starts_after_it(rig: Rig) -> None:
    steady = SteadyHardware(SteadyHardwareConfig(), [rig.meter])
    steady.settle()
    wait = steady.waits[0]
    assert wait["kind"] == "steady" and wait["reached"] is True
    assert steady_at_s() - EARLY_S <= wait["duration_s"] <= steady_at_s() + LATE_S
    assert rig.fake.elapsed_s() == pytest.approx(wait["duration_s"], abs=1e-9)  # the wait is all that happened
    assert wait["temperature_c"] == {"gpu:0": reading_c(wait["duration_s"])} and wait["power_w"] == {"gpu:0": 100.0}
    measure(rig, "generate-0", 5.0)
    window = steady.block(rig.meters.windows)["windows"][0]  # type: ignore[index]
    # Before the wait the GPU read up to 60 °C; the window saw only the settled temperatures that followed it.
    assert window["temperature_max_c"] == reading_c(wait["duration_s"])
    assert window["temperature_min_c"] == reading_c(wait["duration_s"] + 5.0)
    assert steady.warnings == []


def test_a_gpu_that_never_settles_is_measured_after_max_wait_with_a_warning(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    steady = SteadyHardware(SteadyHardwareConfig(max_wait_s=15.0), [rig.meter])
    steady.settle()
    wait = steady.waits[0]
    assert wait["reached"] is False and wait["duration_s"] == pytest.approx(15.0, abs=LATE_S)
    assert wait["temperature_c"] == {"gpu:0": reading_c(wait["duration_s"])}
    assert len(steady.warnings) == 1 and steady.warnings[0].startswith("GPUs not steady after 15 s")
    assert "GPUs not steady after 15 s" in caplog.text


def test_min_wait_holds_a_steady_gpu_back(vendor: Vendor, tmp_path: Path) -> None:
    clock = SimulatedClock()
    with vendor.fake([vendor.gpu(FakeConditions())], clock):  # steady from the start (40 °C, 100 W)
        meter = vendor.meter(tmp_path, clock)
        meter.prepare()
        steady = SteadyHardware(SteadyHardwareConfig(min_wait_s=25.0, window_s=2.0), [meter])
        steady.settle()
        meter.close()
    assert steady.waits[0]["reached"] is True
    assert steady.waits[0]["duration_s"] == pytest.approx(25.0, abs=LATE_S)


def test_baseline_cooldown_waits_until_the_gpu_is_back_to_its_steady_temperature(rig: Rig) -> None:
    rig.conditions.initial_c = STEADY_C  # steady at 40 °C from the start
    steady = SteadyHardware(SteadyHardwareConfig(window_s=2.0), [rig.meter])
    steady.settle()
    assert steady.waits[0]["temperature_c"] == {"gpu:0": 40}
    # The GPU heats up during the window (400 W: towards 70 °C), then idles again at 100 W.
    start_s = rig.fake.elapsed_s()
    rig.fake.gpus[0].trace = _step_trace(start_s, start_s + 20.0)
    measure(rig, "generate-0", 20.0)
    hot_c = rig.conditions.temperature_c(rig.fake.gpus[0].trace, rig.fake.elapsed_s())
    steady.cool_down("generate-1")
    cooldown = steady.waits[1]
    # It cools from hot_c (about 59 °C) towards 40 °C; "back" is reading <= 41 °C: 40 + excess * exp(-t/20) < 41.5.
    expected_s = TAU_S * math.log((hot_c - STEADY_C) / (TOLERANCE_C + 0.5))
    assert hot_c > 55
    assert cooldown["kind"] == "cooldown" and cooldown["target"] == "baseline" and cooldown["reached"] is True
    assert cooldown["before"] == "generate-1" and cooldown["baseline_c"] == {"gpu:0": 40}
    assert expected_s - 1.0 <= cooldown["duration_s"] <= expected_s + 1.0
    assert cooldown["temperature_c"] == {"gpu:0": 41}


def _step_trace(hot_from_s: float, hot_to_s: float) -> Any:
    from ai_energy_benchmarks.testing.traces import PiecewiseLinearTrace

    eps = 1e-6
    return PiecewiseLinearTrace(
        [(0.0, 100.0), (hot_from_s, 100.0), (hot_from_s + eps, 400.0), (hot_to_s, 400.0), (hot_to_s + eps, 100.0)]
    )


def test_a_scripted_throttle_flags_exactly_its_window_with_its_reason_and_share(rig: Rig, vendor: Vendor) -> None:
    steady = SteadyHardware(SteadyHardwareConfig(enabled=False), [rig.meter])
    measure(rig, "generate-0", 10.0)
    now_s = rig.fake.elapsed_s()
    rig.conditions.intervals = (ThrottleInterval(now_s + 2.0, now_s + 7.0, vendor.power_cap_bits),)
    measure(rig, "generate-1", 10.0, repetition=1)
    measure(rig, "generate-2", 10.0, repetition=2)
    block = steady.block(rig.meters.windows)
    assert block is not None and block["steady_wait"] == "off" and block["waits"] == []
    assert block["throttle"] == "throttled" and block["throttled_windows"] == ["generate-1"]
    first, throttled, last = block["windows"]
    assert first["throttle"] == last["throttle"] == "not-throttled"
    assert first["throttled_fraction"] == last["throttled_fraction"] == 0.0
    assert throttled["throttle"] == "throttled" and set(throttled["reasons"]) == {"power_cap"}
    assert throttled["throttled_fraction"] == pytest.approx(0.5, abs=0.05)  # 5 s of 10, jittered samples
    assert throttled["gpus"]["gpu:0"]["reasons"]["power_cap"] == throttled["throttled_fraction"]
    assert steady.warnings == [
        f"window 'generate-1': the GPU throttled in {throttled['throttled_fraction']:.0%} of its samples "
        f"(power_cap {throttled['throttled_fraction']:.0%}); its energy and speed are not those of an unthrottled GPU"
    ]


def test_a_gpu_over_its_thermal_limit_throttles_for_temperature(rig: Rig) -> None:
    rig.conditions.thermal_limit_c = 50.0  # the GPU starts at 60 °C and cools below 50 °C after ~14 s
    measure(rig, "generate-0", 10.0)
    measure(rig, "generate-1", 10.0, repetition=1)
    measure(rig, "generate-2", 10.0, repetition=2)
    block = SteadyHardware(SteadyHardwareConfig(), [rig.meter]).block(rig.meters.windows)
    assert block is not None and block["throttled_windows"] == ["generate-0", "generate-1"]
    first, second, third = block["windows"]
    assert first["reasons"] == {"thermal": 1.0} and first["temperature_max_c"] == 60
    # 60 -> 50 °C at t = 20 ln 2 = 13.9 s (the thermal bit follows the true temperature, not the rounded reading).
    assert second["reasons"]["thermal"] == pytest.approx((20 * math.log(2) - 10) / 10, abs=0.05)
    assert third["throttle"] == "not-throttled" and third["temperature_max_c"] <= 50


def test_a_gpu_that_cannot_say_is_unknown_not_unthrottled(rig: Rig) -> None:
    rig.conditions.throttle_supported = False
    measure(rig, "generate-0", 5.0)
    block = SteadyHardware(SteadyHardwareConfig(), [rig.meter]).block(rig.meters.windows)
    assert block is not None and block["throttle"] == "unknown" and block["throttled_windows"] == []
    window = block["windows"][0]
    assert window["throttle"] == "unknown" and window["throttled_fraction"] is None
    assert window["samples"] == window["unknown_samples"] > 0
    assert window["temperature_max_c"] == 60  # temperature is still read


def test_without_a_gpu_meter_there_is_nothing_to_wait_on(caplog: pytest.LogCaptureFixture) -> None:
    class CpuMeter:
        name = "cpu-only"

    meters: list[EnergyMeter] = [CpuMeter()]  # type: ignore[list-item]
    auto = SteadyHardware(SteadyHardwareConfig(), meters)
    assert not auto.active and auto.block([]) is None and auto.warnings == []
    auto.settle()
    assert auto.waits == []
    forced = SteadyHardware(SteadyHardwareConfig(enabled=True), meters)
    assert forced.warnings == [
        "steady_hardware.enabled is true but no GPU meter (nvml, amdsmi) is active: nothing to wait on"
    ]


# -- a whole run -------------------------------------------------------------------------------------------------------


def test_a_run_waits_for_steady_gpus_cools_down_and_flags_the_throttled_repetition(
    vendor: Vendor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each streamed request takes 1 s of simulated time (the progress callback advances the clock); the steady
    wait and the 30 s cooldowns happen between the windows; a power cap scripted for 3 s of the second
    repetition's 6 is flagged in that repetition only."""
    clock = SimulatedClock()
    conditions = FakeConditions(initial_c=START_C, time_constant_s=TAU_S)
    monkeypatch.setitem(
        registry._FACTORIES, vendor.name, lambda config, out, ids: vendor.meter(out, clock)
    )  # the registry's meter, on the simulated clock

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "measure generate-1" and done == 0:  # just before the window opens
            now_s = fake.elapsed_s()
            conditions.intervals = (ThrottleInterval(now_s + 2.0, now_s + 5.0, vendor.power_cap_bits),)
        if stage.startswith("measure") and done > 0:
            clock.advance(1.0)

    with vendor.fake([vendor.gpu(conditions)], clock) as fake, FakeOpenAIServer(models=["m"]) as server:
        config = BenchmarkConfig.model_validate(
            {
                "output_dir": str(tmp_path / "out"),
                "backend": {"type": "vllm", "model": "m", "endpoint": server.url + "/v1", "device_ids": [0]},
                "scenario": {
                    "num_samples": 6,
                    "repetitions": 3,
                    "warmup_runs": 0,
                    "measure_prefill": False,
                    "generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 4},
                },
                "metrics": {"type": vendor.name, "idle_seconds": 0},
                "reporter": {"output_file": str(tmp_path / "results.csv")},
                "steady_hardware": {"cooldown": "fixed", "cooldown_s": 30},
            }
        )
        result = BenchmarkRunner(config, progress=progress).run()
    hardware = result["hardware"]
    settle, *cooldowns = hardware["waits"]
    assert settle["kind"] == "steady" and settle["reached"] is True
    assert steady_at_s() - EARLY_S <= settle["duration_s"] <= steady_at_s() + LATE_S
    assert [(c["kind"], c["before"], c["duration_s"], c["target"]) for c in cooldowns] == [
        ("cooldown", "generate-1", 30.0, "fixed"),
        ("cooldown", "generate-2", 30.0, "fixed"),
    ]
    # The waits are outside the windows: each repetition's energy is 100 W x its 6 simulated seconds.
    assert [r["gpu_energy_wh"] for r in result["repetitions"]] == pytest.approx([100 * 6 / 3600] * 3, rel=0.01)
    assert hardware["throttle"] == "throttled" and hardware["throttled_windows"] == ["generate-1"]
    windows = {w["window"]: w for w in hardware["windows"]}
    assert windows["generate-1"]["reasons"]["power_cap"] == pytest.approx(0.5, abs=0.05)
    assert windows["generate-0"]["throttle"] == windows["generate-2"]["throttle"] == "not-throttled"
    assert windows["generate-0"]["temperature_max_c"] <= settle["temperature_c"]["gpu:0"]
    assert any(w.startswith("window 'generate-1': the GPU throttled in ") for w in result["warnings"])
    assert result["schema_version"] == "1.3"
    summary = format_summary(result)
    assert (
        f"  GPUs          steady after {settle['duration_s']:.1f} s; 2 cooldown(s), 60.0 s in all; THROTTLED in "
        "generate-1" in summary
    )
    assert "  warning       window 'generate-1': the GPU throttled in " in summary


def test_the_adapters_name_each_reason_and_say_when_they_cannot() -> None:
    from ai_energy_benchmarks.energy.devices.amdsmi import AmdSmiLibrary
    from ai_energy_benchmarks.energy.devices.nvml import NvmlLibrary

    unsupported = FakeConditions(throttle_supported=False)
    with FakeAmdSmi([FakeAmdGpu(indep_throttle_status=(1 << 36) | 1), FakeAmdGpu(conditions=unsupported)]):
        amd = AmdSmiLibrary()
        amd.open()
        assert amd.device(0).throttle_reasons() == ["ppt0", "temp_hotspot"]
        assert amd.device(1).throttle_reasons() is None  # "N/A": unknown
        amd.close()
    with FakeNvml([FakeGpu(throttle_reasons_mask=0x1 | 0x80), FakeGpu(conditions=unsupported)]):
        nvml = NvmlLibrary()
        nvml.open()
        assert nvml.device(0).throttle_reasons() == ["gpu_idle", "hw_power_brake_slowdown"]
        assert nvml.device(1).throttle_reasons() is None  # NVMLError_NotSupported: unknown
        nvml.close()
