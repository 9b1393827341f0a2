"""vLLM / OpenAI-compatible HTTP backend: a streaming load generator with latency metrics and the server's view.

The asyncio event loop (aiohttp) runs in a background thread started by :meth:`OpenAIHTTPBackend.load`; ``run()``
hands it a run plan and yields each :class:`RequestRecord` from a queue as its request completes. Connecting, the
readiness wait, the model check and filling the connection pool happen in ``load()``, outside every measured
window. Per-request facts go into the records; run-level metrics (TTFT/TPOT/ITL/e2e statistics, goodput, the
steady-state window, errors by class, the Prometheus scrape and its token cross-check) go into ``describe()``.

The API key (``backend.api_key`` or ``OPENAI_API_KEY``) is sent as a bearer token and never logged or reported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import logging
import os
import queue
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends.base import Backend, EnergyScope, RequestRecord
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_metrics import (
    error_counts,
    prometheus_summary,
    request_metrics,
    schedule_drift,
    steady_state,
)
from ai_energy_benchmarks.config.redact import redact_text, url_without_credentials
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import BackendError, ConfigError
from ai_energy_benchmarks.formatters.base import Formatter, ThinkPrefixFormatter
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter

logger = logging.getLogger(__name__)

T = TypeVar("T")

API_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
#: Seconds between two Prometheus scrapes during a run.
SCRAPE_INTERVAL_S = 1.0
#: Body keys the backend sets itself; generate_kwargs may not override them.
_RESERVED_KEYS = frozenset({"model", "prompt", "messages", "stream", "stream_options"})
_REDACTED = "***"
#: Longest wait before completed records are handed to the thread iterating ``run()`` (s).
HANDOFF_INTERVAL_S = 0.01


# -- endpoint helpers ------------------------------------------------------------------------------------------------
def normalize_endpoint(endpoint: str) -> str:
    """The server's base URL without a trailing ``/v1`` (the suffix, not characters) and without a final slash.

    ``http://h:8000/v1`` and ``http://h:8000/v1/`` and ``http://h:8000`` all give ``http://h:8000``; a path prefix
    before ``/v1`` (a gateway) is kept. A URL naming an API route (``.../v1/completions``) is rejected.
    """
    text = endpoint.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"backend.endpoint: scheme must be http or https, got '{parts.scheme}'")
    if not parts.hostname:
        raise ConfigError(f"backend.endpoint: no host in '{redact_url(endpoint)}'")
    if parts.query or parts.fragment:
        raise ConfigError("backend.endpoint: give the server's base URL without a query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(("/completions", "/models", "/health")):
        raise ConfigError(
            f"backend.endpoint: '{redact_url(endpoint)}' names an API route; give the server's base URL "
            "(e.g. http://localhost:8000/v1) and choose the route with backend.api"
        )
    if path == "/v1" or path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def redact_url(url: str) -> str:
    """``url`` without user name, password, query or fragment (safe to log and report)."""
    return url_without_credentials(url)


def host_is_local(host: str) -> bool:
    """Whether ``host`` resolves to this machine: a loopback address or one bound to a local interface.

    An address is local when a socket can be bound to it (nothing is sent). A server in another network
    namespace on the same machine (a container on a bridge network) counts as not local.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return False
    for family, _, _, _, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.is_loopback:
            return True
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((address, 0))
            return True
        except OSError:
            continue
    return False


#: Request fields the backend derives from other settings: given directly they would override the workload unseen.
_DERIVED_FIELDS = {
    "max_tokens": "scenario.generate_kwargs.max_new_tokens",
    "min_tokens": "scenario.generate_kwargs.min_new_tokens",
    "ignore_eos": "backend.ignore_eos",
}


def field_origins(generate_kwargs: dict[str, Any]) -> dict[str, str]:
    """Where each request field in ``generate_kwargs`` was set: its config key (``extra_body`` fields included)."""
    origins = {key: f"scenario.generate_kwargs.{key}" for key in generate_kwargs if key != "extra_body"}
    extra = generate_kwargs.get("extra_body")
    if isinstance(extra, dict):
        origins |= {key: f"scenario.generate_kwargs.extra_body.{key}" for key in extra}
    return origins


def fixed_length(generate_kwargs: Mapping[str, Any]) -> bool:
    """Whether the workload asks for a fixed output length (``min_new_tokens == max_new_tokens``)."""
    max_new, min_new = generate_kwargs.get("max_new_tokens"), generate_kwargs.get("min_new_tokens")
    return max_new is not None and min_new is not None and int(min_new) == int(max_new)


