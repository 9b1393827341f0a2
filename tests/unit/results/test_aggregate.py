"""Aggregation rules on hand-built windows: which meter is reported, cross-checks, flags, statistics."""

from __future__ import annotations

import pytest
from run_support import build, reading

from ai_energy_benchmarks.energy.base import WindowMeasurement
from ai_energy_benchmarks.results import stats
from ai_energy_benchmarks.results.aggregate import choose_meters


def test_a_direct_measured_meter_is_preferred_and_disagreement_flagged() -> None:
    window = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        repetition=0,
        readings=[
            reading("gpu:0", 300.0, "measured:nvml-energy-counter", "nvml"),
            reading("gpu", 318.0, "measured:codecarbon-nvml-energy-counter", "codecarbon"),
            reading("cpu", 16.0, "estimated:codecarbon-cpu-load", "codecarbon"),
            reading("cpu:0", 20.0, "measured:rapl", "rapl"),
            reading("ram", 40.0, "estimated:codecarbon-ram", "codecarbon"),
        ],
    )
    assert choose_meters([window]) == {"gpu": "nvml", "cpu": "rapl", "ram": "codecarbon"}
    result = build([window], gpu_ids=[0])
    energy = result["energy"]
    assert energy["gpu_energy_wh"] == pytest.approx(300 / 3600)
    assert energy["cpu_energy_wh"] == pytest.approx(20 / 3600)
    assert energy["total_energy_wh"] == pytest.approx(360 / 3600)
    assert energy["sources"] == {
        "gpu": "measured:nvml-energy-counter",
        "cpu": "measured:rapl",
        "ram": "estimated:codecarbon-ram",
    }
    gpu_check = next(c for c in energy["cross_checks"] if c["device"] == "gpu")
    assert gpu_check["relative_difference"] == pytest.approx(18 / 318)
    assert gpu_check["flagged"] is True
    assert "meter-disagreement" in energy["flags"]
    assert any("meters disagree on gpu energy by 5.7%" in w for w in result["warnings"])
    assert energy["measured_energy_wh"] == pytest.approx(320 / 3600)
    assert energy["all_measured"] is False


def test_agreeing_meters_are_not_flagged() -> None:
    window = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        readings=[
            reading("gpu:0", 300.0, "measured:nvml-energy-counter", "nvml"),
            reading("gpu", 303.0, "measured:codecarbon-nvml-energy-counter", "codecarbon"),
        ],
    )
    energy = build([window], gpu_ids=[0])["energy"]
    assert [c["flagged"] for c in energy["cross_checks"]] == [False]
    assert energy["all_measured"] is True
    assert energy["flags"] == []


def test_zero_gpu_energy_on_a_used_gpu_is_flagged() -> None:
    window = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        readings=[reading("gpu", 0.0, "measured:codecarbon-nvml-energy-counter", "codecarbon")],
    )
    result = build([window], gpu_ids=[0])
    assert "gpu-zero-while-used" in result["energy"]["flags"]
    assert any("reads 0 J although GPUs ran the model" in w for w in result["warnings"])


def test_used_gpu_without_any_gpu_reading_is_missing_not_zero() -> None:
    window = WindowMeasurement(
        name="generate-0", duration_s=2.0, readings=[reading("cpu", 10.0, "measured:rapl", "rapl")]
    )
    result = build([window], gpu_ids=[1])
    assert result["energy"]["gpu_energy_j"] is None
    assert result["energy"]["gpu_energy_wh"] == 0.0 and "gpu_energy_wh" in result["energy"]["zero_filled"]
    assert "gpu-not-metered" in result["energy"]["flags"]


def test_normalised_figures() -> None:
    window = WindowMeasurement(
        name="generate-0", duration_s=2.0, readings=[reading("gpu:0", 360.0, "measured:nvml-energy-counter", "nvml")]
    )
    energy = build([window], gpu_ids=[0])["energy"]
    assert energy["gpu_wh_per_1000_queries"] == pytest.approx(0.1 / 4 * 1000)
    assert energy["joules_per_output_token"] == pytest.approx(360 / 40)
    assert energy["output_tokens_per_joule"] == pytest.approx(40 / 360)
    assert energy["total_wh_per_request"] == pytest.approx(0.1 / 4)


