"""vLLM / OpenAI-compatible HTTP backend: a streaming load generator with latency metrics and the server's view.

The asyncio event loop (aiohttp) runs in a background thread started by :meth:`OpenAIHTTPBackend.load`; ``run()``
hands it a run plan and yields each :class:`RequestRecord` from a queue as its request completes. Connecting, the
readiness wait, the model check, choosing the server's profile (``backends/servers/``) and filling the connection
pool happen in ``load()``, outside every measured window. Per-request facts go into the records; run-level metrics
(TTFT/TPOT/ITL/e2e statistics, goodput, the steady-state window, errors by class, the Prometheus scrape and its token
cross-check) go into ``describe()``.

The parts: ``http_endpoint`` (URL, API, key), ``http_request`` (request bodies), ``http_checks`` (server checks and
profile), ``http_loop`` (event loop thread), ``http_client`` (sending), ``http_report`` (run summaries).
The API key (``backend.api_key`` or ``OPENAI_API_KEY``) is sent as a bearer token and never logged or reported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends.base import Backend, EnergyScope, RequestRecord
from ai_energy_benchmarks.backends.http_checks import ServerChecks, check_first_answer, describe_exception
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_endpoint import (
    API_PATHS,
    host_is_local,
    normalize_endpoint,
    redact_url,
    resolve_api,
    resolve_api_key,
)
from ai_energy_benchmarks.backends.http_loop import Handoff, LoopThread
from ai_energy_benchmarks.backends.http_metrics import error_counts, request_metrics
from ai_energy_benchmarks.backends.http_report import energy_scope, run_summary, server_features, stop_message
from ai_energy_benchmarks.backends.http_request import (  # noqa: F401 (re-exported)
    RequestShaper,
    build_base_body,
    field_origins,
    fixed_length,
    resolve_ignore_eos,
)
from ai_energy_benchmarks.backends.servers import get_profile
from ai_energy_benchmarks.backends.servers.base import ServerProfile
from ai_energy_benchmarks.config.redact import redact_text
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.synthetic import TokenCounter
from ai_energy_benchmarks.datasets.workload import Workload
from ai_energy_benchmarks.energy.devices.processes import ServerProcesses
from ai_energy_benchmarks.energy.devices.processes import server_processes as find_server_processes
from ai_energy_benchmarks.exceptions import BackendError, ConfigError, MissingDependencyError, one_line

logger = logging.getLogger(__name__)

#: Seconds between two Prometheus scrapes during a run.
SCRAPE_INTERVAL_S = 1.0
_REDACTED = "***"


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
        if self._scenario.multi_turn.enabled and not self._chat:
            raise ConfigError(
                "scenario.multi_turn: conversations are sent as chat messages, and this run uses the completions "
                f"API ({self._api_reason}); set backend.api=chat"
            )
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
        for key in sorted(self._shaper.not_sent - self._warned):
            self._warned.add(key)
            logger.warning(
                "the %s server profile does not send '%s' (%s does not read it): %s",
                self._profile.name,
                key,
                self._profile.title,
                "output lengths are the model's own, not fixed"
                if key == "ignore_eos"
                else "the server may stop before min_new_tokens",
            )
        return body

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
        """Wait for the server, check the model, choose the server profile, try one request, open the pool."""
        backend = self._backend
        self._on_this_host = self._server_is_local()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._loop = LoopThread()
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
        plan = hc.RunPlan(
            label="check",
            prompts=["Hello"],
            base_body=self._base_body(options),
            chat=self._chat,
            concurrency=1,
            render=self._shaper.request_fields,
        )
        result = self._loop.call(self._client.stream_once(hc.encode_body(plan, "Hello"), plan.chat))
        self._server["usage_in_stream"] = check_first_answer(result, self.public_endpoint + self._api_path)

    # -- the model's tokens -----------------------------------------------------------------------------------------
    def token_counter(self) -> TokenCounter | None:
        """The served model's tokenizer as a token counter (special tokens excluded): ``backend.tokenizer`` loaded
        locally, else the server's tokenize endpoint where its profile has one (after :meth:`load`).

        Raises:
            ConfigError: neither is available (the message says what to set).
        """
        name = self._backend.tokenizer
        context = self._server.get("max_model_len")
        if name is not None:
            counter = _local_token_counter(name, context)
        elif self._profile.tokenize_path is not None and self._loop is not None and self._client is not None:
            counter = self._server_token_counter(self._profile.tokenize_path)
        else:
            raise ConfigError(
                "scenario.dataset_name: synthetic prompts need the model's tokenizer: set backend.tokenizer to a "
                f"local tokenizer path or id (the {self._profile.title} server profile has no tokenize endpoint)"
            )
        self._token_counter_name = counter.name
        return counter

    def _server_token_counter(self, path: str) -> TokenCounter:
        loop, client, model = self._loop, self._client, self._backend.model
        assert loop is not None and client is not None
        url = self.public_endpoint + path
        timeout = aiohttp.ClientTimeout(
            sock_connect=self._backend.connect_timeout_s, sock_read=self._backend.read_timeout_s
        )

        async def count_one(text: str) -> int:
            payload = {"model": model, "prompt": text, "add_special_tokens": False}
            async with client.session.post(client.base_url + path, json=payload, timeout=timeout) as response:
                body = await response.read()
                if response.status == 404:
                    raise ConfigError(
                        f"{url} answered HTTP 404: this server counts no tokens there; set backend.tokenizer to the "
                        "served model's tokenizer (a local path or id) for synthetic prompts"
                    )
                if response.status != 200:
                    raise BackendError(
                        f"{url} answered HTTP {response.status} to a tokenize request: "
                        f"{self._redact(body[:200].decode('utf-8', 'replace'))}"
                    )
            answer = json.loads(body)
            count = answer.get("count") if isinstance(answer, dict) else None
            if not isinstance(count, int):
                raise BackendError(f"{url} answered without a token count ('count'): {body[:200]!r}")
            return count

        async def count_many(texts: list[str]) -> list[int]:
            return list(await asyncio.gather(*(count_one(text) for text in texts)))

        context = self._server.get("max_model_len")
        return TokenCounter(f"server:{url}", lambda texts: loop.call(count_many(texts)), context)

    def set_prompt_kwargs(self, per_prompt: list[dict[str, Any]] | None) -> None:
        """Per-prompt generation options (drawn output lengths) for the next runs: each request carries its own
        ``max_tokens`` (and ``min_tokens``/``ignore_eos`` where the server profile reads them)."""
        self._per_prompt = per_prompt

    def _length_fields(
        self, prompts: list[str], generate_kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]] | None]:
        """The shared body, and (with per-prompt options) each prompt's length fields, which the shared body then
        leaves out."""
        base = self._base_body(generate_kwargs)
        if self._per_prompt is None:
            return base, None
        per_text: dict[str, dict[str, Any]] = {}
        for index, prompt in enumerate(prompts):
            body = self._base_body(generate_kwargs | self._per_prompt[index])
            fields = {key: body[key] for key in _LENGTH_FIELDS if key in body}
            if per_text.setdefault(prompt, fields) != fields:
                raise BackendError(f"prompt {index} is sent twice with different output lengths")
        return {k: v for k, v in base.items() if k not in _LENGTH_FIELDS}, per_text

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
        if workload.conversations is not None:
            plan = self._plan(label, [], generate_kwargs)
            plan.conversations = workload.conversations.conversations
            plan.history = workload.history
            if plan.request_rate is not None:
                logger.warning("backend.request_rate does not apply to conversations: each turn follows the last")
                plan.request_rate = None
        else:
            assert workload.trace is not None
            trace = workload.trace
            plan = self._plan(label, trace.prompts, generate_kwargs)
            plan.request_rate = None
            plan.offsets_s = [entry.offset_s for entry in trace.entries]
            plan.session_ids = [entry.session_id for entry in trace.entries]
            min_tokens = self._profile.supports("min_tokens")
            plan.overrides = [
                {"max_tokens": e.output_length} | ({"min_tokens": e.output_length} if min_tokens else {})
                for e in trace.entries
            ]
        plan.duration_s = None
        yield from self._execute(plan, label)

    def _plan(self, label: str, prompts: list[str], generate_kwargs: dict[str, Any]) -> hc.RunPlan:
        backend = self._backend
        measured = label != "warmup"
        base_body, per_text = self._length_fields(list(prompts), generate_kwargs)
        render = self._shaper.request_fields
        if per_text is not None:
            fields_of = self._shaper.request_fields

            def render(prompt: str) -> dict[str, Any]:
                return fields_of(prompt) | per_text[prompt]

        return hc.RunPlan(
            label=label,
            prompts=list(prompts),
            base_body=base_body,
            chat=self._chat,
            render=render,
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
            keep_text=self.keep_text,
        )

    def _execute(self, plan: hc.RunPlan, label: str) -> Iterator[RequestRecord]:
        assert self._loop is not None
        handoff = Handoff(self._loop.loop)
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
            raise BackendError(f"the HTTP load generator failed: {describe_exception(exc)}") from exc
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

    def server_processes(self) -> ServerProcesses | None:
        """The local server's processes (the one listening on the endpoint's port, and its descendants, such as
        vLLM's workers), whose GPUs the GPU meters then meter: only for a server on this host whose GPUs are not
        named (:meth:`metered_gpu_ids` is None)."""
        if self.metered_gpu_ids() is not None:
            return None
        if self._local_server is None:
            parts = urllib.parse.urlsplit(self._base_url)
            self._local_server = find_server_processes(parts.port or (443 if parts.scheme == "https" else 80))
            logger.info("the local server's processes: %s", self._local_server.found)
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
        intervals: dict[str, tuple[float, float]] = {}
        for label, state in self._runs:
            bounds = state.trace.steady_bounds()
            if label != "warmup" and bounds is not None:
                intervals[label] = bounds
        return intervals

    def describe(self) -> dict[str, Any]:
        """Endpoint, served model, load settings, energy scope and the HTTP metrics of every run (JSON-safe)."""
        backend = self._backend
        names = self._profile.metrics
        runs = [run_summary(label, state, backend, names) for label, state in self._runs]
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
                "formatter": self._shaper.formatter.describe(),
            },
            "server": dict(self._server),
            "server_profile": self._profile.describe()
            | {"chosen_by": self._profile_reason, "not_sent": sorted(self._shaper.not_sent)},
            "device": "server on this host" if self._on_this_host else "server",
            "endpoint_on_this_host": self._on_this_host,
            "energy_scope": scope,
            "synthetic": False,
            "token_counter": self._token_counter_name,
            "server_features": server_features(
                [run for run, _ in generate], names, bool(self._metrics_available and backend.scrape_metrics)
            ),
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


#: Request fields that carry an output length, sent per request when output lengths are drawn per prompt.
_LENGTH_FIELDS = ("max_tokens", "min_tokens", "ignore_eos")


def _local_token_counter(name: str, context_tokens: int | None = None) -> TokenCounter:
    """``backend.tokenizer`` (a local path, or a hub id in the local cache) loaded with transformers."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError(
            f"backend.tokenizer needs transformers ({exc.name} is not installed): "
            "pip install 'ai-energy-benchmarks[pytorch]'"
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"backend.tokenizer: cannot load '{name}': {one_line(exc)}") from None

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]

    return TokenCounter(f"local:{name}", count, context_tokens)
