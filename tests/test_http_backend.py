"""The vLLM / OpenAI-compatible HTTP backend against the local fake server (fast; no vLLM needed)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends import openai_http
from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.http_metrics import (
    SlotTrace,
    parse_prometheus,
    steady_state,
    tokens_between,
)
from ai_energy_benchmarks.backends.openai_http import (
    OpenAIHTTPBackend,
    build_base_body,
    host_is_local,
    normalize_endpoint,
)
from ai_energy_benchmarks.backends.registry import create_backend
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import BackendError, ConfigError
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer, refused_port, unaccepting_listener

MODEL = "fake-model"
SECRET = "sk-test-0123456789-very-secret"


def make_config(
    endpoint: str, tokens: int = 8, scenario: dict[str, Any] | None = None, **backend: Any
) -> BenchmarkConfig:
    scenario_data: dict[str, Any] = {
        "generate_kwargs": {"max_new_tokens": tokens, "min_new_tokens": tokens},
        "warmup_runs": 0,
        "measure_prefill": False,
    }
    scenario_data.update(scenario or {})
    return BenchmarkConfig.model_validate(
        {
            "backend": {"type": "vllm", "model": MODEL, "endpoint": endpoint, **backend},
            "scenario": scenario_data,
            "metrics": {"enabled": False},
        }
    )


def runner_config(
    tmp_path: Path,
    endpoint: str,
    *,
    backend: dict[str, Any] | None = None,
    scenario: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    name: str = "http-run",
) -> BenchmarkConfig:
    """A whole benchmark against ``endpoint``: output in ``tmp_path/out``, energy off unless ``metrics`` says."""
    return BenchmarkConfig.model_validate(
        {
            "name": name,
            "output_dir": str(tmp_path / "out"),
            "backend": {"type": "vllm", "model": MODEL, "endpoint": endpoint, **(backend or {})},
            "scenario": scenario or {},
            "metrics": metrics if metrics is not None else {"enabled": False},
            "reporter": {"output_file": str(tmp_path / "results.csv")},
        }
    )


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(models=[MODEL, "other-model"]) as fake:
        yield fake


@contextmanager
def loaded(config: BenchmarkConfig) -> Iterator[OpenAIHTTPBackend]:
    backend = OpenAIHTTPBackend(config)
    backend.load()
    try:
        yield backend
    finally:
        backend.close()


def run_all(backend: OpenAIHTTPBackend, prompts: list[str], config: BenchmarkConfig) -> list[RequestRecord]:
    return sorted(backend.run(prompts, config.scenario.generate_kwargs.as_kwargs()), key=lambda r: r.index)


# -- endpoint handling ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "base"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://gateway.example/llm/v1", "https://gateway.example/llm"),
        ("http://host/v1v1", "http://host/v1v1"),
        ("http://host/myv1", "http://host/myv1"),
        ("http://host/v1/v1", "http://host/v1"),
        ("localhost:8000/v1", "http://localhost:8000"),
    ],
)
def test_endpoint_strips_the_v1_suffix_not_characters(endpoint: str, base: str) -> None:
    assert normalize_endpoint(endpoint) == base


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://h:8000/v1/completions", "names an API route"),
        ("http://h:8000/v1/chat/completions", "names an API route"),
        ("ftp://h/v1", "scheme must be http or https"),
        ("http://h:8000/v1?x=1", "without a query"),
    ],
)
def test_bad_endpoints_are_config_errors(endpoint: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_endpoint(endpoint)


@pytest.mark.parametrize("suffix", ["/v1", "", "/v1/"])
def test_backend_works_with_or_without_v1(server: FakeOpenAIServer, suffix: str) -> None:
    config = make_config(server.url + suffix, api="completions")
    with loaded(config) as backend:
        records = run_all(backend, ["hello there"], config)
    assert records[0].ok and records[0].completion_tokens == 8
    assert backend.describe()["api_url"] == server.url + "/v1/completions"


def test_registry_creates_the_http_backend(server: FakeOpenAIServer) -> None:
    backend = create_backend(make_config(server.url + "/v1"))
    assert isinstance(backend, OpenAIHTTPBackend)
    assert isinstance(backend, Backend)


# -- request bodies ------------------------------------------------------------------------------------------------
def test_request_body_fixed_length_greedy_and_passthrough(server: FakeOpenAIServer) -> None:
    config = make_config(
        server.url + "/v1",
        tokens=5,
        scenario={"generate_kwargs": {"max_new_tokens": 5, "min_new_tokens": 5, "top_k": 3, "repetition_penalty": 1.1}},
        api="completions",
    )
    with loaded(config) as backend:
        run_all(backend, ["a prompt"], config)
    body = server.bodies[-1]
    assert body["prompt"] == "a prompt" and body["model"] == MODEL
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 5 and body["min_tokens"] == 5 and body["ignore_eos"] is True
    assert body["temperature"] == 0.0 and body["top_k"] == 3 and body["repetition_penalty"] == 1.1
    assert not {"max_new_tokens", "min_new_tokens", "do_sample"} & set(body)


def test_api_auto_sends_chat_messages_as_0_0_4_did(server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    """backend.api unset (auto): chat messages through the server's template, as 0.0.4 always sent, and the log
    says why; plain text (scenario.chat_template false) goes to the completions endpoint."""
    config = make_config(server.url + "/v1")
    with caplog.at_level(logging.INFO, logger="ai_energy_benchmarks"), loaded(config) as backend:
        run_all(backend, ["hello there"], config)
        info = backend.describe()
    assert server.bodies[-1]["messages"] == [{"role": "user", "content": "hello there"}]
    assert info["api"] == "chat" and info["api_url"] == server.url + "/v1/chat/completions"
    assert "auto" in info["api_chosen_by"]
    assert any("using the chat API (backend.api auto" in r.getMessage() for r in caplog.records)
    plain = make_config(server.url + "/v1", scenario={"chat_template": False})
    with loaded(plain) as backend:
        run_all(backend, ["hello there"], plain)
    assert server.bodies[-1]["prompt"] == "hello there" and backend.describe()["api"] == "completions"


@pytest.mark.parametrize(
    ("generate_kwargs", "ignore_eos", "sent"),
    [
        ({"max_new_tokens": 4000, "min_new_tokens": 1}, None, {"max_tokens": 4000, "min_tokens": 1}),
        ({"max_new_tokens": 10, "min_new_tokens": 10}, None, {"max_tokens": 10, "min_tokens": 10, "ignore_eos": True}),
        ({"max_new_tokens": 10, "min_new_tokens": None}, None, {"max_tokens": 10}),
        ({"max_new_tokens": 10, "min_new_tokens": 10}, False, {"max_tokens": 10, "min_tokens": 10}),
        ({"max_new_tokens": 10, "min_new_tokens": 2}, True, {"max_tokens": 10, "min_tokens": 2, "ignore_eos": True}),
    ],
)
def test_fixed_length_only_when_the_workload_asks_for_it(
    server: FakeOpenAIServer, generate_kwargs: dict[str, Any], ignore_eos: bool | None, sent: dict[str, Any]
) -> None:
    """AIEnergyScore's reasoning budget (max 8192, min 1; 4000 fits this server) must let the model stop at EOS:
    `ignore_eos` only for a fixed length (min == max) unless backend.ignore_eos says otherwise; `min_tokens` carries
    the lower bound."""
    options = {} if ignore_eos is None else {"ignore_eos": ignore_eos}
    config = make_config(server.url + "/v1", scenario={"generate_kwargs": generate_kwargs}, **options)
    with loaded(config) as backend:
        run_all(backend, ["q"], config)
        assert backend.describe()["load"]["ignore_eos"] is ("ignore_eos" in sent)
    body = server.bodies[-1]
    assert {k: body[k] for k in ("max_tokens", "min_tokens", "ignore_eos") if k in body} == sent


def test_sampling_keeps_the_temperature_and_ignore_eos_can_be_off() -> None:
    body = build_base_body("chat", "m", {"max_new_tokens": 4, "do_sample": True, "temperature": 0.7}, False)
    assert body["temperature"] == 0.7 and "ignore_eos" not in body and "min_tokens" not in body


def test_reserved_keys_and_beam_search_are_rejected(server: FakeOpenAIServer) -> None:
    with pytest.raises(ConfigError, match="'stream' is set by the vllm backend"):
        OpenAIHTTPBackend(make_config(server.url, scenario={"generate_kwargs": {"stream": False}}))
    with pytest.raises(ConfigError, match="num_beams=1 only"):
        OpenAIHTTPBackend(make_config(server.url, scenario={"generate_kwargs": {"num_beams": 4}}))


def test_reasoning_fields_come_from_the_formatter(server: FakeOpenAIServer) -> None:
    scenario = {"reasoning": True, "reasoning_format": "harmony", "reasoning_params": {"reasoning_effort": "high"}}
    config = make_config(server.url + "/v1", api="chat", scenario=scenario)
    with loaded(config) as backend:
        run_all(backend, ["think"], config)
        assert backend.describe()["prompt_format"]["formatter"]["family"] == "harmony"
    body = server.bodies[-1]
    assert body["reasoning_effort"] == "high" and body["chat_template_kwargs"] == {"reasoning_effort": "high"}
    assert body["messages"] == [{"role": "user", "content": "think"}]
    completions = make_config(server.url + "/v1", api="completions", scenario=scenario)
    with loaded(completions) as backend:
        run_all(backend, ["think"], completions)
    # A completions endpoint gets the Harmony text itself, ending where the assistant starts to write.
    assert server.bodies[-1]["prompt"] == (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Reasoning: high\n\n# Valid channels: analysis, commentary, final. Channel must be included for every "
        "message.<|end|><|start|>user<|message|>think<|end|><|start|>assistant"
    )
    assert "reasoning_effort" not in server.bodies[-1] and "chat_template_kwargs" not in server.bodies[-1]


REASONING_MODELS = ["HuggingFaceTB/SmolLM3-3B", "Qwen/Qwen3-8B", "ByteDance-Seed/Seed-OSS-36B-Instruct"]


@pytest.fixture(scope="module")
def reasoning_server() -> Iterator[FakeOpenAIServer]:
    """A server that serves reasoning models under their hub ids, so the format is chosen from the model name."""
    with FakeOpenAIServer(models=REASONING_MODELS) as fake:
        yield fake


@pytest.mark.parametrize(
    ("reasoning", "params", "messages"),
    [
        (False, None, [{"role": "system", "content": "/no_think"}, {"role": "user", "content": "q"}]),
        (
            True,
            {"system_prompt": "Be brief."},
            [{"role": "system", "content": "/think\nBe brief."}, {"role": "user", "content": "q"}],
        ),
    ],
)
def test_system_flag_reaches_the_server_in_the_system_message(
    reasoning_server: FakeOpenAIServer, reasoning: bool, params: dict[str, Any] | None, messages: list[dict[str, str]]
) -> None:
    scenario = {"reasoning": reasoning, "reasoning_params": params}
    config = make_config(reasoning_server.url + "/v1", api="chat", model="HuggingFaceTB/SmolLM3-3B", scenario=scenario)
    with loaded(config) as backend:
        run_all(backend, ["q"], config)
    body = reasoning_server.bodies[-1]
    assert body["messages"] == messages
    assert "chat_template_kwargs" not in body and "extra_body" not in body


@pytest.mark.parametrize(
    ("model_name", "scenario", "template_kwargs"),
    [
        ("Qwen/Qwen3-8B", {"reasoning": True}, {"enable_thinking": True}),
        ("Qwen/Qwen3-8B", {}, {"enable_thinking": False}),
        # AIEnergyScore passes the switch as a reasoning parameter.
        ("Qwen/Qwen3-8B", {"reasoning_params": {"enable_thinking": True}}, {"enable_thinking": True}),
        (
            "ByteDance-Seed/Seed-OSS-36B-Instruct",
            {"reasoning": True, "reasoning_params": {"thinking_budget": 512}},
            {"enable_thinking": True, "thinking_budget": 512},
        ),
    ],
)
def test_template_parameter_reaches_the_server_as_chat_template_kwargs(
    reasoning_server: FakeOpenAIServer, model_name: str, scenario: dict[str, Any], template_kwargs: dict[str, Any]
) -> None:
    config = make_config(reasoning_server.url + "/v1", api="chat", model=model_name, scenario=scenario)
    with loaded(config) as backend:
        run_all(backend, ["q"], config)
    body = reasoning_server.bodies[-1]
    assert body["messages"] == [{"role": "user", "content": "q"}]
    assert body["chat_template_kwargs"] == template_kwargs
    assert "extra_body" not in body


def test_extra_body_is_merged_into_the_request_never_sent_as_a_field(reasoning_server: FakeOpenAIServer) -> None:
    extra = {"extra_body": {"chat_template_kwargs": {"custom_flag": 1}, "top_k": 5}}
    scenario = {"reasoning": True, "generate_kwargs": {"max_new_tokens": 2, "min_new_tokens": 2, **extra}}
    config = make_config(reasoning_server.url + "/v1", api="chat", model="Qwen/Qwen3-8B", scenario=scenario)
    with loaded(config) as backend:
        run_all(backend, ["q"], config)
    body = reasoning_server.bodies[-1]
    assert "extra_body" not in body and body["top_k"] == 5
    assert body["chat_template_kwargs"] == {"custom_flag": 1, "enable_thinking": True}


@pytest.mark.parametrize(
    ("generate_kwargs", "message"),
    [
        (
            {"chat_template_kwargs": {"enable_thinking": False}},
            r"chat_template_kwargs\.enable_thinking: False contradicts the template_param reasoning format's True",
        ),
        ({"extra_body": {"top_k": 5}, "top_k": 4}, r"extra_body\.top_k: also set in scenario\.generate_kwargs"),
        ({"extra_body": "top_k=5"}, r"extra_body: expected a mapping of request fields, got str"),
        (
            {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}},
            r"^scenario\.generate_kwargs\.extra_body\.chat_template_kwargs\.enable_thinking: False contradicts",
        ),
        # Fields the backend derives from the workload's settings may not override them unseen.
        (
            {"extra_body": {"max_tokens": 100}},
            r"^scenario\.generate_kwargs\.extra_body\.max_tokens: the vllm backend sets 'max_tokens' from "
            r"scenario\.generate_kwargs\.max_new_tokens; set that instead$",
        ),
        ({"ignore_eos": False}, r"^scenario\.generate_kwargs\.ignore_eos: .* from backend\.ignore_eos"),
        (
            {"temperature": 0.7},
            r"^scenario\.generate_kwargs\.temperature: 0\.7 with greedy decoding .* set scenario\.generate_kwargs\."
            r"do_sample: true to sample$",
        ),
    ],
)
def test_request_fields_that_contradict_the_reasoning_format_are_refused(
    reasoning_server: FakeOpenAIServer, generate_kwargs: dict[str, Any], message: str
) -> None:
    scenario = {"reasoning": True, "generate_kwargs": {"max_new_tokens": 2, "min_new_tokens": 2, **generate_kwargs}}
    with pytest.raises(ConfigError, match=message):
        config = make_config(reasoning_server.url + "/v1", api="chat", model="Qwen/Qwen3-8B", scenario=scenario)
        OpenAIHTTPBackend(config)


def test_a_think_prefix_continues_the_assistant_message(server: FakeOpenAIServer) -> None:
    scenario = {"reasoning": True, "reasoning_format": "think_prefix"}
    backend = OpenAIHTTPBackend(make_config(server.url, api="chat", scenario=scenario))
    fields = backend.render("why?")
    assert isinstance(fields, dict)
    assert fields["messages"][-1] == {"role": "assistant", "content": "<think>\n"}
    assert fields["continue_final_message"] is True and fields["add_generation_prompt"] is False
    # On a completions endpoint the prefix follows the model's template text, never the bare prompt.
    plain = OpenAIHTTPBackend(make_config(server.url, api="completions", scenario=scenario))
    assert plain.render("why?") == "<｜User｜>why?<｜Assistant｜><think>\n"


@pytest.mark.parametrize(
    ("backend_options", "scenario", "message"),
    [
        ({"api": "completions"}, {"chat_template": True}, "set backend.api=chat"),
        ({"api": "chat"}, {"chat_template": False}, "set backend.api=completions"),
        ({"api": "completions"}, {"reasoning": True, "reasoning_format": "template_param"}, "needs chat messages"),
    ],
)
def test_prompt_format_conflicts_are_config_errors(
    server: FakeOpenAIServer, backend_options: dict[str, Any], scenario: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        OpenAIHTTPBackend(make_config(server.url, scenario=scenario, **backend_options))


def test_an_option_the_server_rejects_fails_at_load(server: FakeOpenAIServer) -> None:
    server.rejected_fields = {"top_k"}
    config = make_config(
        server.url, scenario={"generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 4, "top_k": 2}}
    )
    with pytest.raises(ConfigError, match="rejected a request: HTTP 400: unsupported field: top_k"):
        OpenAIHTTPBackend(config).load()


# -- token counts and timing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["completions", "chat"])
def test_token_counts_come_from_usage_even_when_chunks_merge_tokens(api: str) -> None:
    with FakeOpenAIServer(models=[MODEL], tokens_per_chunk=4) as fake:
        config = make_config(fake.url + "/v1", tokens=10, api=api)
        with loaded(config) as backend:
            records = run_all(backend, ["one two three", "four five"], config)
    assert [r.completion_tokens for r in records] == [10, 10]
    assert [len(r.chunk_times_s or []) for r in records] == [3, 3]  # 4 + 4 + 2 tokens
    assert [r.prompt_tokens for r in records] == ([3, 2] if api == "completions" else [6, 5])
    assert all(r.ok and r.error_class is None for r in records)


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_ttft_is_the_first_output_chunk_even_when_its_text_is_empty(api: str) -> None:
    # The first token decodes to "" and comes 0.15 s after the request; the next one 0.3 s later. The chat role
    # announcement (sent at once) is not output and does not count.
    with FakeOpenAIServer(models=[MODEL], empty_first_token=True, first_token_delay_s=0.15, token_delay_s=0.3) as fake:
        config = make_config(fake.url + "/v1", tokens=2, api=api)
        with loaded(config) as backend:
            (record,) = run_all(backend, ["x"], config)
    assert record.ttft_s is not None and 0.14 <= record.ttft_s < 0.35
    assert record.chunk_times_s is not None and len(record.chunk_times_s) == 2
    assert record.first_token_s == record.chunk_times_s[0]
    assert record.completion_tokens == 2


def test_latency_metrics_in_describe(server: FakeOpenAIServer) -> None:
    server.token_delay_s = 0.002
    config = make_config(server.url + "/v1", tokens=6, concurrency=2, slo_ttft_s=10.0, slo_e2e_s=1e-6)
    with loaded(config) as backend:
        run_all(backend, [f"p{i}" for i in range(6)], config)
        info = backend.describe()
    measured = info["http"]["measured"]
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        assert set(measured[key]) >= {"mean", "median", "std", "p90", "p99"}
    assert measured["itl_s"]["count"] == 6 * 5 and measured["tpot_s"]["count"] == 6
    assert measured["ok"] == 6 and measured["output_tokens"] == 36
    assert measured["request_throughput_per_s"] > 0 and measured["output_token_throughput_per_s"] > 0
    assert measured["goodput"]["good_requests"] == 0  # no request meets a 1 µs end-to-end objective
    json.dumps(info)  # JSON-safe


def test_goodput_counts_requests_within_every_objective(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", slo_ttft_s=5.0, slo_tpot_s=5.0, slo_e2e_s=5.0)
    with loaded(config) as backend:
        run_all(backend, ["a", "b", "[fault:http_500]"], config)
        goodput = backend.describe()["http"]["measured"]["goodput"]
    assert goodput["good_requests"] == 2 and goodput["share_of_requests"] == pytest.approx(2 / 3)


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
    # ...but retried apart: the seeds' waits differ by at least 50 ms at every retry (checked here), and so does what
    # the server saw, within scheduling noise.
    drawn = [list(itertools.accumulate(state.retry_waits_s)) for state in states]
    assert all(abs(x - y) >= 0.05 for x, y in zip(*drawn, strict=True)), drawn
    assert all(abs(x - y) >= 0.025 for x, y in zip(times["a"][1:], times["b"][1:], strict=True)), times


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


# -- model, readiness, keys ----------------------------------------------------------------------------------------
def test_a_model_that_is_not_served_is_an_error_listing_the_served_models(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1").model_copy(deep=True)
    config.backend.model = "missing-model"
    with pytest.raises(BackendError, match=r"'missing-model' is not served .*served models: fake-model, other-model"):
        OpenAIHTTPBackend(config).load()


def test_load_waits_for_the_server_to_be_ready() -> None:
    with FakeOpenAIServer(models=[MODEL], not_ready_for_s=0.6) as fake:
        started = time.perf_counter()
        with loaded(make_config(fake.url, ready_timeout_s=10)):
            assert time.perf_counter() - started >= 0.5


def test_a_server_that_never_answers_fails_after_ready_timeout() -> None:
    config = make_config(f"http://127.0.0.1:{refused_port()}/v1", ready_timeout_s=0.6)
    started = time.perf_counter()
    with pytest.raises(BackendError, match=r"not ready after 0.6 s .*cannot connect"):
        OpenAIHTTPBackend(config).load()
    assert time.perf_counter() - started < 5


def test_readiness_falls_back_to_models_without_health() -> None:
    with FakeOpenAIServer(models=[MODEL], health=False) as fake, loaded(make_config(fake.url)) as backend:
        assert backend.describe()["server"]["served_model"] == MODEL


def test_max_new_tokens_must_fit_the_served_context() -> None:
    with (
        FakeOpenAIServer(models=[MODEL], max_model_len=64) as fake,
        pytest.raises(ConfigError, match="does not fit the served model's context of 64"),
    ):
        OpenAIHTTPBackend(make_config(fake.url, tokens=64)).load()


def test_api_key_is_sent_but_never_reported_or_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(models=[MODEL], api_key=SECRET) as fake:
        config = make_config(fake.url + "/v1", api_key=SECRET).model_copy(
            update={"output_dir": str(tmp_path / "out")}, deep=True
        )
        config.reporter.output_file = str(tmp_path / "results.csv")
        result = BenchmarkRunner(config).run()
    assert set(fake.auth_headers) == {f"Bearer {SECRET}"}
    assert result["status"] == "completed" and result["model"]["api_key"] == "set (redacted)"
    assert SECRET not in json.dumps(result)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path
    assert SECRET not in caplog.text


def test_api_key_from_the_environment_and_a_refused_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(models=[MODEL], api_key=SECRET) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        with loaded(make_config(fake.url)) as backend:
            assert backend.describe()["api_key_source"] == "env:OPENAI_API_KEY"
        monkeypatch.setenv("OPENAI_API_KEY", "wrong-key-value")
        with pytest.raises(BackendError, match="refused the request \\(HTTP 401\\)") as raised:
            OpenAIHTTPBackend(make_config(fake.url)).load()
    assert "wrong-key-value" not in str(raised.value)


def test_a_key_echoed_by_the_server_is_redacted_from_errors(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", api_key=SECRET)
    backend = OpenAIHTTPBackend(config)
    assert SECRET not in backend._redact(f"HTTP 400: bad key {SECRET}")


# -- energy scope --------------------------------------------------------------------------------------------------
def test_gpus_are_metered_for_a_local_server_unless_device_is_cpu(server: FakeOpenAIServer) -> None:
    local = server.url + "/v1"
    # device auto (AIEnergyScore's vLLM path sets no device): every GPU visible here is the server's (None: all)
    auto = OpenAIHTTPBackend(make_config(local))
    assert auto.metered_gpu_ids() is None and "every GPU visible here" in auto._energy_scope()["note"]
    assert OpenAIHTTPBackend(make_config(local, device_ids=[1])).metered_gpu_ids() == [1]
    assert OpenAIHTTPBackend(make_config(local, device="cpu")).metered_gpu_ids() == []
    assert OpenAIHTTPBackend(make_config(local, device="cuda", device_ids=[1, 2])).metered_gpu_ids() == [1, 2]
    assert OpenAIHTTPBackend(make_config(local, device="cuda:3")).metered_gpu_ids() == [3]
    remote = OpenAIHTTPBackend(make_config("http://192.0.2.10:8000/v1", device="cuda"))  # TEST-NET: never contacted
    assert remote.metered_gpu_ids() == []
    scope = remote._energy_scope()
    assert scope["server_on_this_host"] is False and "not the server's" in scope["note"]


def test_host_is_local() -> None:
    assert host_is_local("127.0.0.1") and host_is_local("localhost")
    assert not host_is_local("192.0.2.10")


# -- through the runner --------------------------------------------------------------------------------------------
def test_runner_end_to_end_with_the_fake_server(server: FakeOpenAIServer, tmp_path: Path) -> None:
    config = runner_config(
        tmp_path,
        server.url + "/v1",
        backend={"concurrency": 4},
        scenario={
            "num_samples": 12,
            "generate_kwargs": {"max_new_tokens": 6, "min_new_tokens": 6},
            "warmup_runs": 2,
            "repetitions": 2,
        },
        name="http-fake",
    )
    result = BenchmarkRunner(config).run()
    assert result["status"] == "completed"
    assert result["summary"]["successful_prompts"] == 24 and result["summary"]["total_completion_tokens"] == 144
    http = result["model"]["http"]
    assert [run["label"] for run in http["runs"]] == [
        "warmup",
        "prefill-0",
        "generate-0",
        "prefill-1",
        "generate-1",
    ]
    assert http["runs"][1]["output_tokens"] == 12  # prefill: one token per prompt
    assert http["measured"]["ok"] == 24 and len(http["steady_state"]) == 2
    lines = (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 48 and first["error_class"] is None and len(first["chunk_times_s"]) >= 1


def test_set_phase_is_the_only_source_of_a_runs_label(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", scenario={"warmup_runs": 1, "measure_prefill": True})
    with loaded(config) as backend:
        backend.set_phase("generate-0")
        run_all(backend, ["a", "b"], config)
        backend.set_phase("custom")
        run_all(backend, ["c"], config)
        run_all(backend, ["d"], config)  # no name given: never guessed, named by its position
        labels = [run["label"] for run in backend.describe()["http"]["runs"]]
    assert labels == ["generate-0", "custom", "run-2"]


def test_runner_writes_a_partial_report_when_a_hopeless_run_stops(server: FakeOpenAIServer, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"text": f"[fault:http_500] {i}"}) + "\n" for i in range(10)))
    config = runner_config(
        tmp_path,
        server.url,
        backend={"max_consecutive_failures": 3},
        scenario={"dataset_name": str(prompts), "num_samples": 10, "warmup_runs": 0, "measure_prefill": False},
    )
    with pytest.raises(BackendError, match="3 requests failed in a row"):
        BenchmarkRunner(config).run()
    report = json.loads((tmp_path / "out" / "benchmark_report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert report["model"]["http"]["errors_by_class"] == {hc.HTTP_5XX: 3}
    assert report["model"]["http"]["runs"][0]["requests_not_sent"] == 7


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


def test_client_capacity_benchmark_runs(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "client_capacity.py"
    out = tmp_path / "capacity.json"
    command = [sys.executable, str(script), "--concurrency", "2", "--requests", "40", "--rounds", "1"]
    command += ["--drift-requests", "20", "--drift-rate", "200", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| 2 | ai_energy_benchmarks |" in result.stdout and "schedule drift at 200 requests/s" in result.stdout
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["rows"][0]["cpu_ratio"] > 0 and figures["drift"]["count"] == 20


def test_runner_with_meters_reports_steady_state_energy_as_an_estimate(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    config = runner_config(
        tmp_path,
        server.url + "/v1",
        backend={"concurrency": 4},
        scenario={
            "num_samples": 40,
            "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8},
            "warmup_runs": 1,
            "measure_prefill": False,
        },
        metrics={},  # CodeCarbon, the default meter
        name="http-energy",
    )
    result = BenchmarkRunner(config).run()
    energy = result["energy"]
    # A server on this host with backend.device auto: no GPU is claimed as the server's.
    assert result["model"]["energy_scope"]["server_on_this_host"] is True
    assert energy["sources"]["gpu"] == "none:no-gpu-metered"
    steady = energy["steady_state"]
    assert steady["source"] == "estimated:time-share-of-window"
    (window,) = steady["windows"]
    assert window["label"] == "generate-0" and window["reached"] is True
    assert 0 < window["share_of_window"] <= 1
    assert window["energy_wh"] == pytest.approx(energy["total_energy_wh"] * window["share_of_window"])
    assert steady["joules_per_output_token"] == pytest.approx(window["energy_wh"] * 3600 / window["output_tokens"])


STEADY_NVML_RUN = """
import json, os, sys, threading, time
from pathlib import Path
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml, ramp_trace
from ai_energy_benchmarks.testing.fake_powercap import FakePowercap
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.runner import BenchmarkRunner