def test_confidence_interval_uses_student_t() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.0]
    described = stats.describe(values)
    assert described["mean"] == pytest.approx(11.0)
    assert described["std"] == pytest.approx(1.5811388, rel=1e-6)
    # t(0.975, 4) = 2.7764451052 (published tables)
    assert described["ci95_half_width"] == pytest.approx(2.7764451052 * 1.5811388 / 5**0.5, rel=1e-6)
    assert described["cv"] == pytest.approx(1.5811388 / 11.0, rel=1e-6)
    assert described["p50"] == 11.0
    assert stats.describe([5.0])["std"] is None
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)


def test_a_remote_servers_gpu_energy_is_not_measured_not_zero() -> None:
    window = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        readings=[reading("cpu", 10.0, "estimated:codecarbon-cpu-load", "codecarbon")],
    )
    scope = {"server_on_this_host": False, "note": "the endpoint is not on this host"}
    result = build([window], gpu_ids=[], model_info={"energy_scope": scope})
    energy = result["energy"]
    assert energy["gpu_energy_j"] is None and energy["gpu_energy_wh"] == 0.0  # 0.0.4's key is never null
    assert {"gpu_energy_wh", "energy_wh"} <= set(energy["zero_filled"])
    assert energy["sources"]["gpu"] == "not-measured:remote-server"
    assert "the endpoint is not on this host" in result["warnings"]
    assert energy["total_energy_wh"] == pytest.approx(10 / 3600)


def test_a_meter_that_missed_a_window_is_not_summed_over_fewer_windows() -> None:
    """NVML failed to start in generate-1; CodeCarbon read both windows. The GPU figure is CodeCarbon's, over the
    whole measured duration; the meters are compared only on the window both read; and where the only meter
    missed a window, the device's energy is missing rather than understated."""
    first = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        repetition=0,
        readings=[
            reading("gpu:0", 300.0, "measured:nvml-energy-counter", "nvml"),
            reading("gpu", 301.0, "measured:codecarbon-nvml-energy-counter", "codecarbon"),
            reading("ram", 40.0, "estimated:codecarbon-ram", "codecarbon"),
        ],
    )
    second = WindowMeasurement(
        name="generate-1",
        duration_s=2.0,
        repetition=1,
        readings=[
            reading("gpu", 299.0, "measured:codecarbon-nvml-energy-counter", "codecarbon"),
            reading("ram", 40.0, "estimated:codecarbon-ram", "codecarbon"),
        ],
        errors=["meter 'nvml' failed to start window 'generate-1': driver gone; its readings are missing"],
    )
    assert choose_meters([first, second])["gpu"] == "codecarbon"
    energy = build([first, second], gpu_ids=[0])["energy"]
    assert energy["gpu_energy_wh"] == pytest.approx(600 / 3600)
    assert energy["sources"]["gpu"] == "measured:codecarbon-nvml-energy-counter"
    (gpu_check,) = [c for c in energy["cross_checks"] if c["device"] == "gpu"]
    assert gpu_check["energy_wh"] == pytest.approx({"codecarbon": 301 / 3600, "nvml": 300 / 3600})
    assert gpu_check["flagged"] is False
    # Without CodeCarbon's GPU view, nothing read the GPU in generate-1: no GPU total at all.
    second.readings = [r for r in second.readings if r.device != "gpu"]
    for gpu_ids in ([0], None):
        result = build([first, second], gpu_ids=gpu_ids)
        energy = result["energy"]
        assert energy["gpu_energy_j"] is None and energy["sources"]["gpu"] is None
        assert energy["gpu_energy_wh"] == 0.0 and "gpu_energy_wh" in energy["zero_filled"]
        assert "gpu-incomplete" in energy["flags"]
        assert any(
            "gpu energy is unknown (null, not zero): no meter read all of it in every measured window (generate-1" in w
            for w in result["warnings"]
        )
        # No figure derived from the GPU's energy silently shrinks to the other classes' share.
        assert energy["total_energy_j"] is None and energy["joules_per_output_token"] is None
        assert energy["total_wh_per_1000_queries"] is None


