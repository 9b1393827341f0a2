"""The ``backend`` settings of ``type: vllm``: an OpenAI-compatible server (vLLM, SGLang, TGI, ...) driven over HTTP."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ai_energy_benchmarks.config.backend import BackendConfig

#: The named load profiles (``backend.load_profile``) and what each sends.
LOAD_PROFILES = {
    "synchronous": "one request at a time (concurrency 1, no request rate)",
    "throughput": "all requests at once, up to backend.concurrency in flight (no request rate)",
    "constant": "backend.request_rate requests per second, evenly spaced (at most backend.concurrency in flight)",
    "poisson": "backend.request_rate requests per second on average, Poisson arrivals (seeded by backend.seed)",
}

_HOST_NAME = re.compile(r"[A-Za-z0-9_~%-]+(\.[A-Za-z0-9_~%-]+)*\.?")


def endpoint_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a server endpoint (an http/https URL with a host), or None when it is fine.

    The message never repeats the URL (it may carry credentials).
    """
    import ipaddress
    import urllib.parse

    usage = "expected an http:// or https:// URL with a host (e.g. http://localhost:8000/v1)"
    text = url.strip()
    if not text or any(ch.isspace() for ch in text):
        return usage + ("" if not text else "; a URL holds no spaces")
    try:
        parts = urllib.parse.urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"{usage}; {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return usage + (f"; scheme '{parts.scheme}' is not http or https" if "://" in text else "; no scheme")
    if not host:
        return usage + "; no host"
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{usage}; '{host}' is not an IPv6 address"
    elif not _HOST_NAME.fullmatch(host):
        return f"{usage}; '{host}' is not a host name"
    if port == 0:
        return f"{usage}; port 0"
    return None