out = Path(sys.argv[1])
out.mkdir(parents=True)
with_rapl = sys.argv[2:] == ["rapl"]
# 40 prompts; the last one stalls 1.5 s mid-stream, so the window ends with a long drain after the steady state.
prompts = [f"prompt {i}" for i in range(39)] + ["prompt 39 [fault:stall_mid:1.5]"]
(out / "prompts.txt").write_text("\\n".join(prompts) + "\\n", encoding="utf-8")
# Power falls steadily (900 W to 100 W over 10 s), so the steady state, early in the window, draws more than the
# window's mean: a time share of the window's energy underestimates it.
trace = ramp_trace(900.0, 100.0, 0.0, 10.0)
# With RAPL: a simulated CPU package drawing a tenth of the GPU's power, its counter written every 2 ms (atomically).
tree = FakePowercap(out / "powercap", dram=False)
stop = threading.Event()

def drive_cpu(origin_s):
    while not stop.wait(0.002):
        path = tree.energy_file(0)
        path.with_name("tmp").write_text(f"{round(trace.energy_j(0.0, time.perf_counter() - origin_s) * 1e5)}\\n")
        os.replace(path.with_name("tmp"), path)

with FakeNvml([FakeGpu(power=trace)]) as fake, FakeOpenAIServer(
    models=["fake-model"], token_delay_s=0.01
) as server:
    driver = threading.Thread(target=drive_cpu, args=(fake.start_s,), daemon=True)
    driver.start()
    config = BenchmarkConfig.model_validate({
        "name": "steady-nvml",
        "output_dir": str(out / "run"),
        "backend": {"type": "vllm", "model": "fake-model", "endpoint": server.url + "/v1",
                    "device": "cuda", "device_ids": [0], "concurrency": 4},
        "scenario": {"dataset_name": str(out / "prompts.txt"), "num_samples": 40,
                     "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8}, "measure_prefill": False},
        "metrics": {"type": ["nvml", "rapl", "codecarbon"] if with_rapl else ["nvml", "codecarbon"],
                    "rapl_root": str(tree.root)},
        "reporter": {"output_file": str(out / "results.csv")},
    })
    result = BenchmarkRunner(config).run()
    stop.set()
    steady = result["model"]["http"]["steady_state"][0]
    truth_j = fake.energy_j(0, steady["start_s"], steady["end_s"])  # the fake keeps perf_counter time, as the meters
summary = format_summary(result)
print(json.dumps({"truth_j": truth_j, "cpu_truth_j": truth_j / 10, "energy": result["energy"], "summary": summary}))
"""


def run_steady_script(tmp_path: Path, *options: str) -> dict[str, Any]:
    """Run STEADY_NVML_RUN in a fresh interpreter (the simulated NVML must be in place before CodeCarbon loads)."""
    done = subprocess.run(
        [sys.executable, "-c", STEADY_NVML_RUN, str(tmp_path / "out"), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_steady_state_gpu_energy_is_measured_over_the_interval(tmp_path: Path) -> None:
    """With NVML on a (simulated) server GPU, the steady state's GPU energy is read back from the counter record
    over the steady interval itself: it matches the truth (within its bounds) where the time share of the window
    does not. CodeCarbon's CPU and RAM stay time-share estimates, and the report and console say which is which."""
    out = run_steady_script(tmp_path)
    energy = out["energy"]
    steady = energy["steady_state"]
    (window,) = steady["windows"]
    assert window["share_of_window"] < 0.75  # the drain is a good part of the window
    gpu, cpu = window["devices"]["gpu"], window["devices"]["cpu"]
    truth_wh = out["truth_j"] / 3600.0
    assert gpu["source"] == "measured:nvml-energy-counter"
    assert gpu["energy_wh"] == pytest.approx(truth_wh, rel=0.005)
    assert gpu["lower_wh"] <= truth_wh * (1 + 1e-4) and truth_wh <= gpu["upper_wh"] * (1 + 1e-4)
    time_share_wh = energy["gpu_energy_wh"] * window["share_of_window"]
    assert time_share_wh < truth_wh * 0.97  # what the estimate alone would have said
    assert cpu["source"] == "estimated:time-share-of-window" and cpu["lower_wh"] is None
    assert window["devices"]["ram"]["source"] == "estimated:time-share-of-window"
    assert window["energy_wh"] == pytest.approx(sum(d["energy_wh"] for d in window["devices"].values()))
    assert steady["is_measured"] is False  # CPU and RAM are estimates
    assert steady["source"] == "estimated:time-share-of-window+measured:nvml-energy-counter"
    assert "gpu measured over the interval; cpu, ram ESTIMATE: time share of the window" in out["summary"]


def test_steady_state_cpu_energy_is_measured_over_the_interval_with_rapl(tmp_path: Path) -> None:
    """With RAPL reading the (simulated) CPU package as well, the steady state's GPU and CPU energy are both read
    back over the interval; only CodeCarbon's RAM model stays a time-share estimate."""
    out = run_steady_script(tmp_path, "rapl")
    energy = out["energy"]
    assert energy["sources"]["cpu"] == "measured:rapl"
    (window,) = energy["steady_state"]["windows"]
    cpu = window["devices"]["cpu"]
    cpu_truth_wh = out["cpu_truth_j"] / 3600.0
    assert cpu["source"] == "measured:rapl"
    assert cpu["energy_wh"] == pytest.approx(cpu_truth_wh, rel=0.02)  # the counter moves in 2 ms steps here
    assert cpu["lower_wh"] <= cpu_truth_wh * 1.01 and cpu_truth_wh <= cpu["upper_wh"] * 1.01
    assert window["devices"]["gpu"]["source"] == "measured:nvml-energy-counter"
    assert window["devices"]["ram"]["source"] == "estimated:time-share-of-window"
    assert "gpu, cpu measured over the interval; ram ESTIMATE: time share of the window" in out["summary"]


def test_idle_baseline_of_a_gpu_at_constant_power(tmp_path: Path) -> None:
    """A (simulated) server GPU that draws 60 W whatever it does: the idle baseline finds 60 W, the measured energy
    is 60 W x the measured duration, and nothing of it is active energy (figures from the setup, not the formula)."""
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    with FakeNvml([FakeGpu(power=60.0)]), FakeOpenAIServer(models=[MODEL], token_delay_s=0.002) as fake:
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            backend={"device": "cuda", "device_ids": [0], "concurrency": 2},
            scenario={"num_samples": 6, "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8}},
            metrics={"type": "nvml", "idle_seconds": 0.5},
        )
        result = BenchmarkRunner(config).run()
    energy, baseline = result["energy"], result["energy"]["idle_baseline"]
    measured_s = result["summary"]["total_duration_seconds"]
    assert energy["sources"]["gpu"] == "measured:nvml-energy-counter"
    assert baseline["power_w"]["gpu"] == pytest.approx(60.0, rel=0.002)
    assert energy["gpu_energy_wh"] == pytest.approx(60.0 * measured_s / 3600, rel=0.01)
    assert abs(baseline["active_energy_wh"]["gpu"]) < 0.01 * energy["gpu_energy_wh"]
    assert baseline["idle_share"] == pytest.approx(1.0, abs=0.01)


def test_reasoning_and_answer_tokens_are_counted_apart(tmp_path: Path) -> None:
    """A server that streams reasoning as `reasoning_content` (and says so in usage): TTFT is the first reasoning
    chunk, and the report splits reasoning from answer tokens."""
    with FakeOpenAIServer(models=[MODEL], reasoning_tokens=5, first_token_delay_s=0.05) as fake:
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            backend={"api": "chat"},
            scenario={
                "num_samples": 3,
                "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8},
                "warmup_runs": 0,
                "measure_prefill": False,
            },
            name="http-reasoning",
        )
        result = BenchmarkRunner(config).run()
    summary = result["summary"]
    assert summary["total_completion_tokens"] == 24
    assert summary["total_reasoning_tokens"] == 15 and summary["total_answer_tokens"] == 9
    assert summary["reasoning_tokens_from"] == "usage"
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    assert all(row["reasoning_tokens"] == 5 for row in rows)
    assert all(row["ttft_s"] is not None and row["ttft_s"] >= 0.05 for row in rows)


