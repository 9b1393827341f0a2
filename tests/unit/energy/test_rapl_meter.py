"""The RAPL meter against a simulated powercap tree (ai_energy_benchmarks.testing.fake_powercap).

The tests write counter values between window edges, so the expected differences are exact.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyMeter, MeterSet
from ai_energy_benchmarks.energy.rapl import DRAM_SOURCE, PACKAGE_SOURCE, RaplMeter
from ai_energy_benchmarks.energy.registry import create_meters
from ai_energy_benchmarks.exceptions import MeterError
from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_powercap import FakePowercap

NOBODY_UID = 65534


def _meter(root: Path) -> RaplMeter:
    return RaplMeter(MetricsConfig(rapl_root=str(root)), root.parent, None)


def _by_device(readings: list) -> dict[str, float]:
    return {r.device: r.energy_j for r in readings}


def test_packages_and_dram_nested_and_overlapping_windows(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path / "powercap", packages=2, dram=True)
    for package in (0, 1):
        tree.set_energy_uj(package, 1_000_000_000)
        tree.set_energy_uj(package, 500_000_000, dram=True)
    meter = _meter(tree.root)
    meter.prepare()
    try:
        meter.start_window("outer")
        tree.set_energy_uj(0, 1_010_000_000)  # +10 J
        tree.set_energy_uj(1, 1_020_000_000)  # +20 J
        tree.set_energy_uj(0, 501_000_000, dram=True)  # +1 J
        meter.start_window("inner")
        tree.set_energy_uj(0, 1_015_500_000)  # +5.5 J
        tree.set_energy_uj(1, 1_020_000_001)  # +1 µJ
        meter.start_window("overlap")
        inner, _ = meter.stop_window("inner")
        tree.set_energy_uj(0, 1_016_000_000)  # +0.5 J
        tree.set_energy_uj(1, 503_000_000, dram=True)  # +3 J
        outer, emissions = meter.stop_window("outer")
        tree.set_energy_uj(0, 1_017_000_000)  # +1 J
        overlap, _ = meter.stop_window("overlap")
    finally:
        meter.close()
    assert emissions is None
    assert _by_device(outer) == {"cpu:0": 16.0, "ram:0": 1.0, "cpu:1": 20.000001, "ram:1": 3.0}
    assert _by_device(inner) == {"cpu:0": 5.5, "ram:0": 0.0, "cpu:1": 0.000001, "ram:1": 0.0}
    assert _by_device(overlap) == {"cpu:0": 1.5, "ram:0": 0.0, "cpu:1": 0.0, "ram:1": 3.0}
    sources = {r.device: r.source for r in outer}
    assert sources == {"cpu:0": PACKAGE_SOURCE, "ram:0": DRAM_SOURCE, "cpu:1": PACKAGE_SOURCE, "ram:1": DRAM_SOURCE}
    assert all(r.is_measured and r.meter == "rapl" for r in outer)


def test_wraparound_uses_max_energy_range(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path / "powercap", max_energy_range_uj=262_143_328_850)
    tree.set_energy_uj(0, 262_143_000_000)
    tree.set_energy_uj(0, 262_000_000_000, dram=True)
    meter = _meter(tree.root)
    meter.prepare()
    try:
        meter.start_window("w")
        tree.set_energy_uj(0, 671_150)  # wrapped: 328,850 µJ to the top, then 671,150 µJ
        tree.set_energy_uj(0, 262_100_000_000, dram=True)  # no wrap: +100 J
        readings, _ = meter.stop_window("w")
        assert _by_device(readings) == {"cpu:0": 1.0, "ram:0": 100.0}
        # A second wrap in one window is caught too, as long as a read happens between the two (the poller's job).
        meter.start_window("long")
        tree.set_energy_uj(0, 262_143_000_000)
        meter._snapshot()  # what the background reader does every poll_interval_s
        tree.set_energy_uj(0, 671_150)
        readings, _ = meter.stop_window("long")
        assert _by_device(readings)["cpu:0"] == pytest.approx((262_143_000_000 - 671_150 + 1_000_000) / 1e6)
        assert meter.describe()["zones"][0]["wraps_seen"] == 2
    finally:
        meter.close()


def test_meter_set_and_registry(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path / "powercap", dram=False, psys=True)
    meters = create_meters(MetricsConfig(type="rapl", rapl_root=str(tree.root)), tmp_path, None)
    assert len(meters) == 1 and isinstance(meters[0], RaplMeter) and isinstance(meters[0], EnergyMeter)
    meter_set = MeterSet(meters)
    meter_set.prepare()
    try:
        with meter_set.window("repetition-1") as window:
            tree.set_energy_uj(0, 42_000_000)
        assert window.energy_j("cpu") == 42.0
        assert window.energy_j("ram") is None  # no dram zone here
        assert window.source("cpu") == PACKAGE_SOURCE
        info = meter_set.describe()["rapl"]
        assert [z["device"] for z in info["zones"]] == ["cpu:0"]
        assert {z["name"] for z in info["ignored_zones"]} == {"core", "psys"}
    finally:
        meter_set.close()


def test_missing_tree(tmp_path: Path) -> None:
    missing = tmp_path / "no-powercap"
    with pytest.raises(MeterError) as info:
        _meter(missing).prepare()
    assert str(info.value) == f"no RAPL counters: {missing} not found; common in VMs and containers"
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeterError, match=r"no RAPL counters: .*/empty/intel-rapl:\* not found; common in VMs"):
        _meter(tmp_path / "empty").prepare()


# Root reads any file whatever its mode, so when the tests run as root the child drops to 'nobody' before it reads the
# counters. It drops after start-up and imports, because the interpreter may live where 'nobody' cannot go (here,
# under /root, mode 0700); a preexec_fn that drops before exec fails in that case.
_UNREADABLE_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from ai_energy_benchmarks.config.schema import MetricsConfig
    from ai_energy_benchmarks.energy.rapl import RaplMeter
    from ai_energy_benchmarks.exceptions import MeterError
    root = Path(sys.argv[1])
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        except OSError as exc:
            print(json.dumps({"skip": f"cannot drop root privileges: {exc}"}))
            sys.exit(0)
    try:
        RaplMeter(MetricsConfig(rapl_root=str(root)), root.parent, None).prepare()
    except MeterError as exc:
        print(json.dumps({"uid": os.getuid(), "error": str(exc)}))
    else:
        print(json.dumps({"uid": os.getuid(), "error": None}))
    """
).replace("NOBODY", str(NOBODY_UID))


