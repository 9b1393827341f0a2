"""What synthetic prompts need from the HTTP backend: the served model's tokenizer as a token counter (loaded
locally from ``backend.tokenizer``, or the server's tokenize endpoint), and each prompt's own output-length fields
when lengths are drawn per prompt (``Backend.set_prompt_kwargs``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from ai_energy_benchmarks.backends.http_client import HttpClient
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_loop import LoopThread
from ai_energy_benchmarks.backends.servers.base import ServerProfile
from ai_energy_benchmarks.datasets.synthetic import TokenCounter
from ai_energy_benchmarks.exceptions import BackendError, ConfigError, MissingDependencyError, one_line

#: Request fields that carry an output length, sent per request when output lengths are drawn per prompt.
LENGTH_FIELDS = ("max_tokens", "min_tokens", "ignore_eos")


def model_token_counter(
    backend: OpenAIHTTPConfig,
    profile: ServerProfile,
    connection: tuple[LoopThread, HttpClient] | None,
    public_endpoint: str,
    redact: Callable[[str], str],
    context_tokens: int | None,
) -> TokenCounter:
    """The served model's tokenizer as a token counter (special tokens excluded): ``backend.tokenizer`` loaded
    locally, else the server's tokenize endpoint where its ``profile`` has one and ``connection`` (the backend's
    loop and client, after it loaded) is open.

    Raises:
        ConfigError: neither is available (the message says what to set).
    """
    if backend.tokenizer is not None:
        return local_token_counter(backend.tokenizer, context_tokens)
    if profile.tokenize_path is not None and connection is not None:
        loop, client = connection
        timeouts_s = (backend.connect_timeout_s, backend.read_timeout_s)
        return server_token_counter(
            loop, client, profile.tokenize_path, public_endpoint, timeouts_s, redact, context_tokens
        )
    raise ConfigError(
        "scenario.dataset_name: synthetic prompts need the model's tokenizer: set backend.tokenizer to a "
        f"local tokenizer path or id (the {profile.title} server profile has no tokenize endpoint)"
    )


def local_token_counter(name: str, context_tokens: int | None = None) -> TokenCounter:
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


def server_token_counter(
    loop: LoopThread,
    client: HttpClient,
    path: str,
    public_endpoint: str,
    timeouts_s: tuple[float, float],
    redact: Callable[[str], str],
    context_tokens: int | None,
) -> TokenCounter:
    """The server's tokenize endpoint at ``path`` (one POST per text, sent concurrently on ``loop``) as a token
    counter for ``client.model``; ``public_endpoint`` (no credentials) names it in messages. ``timeouts_s``: the
    connect and read timeouts (s)."""
    model = client.model
    timeout = aiohttp.ClientTimeout(sock_connect=timeouts_s[0], sock_read=timeouts_s[1])
    url = public_endpoint + path

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
                    f"{redact(body[:200].decode('utf-8', 'replace'))}"
                )
        answer = json.loads(body)
        count = answer.get("count") if isinstance(answer, dict) else None
        if not isinstance(count, int):
            raise BackendError(f"{url} answered without a token count ('count'): {body[:200]!r}")
        return count

    async def count_many(texts: list[str]) -> list[int]:
        return list(await asyncio.gather(*(count_one(text) for text in texts)))

    return TokenCounter(f"server:{url}", lambda texts: loop.call(count_many(texts)), context_tokens)


def length_fields(
    prompts: list[str],
    generate_kwargs: dict[str, Any],
    per_prompt: list[dict[str, Any]] | None,
    base_body: Callable[[dict[str, Any]], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]] | None]:
    """The shared body (``base_body`` of ``generate_kwargs``), and (with ``per_prompt`` options) each prompt's
    length fields, which the shared body then leaves out."""
    base = base_body(generate_kwargs)
    if per_prompt is None:
        return base, None
    per_text: dict[str, dict[str, Any]] = {}
    for index, prompt in enumerate(prompts):
        body = base_body(generate_kwargs | per_prompt[index])
        fields = {key: body[key] for key in LENGTH_FIELDS if key in body}
        if per_text.setdefault(prompt, fields) != fields:
            raise BackendError(f"prompt {index} is sent twice with different output lengths")
    return {k: v for k, v in base.items() if k not in LENGTH_FIELDS}, per_text
