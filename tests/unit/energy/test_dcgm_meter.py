"""The fleet meter (``metrics.type: dcgm``) against a real Prometheus scraping simulated DCGM exporters.

The simulated GPUs follow sine power traces whose exact integral is known; each exporter stamps its samples with
the instant they describe, so the truth of a window is the trace's integral between the window's edges whatever
the machine's load. Prometheus (Debian's 2.42, ``apt-get install prometheus``) is started on loopback; without it
those tests are skipped, or fail with ``AIEB_REQUIRE_PROMETHEUS=1`` (which ``.ci/run`` sets after installing it).
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, runner_config

from ai_energy_benchmarks.config.schema import DcgmConfig, MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyReading, IncompleteWindowError, MeterSet
from ai_energy_benchmarks.energy.dcgm import COUNTER_SOURCE, POWER_SOURCE, RESET_SOURCE, DcgmMeter
from ai_energy_benchmarks.energy.dcgm_series import counter_span, power_span
from ai_energy_benchmarks.energy.prometheus_query import Selector
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.fake_dcgm import FakeDcgmExporter, FakeGpuSim, SineTrace, fleet
from ai_energy_benchmarks.testing.prometheus_server import LocalPrometheus, prometheus_binary
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

SCRAPE_S = 0.1


# -- the series arithmetic, on samples whose truth is known ------------------------------------------------------------
TRACE = SineTrace(base_w=300.0, amplitude_w=120.0, period_s=1.3, phase=0.4, origin_s=1000.0)


def _samples(times: list[float], reset_s: float | None = None) -> list[tuple[float, float]]:
    gpu = FakeGpuSim(0, "GPU-x", TRACE, boot_s=900.0)
    if reset_s is not None:
        gpu.reset_at(reset_s)
    return [(t, float(gpu.counter_mj(t))) for t in times]


def _jittered(start_s: float, end_s: float, step_s: float) -> list[float]:
    times, t, k = [], start_s, 0
    while t < end_s:
        times.append(round(t, 3))
        k += 1
        t = start_s + k * step_s + 0.03 * math.sin(7.0 * k)  # uneven scrapes, like a loaded Prometheus
    return times


def test_counter_window_is_bounded_by_the_scrapes_around_its_edges() -> None:
    times = _jittered(1000.0, 1005.0, SCRAPE_S)
    for t0, t1 in ((1001.013, 1002.587), (1000.41, 1000.47), (1000.999, 1004.001)):
        span = counter_span(_samples(times), t0, t1)
        assert span is not None
        truth = TRACE.energy_j(t0, t1)
        assert span.lower_j <= truth <= span.upper_j
        if t1 - t0 >= 10 * SCRAPE_S:
            assert span.energy_j == pytest.approx(truth, rel=0.01)
    # No scrape after the end yet: no figure at all, never a partial one.
    assert counter_span(_samples(times), 1004.0, 1005.5) is None
    assert counter_span(_samples(times), 999.0, 1001.0) is None


def test_a_counter_reset_is_counted_from_the_new_value_and_widens_the_bounds() -> None:
    times = _jittered(1000.0, 1004.0, SCRAPE_S)
    span = counter_span(_samples(times, reset_s=1001.733), 1000.5, 1003.0)
    assert span is not None and span.resets == 1
    truth = TRACE.energy_j(1000.5, 1003.0)
    assert span.lower_j <= truth <= span.upper_j
    assert span.energy_j == pytest.approx(truth, rel=0.01)
    # Counting from the new value alone (what increase() does) would lose the gap's energy before the restart.
    assert span.lower_j < truth


def test_lagging_exporter_values_widen_the_bounds_to_still_cover_the_truth() -> None:
    lag_s = 0.5
    times = _jittered(1000.0, 1005.0, SCRAPE_S)
    lagging = [(t, float(FakeGpuSim(0, "GPU-x", TRACE, boot_s=900.0).counter_mj(t - 0.45))) for t in times]
    t0, t1 = 1001.5422, 1003.4922  # power at its peak at the start and its trough at the end
    span = counter_span(lagging, t0, t1, lag_s)
    naive = counter_span(lagging, t0, t1)
    truth = TRACE.energy_j(t0, t1)
    assert span is not None and naive is not None
    assert span.lower_j <= truth <= span.upper_j
    # Read as if the values were current, the window would be 7% off; the lag setting moves it towards the truth.
    assert abs(naive.energy_j - truth) > 0.05 * truth
    assert abs(span.energy_j - truth) < abs(naive.energy_j - truth)


def test_power_samples_integrate_within_their_bounds() -> None:
    times = _jittered(1000.0, 1004.0, SCRAPE_S)
    samples = [(t, TRACE.power_w(t)) for t in times]
    span = power_span(samples, 1000.55, 1003.2)
    truth = TRACE.energy_j(1000.55, 1003.2)
    assert span is not None and span.lower_j <= truth <= span.upper_j
    assert span.energy_j == pytest.approx(truth, rel=0.01)


def test_the_accuracy_criterion_follows_the_scrapes_a_loaded_machine_left() -> None:
    """A 0.6 s scrape gap at a window's start (a stalled Prometheus): the figure is 4.7% off, beyond any fixed 1%,
    yet within what linear interpolation across that gap can be off (``_tolerance_j``), which a window missing its
    start edge (counting from the scrape before it) still exceeds."""
    gpu = FakeGpuSim(0, "GPU-x", SineTrace(base_w=250.0, amplitude_w=80.0, period_s=0.7, origin_s=1000.0), boot_s=900.0)
    times = [t for t in (round(1000.0 + 0.1 * k, 3) for k in range(51)) if not 1001.0 < t < 1001.6]
    samples = [(t, float(gpu.counter_mj(t))) for t in times]
    t0, t1 = 1001.37, 1002.47
    span = counter_span(samples, t0, t1)
    assert span is not None
    truth, tolerance_j = gpu.energy_j(t0, t1), _tolerance_j(times, t0, t1, gpu, COUNTER_SOURCE)
    assert 0.01 * truth < abs(span.energy_j - truth) <= tolerance_j
    missed_edge = counter_span(samples, 1001.0, t1)  # from the scrape before the start: the edge not interpolated
    assert missed_edge is not None and abs(missed_edge.energy_j - truth) > tolerance_j


def test_selectors_match_like_promql_and_bad_ones_are_config_errors() -> None:
    selector = Selector.parse('{Hostname=~"node-[12]", namespace="llm", gpu!="3", pod!~"debug.*"}')
    assert selector.matches({"Hostname": "node-2", "namespace": "llm", "gpu": "0", "pod": "vllm-1"})
    assert not selector.matches({"Hostname": "node-3", "namespace": "llm", "gpu": "0", "pod": "vllm-1"})
    assert not selector.matches({"Hostname": "node-1", "namespace": "llm", "gpu": "3", "pod": "vllm-1"})
    assert not selector.matches({"Hostname": "node-10", "namespace": "llm", "gpu": "0"})  # anchored regex
    assert selector.of("DCGM_FI_DEV_POWER_USAGE").startswith("DCGM_FI_DEV_POWER_USAGE{Hostname")
    with pytest.raises(ConfigError, match="selector"):
        Selector.parse('{Hostname~"x"}')
    with pytest.raises(ValueError, match="not both"):
        DcgmConfig(prometheus_url="http://p:9090", exporter_urls=["http://n:9400/metrics"])
    with pytest.raises(ConfigError, match="prometheus_url"):
        DcgmMeter(MetricsConfig(type="dcgm"), Path("."))


# -- a real Prometheus scraping simulated exporters -------------------------------------------------------------------
@pytest.fixture(scope="module")
def exporters() -> Iterator[list[FakeDcgmExporter]]:
    """node-1 and node-2 (4 GPUs each; node-2's GPU 3 has no energy counter) and node-3 (2 GPUs, to be taken
    down), serving from now on."""
    nodes = fleet(nodes=3)
    nodes[1].gpus[3].has_counter = False
    nodes[2].gpus = nodes[2].gpus[:2]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def prometheus(exporters: list[FakeDcgmExporter], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if prometheus_binary() is None:
        message = "prometheus is not installed: apt-get install prometheus (Debian's 2.42)"
        if os.environ.get("AIEB_REQUIRE_PROMETHEUS") == "1":  # .ci/run sets it: CI never skips these tests
            pytest.fail(message)
        pytest.skip(message)
    with LocalPrometheus([e.target for e in exporters], tmp_path_factory.mktemp("prometheus"), SCRAPE_S) as server:
        yield server.url


def _meter(prometheus: str, tmp_path: Path, selector: str, **settings: Any) -> DcgmMeter:
    config = MetricsConfig(type="dcgm", dcgm={"prometheus_url": prometheus, "selector": selector, **settings})
    meter = DcgmMeter(config, tmp_path)
    meter.prepare()
    return meter


def _truth_j(exporters: list[FakeDcgmExporter], reading: EnergyReading, meter: DcgmMeter) -> float:
    node, uuid = reading.device.removeprefix("gpu:").split("/")
    (gpu,) = [g for e in exporters if e.hostname == node for g in e.gpus if g.uuid == uuid]
    assert reading.start_s is not None and reading.end_s is not None
    return gpu.energy_j(meter.unix_time(reading.start_s), meter.unix_time(reading.end_s))


def _scrape_times_s(prometheus: str, metric: str, node: str, uuid: str, since_s: float) -> list[float]:
    """The Unix times (s) of the samples Prometheus kept of one GPU's series since ``since_s``."""
    import requests

    now_s = time.time()
    query = f'{metric}{{Hostname="{node}", UUID="{uuid}"}}[{math.ceil(now_s - since_s) + 2}s]'
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": query, "time": now_s}, timeout=5).json()
    (series,) = answer["data"]["result"]
    return sorted(float(t) for t, _ in series["values"])


