"""vLLM / OpenAI-compatible HTTP backend: a streaming load generator with latency metrics and the server's view.

The asyncio event loop (aiohttp) runs in a background thread started by :meth:`OpenAIHTTPBackend.load`; ``run()``
hands it a run plan and yields each :class:`RequestRecord` from a queue as its request completes. Connecting, the
readiness wait, the model check, choosing the server's profile (``backends/servers/``) and filling the connection
pool happen in ``load()``, outside every measured window. Per-request facts go into the records; run-level metrics
(TTFT/TPOT/ITL/e2e statistics, goodput, the steady-state window, errors by class, the Prometheus scrape and its token
cross-check) go into ``describe()``.

The parts: ``http_endpoint`` (URL, API, key), ``http_request`` (request bodies), ``http_checks`` (server checks and
profile), ``http_loop`` (event loop thread), ``http_client`` (sending), ``http_workloads`` (run plans: prompts,
conversations, traces; their execution), ``http_synthetic`` (token counter, per-prompt lengths), ``http_gpus`` (the
server's GPUs on this host), ``http_report`` (run summaries).
The API key (``backend.api_key`` or ``OPENAI_API_KEY``) is sent as a bearer token and never logged or reported.
"""

from __future__ import annotations

import concurrent.futures
import logging
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends.base import Backend, EnergyScope, RequestRecord
from ai_energy_benchmarks.backends.http_checks import (  # noqa: F401 (re-exported)
    ServerChecks,
    check_first_answer,
    check_request,
    describe_exception,
)
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_endpoint import (  # noqa: F401 (re-exported)
    API_PATHS,
    endpoint_credentials,
    host_is_local,
    normalize_endpoint,
    redact_secrets,
    redact_url,
    request_headers,
    resolve_api,
    resolve_api_key,
)
from ai_energy_benchmarks.backends.http_gpus import find_server_processes, server_is_local
from ai_energy_benchmarks.backends.http_gpus import metered_gpu_ids as server_gpu_ids
from ai_energy_benchmarks.backends.http_loop import Handoff, LoopThread
from ai_energy_benchmarks.backends.http_metrics import error_counts
from ai_energy_benchmarks.backends.http_report import (
    energy_scope,
    http_block,
    load_settings,
    measured_runs,
    server_features,
    steady_state_intervals,
    stop_message,
)
from ai_energy_benchmarks.backends.http_request import (  # noqa: F401 (re-exported)
    RequestShaper,
    build_base_body,
    field_origins,
    fixed_length,
    log_not_sent,
    resolve_ignore_eos,
)
from ai_energy_benchmarks.backends.http_synthetic import length_fields, model_token_counter
from ai_energy_benchmarks.backends.http_workloads import check_conversations_api, execute, prompt_plan, session_plan
from ai_energy_benchmarks.backends.servers import get_profile
from ai_energy_benchmarks.backends.servers.base import ServerProfile
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.synthetic import TokenCounter
from ai_energy_benchmarks.datasets.workload import Workload
from ai_energy_benchmarks.energy.devices.processes import ServerProcesses
from ai_energy_benchmarks.exceptions import BackendError, ConfigError

logger = logging.getLogger(__name__)

#: Seconds between two Prometheus scrapes during a run.
SCRAPE_INTERVAL_S = 1.0


