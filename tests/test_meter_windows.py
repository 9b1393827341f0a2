"""Window misuse is refused the same way by every counter meter (they share the snapshot-window logic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.nvml import NvmlMeter
from ai_energy_benchmarks.energy.rapl import RaplMeter
from ai_energy_benchmarks.exceptions import MeterError
from ai_energy_benchmarks.testing.fake_nvml import FakeNvml
from ai_energy_benchmarks.testing.fake_powercap import FakePowercap


@pytest.fixture(params=["nvml", "rapl"])
def meter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NvmlMeter | RaplMeter]:
    if request.param == "nvml":
        with FakeNvml():
            yield NvmlMeter(MetricsConfig(), tmp_path, gpu_ids=[0])
    else:
        root = FakePowercap(tmp_path / "powercap").root
        yield RaplMeter(MetricsConfig(rapl_root=str(root)), tmp_path, None)


def test_window_misuse(meter: NvmlMeter | RaplMeter) -> None:
    with pytest.raises(MeterError, match="before prepare"):
        meter.start_window("w")
    meter.prepare()
    try:
        meter.start_window("w")
        with pytest.raises(MeterError, match="already open"):
            meter.start_window("w")
        with pytest.raises(MeterError, match="was not started"):
            meter.stop_window("other")
        readings, emissions = meter.stop_window("w")
        assert readings and emissions is None
    finally:
        meter.close()
    assert meter._poller is None  # the background reader is stopped
