"""The server's Prometheus view of a run: scraping, cross-checks and parsing.

Against the local fake server: fast, no vLLM needed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from http_support import MODEL, fake_server, loaded, make_config, run_all

from ai_energy_benchmarks.backends import openai_http
from ai_energy_benchmarks.backends.http_metrics import (
    parse_prometheus,
)
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


# -- Prometheus ----------------------------------------------------------------------------------------------------
def test_prometheus_is_scraped_during_the_run_and_cross_checked(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai_http, "SCRAPE_INTERVAL_S", 0.05)
    server.token_delay_s = 0.01
    config = make_config(server.url + "/v1", tokens=10, concurrency=4, api="completions")
    with loaded(config) as backend:
        records = run_all(backend, [f"w{i} x" for i in range(12)], config)
        info = backend.describe()
    prom = info["http"]["runs"][0]["prometheus"]
    assert info["http"]["prometheus"]["available"] is True
    assert len(prom["samples"]) >= 3 and prom["num_requests_running"]["max"] >= 1
    assert prom["deltas"]["vllm:generation_tokens_total"] == 120 == sum(r.completion_tokens for r in records)
    assert prom["deltas"]["vllm:request_success_total"] == 12
    check = prom["cross_check"]
    assert check["agrees"] and check["server_prompt_tokens"] == check["client_prompt_tokens"] == 24


def test_a_server_without_metrics_is_reported_not_scraped() -> None:
    with FakeOpenAIServer(models=[MODEL], metrics=False) as fake:
        config = make_config(fake.url + "/v1")
        with loaded(config) as backend:
            run_all(backend, ["a"], config)
            info = backend.describe()
    assert info["http"]["prometheus"]["available"] is False
    assert "prometheus" not in info["http"]["runs"][0]


def test_parse_prometheus_sums_series_of_the_model_only() -> None:
    text = "\n".join(
        [
            "# HELP vllm:generation_tokens_total Number of generation tokens.",
            'vllm:generation_tokens_total{engine="0",model_name="a"} 10.0',
            'vllm:generation_tokens_total{engine="1",model_name="a"} 5.0',
            'vllm:generation_tokens_total{engine="0",model_name="b"} 99.0',
            'vllm:generation_tokens_created{engine="0",model_name="a"} 1.7e9',
            'vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="a"} 3.0',
            'vllm:time_to_first_token_seconds_sum{model_name="a"} 0.25',
            "vllm:num_requests_running 2",
            "process_cpu_seconds_total 3.0",
        ]
    )
    assert parse_prometheus(text, "a") == {
        "vllm:generation_tokens_total": 15.0,
        "vllm:time_to_first_token_seconds_sum": 0.25,
        "vllm:num_requests_running": 2.0,
    }


def test_parse_prometheus_reads_escaped_label_values_whole() -> None:
    """A served name with a quote, a backslash and a comma (escaped in the text) is matched by its unescaped value."""
    model = 'org/m"x\\y,z'  # org/m"x\y,z
    text = "\n".join(
        [
            "# TYPE vllm:num_requests_running gauge",
            'vllm:num_requests_running{engine="0",model_name="org/m\\"x\\\\y,z"} 3.0',
            'vllm:num_requests_running{engine="0",model_name="org/m"} 100.0',
        ]
    )
    assert parse_prometheus(text, model) == {"vllm:num_requests_running": 3.0}
    assert parse_prometheus(text, "org/m") == {"vllm:num_requests_running": 100.0}


def test_parse_prometheus_matches_the_model_label_not_a_substring() -> None:
    """Another label whose value (or name) contains 'model_name="a"' does not make model b's series model a's."""
    text = "\n".join(
        [
            'vllm:generation_tokens_total{engine="model_name=\\"a\\"",model_name="b"} 7.0',
            'vllm:generation_tokens_total{served_model_name="a",model_name="b"} 11.0',
            'vllm:generation_tokens_total{model_name="a",engine="0"} 2.0',
            'vllm:generation_tokens_total{model_name="a",engine="1"} 3.0',
        ]
    )
    assert parse_prometheus(text, "a") == {"vllm:generation_tokens_total": 5.0}
    assert parse_prometheus(text, "b") == {"vllm:generation_tokens_total": 18.0}
    assert parse_prometheus(text) == {"vllm:generation_tokens_total": 23.0}


def test_parse_prometheus_sums_label_sets_of_histograms_and_refuses_garbage() -> None:
    text = "\n".join(
        [
            "# TYPE vllm:e2e_request_latency_seconds histogram",
            'vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="a"} 4.0',
            'vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="a"} 5.0',
            'vllm:e2e_request_latency_seconds_sum{model_name="a"} 2.5',
            'vllm:e2e_request_latency_seconds_count{model_name="a"} 5.0',
            'vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="a",engine="1"} 1.0',
            'vllm:e2e_request_latency_seconds_sum{model_name="a",engine="1"} 0.5',
            'vllm:e2e_request_latency_seconds_count{model_name="a",engine="1"} 1.0',
            'vllm:kv_cache_usage_perc{model_name="a"} NaN',
        ]
    )
    assert parse_prometheus(text, "a") == {
        "vllm:e2e_request_latency_seconds_sum": 3.0,
        "vllm:e2e_request_latency_seconds_count": 6.0,
    }
    with pytest.raises(ValueError):
        parse_prometheus("vllm:num_requests_running{model_name=a} 1\n", "a")