def resolve_ignore_eos(configured: bool | None, generate_kwargs: Mapping[str, Any]) -> bool:
    """``backend.ignore_eos`` as sent: the configured value, or (unset) true exactly for a fixed output length."""
    return fixed_length(generate_kwargs) if configured is None else configured


def build_base_body(api: str, model: str, generate_kwargs: dict[str, Any], ignore_eos: bool | None) -> dict[str, Any]:
    """The request body without the prompt: streaming with usage, ``max_tokens``/``min_tokens`` from
    max/min_new_tokens, ``ignore_eos`` (unset: only for a fixed length, so a model with a length range stops at its
    end-of-sequence token), temperature 0 unless ``do_sample``, other keys passed through top-level."""
    kwargs = dict(generate_kwargs)
    extra = kwargs.pop("extra_body", None)
    if extra is not None:
        # The OpenAI client merges `extra_body` into the request body; a server never reads a field of that name.
        if not isinstance(extra, dict):
            raise ConfigError(
                f"scenario.generate_kwargs.extra_body: expected a mapping of request fields, got {type(extra).__name__}"
            )
        clash = sorted(set(extra) & set(kwargs))
        if clash:
            raise ConfigError(f"scenario.generate_kwargs.extra_body.{clash[0]}: also set in scenario.generate_kwargs")
        kwargs.update(extra)
    origin = field_origins(generate_kwargs)
    for key, setting in _DERIVED_FIELDS.items():
        if key in kwargs:
            raise ConfigError(f"{origin[key]}: the vllm backend sets '{key}' from {setting}; set that instead")
    max_new = kwargs.pop("max_new_tokens", None)
    min_new = kwargs.pop("min_new_tokens", None)
    do_sample = bool(kwargs.pop("do_sample", False))
    temperature = kwargs.get("temperature")
    if not do_sample and temperature not in (None, 0, 0.0):
        raise ConfigError(
            f"{origin['temperature']}: {temperature} with greedy decoding (do_sample false, sent as temperature 0); "
            "set scenario.generate_kwargs.do_sample: true to sample"
        )
    beams = kwargs.pop("num_beams", None)
    if beams not in (None, 1):
        raise ConfigError(
            "scenario.generate_kwargs.num_beams: beam search is not part of the OpenAI streaming API; "
            "the vllm backend supports num_beams=1 only"
        )
    reserved = sorted(_RESERVED_KEYS & set(kwargs))
    if reserved:
        raise ConfigError(f"{origin[reserved[0]]}: '{reserved[0]}' is set by the vllm backend itself")
    body: dict[str, Any] = {"model": model, "stream": True, "stream_options": {"include_usage": True}}
    if max_new is not None:
        body["max_tokens"] = int(max_new)
    if min_new:
        body["min_tokens"] = int(min_new)
    if resolve_ignore_eos(ignore_eos, {"max_new_tokens": max_new, "min_new_tokens": min_new}):
        body["ignore_eos"] = True
    if not do_sample:
        kwargs["temperature"] = 0.0
    body.update(kwargs)
    if api not in API_PATHS:
        raise ConfigError(f"backend.api: unknown API '{api}' (choose {', '.join(API_PATHS)})")
    return body


def resolve_api(configured: str, chat_template: bool | str) -> tuple[str, str]:
    """``backend.api`` as used, and why: ``auto`` is chat (0.0.4 always sent chat messages) unless
    ``scenario.chat_template`` is false (plain text, the completions endpoint)."""
    if configured != "auto":
        return configured, "backend.api"
    if chat_template is False:
        return "completions", "backend.api auto: scenario.chat_template is false (plain text)"
    return "chat", "backend.api auto: chat messages through the server's chat template, as 0.0.4 sent"


def resolve_api_key(configured: str | None) -> tuple[str | None, str]:
    """The API key and where it came from (``config``, ``env:OPENAI_API_KEY`` or ``none``)."""
    if configured:
        return configured, "config"
    env = os.environ.get("OPENAI_API_KEY")
    if env:
        return env, "env:OPENAI_API_KEY"
    return None, "none"