class OpenAIHTTPBackend(Backend):
    """Drives a vLLM or other OpenAI-compatible server over HTTP (``backend.type: vllm``; ``backend.server`` names
    the server's profile, or it is detected)."""

    #: Keep each answer's text in its record (``RequestRecord.output_text``); off for benchmarks (no memory spent).
    keep_text: bool = False
    #: The local server's processes, found once (see :meth:`server_processes`).
    _local_server: ServerProcesses | None = None
    workloads = frozenset({"multi_turn", "trace"})

    def __init__(self, config: BenchmarkConfig) -> None:
        self._config = config
        self._backend = OpenAIHTTPConfig.of(config.backend)
        self._scenario = config.scenario
        if config.scenario.scorer is not None:
            self.keep_text = True  # the scorer reads each answer after the run
        if not self._backend.endpoint:
            raise ConfigError("backend.endpoint: required when backend.type is 'vllm'")
        self._base_url = normalize_endpoint(self._backend.endpoint)
        secret = self._backend.api_key.get_secret_value() if self._backend.api_key is not None else None
        self._api_key, self._api_key_source = endpoint_credentials(self._base_url, secret)
        self._url_password = urllib.parse.urlsplit(self._base_url).password
        self._api, self._api_reason = resolve_api(self._backend.api, self._scenario.chat_template)
        if self._backend.api == "auto":
            logger.info("using the %s API (%s)", self._api, self._api_reason)
        self._api_path = API_PATHS[self._api]
        self._chat = self._api == "chat"
        check_conversations_api(self._scenario, self._chat, self._api_reason)
        self._ignore_eos = resolve_ignore_eos(self._backend.ignore_eos, self._scenario.generate_kwargs)
        # Unset, the server's profile is detected in load(); until then requests are checked as vLLM's (the widest).
        configured = self._backend.server
        self._profile: ServerProfile = get_profile(configured if configured is not None else "vllm")
        self._profile_reason = "backend.server" if configured is not None else "not yet detected"
        self._shaper = RequestShaper(self._backend, self._scenario, self._api, self._profile)
        self._warned: set[str] = set()
        self._loop: LoopThread | None = None
        self._client: hc.HttpClient | None = None
        self._phase: str | None = None
        self._runs: list[tuple[str, hc.RunState]] = []
        self._warmup_errors: Counter[str] = Counter()
        self._server: dict[str, Any] = {}
        self._metrics_available: bool | None = None
        self._metrics_note: str | None = None
        self._on_this_host: bool | None = None
        self._pool_connections = 0
        self._per_prompt: list[dict[str, Any]] | None = None
        self._token_counter_name: str | None = None

    # -- prompts ---------------------------------------------------------------------------------------------------
    def render(self, prompt: str) -> str | dict[str, Any]:
        """What is sent for ``prompt``: the completions text, or the chat fields (messages, reasoning options)."""
        return self._shaper.render(prompt)

    def _base_body(self, generate_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The shared request body; logs each derived extension the server's profile leaves out, once."""
        body = self._shaper.base_body(generate_kwargs)
        log_not_sent(self._shaper, self._warned)
        return body

    # -- secrets ---------------------------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact_secrets(text, self._api_key, self._url_password)

    @property
    def public_endpoint(self) -> str:
        """The base URL as reported: no credentials, no query."""
        return redact_url(self._base_url)

    # -- loading ---------------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Wait for the server, check the model, choose the server profile, try one request, open the pool."""
        backend = self._backend
        self._on_this_host = server_is_local(self._backend, self._base_url)
        self._loop = LoopThread()
        self._client = hc.HttpClient(
            self._base_url,
            self._api_path,
            backend.model,
            request_headers(self._api_key),
            backend.connect_timeout_s,
            backend.read_timeout_s,
            connections=backend.concurrency + 2,
            redact=self._redact,
        )
        try:
            self._loop.call(self._client.open())
            self._check_server()
            self._check_request()
            self._pool_connections = self._loop.call(self._client.fill_pool(backend.concurrency, "/v1/models", 30.0))
        except BaseException:
            self.close()
            raise
        logger.info(
            "connected to %s serving %s (%s API, %s server profile, concurrency %d, %d pooled connections; server on "
            "this host: %s)",
            self.public_endpoint,
            backend.model,
            backend.api,
            self._profile.name,
            backend.concurrency,
            self._pool_connections,
            self._on_this_host,
        )

    def _get(self, path: str, timeout_s: float) -> tuple[int, bytes]:
        assert self._loop is not None and self._client is not None
        return self._loop.call(self._client.get(path, timeout_s))

    def _check_server(self) -> None:
        """Readiness, the model, the server's profile (requests reshaped for a detected one), version, metrics."""
        assert self._client is not None
        checks = ServerChecks(self._get, self._backend, self.public_endpoint, self._redact, self._api_key_source)
        configured = self._backend.server
        checks.wait_ready(self._profile.health_path if configured is not None else "/health")
        self._client.model_names = checks.check_model(int(self._scenario.generate_kwargs.max_new_tokens))
        profile, self._profile_reason, metrics = checks.choose_profile()
        if profile is not self._profile:
            self._profile = profile
            self._shaper = RequestShaper(self._backend, self._scenario, self._api, profile)
        self._base_body(self._scenario.generate_kwargs.as_kwargs())  # logs what this profile leaves out
        self._client.metrics = profile.metrics
        self._metrics_available, self._metrics_note = checks.probe(profile, metrics)
        self._server = checks.server

    def _check_request(self) -> None:
        """Send one request with the configured options and one output token, so a rejected option fails now."""
        assert self._loop is not None and self._client is not None
        options = self._scenario.generate_kwargs.as_kwargs() | {"max_new_tokens": 1, "min_new_tokens": 1}
        body, url = self._base_body(options), self.public_endpoint + self._api_path
        self._server["usage_in_stream"] = check_request(self._loop, self._client, body, self._shaper, url)

    # -- the model's tokens -----------------------------------------------------------------------------------------
    def token_counter(self) -> TokenCounter | None:
        """The served model's tokenizer as a token counter: ``backend.tokenizer``, else the server's tokenize endpoint
        after :meth:`load` (see :func:`http_synthetic.model_token_counter`; ConfigError when neither is available)."""
        connection = None if self._loop is None or self._client is None else (self._loop, self._client)
        context = self._server.get("max_model_len")
        counter = model_token_counter(
            self._backend, self._profile, connection, self.public_endpoint, self._redact, context
        )
        self._token_counter_name = counter.name
        return counter

    def set_prompt_kwargs(self, per_prompt: list[dict[str, Any]] | None) -> None:
        """Per-prompt generation options (drawn output lengths) for the next runs: each request carries its own
        ``max_tokens`` (and ``min_tokens``/``ignore_eos`` where the server profile reads them)."""
        self._per_prompt = per_prompt

    # -- running ---------------------------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Nothing to wait for: every request has completed when ``run()`` returns."""

    @property
    def splits_phases(self) -> bool:
        """Whether a prefill pass is comparable with the generate pass: not when both run for ``duration_s``."""
        return self._backend.duration_s is None

    def set_phase(self, label: str) -> None:
        """Name the next ``run()`` call (``warmup``, ``prefill-N``, ``generate-N``, ...): the only source of a run's
        label (the runner calls it before every pass). A ``warmup`` run sends each prompt once even with
        ``duration_s`` and is not scraped; a run with no name given is labelled ``run-<position>``."""
        self._phase = label

    def _take_label(self) -> str:
        label, self._phase = self._phase, None
        return label if label is not None else f"run-{len(self._runs)}"

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Send one streamed request per prompt (or cycle through them for ``duration_s``); yield records as they end.

        Stops early, after yielding every completed record, with a :class:`BackendError` when
        ``max_consecutive_failures`` requests in a row failed.
        """
        if self._loop is None or self._client is None:
            raise BackendError("OpenAIHTTPBackend.run() called before load()")
        if not prompts:
            return
        label = self._take_label()
        yield from self._execute(self._plan(label, prompts, generate_kwargs), label)

    def run_workload(self, workload: Workload, generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Conversations turn by turn (up to ``concurrency`` at once), or a trace at its arrival times (times
        ``scenario.trace.scale``) with each request's output length fixed to the trace's (``max_tokens`` and, where
        the server reads it, ``min_tokens``)."""
        if self._loop is None or self._client is None:
            raise BackendError("OpenAIHTTPBackend.run_workload() called before load()")
        label = self._take_label()
        plan = session_plan(
            workload,
            lambda prompts: self._plan(label, prompts, generate_kwargs),
            self._profile.supports("min_tokens"),
        )
        yield from self._execute(plan, label)

    def _plan(self, label: str, prompts: list[str], generate_kwargs: dict[str, Any]) -> hc.RunPlan:
        base_body, per_text = length_fields(list(prompts), generate_kwargs, self._per_prompt, self._base_body)
        return prompt_plan(
            label,
            prompts,
            self._backend,
            self._shaper.pass_body(base_body, label),
            per_text,
            self._shaper.request_fields,
            self._chat,
            SCRAPE_INTERVAL_S if self._metrics_available else None,
            self.keep_text,
        )

    def _execute(self, plan: hc.RunPlan, label: str) -> Iterator[RequestRecord]:
        assert self._loop is not None
        state = yield from execute(self._loop, self._drive, plan)
        self._runs.append((label, state))
        if label == "warmup":
            self._warmup_errors.update(error_counts(state.records))
        if state.stop_reason is not None:
            raise BackendError(stop_message(state, self.public_endpoint))

    async def _drive(self, plan: hc.RunPlan, handoff: Handoff) -> hc.RunState:
        assert self._client is not None
        try:
            return await self._client.execute(plan, handoff.put)
        finally:
            handoff.close()

    # -- reporting -------------------------------------------------------------------------------------------------
    def metered_gpu_ids(self) -> list[int] | None:
        """This host's GPUs to meter as the server's: those named, all (None) or none (an empty list); see
        :func:`http_gpus.metered_gpu_ids`."""
        if self._on_this_host is None:
            self._on_this_host = server_is_local(self._backend, self._base_url)
        return server_gpu_ids(self._on_this_host, self._backend)

    def server_processes(self) -> ServerProcesses | None:
        """The local server's processes (the one listening on the endpoint's port, and its descendants, such as
        vLLM's workers), whose GPUs the GPU meters then meter: only for a server on this host whose GPUs are not
        named (:meth:`metered_gpu_ids` is None)."""
        if self.metered_gpu_ids() is not None:
            return None
        if self._local_server is None:
            self._local_server = find_server_processes(self._base_url)
        return self._local_server

    def energy_scope(self) -> EnergyScope | None:
        """Whether the server's GPUs are this host's, and which are metered (None before :meth:`load`)."""
        if self._on_this_host is None:
            return None
        scope = self._energy_scope()
        return EnergyScope(scope["server_on_this_host"], scope["server_gpus_metered"], scope["note"])

    def _energy_scope(self) -> dict[str, Any]:
        """Whose energy the meters read (see :func:`http_report.energy_scope`)."""
        gpus = self.metered_gpu_ids()
        return energy_scope(bool(self._on_this_host), gpus, self._backend.device)

    def steady_state_intervals(self) -> dict[str, tuple[float, float]]:
        """Each measured run's steady state (all slots busy), by window label: ``time.perf_counter()`` start, end.

        Runs that never filled every slot are left out. The runner reads the meters' energy over these intervals.
        """
        return steady_state_intervals(self._runs)

    def describe(self) -> dict[str, Any]:
        """Endpoint, served model, load settings, energy scope and the HTTP metrics of every run (JSON-safe)."""
        backend = self._backend
        names = self._profile.metrics
        runs, generate, measured = measured_runs(self._runs, backend, names)
        scope = self._energy_scope() if self._on_this_host is not None else None
        return {
            "model": backend.model,
            "backend": "openai-http",
            "endpoint": self.public_endpoint,
            "api": self._api,
            "api_chosen_by": self._api_reason,
            "api_url": self.public_endpoint + self._api_path,
            "api_key": "set (redacted)" if self._api_key else "none",
            "api_key_source": self._api_key_source,
            "prompt_format": self._shaper.prompt_format(),
            "server": dict(self._server),
            "server_profile": self._profile.describe()
            | {"chosen_by": self._profile_reason, "not_sent": sorted(self._shaper.not_sent)}
            | {"prefix_cache_isolation": self._shaper.cache_isolation()},
            "device": "server on this host" if self._on_this_host else "server",
            "endpoint_on_this_host": self._on_this_host,
            "energy_scope": scope,
            "synthetic": False,
            "token_counter": self._token_counter_name,
            "server_features": server_features(
                [run for run, _ in generate], names, bool(self._metrics_available and backend.scrape_metrics)
            ),
            "load": load_settings(backend, self._ignore_eos, self._pool_connections),
            "http": http_block(
                runs,
                generate,
                measured,
                self._server.get("usage_in_stream", True),
                self._warmup_errors,
                {
                    "available": bool(self._metrics_available),
                    "url": self.public_endpoint + "/metrics",
                    "interval_s": SCRAPE_INTERVAL_S,
                    "note": self._metrics_note,
                },
            ),
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
