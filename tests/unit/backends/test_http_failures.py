"""Every failure the HTTP backend classifies, its retries, and stopping a hopeless run.

Against the local fake server: fast, no vLLM needed.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator

import pytest
from http_support import MODEL, fake_server, loaded, make_config, run_all

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.exceptions import BackendError
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer, refused_port, unaccepting_listener


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


# -- failures ------------------------------------------------------------------------------------------------------
FAULTS = [
    ("[fault:http_400]", hc.HTTP_4XX),
    ("[fault:http_404]", hc.HTTP_4XX),
    ("[fault:http_500]", hc.HTTP_5XX),
    ("[fault:http_503]", hc.HTTP_5XX),
    ("[fault:http_429]", hc.HTTP_429),
    ("[fault:reset]", hc.RESET_MID_STREAM),
    ("[fault:drop]", hc.DISCONNECTED),
    ("[fault:stall:3]", hc.READ_TIMEOUT),
    ("[fault:stall_mid:3]", hc.READ_TIMEOUT),
    ("[fault:bad_sse]", hc.MALFORMED_SSE),
    ("[fault:bad_json]", hc.MALFORMED_JSON),
    ("[fault:error_event]", hc.STREAM_ERROR),
    ("[fault:empty]", hc.EMPTY_COMPLETION),
    ("[fault:truncated]", hc.STREAM_TRUNCATED),
]


def test_every_failure_class_is_counted_and_good_requests_are_kept(server: FakeOpenAIServer) -> None:
    prompts = ["good one"] + [p for p, _ in FAULTS] + ["good two"]
    config = make_config(server.url + "/v1", concurrency=4, read_timeout_s=0.3, max_retries=1, retry_backoff_s=0.01)
    with loaded(config) as backend:
        records = run_all(backend, prompts, config)
        info = backend.describe()
    assert len(records) == len(prompts)
    assert records[0].ok and records[-1].ok and records[0].completion_tokens == 8
    for record, (prompt, expected) in zip(records[1:-1], FAULTS, strict=True):
        assert record.error_class == expected, (prompt, record.error)
        assert record.error and not record.ok
    expected_counts: dict[str, int] = {}
    for _, cls in FAULTS:
        expected_counts[cls] = expected_counts.get(cls, 0) + 1
    assert info["http"]["errors_by_class"] == dict(sorted(expected_counts.items()))
    retries = info["http"]["runs"][0]["retries_by_class"]
    assert retries == {hc.DISCONNECTED: 1, hc.HTTP_429: 1, hc.HTTP_5XX: 1}  # 429, 503 and a drop are retried


def test_the_stall_distinguishes_read_timeout_before_and_between_chunks(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", read_timeout_s=0.2)
    with loaded(config) as backend:
        before, between = run_all(backend, ["[fault:stall:2]", "[fault:stall_mid:2]"], config)
    assert "before the first byte of output" in (before.error or "")
    assert "between two chunks" in (between.error or "")
    assert between.completion_tokens == 2  # what streamed before the stall


def test_connect_refused_and_connect_timeout_are_separate_classes() -> None:
    async def attempt(port: int) -> hc._Attempt:
        client = hc.HttpClient(f"http://127.0.0.1:{port}", "/v1/completions", MODEL, {}, 0.3, 5.0, connections=2)
        await client.open()
        try:
            return await client.stream_once(b"{}", chat=False)
        finally:
            await client.close()

    refused = asyncio.run(attempt(refused_port()))
    assert refused.error_class == hc.CONNECT_REFUSED
    with unaccepting_listener() as port:
        started = time.perf_counter()
        timed_out = asyncio.run(attempt(port))
        elapsed = time.perf_counter() - started
    assert timed_out.error_class == hc.CONNECT_TIMEOUT, timed_out.error
    assert 0.25 <= elapsed < 3.0


def test_a_server_that_goes_away_gives_connect_refused_records(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", max_consecutive_failures=0)
    with loaded(config) as backend:
        server.stop()
        records = run_all(backend, ["a", "b"], config)
    assert {r.error_class for r in records} == {hc.CONNECT_REFUSED}


def test_429_is_retried_with_exponential_backoff(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", max_retries=3, retry_backoff_s=0.1)
    with loaded(config) as backend:
        (record,) = run_all(backend, ["[fault:retry429:2]"], config)
        retries = backend.describe()["http"]["runs"][0]["retries_by_class"]
    assert record.ok and record.completion_tokens == 8
    assert record.latency_s >= 0.05 + 0.1  # waited 0.05..0.1 s, then 0.1..0.2 s (equal jitter)
    assert retries == {hc.HTTP_429: 2}


def test_retry_waits_are_jittered_within_their_bounds() -> None:
    rng = random.Random(7)
    for retry in range(1, 7):
        delay = 0.5 * 2 ** (retry - 1)
        waits = [hc.retry_delay_s(retry, 0.5, None, rng) for _ in range(2000)]
        assert all(delay / 2 <= w <= min(delay, hc.MAX_RETRY_WAIT_S) for w in waits)
        assert max(waits) - min(waits) > 0.9 * (min(delay, hc.MAX_RETRY_WAIT_S) - delay / 2)  # spread, not a constant
        after = [hc.retry_delay_s(retry, 0.5, 2.0, rng) for _ in range(2000)]  # Retry-After: 2 beats the backoff
        assert all(2.0 <= w <= 3.0 for w in after) and max(after) - min(after) > 0.9
    assert hc.retry_delay_s(1, 0.5, 0.0, rng) == 0.0  # "Retry-After: 0" means now
    assert hc.retry_delay_s(20, 0.5, None, rng) == hc.MAX_RETRY_WAIT_S
    assert hc.retry_delay_s(1, 0.5, 500.0, rng) == hc.MAX_RETRY_WAIT_S


def test_retry_jitter_is_seeded_for_tests_and_differs_between_clients() -> None:
    def waits(client: hc.HttpClient) -> list[float]:
        return [hc.retry_delay_s(1 + i % 3, 0.5, None, client._retry_rng) for i in range(6)]

    def client(seed: int | None) -> hc.HttpClient:
        return hc.HttpClient("http://127.0.0.1:1", "/v1/completions", MODEL, {}, 1.0, 1.0, 1, retry_seed=seed)

    assert waits(client(3)) == waits(client(3))
    assert waits(client(3)) != waits(client(4))
    first, second = waits(client(None)), waits(client(None))  # the default: seeded by the OS
    assert all(abs(a - b) > 0 for a, b in zip(first, second, strict=True))


def test_two_clients_rate_limited_together_do_not_retry_in_lockstep() -> None:
    """Two clients get 503 together, three times, from the server (Retry-After: 0.2): the server sees their
    retries apart, each at least 0.2 s after the previous attempt."""
    prompts = {"a": "[fault:retry503:3] a", "b": "[fault:retry503:3] b"}

    async def both(url: str) -> list[hc.RunState]:
        clients = [
            hc.HttpClient(url, "/v1/completions", MODEL, {}, 2.0, 5.0, connections=2, retry_seed=seed)
            for seed in (20, 21)
        ]
        for c in clients:
            await c.open()
        try:
            plans = [
                hc.RunPlan(
                    label="generate-0",
                    prompts=[prompts[name]],
                    base_body={"model": MODEL, "stream": True, "max_tokens": 2},
                    chat=False,
                    concurrency=1,
                    max_retries=3,
                    retry_backoff_s=0.5,
                )
                for name in ("a", "b")
            ]
            return list(
                await asyncio.gather(*(c.execute(p, lambda r: None) for c, p in zip(clients, plans, strict=True)))
            )
        finally:
            for c in clients:
                await c.close()

    with FakeOpenAIServer(models=[MODEL], retry_after="0.2") as fake:
        states = asyncio.run(both(fake.url))
        times = {name: fake.attempt_times[prompt] for name, prompt in prompts.items()}
    assert all(state.records[0].ok for state in states)
    for state in states:
        assert len(state.retry_waits_s) == 3 and all(0.2 <= w <= 0.3 for w in state.retry_waits_s)
    assert abs(times["a"][0] - times["b"][0]) < 0.05  # rate limited together...
    for name in ("a", "b"):
        assert all(later - earlier >= 0.2 for earlier, later in itertools.pairwise(times[name]))
    # ...but retried apart: the seeds' waits differ by at least 50 ms at every retry. What the server saw follows
    # them only up to scheduling delays, which a busy machine stretches past 50 ms, so it is not asserted here.
    drawn = [list(itertools.accumulate(state.retry_waits_s)) for state in states]
    assert all(abs(x - y) >= 0.05 for x, y in zip(*drawn, strict=True)), drawn


def test_retries_give_up_after_max_retries(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", max_retries=1, retry_backoff_s=0.05)
    with loaded(config) as backend:
        (gave_up,) = run_all(backend, ["[fault:retry503:2]"], config)
    assert gave_up.error_class == hc.HTTP_5XX and "HTTP 503" in (gave_up.error or "")
    assert server.attempts["[fault:retry503:2]"] == 2


def test_retry_after_is_honoured_over_the_backoff(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", max_retries=1, retry_backoff_s=30.0)
    with loaded(config) as backend:
        (honoured,) = run_all(backend, ["[fault:http_429]"], config)
    assert honoured.error_class == hc.HTTP_429 and honoured.latency_s < 5.0  # Retry-After: 0 beats the 30 s backoff
    assert server.attempts["[fault:http_429]"] == 2


def test_consecutive_failures_stop_a_hopeless_run_after_yielding_what_completed(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", max_consecutive_failures=3)
    prompts = ["fine"] + ["[fault:http_500]"] * 9
    with loaded(config) as backend:
        records: list[RequestRecord] = []
        with pytest.raises(BackendError) as raised:
            for record in backend.run(prompts, config.scenario.generate_kwargs.as_kwargs()):
                records.append(record)
        info = backend.describe()
    message = str(raised.value)
    assert len(records) == 4 and records[0].ok
    assert "3 requests failed in a row" in message and "http_5xx: 3" in message and "6 were not sent" in message
    assert info["http"]["runs"][0]["stopped"] and info["http"]["runs"][0]["requests_not_sent"] == 6


def test_a_stop_aborts_requests_in_flight(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", concurrency=2, max_consecutive_failures=2, read_timeout_s=30.0)
    prompts = ["[fault:stall:20]", "[fault:http_500]", "[fault:http_500]", "[fault:http_500]"]
    started = time.perf_counter()
    with loaded(config) as backend:
        records: list[RequestRecord] = []
        with pytest.raises(BackendError, match="1 were aborted in flight"):
            records.extend(backend.run(prompts, config.scenario.generate_kwargs.as_kwargs()))
    assert time.perf_counter() - started < 10.0
    assert sorted(r.error_class or "" for r in records) == [hc.ABORTED, hc.HTTP_5XX, hc.HTTP_5XX]
