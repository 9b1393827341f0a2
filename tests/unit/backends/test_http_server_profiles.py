"""Server profiles of the HTTP backend (vllm, sglang, tgi, openai) against the test server speaking each of them:
detection, request extensions sent or refused, each server's Prometheus series, and a profile that does not match
the server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend
from ai_energy_benchmarks.backends.servers import detect, get_profile, profiles
from ai_energy_benchmarks.backends.servers.base import ServerFacts
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import BackendError, ConfigError
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

MODEL = "fake-model"
SERVERS = ("vllm", "sglang", "tgi", "openai")


def make_config(
    endpoint: str, tokens: int = 6, scenario: dict[str, Any] | None = None, **backend: Any
) -> BenchmarkConfig:
    data: dict[str, Any] = {
        "generate_kwargs": {"max_new_tokens": tokens, "min_new_tokens": tokens},
        "warmup_runs": 0,
        "measure_prefill": False,
    }
    data.update(scenario or {})
    return BenchmarkConfig.model_validate(
        {
            "backend": {"type": "vllm", "model": MODEL, "endpoint": endpoint, **backend},
            "scenario": data,
            "metrics": {"enabled": False},
        }
    )


@contextmanager
def speaking(server: str, **options: Any) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(models=[MODEL], server=server, **options) as fake:
        yield fake


def run_once(config: BenchmarkConfig, prompts: list[str]) -> dict[str, Any]:
    backend = OpenAIHTTPBackend(config)
    backend.load()
    try:
        backend.set_phase("generate-0")
        records = list(backend.run(prompts, config.scenario.generate_kwargs.as_kwargs()))
        assert all(r.ok for r in records), [r.error for r in records]
        return backend.describe()
    finally:
        backend.close()


def test_every_profile_is_registered_and_a_bad_name_lists_them() -> None:
    assert list(profiles()) == ["openai", "sglang", "tgi", "vllm"]
    with pytest.raises(ConfigError) as caught:
        get_profile("ollama")
    message = str(caught.value)
    assert message == "backend.server: unknown server 'ollama' (choose openai, sglang, tgi, vllm, or leave it unset)"
    with pytest.raises(ConfigError, match=r"^backend\.server: unknown server 'trtllm'"):
        OpenAIHTTPBackend(make_config("http://127.0.0.1:9/v1", server="trtllm"))


@pytest.mark.parametrize(
    ("facts", "name", "why"),
    [
        (ServerFacts(metrics_text="# TYPE vllm:x gauge\nvllm:x 1\n"), "vllm", "'vllm:' series"),
        (ServerFacts(metrics_text="sglang:num_running_reqs 0\n"), "sglang", "'sglang:' series"),
        (ServerFacts(metrics_text="tgi_queue_size 0\n"), "tgi", "'tgi_' series"),
        (ServerFacts(models=[{"id": "m", "owned_by": "vllm"}]), "vllm", "owned_by 'vllm'"),
        (ServerFacts(models=[{"id": "m", "owned_by": "sglang"}]), "sglang", "owned_by 'sglang'"),
        (ServerFacts(info={"model_id": "m", "max_total_tokens": 2048}), "tgi", "/info"),
        (ServerFacts(metrics_text="python_gc_objects_collected_total 1\n", models=[{"owned_by": "me"}]), "openai", ""),
    ],
)
def test_detection_reads_metrics_owned_by_and_info(facts: ServerFacts, name: str, why: str) -> None:
    profile, reason = detect(facts)
    assert profile.name == name and why in reason


@pytest.mark.parametrize("server", SERVERS)
def test_each_server_is_detected_and_its_choice_recorded(server: str, caplog: pytest.LogCaptureFixture) -> None:
    with speaking(server) as fake, caplog.at_level(logging.INFO, logger="ai_energy_benchmarks"):
        info = run_once(make_config(fake.url + "/v1"), ["one two", "three"])
    chosen = info["server_profile"]
    assert chosen["name"] == server and chosen["chosen_by"].startswith("detected: ")
    assert any(f"server profile {server}: detected" in r.getMessage() for r in caplog.records)
    expected_version = {"vllm": "fake-0.1", "sglang": "fake-sglang-0.5", "tgi": "fake-tgi-3.0", "openai": None}
    assert info["server"].get("version") == expected_version[server]


@pytest.mark.parametrize("server", ["vllm", "sglang", "tgi"])
def test_each_servers_own_metrics_are_scraped_and_cross_checked(server: str) -> None:
    with speaking(server, token_delay_s=0.002) as fake:
        info = run_once(make_config(fake.url + "/v1", tokens=8), ["a b", "c d e", "f"])
    assert info["http"]["prometheus"]["available"] is True
    view = info["http"]["runs"][0]["prometheus"]
    check = view["cross_check"]
    assert check["server_output_tokens"] == check["client_output_tokens"] == 24 and check["agrees"] is True
    prefix = get_profile(server).metrics.prefix  # type: ignore[union-attr]
    assert all(name.startswith(prefix) for name in view["deltas"])
    assert view["num_requests_running"] is not None


def test_the_plain_api_has_no_metrics_and_no_health_route() -> None:
    with speaking("openai") as fake:
        info = run_once(make_config(fake.url + "/v1"), ["x"])
    assert info["http"]["prometheus"]["available"] is False
    assert "openai server profile has no Prometheus metrics" in info["http"]["prometheus"]["note"]
    assert "runs" in info["http"] and "prometheus" not in info["http"]["runs"][0]


@pytest.mark.parametrize(
    ("server", "extensions"),
    [
        ("vllm", {"min_tokens": 6, "ignore_eos": True}),
        ("sglang", {"min_tokens": 6, "ignore_eos": True}),
        ("tgi", {}),
        ("openai", {}),
    ],
)
def test_fixed_length_extensions_are_sent_only_to_servers_that_read_them(
    server: str, extensions: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with speaking(server) as fake, caplog.at_level(logging.WARNING, logger="ai_energy_benchmarks"):
        info = run_once(make_config(fake.url + "/v1", server=server), ["hello"])
    body = fake.bodies[-1]
    assert {key: body[key] for key in ("min_tokens", "ignore_eos") if key in body} == extensions
    not_sent = info["server_profile"]["not_sent"]
    assert not_sent == ([] if extensions else ["ignore_eos", "min_tokens"])
    assert info["server_profile"]["chosen_by"] == "backend.server"
    warned = [r.getMessage() for r in caplog.records if "does not send 'ignore_eos'" in r.getMessage()]
    assert len(warned) == (0 if extensions else 1)


def test_a_server_that_reads_no_extension_answers_in_its_own_length() -> None:
    """TGI drops ignore_eos unseen: the backend does not pretend the run had a fixed length."""
    with speaking("tgi", eos_after_tokens=3) as fake:
        info = run_once(make_config(fake.url + "/v1", tokens=8), ["hello"])
    assert info["http"]["measured"]["output_tokens"] == 3
    assert info["http"]["measured"]["answer_checks"]["contradicted"] == 0  # nothing asked that was not honoured


@pytest.mark.parametrize("server", ["tgi", "openai"])
def test_extensions_asked_for_by_name_are_refused_where_the_server_does_not_read_them(server: str) -> None:
    endpoint = "http://127.0.0.1:9/v1"  # never contacted: these are configuration errors
    with pytest.raises(ConfigError, match=rf"^backend\.ignore_eos: 'ignore_eos' is a request extension the {server} "):
        OpenAIHTTPBackend(make_config(endpoint, server=server, ignore_eos=True))
    kwargs = {"max_new_tokens": 4, "min_new_tokens": 1, "chat_template_kwargs": {"enable_thinking": False}}
    with pytest.raises(ConfigError, match=r"^scenario\.generate_kwargs\.chat_template_kwargs: .*servers that do: "):
        OpenAIHTTPBackend(make_config(endpoint, server=server, scenario={"generate_kwargs": kwargs}))
    thinking = {"generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 1}, "reasoning": True}
    config = make_config(endpoint, server=server, scenario=thinking).model_copy(deep=True)
    config.backend.model = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"  # a <think> prefix continues the assistant
    with pytest.raises(ConfigError, match=r"^scenario\.reasoning: .*'continue_final_message'"):
        OpenAIHTTPBackend(config)


def test_sglang_continues_the_assistant_message_without_vllms_add_generation_prompt() -> None:
    model = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    thinking = {"generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 1}, "reasoning": True}
    with FakeOpenAIServer(models=[model], server="sglang") as fake:
        config = make_config(fake.url + "/v1", scenario=thinking).model_copy(deep=True)
        config.backend.model = model
        backend = OpenAIHTTPBackend(config)
        backend.load()
        try:
            backend.set_phase("generate-0")
            list(backend.run(["why?"], config.scenario.generate_kwargs.as_kwargs()))
        finally:
            backend.close()
    body = fake.bodies[-1]
    assert body["continue_final_message"] is True and "add_generation_prompt" not in body
    assert body["messages"][-1]["role"] == "assistant"


def test_detection_reshapes_requests_for_the_server_found() -> None:
    """Unset, requests are first checked as vLLM's; a detected TGI gets none of vLLM's extensions."""
    with speaking("tgi") as fake:
        info = run_once(make_config(fake.url + "/v1"), ["hello"])
    assert info["server_profile"]["name"] == "tgi"
    assert all("ignore_eos" not in body and "min_tokens" not in body for body in fake.bodies)


def test_detection_without_metrics_uses_owned_by_or_tgis_info() -> None:
    for server in ("vllm", "sglang", "tgi"):
        with speaking(server, metrics=False) as fake:
            info = run_once(make_config(fake.url + "/v1"), ["x"])
        assert info["server_profile"]["name"] == server, server
        assert ("/info" if server == "tgi" else "owned_by") in info["server_profile"]["chosen_by"]


def test_configured_sglang_against_a_vllm_server_is_kept_warned_and_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with speaking("vllm") as fake, caplog.at_level(logging.WARNING, logger="ai_energy_benchmarks"):
        info = run_once(make_config(fake.url + "/v1", server="sglang"), ["hello"])
    mismatch = info["server"]["profile_mismatch"]
    assert mismatch.startswith("backend.server is sglang but the server looks like vllm (/metrics has 'vllm:' series)")
    assert any(r.getMessage() == mismatch for r in caplog.records)
    assert info["server"]["detected"]["profile"] == "vllm" and info["server_profile"]["name"] == "sglang"
    # SGLang's series are not there: the server's view is not reported, and says so
    assert info["http"]["prometheus"]["available"] is False
    assert "no SGLang Prometheus metrics" in info["http"]["prometheus"]["note"]
    assert fake.bodies[-1]["ignore_eos"] is True  # SGLang reads it too, so it is sent


def test_configured_vllm_against_the_plain_api_fails_at_load_naming_the_field() -> None:
    """The OpenAI API refuses arguments it does not know: the first request, before any window, says which."""
    with speaking("openai") as fake:
        backend = OpenAIHTTPBackend(make_config(fake.url + "/v1", server="vllm"))
        with pytest.raises(ConfigError, match="Unrecognized request argument supplied: ignore_eos"):
            backend.load()


def test_runner_records_the_profile_in_the_result(tmp_path: Path) -> None:
    with speaking("sglang") as fake:
        config = BenchmarkConfig.model_validate(
            {
                "name": "sglang-run",
                "output_dir": str(tmp_path / "out"),
                "backend": {"type": "vllm", "model": MODEL, "endpoint": fake.url + "/v1"},
                "scenario": {"num_samples": 4, "generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 4}},
                "metrics": {"enabled": False},
                "reporter": {"output_file": str(tmp_path / "results.csv")},
            }
        )
        result = BenchmarkRunner(config).run()
    assert result["status"] == "completed"
    assert result["model"]["server_profile"]["name"] == "sglang"
    assert result["model"]["server_profile"]["chosen_by"] == "detected: /metrics has 'sglang:' series"
    assert result["summary"]["total_completion_tokens"] == 16


def test_an_unreachable_server_is_still_a_backend_error_whatever_the_profile() -> None:
    config = make_config("http://127.0.0.1:9/v1", server="tgi", ready_timeout_s=0.5)
    with pytest.raises(BackendError, match="not ready after"):
        OpenAIHTTPBackend(config).load()


def test_server_is_a_setting_of_the_http_backend_only() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="server applies to backend type 'vllm' only"):
        BenchmarkConfig.model_validate({"backend": {"type": "pytorch", "model": "gpt2", "server": "sglang"}})


def test_a_new_server_profile_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module defining PROFILE in the servers package is found by name and takes part in detection."""
    import sys

    from ai_energy_benchmarks.backends import servers

    (tmp_path / "lmdeploy.py").write_text(
        "from ai_energy_benchmarks.backends.servers.base import ServerFacts, ServerProfile, owned_by_reason\n"
        "class LMDeployProfile(ServerProfile):\n"
        "    def recognise(self, facts: ServerFacts) -> str | None:\n"
        "        return owned_by_reason(facts, 'lmdeploy')\n"
        "PROFILE = LMDeployProfile(name='lmdeploy', title='LMDeploy', extensions=frozenset({'ignore_eos'}),\n"
        "                          health_path='/health', version_path=None, metrics=None)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(servers, "__path__", [*servers.__path__, str(tmp_path)])
    servers.profiles.cache_clear()
    try:
        assert get_profile("lmdeploy").supports("ignore_eos")
        profile, reason = detect(ServerFacts(models=[{"id": "m", "owned_by": "lmdeploy"}]))
        assert profile.name == "lmdeploy" and reason == "/v1/models says owned_by 'lmdeploy'"
        with speaking("vllm") as fake:
            run_once(make_config(fake.url + "/v1", server="lmdeploy"), ["hi"])
        assert fake.bodies[-1]["ignore_eos"] is True and "min_tokens" not in fake.bodies[-1]
    finally:
        monkeypatch.undo()
        servers.profiles.cache_clear()
        sys.modules.pop("ai_energy_benchmarks.backends.servers.lmdeploy", None)
    assert "lmdeploy" not in profiles()
