"""Named load profiles of the HTTP backend (``backend.load_profile``): what each sends, checked on the times the
client recorded and the times the test server received each request (no sleep races), and their validation."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator

import pytest
from http_support import fake_server, loaded, make_config, run_all

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


def slope_s(times: list[float]) -> float:
    """Least-squares seconds per request of ``times`` against their index (one late send barely moves it)."""
    n = len(times)
    mean_i, mean_t = (n - 1) / 2, statistics.mean(times)
    return sum((i - mean_i) * (t - mean_t) for i, t in enumerate(times)) / sum((i - mean_i) ** 2 for i in range(n))


def test_synchronous_never_has_two_requests_in_flight(server: FakeOpenAIServer) -> None:
    server.token_delay_s = 0.002
    config = make_config(server.url + "/v1", tokens=4, load_profile="synchronous")
    with loaded(config) as backend:
        server.reset_counters()
        records = run_all(backend, [f"p{i}" for i in range(12)], config)
        info = backend.describe()
    assert server.max_concurrent == 1
    assert info["http"]["runs"][0]["concurrency"]["max_in_flight"] == 1
    assert all(later.start_s >= earlier.end_s for earlier, later in itertools.pairwise(records))
    assert info["load"]["load_profile"] == "synchronous"
    assert info["load"]["load_profile_from"] == "backend.load_profile"


def test_throughput_reaches_the_concurrency_limit_at_once(server: FakeOpenAIServer) -> None:
    server.token_delay_s = 0.005
    config = make_config(server.url + "/v1", tokens=10, load_profile="throughput", concurrency=6)
    with loaded(config) as backend:
        server.reset_counters()
        records = run_all(backend, [f"p{i}" for i in range(24)], config)
        info = backend.describe()
    assert server.max_concurrent == 6
    run = info["http"]["runs"][0]
    assert run["concurrency"]["max_in_flight"] == 6 and run["steady_state"]["reached"]
    # The first six are sent together, not on a schedule: all before the first one ends.
    assert max(r.start_s for r in records[:6]) < min(r.end_s for r in records)
    assert info["load"]["load_profile"] == "throughput" and info["load"]["request_rate_per_s"] is None


def test_constant_rate_sends_evenly_spaced_requests(server: FakeOpenAIServer) -> None:
    rate, count = 25.0, 30
    config = make_config(server.url + "/v1", tokens=2, load_profile="constant", request_rate=rate, concurrency=8)
    with loaded(config) as backend:
        server.reset_counters()
        records = run_all(backend, [f"p{i}" for i in range(count)], config)
        info = backend.describe()
    sent = [r.start_s for r in records]
    received = [server.attempt_times[f"p{i}"][0] for i in range(count)]
    # Never early: each send at or after its slot i / rate (1 ms for the clock's resolution) ...
    assert all(t - sent[0] >= i / rate - 0.001 for i, t in enumerate(sent))
    # ... and on the schedule: the spacing is 1 / rate at the client and at the server, most sends within 5 ms.
    assert slope_s(sent) == pytest.approx(1 / rate, rel=0.03)
    assert slope_s(received) == pytest.approx(1 / rate, rel=0.03)
    assert statistics.median(t - sent[0] - i / rate for i, t in enumerate(sent)) < 0.005
    assert info["load"]["load_profile"] == "constant" and info["load"]["arrival"] == "constant"
    assert info["http"]["runs"][0]["schedule_drift"]["held_for_a_slot"] == 0


def test_poisson_sends_on_the_seeded_schedule(server: FakeOpenAIServer) -> None:
    rate, count = 30.0, 30
    config = make_config(
        server.url + "/v1", tokens=2, load_profile="poisson", request_rate=rate, concurrency=16, seed=5
    )
    schedule = hc.arrival_schedule(count, rate, "poisson", 1.0, seed=5)
    with loaded(config) as backend:
        server.reset_counters()
        records = run_all(backend, [f"p{i}" for i in range(count)], config)
        info = backend.describe()
    lateness = [r.start_s - records[0].start_s - due for r, due in zip(records, schedule, strict=True)]
    assert min(lateness) > -0.001 and statistics.median(lateness) < 0.005
    received = [server.attempt_times[f"p{i}"][0] for i in range(count)]
    server_lateness = [t - received[0] - due for t, due in zip(received, schedule, strict=True)]
    assert statistics.median(server_lateness) < 0.01
    assert info["load"]["load_profile"] == "poisson" and info["load"]["arrival"] == "poisson"


def test_unset_profile_is_named_from_the_settings(server: FakeOpenAIServer) -> None:
    for backend_keys, name in (
        ({}, "synchronous"),
        ({"concurrency": 4}, "throughput"),
        ({"request_rate": 2.0}, "poisson"),
        ({"request_rate": 2.0, "arrival": "constant"}, "constant"),
        ({"request_rate": 2.0, "burstiness": 0.5}, "gamma"),
    ):
        assert make_config(server.url + "/v1", **backend_keys).backend.load_profile_name == name  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"load_profile": "synchronous", "concurrency": 4}, "concurrency must be 1, got 4"),
        ({"load_profile": "synchronous", "request_rate": 2}, "remove request_rate"),
        ({"load_profile": "throughput"}, "set concurrency to 2 or more"),
        ({"load_profile": "throughput", "concurrency": 4, "request_rate": 2}, "without a request rate"),
        ({"load_profile": "constant"}, "needs request_rate"),
        ({"load_profile": "constant", "request_rate": 2, "arrival": "poisson"}, "contradicts arrival 'poisson'"),
        ({"load_profile": "poisson", "request_rate": 2, "burstiness": 2}, "means burstiness 1, got 2"),
        ({"load_profile": "steady"}, "'synchronous', 'throughput', 'constant' or 'poisson'"),
    ],
)
def test_contradicting_load_settings_are_refused_in_one_line(keys: dict[str, object], message: str) -> None:
    from ai_energy_benchmarks.config.loader import build_config

    data = {"backend": {"type": "vllm", "model": "m", "endpoint": "http://127.0.0.1:8000/v1", **keys}}
    with pytest.raises(ConfigError, match=message) as caught:
        build_config(data, "test.yaml")
    assert "\n" not in str(caught.value) and "backend" in str(caught.value)


def test_a_server_at_capacity_queues_and_reports_its_waiting_requests() -> None:
    """The test server's capacity mode: one request generates at a time, the others wait (their TTFT includes the
    queue), and its waiting gauge, scraped during the run, shows the queue."""
    with FakeOpenAIServer(models=["fake-model"], token_delay_s=0.03, capacity=1) as server:
        config = make_config(server.url + "/v1", tokens=8, load_profile="throughput", concurrency=6)
        with loaded(config) as backend:
            records = run_all(backend, [f"p{i}" for i in range(6)], config)
            run = backend.describe()["http"]["runs"][0]
    ends = sorted(r.end_s for r in records)
    assert all(later - earlier >= 7 * 0.03 for earlier, later in itertools.pairwise(ends))  # one after another
    ttfts = sorted(r.ttft_s or 0.0 for r in records)
    assert ttfts[-1] > 4 * 8 * 0.03  # the last one waited for the five before it
    assert run["prometheus"]["num_requests_waiting"]["max"] >= 1
