"""What the HTTP backend sends: request bodies, fixed lengths, reasoning formats and options the server rejects.

Against the local fake server: fast, no vLLM needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from http_support import MODEL, fake_server, loaded, make_config, run_all

from ai_energy_benchmarks.backends.openai_http import (
    OpenAIHTTPBackend,
    build_base_body,
)
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


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
