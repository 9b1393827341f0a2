"""The HTTP backend's checks of the server before anything is measured: readiness, the served model, which server
it is (its profile: configured, or detected), its version and metrics, and one first request.

Every check runs in ``load()``, outside the measured windows; a failure is a :class:`BackendError` (the server) or a
:class:`ConfigError` (the configuration) naming the setting to change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_loop import LoopThread
from ai_energy_benchmarks.backends.http_request import RequestShaper
from ai_energy_benchmarks.backends.servers import detect, get_profile
from ai_energy_benchmarks.backends.servers.base import ServerFacts, ServerProfile
from ai_energy_benchmarks.exceptions import BackendError, ConfigError

logger = logging.getLogger(__name__)

#: ``(path, timeout_s) -> (status, body)``: one GET on the server (raises aiohttp/asyncio errors).
Getter = Callable[[str, float], tuple[int, bytes]]

_KEY_SOURCES = {
    "config": "backend.api_key",
    "env:OPENAI_API_KEY": "the OPENAI_API_KEY environment variable",
    "none": "no key (set backend.api_key or OPENAI_API_KEY)",
    "endpoint": "the credentials in backend.endpoint",
}


def describe_exception(exc: BaseException) -> str:
    """A one-line description of a connection failure or other exception."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error or exc}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class ServerChecks:
    """Runs the checks against one server; what they found is in :attr:`server` (reported as ``server``)."""

    def __init__(
        self,
        get: Getter,
        backend: OpenAIHTTPConfig,
        public_endpoint: str,
        redact: Callable[[str], str],
        api_key_source: str,
    ) -> None:
        self._get = get
        self._backend = backend
        self._public = public_endpoint
        self._redact = redact
        self._key_source = api_key_source
        self.server: dict[str, Any] = {}
        self.models: list[dict[str, Any]] = []
        self.aliases: set[str] = set()

    def auth_message(self, status: int) -> str:
        """The error for a refused key, naming where the key came from."""
        return (
            f"backend.api_key: the server at {self._public} refused the request (HTTP {status}); "
            f"key from {_KEY_SOURCES[self._key_source]}"
        )

    def wait_ready(self, health_path: str | None) -> None:
        """Poll ``health_path`` (or ``/v1/models`` where there is none, or it answers 404/405) until 200 or
        ``backend.ready_timeout_s``."""
        timeout_s = self._backend.ready_timeout_s
        deadline = time.monotonic() + timeout_s
        last_error = "no answer"
        announced = False
        while True:
            remaining = max(0.5, min(10.0, deadline - time.monotonic()))
            try:
                status, body = self._get(health_path or "/v1/models", remaining)
                if status in (404, 405) and health_path:
                    status, body = self._get("/v1/models", remaining)
                if status == 200:
                    return
                if status in (401, 403):
                    raise BackendError(self.auth_message(status))
                last_error = f"HTTP {status}: {hc.error_message(body)}"
            except (aiohttp.ClientError, asyncio.TimeoutError, concurrent.futures.TimeoutError) as exc:
                last_error = self._redact(describe_exception(exc))
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"backend.endpoint: the server at {self._public} is not ready after {timeout_s:g} s "
                    f"(backend.ready_timeout_s): {last_error}"
                )
            if not announced:
                logger.info("waiting up to %g s for the server at %s (%s)", timeout_s, self._public, last_error)
                announced = True
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def check_model(self, max_new_tokens: int) -> frozenset[str]:
        """Check ``backend.model`` is served (and ``max_new_tokens`` fits its context); the names it answers to."""
        model = self._backend.model
        status, body = self._get("/v1/models", 30.0)
        if status in (401, 403):
            raise BackendError(self.auth_message(status))
        if status != 200:
            raise BackendError(
                f"backend.endpoint: GET {self._public}/v1/models answered HTTP {status}: "
                f"{self._redact(hc.error_message(body))}"
            )
        try:
            self.models = [m for m in json.loads(body)["data"] if isinstance(m, dict)]
        except (ValueError, KeyError, TypeError):
            raise BackendError(
                f"backend.endpoint: {self._public}/v1/models did not answer an OpenAI model list"
            ) from None
        served = {str(m.get("id")): m for m in self.models}
        if model not in served:
            names = ", ".join(sorted(served)) or "(none)"
            raise BackendError(f"backend.model: '{model}' is not served by {self._public}; served models: {names}")
        info = served[model]
        self.server["served_model"] = model
        # vLLM serves one model under several names (--served-model-name a b c) and answers, in responses and in its
        # metrics' model_name label, with the first: names with the same root are this model's.
        root = info.get("root")
        self.aliases = {name for name, entry in served.items() if root and entry.get("root") == root} - {model}
        if self.aliases:
            self.server["model_aliases"] = sorted(self.aliases)
        self.server["model_root"] = info.get("root")
        max_len = info.get("max_model_len")
        self.server["max_model_len"] = max_len if isinstance(max_len, int) else None
        if isinstance(max_len, int) and max_new_tokens >= max_len:
            raise ConfigError(
                f"scenario.generate_kwargs.max_new_tokens: {max_new_tokens} does not fit the served model's context "
                f"of {max_len} tokens"
            )
        return frozenset({model, *self.aliases})

    def _get_text(self, path: str) -> tuple[int, bytes]:
        try:
            return self._get(path, 5.0)
        except (aiohttp.ClientError, asyncio.TimeoutError, concurrent.futures.TimeoutError):
            return 0, b""

    def _get_json(self, path: str) -> dict[str, Any] | None:
        status, body = self._get_text(path)
        if status != 200:
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def choose_profile(self) -> tuple[ServerProfile, str, tuple[int, bytes]]:
        """The server's profile and why (``backend.server``, or detected), with the ``/metrics`` answer read for it.

        A configured profile is kept even when the server looks like another one; the mismatch is logged as a warning
        and recorded (``server.detected`` and ``server.profile_mismatch``).
        """
        metrics = self._get_text("/metrics")
        facts = ServerFacts(
            metrics_text=metrics[1].decode("utf-8", "replace") if metrics[0] == 200 else None, models=self.models
        )
        detected, reason = detect(facts)
        if detected.name == "openai":  # TGI's /info is asked only when nothing else gave the server away
            facts.info = self._get_json("/info")
            if facts.info is not None:
                detected, reason = detect(facts)
        configured = self._backend.server
        if configured is None:
            logger.info("server profile %s: detected (%s)", detected.name, reason)
            return detected, f"detected: {reason}", metrics
        profile = get_profile(configured)
        self.server["detected"] = {"profile": detected.name, "reason": reason}
        if detected.name != profile.name and detected.name != "openai":
            self.server["profile_mismatch"] = (
                f"backend.server is {profile.name} but the server looks like {detected.name} ({reason}): "
                f"requests and metrics follow the {profile.name} profile as configured"
            )
            logger.warning("%s", self.server["profile_mismatch"])
        return profile, "backend.server", metrics

    def probe(self, profile: ServerProfile, metrics: tuple[int, bytes]) -> tuple[bool, str | None]:
        """Read the server's version; whether its profile's metrics are at ``/metrics`` and, if not, why."""
        if profile.version_path is not None:
            data = self._get_json(profile.version_path)
            if data is not None:
                version = data.get("version")
                self.server["version"] = str(version) if version is not None else None
        if not self._backend.scrape_metrics:
            return False, "scraping off (backend.scrape_metrics=false)"
        if profile.metrics is None:
            return (
                False,
                f"the {profile.name} server profile has no Prometheus metrics: the server's view is not reported",
            )
        status, body = metrics
        if status == 200 and profile.metrics.prefix.encode() in body:
            return True, None
        note = (
            f"no {profile.title} Prometheus metrics at {self._public}/metrics "
            f"({'HTTP ' + str(status) if status else 'no answer'}): the server's own view is not reported"
        )
        logger.info("%s", note)
        return False, note