def _tolerance_j(times: list[float], t0: float, t1: float, gpu: FakeGpuSim, source: str) -> float:
    """The largest error (J) the meter's method can make on ``gpu``'s exact sine trace with the scrapes Prometheus
    actually kept (``times``): however long the gaps a loaded machine leaves, the figure must be this close.

    The counter is interpolated linearly at each edge: off by at most slope * gap**2 / 8 (slope: the trace's largest
    power change per second). Power samples are also integrated by the trapezoid rule between the edges: at most
    curvature * gap**3 / 12 per gap. A counter reset's gap is estimated from the mean power of the gaps on either
    side: at most gap * slope * (previous gap + 2 gap + next gap) / 4. Plus 5 mJ for the counter's whole mJ.
    """
    before, first = bisect.bisect_right(times, t0) - 1, bisect.bisect_left(times, t0)
    last, after = bisect.bisect_right(times, t1) - 1, bisect.bisect_left(times, t1)
    assert before >= 0 and after < len(times), "the window's edges are not bracketed by scrapes"
    rate = 2.0 * math.pi / gpu.trace.period_s
    slope_w_per_s, curvature = gpu.trace.amplitude_w * rate, gpu.trace.amplitude_w * rate**2
    edge_gaps_s = (times[first] - times[before], times[after] - times[last])
    tolerance_j = 0.005 + sum(slope_w_per_s * gap**2 / 8.0 for gap in edge_gaps_s)
    gaps_s = [b - a for a, b in itertools.pairwise(times)]
    if source == POWER_SOURCE:
        tolerance_j += sum(curvature * gap**3 / 12.0 for gap in gaps_s[before:after])
    if source == RESET_SOURCE:
        for reset_s in gpu.resets_s:
            i = bisect.bisect_left(times, reset_s)  # the gap from sample i-1 to i holds the restart
            if before < i <= after:
                around_s = gaps_s[max(0, i - 2)] + 2.0 * gaps_s[i - 1] + gaps_s[min(len(gaps_s) - 1, i)]
                tolerance_j += gaps_s[i - 1] * slope_w_per_s * around_s / 4.0
    return tolerance_j


