"""The HTTP backend's connection: endpoint URLs, readiness, the served model, API keys and whose energy is metered.

Against the local fake server: fast, no vLLM needed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import MODEL, SECRET, fake_server, loaded, make_config, run_all

from ai_energy_benchmarks.backends.base import Backend
from ai_energy_benchmarks.backends.openai_http import (
    OpenAIHTTPBackend,
    host_is_local,
    normalize_endpoint,
)
from ai_energy_benchmarks.backends.registry import create_backend
from ai_energy_benchmarks.exceptions import BackendError, ConfigError
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer, refused_port


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


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