def test_time_to_first_token_counts_the_first_reasoning_chunk() -> None:
    """Five reasoning chunks 30 ms apart precede the answer: TTFT is the first reasoning chunk's arrival, at least
    120 ms before the first answer chunk's."""
    with FakeOpenAIServer(models=[MODEL], reasoning_tokens=5, token_delay_s=0.03) as fake:
        config = make_config(fake.url + "/v1", tokens=7, api="chat")
        with loaded(config) as backend:
            records = run_all(backend, ["a", "b"], config)
    for record in records:
        assert record.ok and record.chunk_times_s is not None and len(record.chunk_times_s) == 7
        first_answer_s = record.chunk_times_s[5]
        assert record.first_token_s == record.chunk_times_s[0]
        assert first_answer_s - record.first_token_s >= 0.12


def test_reasoning_tokens_counted_from_chunks_when_usage_is_missing() -> None:
    """Without a usage block the split comes from counting `reasoning_content` chunks, labelled as such."""
    with FakeOpenAIServer(models=[MODEL], reasoning_tokens=3) as fake:
        config = make_config(fake.url + "/v1", tokens=8, api="chat")
        with loaded(config) as backend:
            (record,) = run_all(backend, ["[fault:no_usage] q"], config)
    assert record.ok and record.completion_tokens == 8
    assert record.reasoning_tokens == 3 and record.reasoning_tokens_from == "chunks"