def test_unreadable_counter_gives_a_permission_message() -> None:
    # A directory every user can traverse (pytest's tmp_path is private to root).
    base = Path(tempfile.mkdtemp(prefix="rapl-perm-"))
    try:
        base.chmod(0o755)
        tree = FakePowercap(base / "powercap")
        energy_file = tree.energy_file(0)
        energy_file.chmod(0o400)  # what Linux >= 5.10 does: root only
        done = subprocess.run(
            [sys.executable, "-c", _UNREADABLE_CHILD, str(tree.root)],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if "skip" in result:
            pytest.skip(result["skip"])
        assert result["uid"] != 0
        message = result["error"]
        assert message is not None, "the counter was readable"
        assert message.startswith(f"RAPL counter {energy_file} is not readable (permission denied)")
        assert "since Linux 5.10 energy_uj is readable by root only" in message
        assert "sudo chmod a+r" in message
        assert "\n" not in message
    finally:
        shutil.rmtree(base)


def test_past_interval_read_back_with_bounds(tmp_path: Path) -> None:
    """Reads at known counter values; an interval between reads is bounded by them and interpolated inside. The
    meter runs on a simulated clock, so the reads happen exactly 50 ms apart however busy the machine is."""
    tree = FakePowercap(tmp_path / "powercap", dram=False)
    clock = SimulatedClock()
    meter = RaplMeter(MetricsConfig(rapl_root=str(tree.root), rapl_poll_interval_s=60.0), tmp_path, None, clock=clock)
    meter.prepare()  # the first read: 0 J
    read_at = [clock.now_s()]
    try:
        for total_uj in (1_000_000, 3_000_000, 6_000_000):  # +1 J, +2 J, +3 J between reads 50 ms apart
            clock.advance(0.05)
            tree.set_energy_uj(0, total_uj)
            meter._snapshot()  # what the background reader does
            read_at.append(clock.now_s())
        assert [b - a for a, b in itertools.pairwise(read_at)] == pytest.approx([0.05] * 3)
        # From a quarter of a gap before the second read to a quarter after the third: two thirds of the interval
        # lies between reads (mostly read: measured).
        start = read_at[1] - 0.25 * (read_at[1] - read_at[0])
        end = read_at[2] + 0.25 * (read_at[3] - read_at[2])
        (reading,) = meter.energy_between(start, end)
        assert reading.device == "cpu:0" and reading.source == PACKAGE_SOURCE and reading.is_measured
        assert reading.lower_j == pytest.approx(2.0)  # between the reads inside: 1 J -> 3 J
        assert reading.upper_j == pytest.approx(6.0)  # between the reads around it: 0 J -> 6 J
        assert reading.energy_j == pytest.approx(0.25 + 2.0 + 0.75)  # a quarter of each edge's step
        assert "interpolated" in reading.note
        # An interval between two reads is interpolation, not a reading: labelled an estimate, bounds kept.
        (between,) = meter.energy_between(read_at[2] + 0.01, read_at[2] + 0.03)
        assert between.source == "estimated:interpolated-counter-record" and not between.is_measured
        assert between.lower_j == 0.0 and between.upper_j == pytest.approx(3.0)
        assert between.energy_j == pytest.approx(3.0 * 0.02 / 0.05)
        assert meter.energy_between(end, end + 60.0) == []  # not recorded yet
    finally:
        meter.close()
