"""The load the HTTP backend offers: the concurrency cap, arrival schedules, duration mode and the steady state.

Against the local fake server: fast, no vLLM needed.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator

import pytest
from http_support import fake_server, loaded, make_config, run_all

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_metrics import (
    SlotTrace,
    steady_state,
    tokens_between,
)
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


# -- load shape ----------------------------------------------------------------------------------------------------
def test_the_concurrency_cap_is_reached_and_never_exceeded(server: FakeOpenAIServer) -> None:
    server.token_delay_s = 0.003
    config = make_config(server.url + "/v1", tokens=10, concurrency=8)
    with loaded(config) as backend:
        server.reset_counters()
        records = run_all(backend, [f"p{i}" for i in range(40)], config)
        run = backend.describe()["http"]["runs"][0]
    assert server.max_concurrent == 8
    assert run["concurrency"]["max_in_flight"] == 8 and run["concurrency"]["mean_in_flight"] > 4
    steady = run["steady_state"]
    assert steady["reached"] and steady["duration_s"] > 0
    assert 0 < steady["output_tokens"] < sum(r.completion_tokens for r in records)
    assert steady["all_slots_busy_share"] > 0.9


def test_too_few_requests_never_reach_the_steady_state(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", concurrency=8)
    with loaded(config) as backend:
        run_all(backend, ["a", "b"], config)
        steady = backend.describe()["http"]["runs"][0]["steady_state"]
    assert steady["reached"] is False and "never all busy" in steady["reason"]


def test_poisson_schedule_is_seeded_reproducible_and_has_the_requested_rate() -> None:
    first = hc.arrival_schedule(2000, 50.0, "poisson", 1.0, seed=7)
    assert first == hc.arrival_schedule(2000, 50.0, "poisson", 1.0, seed=7)
    assert first != hc.arrival_schedule(2000, 50.0, "poisson", 1.0, seed=8)
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert first[0] == 0.0
    assert statistics.mean(gaps) == pytest.approx(1 / 50, rel=0.08)
    assert statistics.stdev(gaps) / statistics.mean(gaps) == pytest.approx(1.0, rel=0.1)  # exponential: CV 1
    smooth = hc.arrival_schedule(2000, 50.0, "poisson", 4.0, seed=7)
    smooth_gaps = [b - a for a, b in itertools.pairwise(smooth)]
    assert statistics.stdev(smooth_gaps) / statistics.mean(smooth_gaps) == pytest.approx(0.5, rel=0.1)
    assert hc.arrival_schedule(4, 10.0, "constant", 1.0, seed=0) == [0.0, 0.1, 0.2, 0.3]


def test_requests_are_sent_on_the_poisson_schedule(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", tokens=2, concurrency=16, request_rate=40.0, seed=11)
    schedule = hc.arrival_schedule(30, 40.0, "poisson", 1.0, seed=11)
    with loaded(config) as backend:
        records = run_all(backend, [f"p{i}" for i in range(30)], config)
        run = backend.describe()["http"]["runs"][0]
    offsets = [r.start_s - run["start_s"] for r in records]
    assert max(abs(o - s) for o, s in zip(offsets, schedule, strict=True)) < 0.05
    drift = run["schedule_drift"]
    assert drift["count"] == 30 and drift["held_for_a_slot"] == 0 and drift["p99"] < 50.0


def test_duration_mode_cycles_prompts_until_the_time_is_up(server: FakeOpenAIServer) -> None:
    server.token_delay_s = 0.002
    config = make_config(server.url + "/v1", tokens=4, concurrency=4, duration_s=0.5)
    with loaded(config) as backend:
        records = run_all(backend, ["a", "b", "c"], config)
        run = backend.describe()["http"]["runs"][0]
    assert len(records) > 3 and all(r.ok for r in records)
    # No request is started once the 0.5 s are up (the margin covers the send being stamped after the decision
    # on a loaded machine).
    assert max(r.start_s for r in records) - run["start_s"] < 0.5 + 0.25
    assert run["steady_state"]["reached"]


def test_closing_the_generator_early_leaves_the_backend_usable(server: FakeOpenAIServer) -> None:
    server.token_delay_s = 0.01
    config = make_config(server.url + "/v1", concurrency=2)
    with loaded(config) as backend:
        stream = backend.run([f"p{i}" for i in range(10)], config.scenario.generate_kwargs.as_kwargs())
        next(stream)
        stream.close()
        assert len(run_all(backend, ["again"], config)) == 1


def test_steady_state_window_from_a_slot_trace() -> None:
    # Two slots: both busy from 1.0; the last send at 3.0; the first completion after it, at 3.5, starts the drain.
    trace = SlotTrace(concurrency=2, start_s=0.0)
    trace.events = [(0.0, 1), (1.0, 2), (2.0, 1), (2.0, 2), (3.0, 1), (3.0, 2), (3.5, 1), (4.0, 0)]
    trace.sends_done_s, trace.end_s = 3.0, 4.0
    record = RequestRecord(0, 1, 0.0, 4.0, 1, 4, first_token_s=0.5, chunk_times_s=[0.5, 1.5, 2.5, 3.9])
    window = steady_state(trace, [record])
    assert (window["start_s"], window["end_s"], window["duration_s"]) == (1.0, 3.5, 2.5)
    assert window["output_tokens"] == 2 and tokens_between([record], 0, 10) == 4
    # Duration mode: the dispatcher took a slot freed at 3.0, then stopped at 3.2 and gave it back.
    trace.events = [(0.0, 1), (1.0, 2), (3.0, 1), (4.0, 0)]
    trace.sends_done_s = 3.2
    assert trace.steady_bounds() == (1.0, 3.0)
