"""The AMD SMI meter against simulated AMD GPUs (ai_energy_benchmarks.testing.fake_amdsmi).

The ground-truth scenario shared with NVML (nested and overlapping windows, wraparound, no-counter GPUs, a counter
reset, past intervals) runs for both vendors in tests/unit/energy/test_nvml_meter.py; here are what is AMD's own:
per-die devices,
the accumulator's resolution and older key, power reported as an average, and AMD SMI's errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.amdsmi import COUNTER_SOURCE, POLLED_SOURCE, AmdSmiMeter
from ai_energy_benchmarks.energy.base import EnergyReading, IncompleteWindowError
from ai_energy_benchmarks.energy.devices.amdsmi import AmdSmiLibrary
from ai_energy_benchmarks.energy.registry import create_meters
from ai_energy_benchmarks.exceptions import MeterError
from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi, mi250x_gcds, mi300x_partitions
from ai_energy_benchmarks.testing.traces import step_trace


def _window(fake: FakeAmdSmi, clock: SimulatedClock, meter: AmdSmiMeter, seconds: float) -> dict[str, EnergyReading]:
    meter.prepare()
    try:
        meter.start_window("w")
        clock.advance(seconds)
        readings, _ = meter.stop_window("w")
    finally:
        meter.close()
    return {r.device: r for r in readings}


def test_mi250x_gcds_are_metered_one_by_one(tmp_path: Path) -> None:
    """Two cards of two GCDs: each die is its own device with its own counter; each reading is its own truth."""
    clock = SimulatedClock()
    gpus = mi250x_gcds(cards=2, power=(300.0, step_trace(100.0, [(0.5, 400.0)]), 250.0, 50.0))
    with FakeAmdSmi(gpus, clock=clock) as fake:
        meter = AmdSmiMeter(MetricsConfig(), tmp_path, [0, 1, 3], clock=clock)
        readings = _window(fake, clock, meter, 1.2)
        start = fake.start_s
        assert sorted(readings) == ["gpu:0", "gpu:1", "gpu:3"]
        for index, truth in ((0, 300.0 * 1.2), (1, 100.0 * 0.5 + 400.0 * 0.7), (3, 50.0 * 1.2)):
            reading = readings[f"gpu:{index}"]
            assert fake.energy_j(index, start, start + 1.2) == pytest.approx(truth)
            assert reading.source == COUNTER_SOURCE and reading.is_measured
            # Whole ticks of 15.3 µJ at each edge: within 31 µJ of the truth.
            assert abs(reading.energy_j - truth) < 31e-6
        assert fake.device_calls(2) == 0
        described = meter.describe()["gpus"]
        assert [g["name"] for g in described] == ["AMD Instinct MI250X (simulated)"] * 3
        assert [g["bus_id"] for g in described] == ["0000:29:00.0", "0000:2a:00.0", "0000:4a:00.0"]
        assert described[0]["power_limit_w"] == 560.0


def test_older_rocm_key_and_coarse_resolution(tmp_path: Path) -> None:
    """ROCm 6.0-6.1 named the accumulator "power"; a coarse 1 mJ tick is honoured (the meter reads the resolution)."""
    clock = SimulatedClock()
    gpu = FakeAmdGpu(power=123.4567, rocm6_0_keys=True, counter_resolution_uj=1000.0)
    with FakeAmdSmi([gpu], clock=clock) as fake:
        readings = _window(fake, clock, AmdSmiMeter(MetricsConfig(), tmp_path, [0], clock=clock), 2.0)
    assert readings["gpu:0"].energy_j == pytest.approx(123.4567 * 2.0, abs=2e-3)


def test_mi300x_partitions_and_averaged_power_without_a_counter(tmp_path: Path) -> None:
    """Partitions are devices; one without an accumulator is polled (an estimate), from the power key it reports."""
    clock = SimulatedClock()
    gpus = mi300x_partitions(4, power=(180.0, 90.0))
    gpus[2].has_energy_counter = False
    gpus[2].power_key = "average_socket_power"
    with FakeAmdSmi(gpus, clock=clock) as fake:
        readings = _window(fake, clock, AmdSmiMeter(MetricsConfig(), tmp_path, None, clock=clock, poll_seed=7), 1.5)
        assert sorted(readings) == ["gpu:0", "gpu:1", "gpu:2", "gpu:3"]
        polled = readings["gpu:2"]
        assert polled.source == POLLED_SOURCE and not polled.is_measured
        assert polled.energy_j == pytest.approx(180.0 * 1.5, rel=0.005)
        assert readings["gpu:1"].energy_j == pytest.approx(90.0 * 1.5, abs=1e-4)
        assert fake.initialized == 0, "close() must shut AMD SMI down"


def test_registry_creates_the_amd_meter(tmp_path: Path) -> None:
    (meter,) = create_meters(MetricsConfig(type="amdsmi"), tmp_path, [0])
    assert isinstance(meter, AmdSmiMeter) and meter.name == "amdsmi"


def test_missing_amdsmi_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    with pytest.raises(MeterError, match=r"pip install 'ai-energy-benchmarks\[amd\]'") as caught:
        AmdSmiMeter(MetricsConfig(), tmp_path).prepare()
    assert caught.value.exit_code == 2


def test_amd_smi_errors_say_what_to_do(tmp_path: Path) -> None:
    with FakeAmdSmi(permission_denied=True), pytest.raises(MeterError, match=r"AMD SMI: permission denied .*render"):
        AmdSmiMeter(MetricsConfig(), tmp_path).prepare()
    with FakeAmdSmi(driver_missing=True), pytest.raises(MeterError, match=r"no amdgpu driver is loaded"):
        AmdSmiMeter(MetricsConfig(), tmp_path).prepare()
    with FakeAmdSmi([FakeAmdGpu(), FakeAmdGpu(permission_denied=True)]) as fake:
        with pytest.raises(MeterError, match=r"AMD SMI: permission denied reading GPU 1's energy counter"):
            AmdSmiMeter(MetricsConfig(), tmp_path, [0, 1]).prepare()
        assert fake.initialized == 0
    with FakeAmdSmi([FakeAmdGpu()]), pytest.raises(MeterError, match=r"AMD SMI: GPU index 3 out of range"):
        AmdSmiMeter(MetricsConfig(), tmp_path, [3]).prepare()


def test_a_lost_amd_gpu_is_unknown_not_zero(tmp_path: Path) -> None:
    clock = SimulatedClock()
    with FakeAmdSmi([FakeAmdGpu(power=200.0)], clock=clock) as fake:
        meter = AmdSmiMeter(MetricsConfig(), tmp_path, [0], clock=clock)
        meter.prepare()
        try:
            meter.start_window("w")
            fake.lost_after_s = fake.elapsed_s() + 0.5
            clock.advance(1.0)
            with pytest.raises(IncompleteWindowError, match=r"GPU 0 .* stopped answering AMD SMI") as caught:
                meter.stop_window("w")
        finally:
            meter.close()
    assert caught.value.readings == []


def test_adapter_reads_identity_limits_and_throttling() -> None:
    with FakeAmdSmi([FakeAmdGpu(throttle_status=1, uuid="ab-cd"), FakeAmdGpu()]):
        library = AmdSmiLibrary()
        library.open()
        try:
            first, second = library.device(0), library.device(1)
            assert (first.uuid, first.name, library.driver_version()) == (
                "ab-cd",
                "AMD Instinct MI300X (simulated)",
                "6.8.5",
            )
            assert first.counter_resolution_mj == pytest.approx(0.0153) and first.counter_modulus == 2**64
            assert first.throttle_reasons() == ["throttled"] and second.throttle_reasons() == []
            assert second.clocks_mhz() == (2100.0, 1300.0) and second.temperature_c() == 55.0
            assert second.power_w() == 550.0 and second.average_power_w() is None
        finally:
            library.close()


def test_a_die_whose_energy_is_reported_elsewhere_stops_the_meter_not_reads_zero(tmp_path: Path) -> None:
    """A die with neither accumulator nor power (its package's energy reported on the other die) is refused."""
    silent = FakeAmdGpu(has_energy_counter=False, power_key="power_reported_on_die_0")
    with FakeAmdSmi([FakeAmdGpu(), silent]), pytest.raises(MeterError) as caught:
        AmdSmiMeter(MetricsConfig(), tmp_path, [0, 1]).prepare()
    assert str(caught.value) == "AMD SMI: cannot read GPU 1's power (power not reported (N/A))"


def test_rocr_then_hip_visible_devices_pick_the_die(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCm applies ROCR_VISIBLE_DEVICES, then HIP_VISIBLE_DEVICES indexes what it left: ordinal 0 is die 3."""
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "1,2,3")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "2")
    clock = SimulatedClock()
    with FakeAmdSmi(mi250x_gcds(cards=2, power=(100.0, 200.0, 300.0, 400.0)), clock=clock) as fake:
        readings = _window(fake, clock, AmdSmiMeter(MetricsConfig(), tmp_path, [0], clock=clock), 1.0)
    assert list(readings) == ["gpu:3"] and readings["gpu:3"].energy_j == pytest.approx(400.0, abs=1e-4)