def test_without_reasoning_marks_the_split_is_unknown(server: FakeOpenAIServer, tmp_path: Path) -> None:
    config = make_config(server.url + "/v1", tokens=3, api="chat")
    with loaded(config) as backend:
        records = run_all(backend, ["a", "b"], config)
    assert all(r.reasoning_tokens is None for r in records)


# -- the server's answers are checked, not believed ------------------------------------------------------------------
def test_check_answer_believes_only_what_the_request_and_the_stream_allow() -> None:
    body = {"model": MODEL, "max_tokens": 8, "min_tokens": 8}
    assert hc.check_answer(8, 8, {MODEL}, body, MODEL) == (8, [])
    assert hc.check_answer(8, 2, {MODEL}, body, MODEL) == (8, [])  # several tokens per chunk is normal
    assert hc.check_answer(100_000, 1, {MODEL}, body, MODEL) == (1, [hc.USAGE_OVER_MAX_TOKENS, hc.BELOW_MIN_TOKENS])
    assert hc.check_answer(3, 8, {MODEL}, body, MODEL) == (8, [hc.USAGE_BELOW_CHUNKS])
    assert hc.check_answer(5, 5, {MODEL}, body, MODEL) == (5, [hc.BELOW_MIN_TOKENS])
    assert hc.check_answer(10, 10, {MODEL}, body, MODEL) == (
        10,
        [hc.USAGE_OVER_MAX_TOKENS, hc.CHUNKS_OVER_MAX_TOKENS],
    )
    assert hc.check_answer(8, 9, {MODEL}, body, MODEL) == (8, [])  # a last chunk with only a finish_reason
    assert hc.check_answer(8, 8, {MODEL, "other"}, body, MODEL) == (8, [hc.WRONG_MODEL])
    assert hc.check_answer(None, 6, set(), body, MODEL) == (6, [hc.BELOW_MIN_TOKENS])
    free = {"model": MODEL, "max_tokens": 8}  # the model may stop early: no lower bound
    assert hc.check_answer(3, 3, {MODEL}, free, MODEL) == (3, [])
    assert hc.check_answer(3, 3, {MODEL}, free | {"ignore_eos": True}, MODEL) == (3, [hc.BELOW_MIN_TOKENS])