class OpenAIHTTPConfig(BackendConfig):
    """`type: vllm`: an OpenAI-compatible server (vLLM, SGLang, TGI or any server of the OpenAI API) driven over
    HTTP, one streamed request per prompt; `device`/`device_ids` name the server's GPUs when it runs on this host."""

    type: Literal["vllm"] = Field("vllm", description="`vllm` (any OpenAI-compatible server).")
    server: str | None = Field(
        None,
        description="Which server answers: `vllm`, `sglang`, `tgi` or `openai` (the plain API); unset: detected "
        "from the server.",
    )
    endpoint: str | None = Field(
        None,
        description="Server base URL, with or without `/v1` (e.g. `http://localhost:8000/v1`).",
    )
    api_key: SecretStr | None = Field(
        None,
        description="API key for the server; when unset, the `OPENAI_API_KEY` environment variable. "
        "Never written to results or logs.",
    )
    api: Literal["auto", "completions", "chat"] = Field(
        "auto",
        description="`/v1/chat/completions` (`chat`: messages through the server's chat template), "
        "`/v1/completions` (`completions`: plain prompts), or `auto`: chat, as 0.0.4 always sent, unless "
        "`scenario.chat_template` is false.",
    )
    load_profile: Literal["synchronous", "throughput", "constant", "poisson"] | None = Field(
        None,
        description="A named load: `synchronous` (one request at a time), `throughput` (all at once, up to "
        "`concurrency` in flight), `constant` (`request_rate` per second, evenly spaced) or `poisson` (`request_rate` "
        "per second on average, Poisson arrivals). Unset: the load `concurrency`, `request_rate` and `arrival` give.",
    )
    concurrency: int = Field(1, ge=1, description="Most requests in flight at once.")
    request_rate: float | None = Field(
        None, gt=0, description="Requests per second offered; unset: as fast as `concurrency` allows."
    )
    arrival: Literal["constant", "poisson"] = Field(
        "poisson", description="Arrival process with `request_rate`: evenly spaced or Poisson (seeded)."
    )
    burstiness: float = Field(
        1.0, gt=0, description="Gamma shape of inter-arrival times (1: Poisson; < 1 burstier; > 1 smoother)."
    )
    duration_s: float | None = Field(
        None,
        gt=0,
        description="Keep sending (cycling through the prompts) for this many seconds instead of once each.",
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout (s).")
    read_timeout_s: float = Field(300.0, gt=0, description="Longest wait between two response chunks (s).")
    ready_timeout_s: float = Field(
        60.0, ge=0, description="Wait this long for the server to answer `/health` or `/v1/models` (s)."
    )
    max_retries: int = Field(3, ge=0, description="Retries of a request answered 429 or 503.")
    retry_backoff_s: float = Field(
        0.5,
        ge=0,
        description="Retry backoff (s): retry n waits a random draw from [d/2, d], d = this * 2^(n-1).",
    )
    max_consecutive_failures: int = Field(
        50, ge=0, description="Stop the run after this many failures in a row (0: never)."
    )
    ignore_eos: bool | None = Field(
        None,
        description="Send `ignore_eos` (every request generates exactly `max_new_tokens` tokens). Unset: only "
        "for a fixed length (`min_new_tokens == max_new_tokens`); otherwise `min_tokens` is sent and the model stops "
        "at its end-of-sequence token.",
    )
    server_on_this_host: bool | None = Field(
        None,
        description="Whether the server runs on this host, so that this host's GPUs are its GPUs. Unset: "
        "detected from the endpoint's address (loopback or an address of this host). Set false for a tunnel or "
        "port-forward to a remote server (`ssh -L`, `kubectl port-forward`), whose loopback address is not its host.",
    )
    tokenizer: str | None = Field(
        None,
        description="The served model's tokenizer, a local path or a hub id in the local cache, for synthetic prompts "
        "of exact lengths (`scenario.dataset_name: synthetic`). Unset: the server's tokenize endpoint where its "
        "profile has one (vLLM's `POST /tokenize`).",
    )
    isolate_prefix_cache: bool = Field(
        True,
        description="On a server that reads `cache_salt` (vLLM), salt each pass's prefix-cache lookups with a token "
        "of its own (warm-up, prefill and generate passes, each repetition, each run), so that a pass never finds "
        "the prompts an earlier pass sent in the cache; false: passes share the server's prefix cache.",
    )
    scrape_metrics: bool = Field(
        True, description="Scrape the server's Prometheus `/metrics` every second during the run."
    )
    slo_ttft_s: float | None = Field(None, gt=0, description="Time-to-first-token objective for goodput (s).")
    slo_tpot_s: float | None = Field(None, gt=0, description="Time-per-output-token objective for goodput (s).")
    slo_e2e_s: float | None = Field(None, gt=0, description="End-to-end latency objective for goodput (s).")

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = endpoint_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()

    @model_validator(mode="before")
    @classmethod
    def _profile_arrival(cls, data: Any) -> Any:
        # constant / poisson set the arrival process unless the config names one (a contradiction is refused after).
        if isinstance(data, dict) and data.get("load_profile") in ("constant", "poisson") and "arrival" not in data:
            data = {**data, "arrival": data["load_profile"]}
        return data

    @model_validator(mode="after")
    def _check_endpoint_given(self) -> OpenAIHTTPConfig:
        if not self.endpoint:
            raise ValueError(f"endpoint is required when type is '{self.type}'")
        problem = load_profile_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def load_profile_name(self) -> str:
        """The load these settings send: ``load_profile`` when set, else the profile they amount to (``synchronous``
        for concurrency 1 without a rate, ``throughput`` for more, the arrival process with a rate; ``gamma`` for
        Poisson-like arrivals of another burstiness)."""
        if self.load_profile is not None:
            return self.load_profile
        if self.request_rate is None:
            return "synchronous" if self.concurrency == 1 else "throughput"
        if self.arrival == "poisson" and self.burstiness != 1.0:
            return "gamma"
        return self.arrival


def load_profile_problem(config: OpenAIHTTPConfig) -> str | None:
    """What contradicts ``config.load_profile`` among the other load settings (one line), or None."""
    profile = config.load_profile
    if profile is None:
        return None
    where = f"load_profile '{profile}'"
    if profile in ("synchronous", "throughput") and config.request_rate is not None:
        return (
            f"{where} sends without a request rate: remove request_rate ({config.request_rate:g}) or choose 'constant'"
        )
    if profile == "synchronous" and config.concurrency != 1:
        return f"{where} sends one request at a time: concurrency must be 1, got {config.concurrency}"
    if profile == "throughput" and config.concurrency < 2:
        return f"{where} keeps concurrency requests in flight: set concurrency to 2 or more (1 is 'synchronous')"
    if profile in ("constant", "poisson"):
        if config.request_rate is None:
            return f"{where} needs request_rate (requests per second), e.g. backend.request_rate=4"
        if config.arrival != profile:
            return f"{where} contradicts arrival '{config.arrival}': remove arrival or make it '{profile}'"
        if profile == "poisson" and config.burstiness != 1.0:
            return (
                f"{where} means burstiness 1, got {config.burstiness:g}: for gamma arrivals leave load_profile unset "
                "and set arrival: poisson with burstiness"
            )
    return None


__all__ = ["LOAD_PROFILES", "OpenAIHTTPConfig", "endpoint_problem", "load_profile_problem"]
