"""Window misuse is refused the same way by every counter meter (they share the snapshot-window logic)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from repo_paths import REPO_ROOT

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.nvml import NvmlMeter
from ai_energy_benchmarks.energy.rapl import RaplMeter
from ai_energy_benchmarks.exceptions import MeterError
from ai_energy_benchmarks.testing.clock import SimulatedClock
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


def test_simulated_clock_runs_the_poller_at_its_own_times(tmp_path: Path) -> None:
    """On a simulated clock the background reader polls exactly every poll interval of simulated time, and not at
    all while time stands still, however long the test takes in real time."""
    tree = FakePowercap(tmp_path / "powercap", dram=False)
    clock = SimulatedClock(start_s=50.0)
    meter = RaplMeter(MetricsConfig(rapl_root=str(tree.root), rapl_poll_interval_s=0.1), tmp_path, None, clock=clock)
    meter.prepare()
    try:
        (zone,) = meter._zones
        time.sleep(0.05)  # real time passes, simulated time does not: no poll
        assert list(zone.record.times_s) == [50.0]
        clock.advance(0.95)
        assert list(zone.record.times_s) == pytest.approx([50.0 + 0.1 * k for k in range(10)])
        with pytest.raises(ValueError, match="cannot go back"):
            clock.advance_to(10.0)
    finally:
        meter.close()
    assert meter._poller is None


def test_architecture_doc_names_every_energy_module_and_only_real_ones() -> None:
    """docs/architecture.md ("add a meter or a GPU vendor" and the module table) stays true to energy/."""
    root = REPO_ROOT
    text = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = root / "ai_energy_benchmarks"
    for named in re.findall(r"`((?:energy|testing)/[\w/]*\.py)`", text):
        assert (package / named).is_file(), f"docs/architecture.md names {named}, which does not exist"
    for folder in ("energy", "energy/devices"):
        for module in sorted((package / folder).glob("*.py")):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in text or f"`{folder}/{module.name}`" in text, (
                    f"docs/architecture.md does not name {folder}/{module.name}"
                )