def check_first_answer(result: hc.Attempt, url: str) -> bool:
    """Judge the answer to the first request (see ``OpenAIHTTPBackend._check_request``): a 4xx is a configuration
    error, any other failure a server error; whether the stream carried a usage block (warned when not)."""
    if result.error_class == hc.HTTP_4XX:
        raise ConfigError(f"scenario.generate_kwargs / backend: the server rejected a request: {result.error}")
    if result.error_class is not None:
        raise BackendError(f"backend.endpoint: a first request to {url} failed ({result.error_class}): {result.error}")
    if result.usage is None:
        logger.warning(
            "the server sent no usage block in the stream (stream_options.include_usage): output tokens are "
            "counted as streamed chunks, which undercounts when a chunk carries several tokens"
        )
    return result.usage is not None


def check_request(
    loop: LoopThread, client: hc.HttpClient, base_body: dict[str, Any], shaper: RequestShaper, url: str
) -> bool:
    """Send one request (``base_body``, the configured options with one output token, and ``shaper``'s fields for a
    short prompt) so that a rejected option fails now; judged by :func:`check_first_answer` (``url`` names the
    endpoint in its messages)."""
    plan = hc.RunPlan(
        label="check",
        prompts=["Hello"],
        base_body=base_body,
        chat=shaper.chat,
        concurrency=1,
        render=shaper.request_fields,
    )
    result = loop.call(client.stream_once(hc.encode_body(plan, "Hello"), plan.chat))
    return check_first_answer(result, url)
