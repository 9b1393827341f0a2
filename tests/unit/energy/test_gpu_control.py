"""`gpu:` power limits and SM clock locks on the simulated GPUs: set, checked, read back and always restored.

The simulated GPUs (:mod:`ai_energy_benchmarks.testing.fake_gpu_control`) keep their settings in a state file, as a
real GPU keeps them beyond the process that set them; every verdict here reads what the device was left with.
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from pathlib import Path

import pytest

from ai_energy_benchmarks.config.gpu_control import GpuControlConfig
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.energy.gpu_control import apply_gpu_settings
from ai_energy_benchmarks.energy.gpu_restore import RECORD_DIR, restore_all
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi
from ai_energy_benchmarks.testing.fake_gpu_control import (
    CappedTrace,
    attach_amdsmi_control,
    attach_nvml_control,
    read_state_file,
)
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml
from ai_energy_benchmarks.testing.traces import PiecewiseLinearTrace, as_trace

UUID0 = "GPU-00000000-0000-4000-8000-000000000000"


def records(state: Path) -> list[str]:
    folder = state / RECORD_DIR
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


# -- the simulated GPU: power follows the limit -----------------------------------------------------------------------


def test_capped_power_integrates_exactly_across_limit_changes() -> None:
    demand = PiecewiseLinearTrace([(0.0, 100.0), (4.0, 500.0)])  # a ramp of 100 W/s
    trace = CappedTrace(demand, 700.0)
    trace.set_limit(1.0, 300.0)  # the ramp crosses 300 W at t = 2 s
    trace.set_limit(3.0, 450.0)  # ... and 450 W at t = 3.5 s
    # 0-1: 100->200 (150 J); 1-2: 200->300 (250 J); 2-3: held at 300 (300 J); 3-3.5: 400->450 (212.5 J);
    # 3.5-4: held at 450 (225 J)
    assert trace.energy_j(0.0, 4.0) == pytest.approx(150.0 + 250.0 + 300.0 + 212.5 + 225.0, abs=1e-9)
    assert trace.power_w(2.5) == 300.0 and trace.power_w(0.5) == 150.0
    callable_trace = CappedTrace(as_trace(lambda t: 100.0 * t), 700.0)
    callable_trace.set_limit(0.0, 200.0)
    # a ramp to 200 W by 2 s, then held at 200 W
    assert callable_trace.energy_j(0.0, 4.0) == pytest.approx(200.0 + 400.0, rel=1e-6)


def test_nvml_counter_follows_the_limit_and_never_runs_backwards() -> None:
    clock = SimulatedClock()
    with FakeNvml([FakeGpu(power=450.0)], clock=clock) as fake:
        attach_nvml_control(fake)
        module = fake.module
        module.nvmlInit()
        handle = module.nvmlDeviceGetHandleByIndex(0)
        clock.advance(1.0)
        before = module.nvmlDeviceGetTotalEnergyConsumption(handle)
        module.nvmlDeviceSetPowerManagementLimit(handle, 300_000)
        assert module.nvmlDeviceGetTotalEnergyConsumption(handle) == before
        clock.advance(2.0)
        assert module.nvmlDeviceGetTotalEnergyConsumption(handle) - before == 600_000  # 300 W for 2 s, in mJ
        assert module.nvmlDeviceGetPowerUsage(handle) == 300_000
        module.nvmlDeviceSetGpuLockedClocks(handle, 1200, 1400)
        assert module.nvmlDeviceGetClockInfo(handle, 1) == 1400  # 1980 MHz held down to the lock's top
        module.nvmlDeviceResetGpuLockedClocks(handle)
        assert module.nvmlDeviceGetClockInfo(handle, 1) == 1980


# -- set, read back, restore -------------------------------------------------------------------------------------------


def test_nvml_limit_and_clock_lock_are_set_recorded_and_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_file = tmp_path / "device.json"
    config = GpuControlConfig(power_limit_w=300, sm_clock_mhz=1500, state_dir=str(tmp_path / "state"))
    with FakeNvml([FakeGpu(power=450.0)]) as fake, caplog.at_level(logging.INFO):
        attach_nvml_control(fake, state_file=state_file)
        with ExitStack() as cleanup:
            settings = apply_gpu_settings(config, [0], cleanup)
            assert settings is not None
            assert read_state_file(state_file)[UUID0] == {"power_limit_w": 300.0, "sm_clock_lock_mhz": [1500, 1500]}
            assert fake.power_w(0) == 300.0
            assert records(tmp_path / "state") == [f"{UUID0}.json"]
            record = json.loads((tmp_path / "state" / RECORD_DIR / f"{UUID0}.json").read_text())
            assert record["power_limit_w"] == 700.0 and record["clocks_locked"] is True
            gpu = settings.describe()["gpus"][0]
            assert gpu["original_power_limit_w"] == 700.0 and gpu["requested_power_limit_w"] == 300
            assert gpu["enforced_power_limit_w"] == 300.0 and gpu["power_limit_range_w"] == [200.0, 700.0]
            assert gpu["requested_sm_clock_mhz"] == [1500, 1500] and gpu["sm_clock_mhz"] == 1500.0
        assert read_state_file(state_file)[UUID0] == {"power_limit_w": 700.0, "sm_clock_lock_mhz": None}
        assert fake.power_w(0) == 450.0
    assert records(tmp_path / "state") == []
    assert "power limit 700 W -> requested 300 W, enforced 300 W; SM clock locked to 1500-1500 MHz" in caplog.text
    assert "restored power limit 700 W and unlocked the SM clock" in caplog.text


def test_an_error_after_the_change_restores(tmp_path: Path) -> None:
    state_file = tmp_path / "device.json"
    with FakeNvml([FakeGpu(), FakeGpu()]) as fake:
        attach_nvml_control(fake, state_file=state_file)
        with pytest.raises(RuntimeError, match="the run failed"), ExitStack() as cleanup:
            apply_gpu_settings(GpuControlConfig(power_limit_w=250, state_dir=str(tmp_path)), None, cleanup)
            assert [s["power_limit_w"] for s in read_state_file(state_file).values()] == [250.0, 250.0]
            raise RuntimeError("the run failed")
    assert [s["power_limit_w"] for s in read_state_file(state_file).values()] == [700.0, 700.0]
    assert records(tmp_path) == []


def test_enforced_limit_below_the_request_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with FakeNvml([FakeGpu(power=450.0)]) as fake:
        attach_nvml_control(fake, other_limit_w=280.0)  # another limiter (an out-of-band cap) holds 280 W
        with ExitStack() as cleanup:
            settings = apply_gpu_settings(GpuControlConfig(power_limit_w=400, state_dir=str(tmp_path)), [0], cleanup)
            assert settings is not None
            gpu = settings.describe()["gpus"][0]
            assert (gpu["requested_power_limit_w"], gpu["enforced_power_limit_w"]) == (400, 280.0)
            assert fake.power_w(0) == 280.0
    assert "the enforced power limit is 280 W, not the 400 W requested" in caplog.text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"power_limit_w": 900},
            "gpu.power_limit_w: 900 W is outside the range GPU 0 (NVIDIA H100 80GB HBM3 "
            "(simulated)) accepts, 200-700 W",
        ),
        ({"power_limit_w": 100}, "gpu.power_limit_w: 100 W is outside the range"),
        ({"sm_clock_mhz": 2500}, "gpu.sm_clock_mhz: 2500 MHz is above GPU 0"),
    ],
)
def test_values_the_gpu_does_not_accept_change_nothing(tmp_path: Path, config: dict, message: str) -> None:
    state_file = tmp_path / "device.json"
    with FakeNvml([FakeGpu()]) as fake:
        attach_nvml_control(fake, state_file=state_file)
        with pytest.raises(ConfigError) as raised, ExitStack() as cleanup:
            apply_gpu_settings(GpuControlConfig(**config, state_dir=str(tmp_path)), [0], cleanup)
    assert message in str(raised.value) and raised.value.exit_code == 2
    assert read_state_file(state_file)[UUID0] == {"power_limit_w": 700.0, "sm_clock_lock_mhz": None}
    assert records(tmp_path) == []


def test_no_permission_is_one_clear_line_and_changes_nothing(tmp_path: Path) -> None:
    state_file = tmp_path / "device.json"
    with FakeNvml([FakeGpu(), FakeGpu()]) as fake:
        attach_nvml_control(fake, state_file=state_file, allowed=False)
        with pytest.raises(ConfigError) as raised, ExitStack() as cleanup:
            apply_gpu_settings(GpuControlConfig(power_limit_w=300, state_dir=str(tmp_path)), [0, 1], cleanup)
    text = str(raised.value)
    assert "\n" not in text and raised.value.exit_code == 2
    assert "NVML refused to set GPU 0's power limit (Insufficient Permissions)" in text
    assert "root or the CAP_SYS_ADMIN capability" in text
    assert [s["power_limit_w"] for s in read_state_file(state_file).values()] == [700.0, 700.0]
    assert records(tmp_path) == []


def test_a_refused_clock_lock_names_the_clock_and_leaves_no_record(tmp_path: Path) -> None:
    with FakeNvml([FakeGpu()]) as fake:
        attach_nvml_control(fake, allowed=False)
        with pytest.raises(ConfigError, match=r"NVML refused to set GPU 0's SM clock lock \(Insufficient"):
            apply_gpu_settings(GpuControlConfig(sm_clock_mhz=1500, state_dir=str(tmp_path)), [0], ExitStack())
        assert fake.gpus[0].sm_clock_mhz == 1980
    assert records(tmp_path) == []


def test_a_run_without_gpus_here_cannot_set_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="this run uses no GPU on this host"), ExitStack() as cleanup:
        apply_gpu_settings(GpuControlConfig(power_limit_w=300, state_dir=str(tmp_path)), [], cleanup)


def test_without_the_section_nothing_is_opened(tmp_path: Path) -> None:
    with FakeNvml([FakeGpu()]) as fake, ExitStack() as cleanup:
        assert apply_gpu_settings(None, [0], cleanup) is None
        assert apply_gpu_settings(GpuControlConfig(), [0], cleanup) is None
    assert fake.calls["nvmlInit", None] == 0


# -- a run killed outright leaves a record: the next run, or `gpu restore`, puts the GPU back --------------------------


def _killed_run(tmp_path: Path, fake: FakeNvml) -> None:
    """Set 300 W as a run would, then vanish without restoring (as SIGKILL leaves it), under another PID."""
    cleanup = ExitStack()
    apply_gpu_settings(GpuControlConfig(power_limit_w=300, state_dir=str(tmp_path / "state")), [0], cleanup)
    record_path = tmp_path / "state" / RECORD_DIR / f"{UUID0}.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps(record | {"pid": 2**22 + 12345}))  # a PID no process has
    cleanup.pop_all()  # never restored


def test_the_next_run_restores_what_a_killed_run_left(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state_file = tmp_path / "device.json"
    with FakeNvml([FakeGpu(power=450.0)]) as fake:
        attach_nvml_control(fake, state_file=state_file)
        _killed_run(tmp_path, fake)
        assert read_state_file(state_file)[UUID0]["power_limit_w"] == 300.0
        with ExitStack() as cleanup:
            settings = apply_gpu_settings(
                GpuControlConfig(power_limit_w=400, state_dir=str(tmp_path / "state")), [0], cleanup
            )
            assert settings is not None
            assert settings.describe()["gpus"][0]["original_power_limit_w"] == 700.0  # the true original
    assert read_state_file(state_file)[UUID0]["power_limit_w"] == 700.0
    assert "restoring the settings a killed run (PID 4206649" in caplog.text
    assert records(tmp_path / "state") == []


def test_gpu_restore_puts_back_what_a_killed_run_left(tmp_path: Path) -> None:
    state_file = tmp_path / "device.json"
    with FakeNvml([FakeGpu(power=450.0)]) as fake:
        attach_nvml_control(fake, state_file=state_file)
        _killed_run(tmp_path, fake)
        lines = restore_all(tmp_path / "state")
    assert lines == [f"restored GPU 0 ({UUID0}): power limit 700 W"]
    assert read_state_file(state_file)[UUID0]["power_limit_w"] == 700.0
    assert records(tmp_path / "state") == []


def test_a_record_of_a_run_still_running_is_left_alone(tmp_path: Path) -> None:
    with FakeNvml([FakeGpu()]) as fake:
        attach_nvml_control(fake, state_file=tmp_path / "device.json")
        cleanup = ExitStack()
        apply_gpu_settings(GpuControlConfig(power_limit_w=300, state_dir=str(tmp_path)), [0], cleanup)
        # this process is "the other run": its record names a live PID
        assert restore_all(tmp_path)[0].startswith("skipped ") and records(tmp_path) == [f"{UUID0}.json"]
        cleanup.close()
    assert records(tmp_path) == []


# -- AMD SMI -----------------------------------------------------------------------------------------------------------


def test_amd_power_cap_is_set_in_microwatts_and_restored(tmp_path: Path) -> None:
    state_file = tmp_path / "device.json"
    with FakeAmdSmi([FakeAmdGpu(power=550.0)]) as fake:
        attach_amdsmi_control(fake, state_file=state_file)
        uuid = fake.gpus[0].uuid
        with ExitStack() as cleanup:
            settings = apply_gpu_settings(
                GpuControlConfig(power_limit_w=400, vendor="amdsmi", state_dir=str(tmp_path)), [0], cleanup
            )
            assert settings is not None and settings.describe()["vendor"] == "AMD SMI"
            gpu = settings.describe()["gpus"][0]
            assert (gpu["original_power_limit_w"], gpu["enforced_power_limit_w"]) == (750.0, 400.0)
            assert gpu["power_limit_range_w"] == [300.0, 750.0]
            assert fake.power_w(0) == 400.0
            assert read_state_file(state_file)[uuid]["power_limit_w"] == 400.0
        assert read_state_file(state_file)[uuid]["power_limit_w"] == 750.0
        assert fake.power_w(0) == 550.0


def test_amd_no_permission_and_no_clock_lock(tmp_path: Path) -> None:
    with FakeAmdSmi([FakeAmdGpu()]) as fake:
        attach_amdsmi_control(fake, allowed=False)
        with pytest.raises(ConfigError, match=r"AMD SMI refused .*AMDSMI_STATUS_NO_PERM.*CAP_SYS_ADMIN"):
            apply_gpu_settings(
                GpuControlConfig(power_limit_w=400, vendor="amdsmi", state_dir=str(tmp_path)), [0], ExitStack()
            )
        with pytest.raises(ConfigError, match=r"gpu\.sm_clock_mhz: AMD SMI clock locks are not supported"):
            apply_gpu_settings(
                GpuControlConfig(sm_clock_mhz=1500, vendor="amdsmi", state_dir=str(tmp_path)), [0], ExitStack()
            )
        assert fake.gpus[0].power_cap_w == 750.0
    assert records(tmp_path) == []


# -- the config section ------------------------------------------------------------------------------------------------


def test_the_section_reads_command_line_strings_and_rejects_contradictions() -> None:
    config = BenchmarkConfig.model_validate(
        {"backend": {"type": "vllm", "model": "m", "endpoint": "http://h:1/v1"}, "gpu": {"power_limit_w": "300"}}
    )
    assert config.gpu is not None and config.gpu.power_limit_w == 300.0
    assert config.to_public_dict()["gpu"]["power_limit_w"] == 300.0
    plain = BenchmarkConfig.model_validate({"backend": {"type": "vllm", "model": "m", "endpoint": "http://h:1/v1"}})
    assert "gpu" not in plain.to_public_dict()  # runs without it keep their config hash
    with pytest.raises(Exception, match="either sm_clock_mhz or sm_clock_min_mhz"):
        GpuControlConfig(sm_clock_mhz=1500, sm_clock_min_mhz=1000, sm_clock_max_mhz=1600)
    with pytest.raises(Exception, match=r"sm_clock_min_mhz \(1700\) is above sm_clock_max_mhz \(1600\)"):
        GpuControlConfig(sm_clock_min_mhz=1700, sm_clock_max_mhz=1600)
    assert GpuControlConfig(sm_clock_min_mhz=1000, sm_clock_max_mhz=1600).sm_clock_range_mhz == (1000, 1600)