class _LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="aieb-http-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coroutine`` on the loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result."""
        return self.submit(coroutine).result(timeout_s)

    def stop(self) -> None:
        """Stop the loop and join the thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class _Handoff:
    """Passes records from the event loop thread to the thread iterating ``run()``, in batches.

    Waking the consumer for every record would cost a thread switch per request; instead records wait at most
    :data:`HANDOFF_INTERVAL_S`, and the end of the run is handed over at once (so no measured window is lengthened).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[list[RequestRecord] | None] = queue.SimpleQueue()
        self._pending: list[RequestRecord] = []
        self._scheduled = False

    def put(self, record: RequestRecord) -> None:
        """Queue ``record`` (event loop thread)."""
        self._pending.append(record)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_later(HANDOFF_INTERVAL_S, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []

    def close(self) -> None:
        """Hand over what is pending and the end mark (event loop thread)."""
        self._flush()
        self._queue.put(None)

    def get(self) -> list[RequestRecord] | None:
        """The next batch of records, or None at the end (consumer thread; blocks)."""
        return self._queue.get()


class OpenAIHTTPBackend(Backend):
    """Drives a vLLM or other OpenAI-compatible server over HTTP (``backend.type: vllm``)."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self._config = config
        self._backend = OpenAIHTTPConfig.of(config.backend)
        self._scenario = config.scenario
        if not self._backend.endpoint:
            raise ConfigError("backend.endpoint: required when backend.type is 'vllm'")
        self._base_url = normalize_endpoint(self._backend.endpoint)
        secret = self._backend.api_key.get_secret_value() if self._backend.api_key is not None else None
        self._api_key, self._api_key_source = resolve_api_key(secret)
        self._url_password = urllib.parse.urlsplit(self._base_url).password
        if "@" in urllib.parse.urlsplit(self._base_url).netloc:
            # Both would go in the Authorization header (Basic from the URL, Bearer from the key).
            if self._api_key_source == "config":
                raise ConfigError(
                    "backend.endpoint carries credentials (user:password@host) and backend.api_key is set: both "
                    "would be sent as the Authorization header; give one of them"
                )
            if self._api_key:
                logger.info("the endpoint carries credentials: OPENAI_API_KEY from the environment is not sent")
            self._api_key, self._api_key_source = None, "endpoint"
        self._api, self._api_reason = resolve_api(self._backend.api, self._scenario.chat_template)
        if self._backend.api == "auto":
            logger.info("using the %s API (%s)", self._api, self._api_reason)
        self._api_path = API_PATHS[self._api]
        self._chat = self._api == "chat"
        self._ignore_eos = resolve_ignore_eos(self._backend.ignore_eos, self._scenario.generate_kwargs)
        base_body = build_base_body(
            self._api, self._backend.model, self._scenario.generate_kwargs.as_kwargs(), self._backend.ignore_eos
        )
        self._user_template_kwargs: dict[str, Any] = dict(base_body.get("chat_template_kwargs") or {})
        self._formatter = self._choose_formatter()
        self._check_reasoning_fields(base_body)
        self._loop: _LoopThread | None = None
        self._client: hc.HttpClient | None = None
        self._labels = _expected_labels(config)
        self._phase: str | None = None
        self._runs: list[tuple[str, hc.RunState]] = []
        self._warmup_errors: Counter[str] = Counter()
        self._server: dict[str, Any] = {}
        self._metrics_available: bool | None = None
        self._metrics_note: str | None = None
        self._on_this_host: bool | None = None
        self._pool_connections = 0

    # -- prompts ---------------------------------------------------------------------------------------------------
    def _choose_formatter(self) -> Formatter:
        """The reasoning formatter for the model, checked against the API (chat messages or plain text)."""
        from ai_energy_benchmarks.formatters.registry import FormatterRegistry

        scenario = self._scenario
        formatter = FormatterRegistry().formatter_for(self._backend.model, scenario.reasoning_format)
        if scenario.chat_template is True and not self._chat:
            raise ConfigError(
                "scenario.chat_template is true: the vllm backend sends chat messages through the server's chat "
                "endpoint; set backend.api=chat"
            )
        if scenario.chat_template is False and self._chat:
            raise ConfigError(
                "scenario.chat_template is false (plain text) but backend.api is chat, whose endpoint always applies "
                "the server's chat template; set backend.api=completions"
            )
        if not self._chat and scenario.reasoning and formatter.family in ("system_flag", "template_param"):
            raise ConfigError(
                f"scenario.reasoning: the {formatter.family} reasoning switch needs chat messages; "
                "set backend.api=chat (or leave it auto)"
            )
        if (
            not self._chat
            and scenario.reasoning
            and isinstance(formatter, ThinkPrefixFormatter)
            and not formatter.can_render()
        ):
            raise ConfigError(
                "scenario.reasoning: the think_prefix format needs the model's chat template around the <think> "
                "prefix; set backend.api=chat (or leave it auto)"
            )
        formatter.format("", scenario.reasoning, scenario.reasoning_params)  # a bad reasoning option fails now
        return formatter

    def _check_reasoning_fields(self, base_body: dict[str, Any]) -> None:
        """A request field set in generate_kwargs must not contradict the one the reasoning format sends."""
        if not self._chat:
            return
        scenario = self._scenario
        fields = self._formatter.format("", scenario.reasoning, scenario.reasoning_params).server_fields()
        family = self._formatter.family
        origin = field_origins(scenario.generate_kwargs.as_kwargs())
        for key, value in fields.items():
            if key == "chat_template_kwargs":
                for name, wanted in value.items():
                    given = self._user_template_kwargs.get(name, wanted)
                    if given != wanted:
                        raise ConfigError(
                            f"{origin.get(key, 'scenario.generate_kwargs.' + key)}.{name}: {given!r} contradicts the "
                            f"{family} reasoning format's {wanted!r}; set scenario.reasoning / reasoning_params instead"
                        )
            elif key in base_body and base_body[key] != value:
                raise ConfigError(
                    f"{origin.get(key, 'scenario.generate_kwargs.' + key)}: {base_body[key]!r} contradicts the "
                    f"{family} reasoning format's {value!r}; set scenario.reasoning / reasoning_params instead"
                )

    def _request_fields(self, prompt: str) -> dict[str, Any]:
        """The prompt's part of a request body: ``prompt`` text, or ``messages`` and the reasoning fields."""
        scenario = self._scenario
        formatted = self._formatter.format(prompt, scenario.reasoning, scenario.reasoning_params)
        if not self._chat:
            if isinstance(self._formatter, HarmonyFormatter) or (
                isinstance(self._formatter, ThinkPrefixFormatter) and self._formatter.can_render()
            ):
                # The model's own template text around the prompt: a <think> prefix never follows the bare prompt.
                return {"prompt": self._formatter.render(prompt, scenario.reasoning, scenario.reasoning_params)}
            return {"prompt": prompt + formatted.assistant_prefix}
        fields: dict[str, Any] = {"messages": list(formatted.messages), **formatted.server_fields()}
        if "chat_template_kwargs" in fields and self._user_template_kwargs:
            fields["chat_template_kwargs"] = self._user_template_kwargs | fields["chat_template_kwargs"]
        if formatted.assistant_prefix:
            # vLLM continues a final assistant message instead of opening a new turn.
            fields["messages"].append({"role": "assistant", "content": formatted.assistant_prefix})
            fields["add_generation_prompt"] = False
            fields["continue_final_message"] = True
        return fields

    def render(self, prompt: str) -> str | dict[str, Any]:
        """What is sent for ``prompt``: the completions text, or the chat fields (messages, reasoning options)."""
        fields = self._request_fields(prompt)
        return str(fields["prompt"]) if not self._chat else fields

    # -- secrets ---------------------------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, _REDACTED)
        return redact_text(text, (self._url_password or "",))

    @property
    def public_endpoint(self) -> str:
        """The base URL as reported: no credentials, no query."""
        return redact_url(self._base_url)

    # -- loading ---------------------------------------------------------------------------------------------------
    def _server_is_local(self) -> bool:
        """``backend.server_on_this_host``, or (unset) whether the endpoint's address belongs to this host."""
        if self._backend.server_on_this_host is not None:
            return self._backend.server_on_this_host
        return host_is_local(urllib.parse.urlsplit(self._base_url).hostname or "")

    def load(self) -> None:
        """Wait for the server, check the model is served, try one request and open the connection pool."""
        backend = self._backend
        self._on_this_host = self._server_is_local()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._loop = _LoopThread()
        self._client = hc.HttpClient(
            self._base_url,
            self._api_path,
            backend.model,
            headers,
            backend.connect_timeout_s,
            backend.read_timeout_s,
            connections=backend.concurrency + 2,
            redact=self._redact,
        )
        try:
            self._loop.call(self._client.open())
            self._wait_ready()
            self._check_model()
            self._probe_server()
            self._check_request()
            self._pool_connections = self._loop.call(self._client.fill_pool(backend.concurrency, "/v1/models", 30.0))
        except BaseException:
            self.close()
            raise
        logger.info(
            "connected to %s serving %s (%s API, concurrency %d, %d pooled connections; server on this host: %s)",
            self.public_endpoint,
            backend.model,
            backend.api,
            backend.concurrency,
            self._pool_connections,
            self._on_this_host,
        )

    def _get(self, path: str, timeout_s: float) -> tuple[int, bytes]:
        assert self._loop is not None and self._client is not None
        return self._loop.call(self._client.get(path, timeout_s))

    def _wait_ready(self) -> None:
        """Poll ``/health`` (or ``/v1/models`` where there is no ``/health``) until 200 or ``ready_timeout_s``."""
        timeout_s = self._backend.ready_timeout_s
        deadline = time.monotonic() + timeout_s
        last_error = "no answer"
        announced = False
        while True:
            remaining = max(0.5, min(10.0, deadline - time.monotonic()))
            try:
                status, body = self._get("/health", remaining)
                if status in (404, 405):
                    status, body = self._get("/v1/models", remaining)
                if status == 200:
                    return
                if status in (401, 403):
                    raise BackendError(self._auth_message(status))
                last_error = f"HTTP {status}: {hc.error_message(body)}"
            except (aiohttp.ClientError, asyncio.TimeoutError, concurrent.futures.TimeoutError) as exc:
                last_error = self._redact(_describe_exception(exc))
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"backend.endpoint: the server at {self.public_endpoint} is not ready after {timeout_s:g} s "
                    f"(backend.ready_timeout_s): {last_error}"
                )
            if not announced:
                logger.info("waiting up to %g s for the server at %s (%s)", timeout_s, self.public_endpoint, last_error)
                announced = True
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _auth_message(self, status: int) -> str:
        given = {
            "config": "backend.api_key",
            "env:OPENAI_API_KEY": "the OPENAI_API_KEY environment variable",
            "none": "no key (set backend.api_key or OPENAI_API_KEY)",
            "endpoint": "the credentials in backend.endpoint",
        }[self._api_key_source]
        return (
            f"backend.api_key: the server at {self.public_endpoint} refused the request (HTTP {status}); "
            f"key from {given}"
        )

    def _check_model(self) -> None:
        status, body = self._get("/v1/models", 30.0)
        if status in (401, 403):
            raise BackendError(self._auth_message(status))
        if status != 200:
            raise BackendError(
                f"backend.endpoint: GET {self.public_endpoint}/v1/models answered HTTP {status}: "
                f"{self._redact(hc.error_message(body))}"
            )
        try:
            models = [m for m in json.loads(body)["data"] if isinstance(m, dict)]
        except (ValueError, KeyError, TypeError):
            raise BackendError(
                f"backend.endpoint: {self.public_endpoint}/v1/models did not answer an OpenAI model list"
            ) from None
        served = {str(m.get("id")): m for m in models}
        if self._backend.model not in served:
            names = ", ".join(sorted(served)) or "(none)"
            raise BackendError(
                f"backend.model: '{self._backend.model}' is not served by {self.public_endpoint}; "
                f"served models: {names}"
            )
        info = served[self._backend.model]
        self._server["served_model"] = self._backend.model
        # vLLM serves one model under several names (--served-model-name a b c) and answers, in responses and in its
        # metrics' model_name label, with the first: names with the same root are this model's.
        root = info.get("root")
        aliases = {name for name, entry in served.items() if root and entry.get("root") == root} - {self._backend.model}
        if aliases:
            self._server["model_aliases"] = sorted(aliases)
        if self._client is not None:
            self._client.model_names = frozenset({self._backend.model, *aliases})
        self._server["model_root"] = info.get("root")
        max_len = info.get("max_model_len")
        self._server["max_model_len"] = max_len if isinstance(max_len, int) else None
        max_new = int(self._scenario.generate_kwargs.max_new_tokens)
        if isinstance(max_len, int) and max_new >= max_len:
            raise ConfigError(
                f"scenario.generate_kwargs.max_new_tokens: {max_new} does not fit the served model's context of "
                f"{max_len} tokens"
            )

    def _probe_server(self) -> None:
        try:
            status, body = self._get("/version", 5.0)
            if status == 200:
                version = json.loads(body).get("version")
                self._server["version"] = str(version) if version is not None else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AttributeError):
            pass
        if not self._backend.scrape_metrics:
            self._metrics_available = False
            self._metrics_note = "scraping off (backend.scrape_metrics=false)"
            return
        try:
            status, body = self._get("/metrics", 5.0)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status, body = 0, b""
        self._metrics_available = status == 200 and b"vllm:" in body
        if not self._metrics_available:
            self._metrics_note = (
                f"no vLLM Prometheus metrics at {self.public_endpoint}/metrics "
                f"({'HTTP ' + str(status) if status else 'no answer'}): the server's own view is not reported"
            )
            logger.info("%s", self._metrics_note)

    def _check_request(self) -> None:
        """Send one request with the configured options and one output token, so a rejected option fails now."""
        assert self._loop is not None and self._client is not None
        options = self._scenario.generate_kwargs.as_kwargs() | {"max_new_tokens": 1, "min_new_tokens": 1}
        body = build_base_body(self._api, self._backend.model, options, self._backend.ignore_eos)
        plan = hc.RunPlan(
            label="check",
            prompts=["Hello"],
            base_body=body,
            chat=self._chat,
            concurrency=1,
            render=self._request_fields,
        )
        data = hc.encode_body(plan, "Hello")
        result = self._loop.call(self._client.stream_once(data, plan.chat))
        if result.error_class == hc.HTTP_4XX:
            raise ConfigError(f"scenario.generate_kwargs / backend: the server rejected a request: {result.error}")
        if result.error_class is not None:
            raise BackendError(
                f"backend.endpoint: a first request to {self.public_endpoint}{self._api_path} failed "
                f"({result.error_class}): {result.error}"
            )
        self._server["usage_in_stream"] = result.usage is not None
        if result.usage is None:
            logger.warning(
                "the server sent no usage block in the stream (stream_options.include_usage): output tokens are "
                "counted as streamed chunks, which undercounts when a chunk carries several tokens"
            )

    # -- running ---------------------------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Nothing to wait for: every request has completed when ``run()`` returns."""

    @property
    def splits_phases(self) -> bool:
        """Whether a prefill pass is comparable with the generate pass: not when both run for ``duration_s``."""
        return self._backend.duration_s is None

    def set_phase(self, label: str) -> None:
        """Name the next ``run()`` call (``warmup``, ``prefill-N``, ``generate-N``, ...). Optional: without it the
        label is inferred from the runner's order (warm-up, then per repetition prefill and generate). A ``warmup``
        run sends each prompt once even with ``duration_s`` and is not scraped."""
        self._phase = label

    def _next_label(self) -> str:
        if self._phase is not None:
            label, self._phase = self._phase, None
            return label
        position = len(self._runs)
        return self._labels[position] if position < len(self._labels) else f"run-{position}"

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Send one streamed request per prompt (or cycle through them for ``duration_s``); yield records as they end.

        Stops early, after yielding every completed record, with a :class:`BackendError` when
        ``max_consecutive_failures`` requests in a row failed.
        """
        if self._loop is None or self._client is None:
            raise BackendError("OpenAIHTTPBackend.run() called before load()")
        if not prompts:
            return
        backend = self._backend
        label = self._next_label()
        measured = label != "warmup"
        plan = hc.RunPlan(
            label=label,
            prompts=list(prompts),
            base_body=build_base_body(self._api, backend.model, generate_kwargs, backend.ignore_eos),
            chat=self._chat,
            render=self._request_fields,
            concurrency=backend.concurrency,
            request_rate=backend.request_rate,
            arrival=backend.arrival,
            burstiness=backend.burstiness,
            seed=backend.seed,
            duration_s=backend.duration_s if measured else None,
            max_retries=backend.max_retries,
            retry_backoff_s=backend.retry_backoff_s,
            max_consecutive_failures=backend.max_consecutive_failures,
            scrape_interval_s=SCRAPE_INTERVAL_S if measured and self._metrics_available else None,
        )
        handoff = _Handoff(self._loop.loop)
        future = self._loop.submit(self._drive(plan, handoff))
        finished = False
        try:
            while True:
                batch = handoff.get()
                if batch is None:
                    break
                yield from batch
            finished = True
        finally:
            if not finished:
                future.cancel()
                concurrent.futures.wait([future], timeout=30)
        try:
            state = future.result()
        except KeyboardInterrupt:  # a signal while the generator hands over its end: the run is interrupted
            future.cancel()
            raise
        except BaseException as exc:
            raise BackendError(f"the HTTP load generator failed: {_describe_exception(exc)}") from exc
        self._runs.append((label, state))
        if label == "warmup":
            self._warmup_errors.update(error_counts(state.records))
        if state.stop_reason is not None:
            raise BackendError(self._stop_message(state))

    async def _drive(self, plan: hc.RunPlan, handoff: _Handoff) -> hc.RunState:
        assert self._client is not None
        try:
            return await self._client.execute(plan, handoff.put)
        finally:
            handoff.close()

    def _stop_message(self, state: hc.RunState) -> str:
        records = state.records
        ok = sum(1 for r in records if r.ok)
        failed = {k: v for k, v in error_counts(records).items() if k != hc.ABORTED}
        aborted = sum(1 for r in records if r.error_class == hc.ABORTED)
        classes = ", ".join(f"{k}: {v}" for k, v in failed.items()) or "none"
        return (
            f"backend vllm: run '{state.plan.label}' against {self.public_endpoint} stopped: {state.stop_reason}. "
            f"{ok} requests succeeded, {sum(failed.values())} failed ({classes}), {aborted} were aborted in flight "
            f"and {state.not_sent} were not sent "
            f"(backend.max_consecutive_failures={state.plan.max_consecutive_failures})"
        )

    # -- reporting -------------------------------------------------------------------------------------------------
    def metered_gpu_ids(self) -> list[int] | None:
        """This host's GPUs to meter as the server's when the server is on this host: ``backend.device_ids`` when
        given (or N for ``device: cuda:N``), else every GPU visible here (None) for ``device`` auto or cuda; none
        (an empty list) for ``device: cpu`` or a server on another host."""
        if self._on_this_host is None:
            self._on_this_host = self._server_is_local()
        if not self._on_this_host:
            return []
        device = self._backend.device
        if device.startswith("cuda:"):
            return [int(device.split(":", 1)[1])]
        if device not in ("auto", "cuda"):
            return []
        if "device_ids" in self._backend.model_fields_set or device == "cuda":
            return list(self._backend.device_ids)
        return None

    def _energy_scope(self) -> dict[str, Any]:
        gpus = self.metered_gpu_ids()
        if not self._on_this_host:
            note = (
                "the endpoint is not on this host: this host's GPUs are not the server's, so no GPU energy is "
                "attributed to the server; CPU and RAM energy are this (client) machine's only"
            )
        elif gpus is None:
            note = (
                "the server is on this host: every GPU visible here is metered as the server's (backend.device "
                f"{self._backend.device}; set backend.device_ids to name the server's GPUs); CPU and RAM energy cover "
                "client and server together"
            )
        elif not gpus:
            note = (
                f"the server is on this host, but backend.device is {self._backend.device}: no GPU is metered as the "
                "server's (set backend.device_ids to the server's GPUs to meter them); CPU and RAM energy cover "
                "client and server together"
            )
        else:
            note = (
                f"the server is on this host: GPUs {gpus} are metered as the server's (backend.device/device_ids); "
                "CPU and RAM energy cover client and server together"
            )
        return {"server_on_this_host": bool(self._on_this_host), "server_gpus_metered": gpus, "note": note}

    def energy_scope(self) -> EnergyScope | None:
        """Whether the server's GPUs are this host's, and which are metered (None before :meth:`load`)."""
        if self._on_this_host is None:
            return None
        scope = self._energy_scope()
        return EnergyScope(scope["server_on_this_host"], scope["server_gpus_metered"], scope["note"])

    def _run_label(self, label: str, state: hc.RunState) -> str:
        """The label, corrected by the phase the runner wrote into the records (an inferred label can be wrong)."""
        if label == "warmup" or not state.records or not label.startswith(("prefill-", "generate-")):
            return label
        first = state.records[0]
        actual = f"{first.phase}-{first.repetition}"
        return actual if actual != label and label.split("-")[0] in ("prefill", "generate") else label

    def _run_summary(self, label: str, state: hc.RunState) -> dict[str, Any]:
        backend = self._backend
        trace = state.trace
        duration = (trace.end_s or trace.start_s) - trace.start_s
        records = state.records
        summary: dict[str, Any] = {
            "label": label,
            "requests_sent": state.sent,
            "requests_not_sent": state.not_sent,
            "start_s": trace.start_s,
            "end_s": trace.end_s,
            **request_metrics(records, duration, backend.slo_ttft_s, backend.slo_tpot_s, backend.slo_e2e_s),
            "retries_by_class": dict(sorted(state.retries.items())),
            "concurrency": {
                "limit": trace.concurrency,
                "max_in_flight": trace.max_occupied(),
                "mean_in_flight": trace.mean_occupied(),
            },
            "steady_state": steady_state(trace, records),
            "stopped": state.stop_reason,
            "responses_without_usage": state.usage_missing,
        }
        if state.plan.request_rate is not None:
            summary["schedule_drift"] = schedule_drift(state.drift_s, state.held_for_slot)
        if state.plan.scrape_interval_s is not None:
            summary["prometheus"] = prometheus_summary(
                state.prometheus_before,
                state.prometheus_after,
                state.prometheus_samples,
                trace.start_s,
                client_output_tokens=sum(r.completion_tokens for r in records),
                client_prompt_tokens=sum(r.prompt_tokens for r in records),
                scrape_errors=state.scrape_errors,
            )
        return summary

    def steady_state_intervals(self) -> dict[str, tuple[float, float]]:
        """Each measured run's steady state (all slots busy), by window label: ``time.perf_counter()`` start, end.

        Runs that never filled every slot are left out. The runner reads the meters' energy over these intervals.
        """
        intervals: dict[str, tuple[float, float]] = {}
        for label, state in self._runs:
            bounds = state.trace.steady_bounds()
            if label != "warmup" and bounds is not None:
                intervals[self._run_label(label, state)] = bounds
        return intervals

    def describe(self) -> dict[str, Any]:
        """Endpoint, served model, load settings, energy scope and the HTTP metrics of every run (JSON-safe)."""
        backend = self._backend
        runs = [self._run_summary(self._run_label(label, state), state) for label, state in self._runs]
        pairs = list(zip(runs, (state for _, state in self._runs), strict=True))
        generate = [(run, state) for run, state in pairs if str(run["label"]).startswith("generate")]
        if not generate:
            generate = [(run, state) for run, state in pairs if run["label"] != "warmup"]
        records = [r for _, state in generate for r in state.records]
        duration = sum(float(run["duration_s"]) for run, _ in generate)
        measured = request_metrics(records, duration, backend.slo_ttft_s, backend.slo_tpot_s, backend.slo_e2e_s)
        scope = self._energy_scope() if self._on_this_host is not None else None
        usage_ok = self._server.get("usage_in_stream", True)
        return {
            "model": backend.model,
            "backend": "openai-http",
            "endpoint": self.public_endpoint,
            "api": self._api,
            "api_chosen_by": self._api_reason,
            "api_url": self.public_endpoint + self._api_path,
            "api_key": "set (redacted)" if self._api_key else "none",
            "api_key_source": self._api_key_source,
            "prompt_format": {
                "chat_template": "server's (chat endpoint)" if self._chat else False,
                "reasoning": self._scenario.reasoning,
                "formatter": self._formatter.describe(),
            },
            "server": dict(self._server),
            "device": "server on this host" if self._on_this_host else "server",
            "endpoint_on_this_host": self._on_this_host,
            "energy_scope": scope,
            "synthetic": False,
            "load": {
                "concurrency": backend.concurrency,
                "request_rate_per_s": backend.request_rate,
                "arrival": backend.arrival if backend.request_rate is not None else "as fast as concurrency allows",
                "burstiness": backend.burstiness,
                "seed": backend.seed,
                "duration_s": backend.duration_s,
                "ignore_eos": self._ignore_eos,
                "max_retries": backend.max_retries,
                "retry_backoff_s": backend.retry_backoff_s,
                "connect_timeout_s": backend.connect_timeout_s,
                "read_timeout_s": backend.read_timeout_s,
                "max_consecutive_failures": backend.max_consecutive_failures,
                "pooled_connections": self._pool_connections,
                "note": "one prompt per request; the server forms its own batches, and concurrency / request_rate "
                "set the load (scenario.input_shapes.batch_size only sizes the warm-up: warmup_runs x batch_size "
                "requests)",
            },
            "http": {
                "token_counts_from": "usage"
                if usage_ok
                else "streamed chunks (the server sent no usage block; a lower bound)",
                "measured": measured,
                "steady_state": [run["steady_state"] | {"label": run["label"]} for run, _ in generate],
                "errors_by_class": measured["errors_by_class"],
                "warmup_errors_by_class": dict(sorted(self._warmup_errors.items())),
                "runs": runs,
                "prometheus": {
                    "available": bool(self._metrics_available),
                    "url": self.public_endpoint + "/metrics",
                    "interval_s": SCRAPE_INTERVAL_S,
                    "note": self._metrics_note,
                },
                "error_classes": list(hc.ERROR_CLASSES),
            },
        }

    def close(self) -> None:
        """Close the connection pool and stop the event loop thread."""
        if self._loop is None:
            return
        if self._client is not None:
            try:
                self._loop.call(self._client.close(), timeout_s=10)
            except (concurrent.futures.TimeoutError, RuntimeError):
                logger.debug("closing the HTTP session timed out")
        self._loop.stop()
        self._loop = None
        self._client = None


def _expected_labels(config: BenchmarkConfig) -> list[str]:
    """The runner's sequence of run() calls: warm-up, then per repetition an optional prefill pass and a generate."""
    scenario = config.scenario
    labels = ["warmup"] if scenario.warmup_runs * scenario.input_shapes.batch_size > 0 else []
    for repetition in range(scenario.repetitions):
        if scenario.measure_prefill:
            labels.append(f"prefill-{repetition}")
        labels.append(f"generate-{repetition}")
    return labels


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error or exc}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