def test_cross_check_names_every_source_of_a_meter() -> None:
    window = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        repetition=0,
        readings=[
            reading("gpu:0", 150.0, "measured:nvml-energy-counter", "nvml"),
            reading("gpu:1", 150.0, "measured:nvml-power-integrated", "nvml"),
            reading("gpu", 300.0, "measured:codecarbon-nvml-energy-counter", "codecarbon"),
        ],
    )
    (check,) = build([window], gpu_ids=[0, 1])["energy"]["cross_checks"]
    assert check["sources"]["nvml"] == "measured:nvml-energy-counter+measured:nvml-power-integrated"


def test_emissions_are_the_grid_intensity_applied_to_the_reported_energy() -> None:
    """CodeCarbon knows the grid (400 g/kWh here) and read 374 J itself; the report's energy is 356 J (NVML's GPU
    figure replaces CodeCarbon's), so its emissions are 356 J at 400 g/kWh, labelled an estimate."""
    window = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        repetition=0,
        readings=[
            reading("gpu:0", 300.0, "measured:nvml-energy-counter", "nvml"),
            reading("gpu", 318.0, "measured:codecarbon-nvml-energy-counter", "codecarbon"),
            reading("cpu", 16.0, "estimated:codecarbon-cpu-load", "codecarbon"),
            reading("ram", 40.0, "estimated:codecarbon-ram", "codecarbon"),
        ],
        emissions_kg=374.0 / 3.6e6 * 0.400,
        emissions_energy_j=374.0,
    )
    energy = build([window], gpu_ids=[0])["energy"]
    assert energy["total_energy_wh"] == pytest.approx(356 / 3600)
    assert energy["carbon_intensity_g_per_kwh"] == pytest.approx(400.0)
    assert energy["emissions_g_co2eq"] == pytest.approx(356 / 3.6e6 * 400.0)
    assert energy["emissions_source"] == "estimated:grid-intensity-x-energy"


def test_a_reading_must_say_whether_it_is_measured_or_estimated() -> None:
    with pytest.raises(ValueError, match="energy source 'vendor:magic' must start with 'measured:' or 'estimated:'"):
        reading("gpu", 1.0, "vendor:magic", "third-party")


def test_short_windows_are_judged_by_the_reported_meters_update_period() -> None:
    """A 2 s window is under ten CodeCarbon periods (1 s), but a counter read at its edges has no such period."""
    readings = [reading("gpu:0", 300.0, "measured:nvml-energy-counter", "nvml")]
    window = WindowMeasurement(name="generate-0", duration_s=2.0, repetition=0, readings=readings)
    counter_only = build([window], gpu_ids=[0], meters_info={"nvml": {"update_period_s": None}})
    assert not any("ten meter periods" in w for w in counter_only["warnings"])
    window.readings = [*readings, reading("cpu", 16.0, "estimated:codecarbon-cpu-load", "codecarbon")]
    with_codecarbon = build(
        [window], gpu_ids=[0], meters_info={"nvml": {"update_period_s": None}, "codecarbon": {"update_period_s": 1.0}}
    )
    assert any("less than ten meter periods (10.0 s)" in w for w in with_codecarbon["warnings"])


def test_steady_state_of_a_window_missing_a_gpu_is_null() -> None:
    """Two GPUs read in one window, one of them in the next: that window's steady state must not shrink to one GPU."""

    def window(name: str, rep: int, gpus: list[int]) -> WindowMeasurement:
        readings = [reading(f"gpu:{i}", 100.0, "measured:nvml-energy-counter", "nvml") for i in gpus]
        return WindowMeasurement(name=name, duration_s=1.0, repetition=rep, readings=readings)

    entries = [{"label": name, "reached": True, "duration_s": 0.5, "output_tokens": 10} for name in ("g-0", "g-1")]
    result = build(
        [window("g-0", 0, [0, 1]), window("g-1", 1, [0])],
        gpu_ids=[0, 1],
        model_info={"http": {"steady_state": entries}},
    )
    rows = {r["label"]: r for r in result["energy"]["steady_state"]["windows"]}
    assert rows["g-0"]["energy_wh"] == pytest.approx(100.0 / 3600)  # a time share of both GPUs' 200 J
    assert rows["g-1"]["energy_wh"] is None and rows["g-1"]["incomplete"] == ["gpu"]
    assert result["energy"]["gpu_energy_j"] is None and "gpu-incomplete" in result["energy"]["flags"]