def test_lying_usage_and_a_wrong_model_from_the_test_server_are_flagged_and_counted(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    lines = ["fine one", "[fault:lying_usage:100000] big", "[fault:wrong_model] who", "[fault:lying_usage:2] small"]
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with FakeOpenAIServer(models=[MODEL]) as fake:
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            scenario={
                "dataset_name": str(prompts),
                "num_samples": 4,
                "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8},
                "warmup_runs": 0,
                "measure_prefill": False,
            },
        )
        result = BenchmarkRunner(config).run()
    rows = {
        row["index"]: row
        for row in map(json.loads, (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines())
    }
    assert rows[0]["contradictions"] is None and rows[0]["completion_tokens"] == 8
    assert rows[1]["contradictions"] == [hc.USAGE_OVER_MAX_TOKENS]
    assert rows[1]["usage_completion_tokens"] == 100_000 and rows[1]["completion_tokens"] == 8  # eight chunks
    assert rows[2]["contradictions"] == [hc.WRONG_MODEL] and rows[2]["completion_tokens"] == 8
    assert rows[3]["contradictions"] == [hc.USAGE_BELOW_CHUNKS] and rows[3]["usage_completion_tokens"] == 2
    assert all(row["error"] is None for row in rows.values())
    # Throughput counts what streamed, not the claim: 4 x 8 tokens.
    assert result["summary"]["total_completion_tokens"] == 32
    checks = result["model"]["http"]["measured"]["answer_checks"]
    assert checks["contradicted"] == 3 and checks["usage_not_believed"] == 2
    assert checks["by_kind"] == {hc.USAGE_BELOW_CHUNKS: 1, hc.USAGE_OVER_MAX_TOKENS: 1, hc.WRONG_MODEL: 1}
    assert checks["warning"] in result["warnings"]
    assert "3 of 4 server answers contradicted" in checks["warning"]


def test_a_lying_server_of_our_own_cannot_inflate_throughput(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A server written here (not the package's): one chunk, usage claiming 100,000 tokens, another model's name,
    for max_tokens 8. The run reports what streamed and says what was wrong."""
    import threading

    from aiohttp import web

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        events: list[dict[str, Any]] = [
            {"object": "text_completion", "model": "liar-70b", "choices": [{"index": 0, "text": " hi"}]},
            {
                "object": "text_completion",
                "model": "liar-70b",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 100_000, "total_tokens": 100_003},
            },
        ]
        if body.get("max_tokens") == 1:  # the backend's check request before measuring: answer it honestly
            events = [{"object": "text_completion", "model": MODEL, "choices": [{"index": 0, "text": " x"}]}]
        for event in events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/completions", completions)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        holder["port"] = runner.addresses[0][1]
        holder["loop"], holder["runner"] = loop, runner
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        config = runner_config(
            tmp_path,
            f"http://127.0.0.1:{holder['port']}/v1",
            backend={"ready_timeout_s": 5, "ignore_eos": False, "api": "completions"},
            scenario={
                "num_samples": 3,
                "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 1},
                "warmup_runs": 0,
                "measure_prefill": False,
            },
        )
        with caplog.at_level(logging.WARNING, logger="ai_energy_benchmarks.backends.http_client"):
            result = BenchmarkRunner(config).run()
    finally:
        holder["loop"].call_soon_threadsafe(holder["loop"].stop)
        thread.join(10)
    summary = result["summary"]
    assert summary["total_completion_tokens"] == 3  # one streamed chunk each, not 300,000
    assert summary["throughput_output_tokens_per_second"] <= 3 / summary["total_duration_seconds"] + 1e-9
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(row["contradictions"] == [hc.USAGE_OVER_MAX_TOKENS, hc.WRONG_MODEL] for row in rows)
    assert all(row["usage_completion_tokens"] == 100_000 and row["completion_tokens"] == 1 for row in rows)
    checks = result["model"]["http"]["measured"]["answer_checks"]
    assert checks["contradicted"] == 3 and checks["by_kind"] == {hc.USAGE_OVER_MAX_TOKENS: 3, hc.WRONG_MODEL: 3}
    assert any("contradicted the request or the stream" in w for w in result["warnings"])
    assert any("usage claimed 100000 output tokens, 1 counted from the stream" in r.message for r in caplog.records)