def _check(exporters: list[FakeDcgmExporter], readings: list[EnergyReading], meter: DcgmMeter, prometheus: str) -> None:
    """Every reading holds the exact integral within its bounds, and is within the largest error its method can
    make with the scrapes Prometheus kept around and inside the window (:func:`_tolerance_j`)."""
    metrics = {POWER_SOURCE: "DCGM_FI_DEV_POWER_USAGE"}
    for reading in readings:
        truth = _truth_j(exporters, reading, meter)
        assert reading.lower_j is not None and reading.upper_j is not None
        assert reading.lower_j <= truth <= reading.upper_j, (reading, truth)
        assert reading.start_s is not None and reading.end_s is not None
        node, uuid = reading.device.removeprefix("gpu:").split("/")
        (gpu,) = [g for e in exporters if e.hostname == node for g in e.gpus if g.uuid == uuid]
        t0, t1 = meter.unix_time(reading.start_s), meter.unix_time(reading.end_s)
        metric = metrics.get(reading.source, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
        times = _scrape_times_s(prometheus, metric, node, uuid, t0 - 5.0)
        tolerance_j = _tolerance_j(times, t0, t1, gpu, reading.source)
        assert abs(reading.energy_j - truth) <= tolerance_j, (reading, truth, tolerance_j)


def test_fleet_windows_from_prometheus_match_the_exact_integral(
    prometheus: str, exporters: list[FakeDcgmExporter], tmp_path: Path
) -> None:
    meter = _meter(prometheus, tmp_path, '{Hostname=~"node-[12]", namespace="llm"}', wait_timeout_s=20)
    try:
        # Windows that overlap and nest, a long one and one shorter than two scrape intervals.
        meter.start_window("outer")
        time.sleep(0.35)
        meter.start_window("inner")
        time.sleep(0.9)
        outer, _ = meter.stop_window("outer")
        inner, _ = meter.stop_window("inner")
        meter.start_window("short")
        time.sleep(0.15)
        short, _ = meter.stop_window("short")
    finally:
        meter.close()
    for readings in (outer, inner, short):
        assert len(readings) == 8  # node-3 is not selected
        _check(exporters, readings, meter, prometheus)
    sources = {r.device.split("/")[0]: r.source for r in outer}
    assert {r.source for r in outer if "node-2" in r.device and "-0007" in r.device} == {POWER_SOURCE}
    assert {r.source for r in outer if not r.device.endswith("-0007")} == {COUNTER_SOURCE}, sources
    assert all("shorter than 3 scrape intervals" in r.note for r in short)
    described = meter.describe()
    assert described["nodes"] == ["node-1", "node-2"] and len(described["gpus"]) == 8
    assert described["nodes_not_selected"] == ["node-3"]  # idle or other nodes: seen, not counted
    windows = {w["window"]: w for w in described["windows"]}
    assert windows["short"]["short_window"] is True and windows["outer"]["short_window"] is False
    per_node = windows["outer"]["energy_j_per_node"]
    assert per_node["node-1"] == pytest.approx(sum(r.energy_j for r in outer if r.device.startswith("gpu:node-1/")))
    assert windows["outer"]["energy_j"] == pytest.approx(sum(r.energy_j for r in outer))
    assert windows["outer"]["not_counted"] == [] and "CPUs" in described["excludes"]


def test_a_counter_reset_inside_a_window_is_flagged_and_bounded(
    prometheus: str, exporters: list[FakeDcgmExporter], tmp_path: Path
) -> None:
    meter = _meter(prometheus, tmp_path, '{Hostname="node-1", gpu="1"}', wait_timeout_s=20)
    try:
        meter.start_window("reset")
        exporters[0].gpus[1].reset_at(round(time.time() + 0.5, 3))  # the driver reloads mid-window
        time.sleep(1.3)
        (reading,), _ = meter.stop_window("reset")
    finally:
        meter.close()
    assert reading.source == RESET_SOURCE and "counter reset" in reading.note
    _check(exporters, [reading], meter, prometheus)


def test_an_exporter_going_down_leaves_its_gpus_uncounted_not_zero(
    prometheus: str, exporters: list[FakeDcgmExporter], tmp_path: Path
) -> None:
    meter = _meter(prometheus, tmp_path, '{Hostname=~"node-[13]"}', wait_timeout_s=30)
    meters = MeterSet([meter])
    try:
        with meters.window("generate-0") as window:
            time.sleep(0.5)
            exporters[2].go_down()
            time.sleep(0.6)
            closing_s = time.monotonic()
        waited_s = time.monotonic() - closing_s
    finally:
        exporters[2].down_from_s = None
        meter.close()
    assert waited_s < 10  # the vanished series is recognised, not waited for until the timeout
    assert sorted({r.device.split("/")[0] for r in window.readings}) == ["gpu:node-1"]
    assert len(window.readings) == 4
    _check(exporters, window.readings, meter, prometheus)
    (error,) = window.errors
    assert error.count("gpu:node-3/") == 2 and "stopped" in error and "unknown, not zero" in error
    (summary,) = meter.describe()["windows"]
    assert len(summary["not_counted"]) == 2 and set(summary["energy_j_per_node"]) == {"node-1"}


def test_no_scrape_after_the_window_gives_an_incomplete_window_after_the_timeout(
    prometheus: str, exporters: list[FakeDcgmExporter], tmp_path: Path
) -> None:
    meter = _meter(prometheus, tmp_path, '{Hostname="node-3"}', wait_timeout_s=0.6)
    try:
        meter.start_window("w")
        time.sleep(0.3)
        exporters[2].go_down()  # every selected series stops: nothing newer to compare with, so wait, then give up
        with pytest.raises(IncompleteWindowError, match="wait_timeout_s") as raised:
            meter.stop_window("w")
    finally:
        exporters[2].down_from_s = None
        meter.close()
    assert raised.value.readings == []


def test_direct_exporter_mode_reads_edges_and_loses_a_node_honestly(tmp_path: Path) -> None:
    nodes = fleet(nodes=2, gpus_per_node=2)
    for node in nodes:
        node.start()
    config = MetricsConfig(
        type="dcgm", dcgm={"exporter_urls": [n.url for n in nodes], "poll_interval_s": 0.05, "wait_timeout_s": 5}
    )
    meter = DcgmMeter(config, tmp_path)
    try:
        meter.prepare()
        meter.start_window("both")
        time.sleep(1.1)
        both, _ = meter.stop_window("both")
        meter.start_window("one-down")
        time.sleep(0.3)
        nodes[1].go_down()
        time.sleep(0.3)
        with pytest.raises(IncompleteWindowError, match="exporter stopped answering") as raised:
            meter.stop_window("one-down")
    finally:
        meter.close()
        for node in nodes:
            node.stop()
    assert len(both) == 4
    for reading in both:  # direct reads happen at the edges themselves: the bounds are tight
        truth = _truth_j(nodes, reading, meter)
        assert reading.lower_j is not None and reading.upper_j is not None
        assert reading.lower_j <= truth <= reading.upper_j
        assert reading.energy_j == pytest.approx(truth, rel=0.01)
    assert [r.device.split("/")[0] for r in raised.value.readings] == ["gpu:node-1", "gpu:node-1"]


def test_a_gpu_scraped_twice_is_counted_once(tmp_path: Path) -> None:
    gpus = fleet(nodes=1, gpus_per_node=2)[0].gpus
    twins = [FakeDcgmExporter("node-1", gpus, namespace="llm", pod=pod).start() for pod in ("a", "b")]
    config = MetricsConfig(type="dcgm", dcgm={"exporter_urls": [t.url for t in twins], "poll_interval_s": 0.05})
    meter = DcgmMeter(config, tmp_path)
    try:
        meter.prepare()
        meter.start_window("w")
        time.sleep(0.4)
        readings, _ = meter.stop_window("w")
    finally:
        meter.close()
        for twin in twins:
            twin.stop()
    assert sorted(r.device for r in readings) == sorted(f"gpu:node-1/{g.uuid}" for g in gpus)
    for reading in readings:
        assert reading.energy_j == pytest.approx(_truth_j(twins[:1], reading, meter), rel=0.05)
    assert len(meter.describe()["duplicate_series_ignored"]) == 2


def test_a_remote_servers_gpu_figure_is_the_fleets_not_this_hosts() -> None:
    """With the server elsewhere, this host's GPU meter reads the client's GPU: the fleet's figure is reported, and
    the two are not compared (they are different GPUs), whatever the meters' ranks."""
    from run_support import build, reading

    from ai_energy_benchmarks.energy.base import WindowMeasurement

    window = WindowMeasurement(
        name="generate-0",
        duration_s=2.0,
        readings=[
            reading("gpu:0", 60.0, "measured:nvml-energy-counter", "nvml"),  # the client's own GPU
            reading("gpu:node-1/GPU-a", 500.0, POWER_SOURCE, "dcgm"),
            reading("gpu:node-2/GPU-b", 700.0, COUNTER_SOURCE, "dcgm"),
        ],
    )
    scope = {"server_on_this_host": False, "note": "the endpoint is not on this host"}
    energy = build([window], gpu_ids=[], model_info={"energy_scope": scope})["energy"]
    assert energy["meters_used"]["gpu"] == "dcgm" and energy["gpu_energy_wh"] == pytest.approx(1200 / 3600)
    assert energy["sources"]["gpu"] == f"{POWER_SOURCE}+{COUNTER_SOURCE}"
    assert "meter-disagreement" not in energy["flags"] and not energy["cross_checks"]


def test_a_remote_http_benchmark_reports_the_fleets_gpu_energy(
    prometheus: str, exporters: list[FakeDcgmExporter], tmp_path: Path
) -> None:
    selector = '{Hostname=~"node-[12]", gpu!="3"}'  # node-2's GPU 3 (power only) left out: all counters
    offset_s = time.time() - time.perf_counter()
    with FakeOpenAIServer(models=[MODEL], token_delay_s=0.01) as server:
        config = runner_config(
            tmp_path,
            server.url + "/v1",
            backend={"concurrency": 2, "server_on_this_host": False},  # "remote": this host's GPUs are not its
            scenario={
                "num_samples": 24,
                "generate_kwargs": {"max_new_tokens": 10, "min_new_tokens": 10},
                "warmup_runs": 1,
                "measure_prefill": False,
            },
            metrics={"type": "dcgm", "dcgm": {"prometheus_url": prometheus, "selector": selector}},
            name="remote-fleet",
        )
        result = BenchmarkRunner(config).run()
    energy = result["energy"]
    fleet_readings = [r for r in energy["readings"] if r["meter"] == "dcgm"]
    assert len(fleet_readings) == 6 and {r["source"] for r in fleet_readings} == {COUNTER_SOURCE}
    assert energy["meters_used"]["gpu"] == "dcgm" and energy["sources"]["gpu"] == COUNTER_SOURCE
    assert energy["gpu_energy_wh"] == pytest.approx(sum(r["energy_j"] for r in fleet_readings) / 3600)
    assert energy["gpu_energy_wh"] > 0 and "gpu_energy_wh" not in energy.get("zero_filled", [])
    lower, upper = energy["energy_bounds_wh"]["gpu"]
    truth_j = 0.0
    for reading in fleet_readings:
        node, uuid = reading["device"].removeprefix("gpu:").split("/")
        (gpu,) = [g for e in exporters if e.hostname == node for g in e.gpus if g.uuid == uuid]
        truth_j += gpu.energy_j(reading["start_s"] + offset_s, reading["end_s"] + offset_s)
    assert lower * 3600 <= truth_j <= upper * 3600
    assert any("serving fleet" in note for note in result["energy_notes"])
    described = result["meters"]["dcgm"]
    assert described["nodes"] == ["node-1", "node-2"]
    (window,) = [w for w in described["windows"] if w["window"] == "generate-0"]
    assert set(window["energy_j_per_node"]) == {"node-1", "node-2"} and len(window["counted"]) == 6
    # The steady state (all slots busy), known only afterwards, is read back from the samples Prometheus kept.
    (steady,) = energy["steady_state"]["windows"]
    gpu = steady["devices"]["gpu"]
    assert gpu["source"] == COUNTER_SOURCE and gpu["lower_wh"] <= gpu["energy_wh"] <= gpu["upper_wh"]
    assert 0 < gpu["energy_wh"] <= energy["gpu_energy_wh"]
