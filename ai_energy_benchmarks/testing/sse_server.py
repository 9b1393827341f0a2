"""A small OpenAI-compatible streaming server for tests, able to inject every failure the HTTP backend classifies.

It serves ``/v1/completions`` and ``/v1/chat/completions`` (server-sent events shaped like vLLM's, with the usage
chunk when ``stream_options.include_usage`` is set), ``/v1/models``, ``/health`` and Prometheus ``/metrics``, on a
free loopback port, from a background thread. ``server`` (``vllm``, ``sglang``, ``tgi``, ``openai``) chooses whose
manners it has (:mod:`.server_profiles`): metrics series, info endpoint (``/version``, ``/get_server_info``,
``/info``), ``owned_by``, the request extensions it reads, and whether it refuses fields it does not know::

    with FakeOpenAIServer(models=["tiny"], token_delay_s=0.001) as server:
        endpoint = server.url + "/v1"

A prompt chooses its own failure with a marker, so one run can mix good and bad requests:

- ``[fault:http_400]``: answer 400 (also ``http_401``, ``http_404``, ``http_429``, ``http_500``, ``http_503``;
  429 comes with ``Retry-After: 0``)
- ``[fault:retry429:N]``: answer 429 to the first N attempts of this prompt, then stream (with the server's
  ``retry_after`` as ``Retry-After``, none by default)
- ``[fault:retry503:N]``: the same with 503
- ``[fault:reset]``: stream two chunks, then abort the connection (reset mid-stream)
- ``[fault:drop]``: close the connection before answering
- ``[fault:stall:S]``: send the headers, then wait S seconds before the first chunk (read timeout)
- ``[fault:stall_mid:S]``: wait S seconds after the second chunk
- ``[fault:bad_sse]``: send a line that is not a server-sent event
- ``[fault:bad_json]``: send ``data: {not json``
- ``[fault:error_event]``: send ``data: {"error": ...}`` in the stream
- ``[fault:empty]``: stream no output token (usage says 0)
- ``[fault:truncated]``: end the response without ``data: [DONE]``
- ``[fault:no_usage]``: leave out the usage chunk
- ``[fault:lying_usage:N]``: stream as usual but claim N completion tokens in the usage block
- ``[fault:wrong_model]``: answer with another model's name (``impostor-model``) in every event

``capacity=K`` makes it saturate: at most K requests generate at once, the rest queue (``sse_parts.GenerationQueue``).

``answers`` (a table ``{text: answer}``) makes the server answer from it: a prompt containing a table key gets that
key's answer, one streamed token per word (then it stops, as at its end-of-sequence token, never past
``max_tokens``), so that a test knows which answers are correct.

:func:`refused_port` gives a port where nothing listens; :func:`unaccepting_listener` a port whose accept queue is
full, so that connecting times out. Everything binds to 127.0.0.1 only.

Its parts: the fault markers in :mod:`.sse_faults`, one streamed answer in :mod:`.sse_stream`, the simulated prefix
cache and tokenizer in :mod:`.sse_cache`, event shapes and ports in :mod:`.sse_parts`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ai_energy_benchmarks.testing.server_profiles import EXTENSIONS, SPEAKS, Counters
from ai_energy_benchmarks.testing.sse_cache import PrefixCache, token_ids
from ai_energy_benchmarks.testing.sse_faults import early_fault, fault_of
from ai_energy_benchmarks.testing.sse_parts import (
    HOST,
    GenerationQueue,
    error,
    full_response,
    refused_port,
    unaccepting_listener,
)
from ai_energy_benchmarks.testing.sse_stream import stream_answer


class FakeOpenAIServer:
    """An OpenAI-compatible streaming test server on 127.0.0.1 (see the module docstring for fault markers).

    Each request generates ``max_tokens`` tokens (as with ``ignore_eos``; see ``eos_after_tokens``),
    ``tokens_per_chunk`` per streamed chunk, ``token_delay_s`` seconds apart after ``first_token_delay_s`` (a chat
    stream's role chunk comes first, at once);
    a body with a key in ``rejected_fields`` is answered 400. Observations for tests: ``max_concurrent`` (most
    streams open at once), ``bodies`` (every request body received), ``auth_headers``, ``attempts`` (per prompt),
    and the token counters behind ``/metrics``.
    """

    def __init__(
        self,
        models: Sequence[str] = ("fake-model",),
        *,
        api_key: str | None = None,
        token_delay_s: float = 0.0,
        first_token_delay_s: float = 0.0,
        tokens_per_chunk: int = 1,
        empty_first_token: bool = False,
        role_chunk: bool = True,
        health: bool = True,
        metrics: bool = True,
        not_ready_for_s: float = 0.0,
        max_model_len: int = 4096,
        default_max_tokens: int = 16,
        rejected_fields: Sequence[str] = (),
        reasoning_tokens: int = 0,
        eos_after_tokens: int | None = None,
        retry_after: str | None = None,
        server: str = "vllm",
        answers: Mapping[str, str] | None = None,
        tag_answers: bool = False,
        tokenize: bool = True,
        spec_decode: tuple[int, float] | None = None,
        capacity: int | None = None,
    ) -> None:
        self.models = list(models)
        #: Whose manners this server has (see :mod:`.server_profiles`).
        self.speaks = SPEAKS[server]
        self.api_key = api_key
        self.token_delay_s = token_delay_s
        self.first_token_delay_s = first_token_delay_s
        self.tokens_per_chunk = max(1, tokens_per_chunk)
        self.empty_first_token = empty_first_token
        self.role_chunk = role_chunk
        self.health = health
        self.metrics = metrics
        self.not_ready_for_s = not_ready_for_s
        self.max_model_len = max_model_len
        self.default_max_tokens = default_max_tokens
        self.rejected_fields = set(rejected_fields)
        #: Chat streams send their first ``reasoning_tokens`` tokens as ``delta.reasoning_content`` (like vLLM with a
        #: reasoning parser) and report them in ``usage.completion_tokens_details.reasoning_tokens``.
        self.reasoning_tokens = reasoning_tokens
        #: When set, a request without ``ignore_eos`` ends at the model's end-of-sequence token after this many tokens
        #: (never before ``min_tokens``, never past ``max_tokens``), as a real model answers in its own length.
        self.eos_after_tokens = eos_after_tokens
        #: ``Retry-After`` header value sent with the ``retry429`` / ``retry503`` faults' answers (None: no header).
        self.retry_after = retry_after
        #: Prompt text -> answer: a prompt containing a key is answered with its value, a word per token.
        self.answers = dict(answers or {})
        #: Each answer's tokens carry the first word of the request's last message (`` Hello.t0 Hello.t1``), so a
        #: test can tell which request an answer came from (a multi-turn history, for one).
        self.tag_answers = tag_answers
        #: The simulated prefix cache (:mod:`.sse_cache`): a chat request's hits are the words of the longest
        #: earlier-seen list of messages its own starts with; a prompt's, its longest common word prefix with an
        #: earlier prompt (block size one word).
        self._prefix_cache = PrefixCache()
        #: Answer ``POST /tokenize`` as vLLM does (``{"count", "tokens", "max_model_len"}``); the fake tokenizer
        #: splits on whitespace (one token per word, no special tokens), as ``usage.prompt_tokens`` counts a prompt.
        self.tokenize = tokenize
        #: Texts received by ``/tokenize``, in order.
        self.tokenized: list[str] = []
        #: Speculative decoding as vLLM counts it: ``(draft tokens per step, acceptance rate)``; each generated token
        #: counts one draft of that many tokens, of which the rate's share is accepted. None: off (no series).
        self.spec_decode = spec_decode
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self.attempts: Counter[str] = Counter()
        #: ``time.perf_counter()`` of every generation request's arrival, by prompt.
        self.attempt_times: dict[str, list[float]] = {}
        self.max_concurrent = 0
        self.counters = Counters()
        #: Most requests generating at once (``capacity``; None: no limit); the rest queue (module docstring).
        self._queue = GenerationQueue(capacity, self.counters)
        self.port = 0
        self._started_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL without ``/v1``."""
        return f"http://{HOST}:{self.port}"

    @property
    def capacity(self) -> int | None:
        """Most requests generating at once (None: no limit); set it between runs, when no request is queued."""
        return self._queue.capacity

    @capacity.setter
    def capacity(self, value: int | None) -> None:
        self._queue = GenerationQueue(value, self.counters)

    def start(self) -> FakeOpenAIServer:
        """Start serving on a free loopback port (returns once it accepts connections)."""
        self._thread = threading.Thread(target=self._main, name="fake-openai-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the fake OpenAI server did not start")
        if self._error is not None:
            raise RuntimeError(f"the fake OpenAI server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self._loop = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_counters(self) -> None:
        """Forget observations (bodies, attempts, concurrency) but keep the Prometheus counters."""
        self.bodies.clear()
        self.auth_headers.clear()
        self.attempts.clear()
        self.attempt_times.clear()
        self.max_concurrent = 0

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        if self.speaks.info_path is not None:
            app.router.add_get(self.speaks.info_path, self._info)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        if self.tokenize:
            app.router.add_post("/tokenize", self._tokenize)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        sock = socket.socket()
        sock.bind((HOST, 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        self._started_at = time.monotonic()

    # -- simple routes ---------------------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        self.auth_headers.append(header)
        return self.api_key is None or header == f"Bearer {self.api_key}"

    async def _health(self, request: web.Request) -> web.Response:
        if not self.health or not self.speaks.has_health:
            return web.Response(status=404)
        if time.monotonic() - self._started_at < self.not_ready_for_s:
            return web.Response(status=503)
        return web.Response(status=200)

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self.speaks.info(self.models[0], self.max_model_len))

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error(401, "Unauthorized", "AuthenticationError")
        data = [
            {
                "id": m,
                "object": "model",
                "owned_by": self.speaks.owned_by(m),
                "root": m,
                "max_model_len": self.max_model_len,
            }
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _metrics(self, request: web.Request) -> web.Response:
        if not self.metrics or self.speaks.name == "openai":
            return web.Response(status=404)
        lines = self.speaks.metrics(self.models, self.counters)
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _tokenize(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error(401, "Unauthorized", "AuthenticationError")
        try:
            body = await request.json()
        except ValueError:
            return error(400, "request body is not JSON", "BadRequestError")
        model = body.get("model")
        if model is not None and model not in self.models:
            return error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if not isinstance(body.get("prompt"), str):
            return error(400, "prompt: a string is required", "BadRequestError")
        prompt = body["prompt"]
        self.tokenized.append(prompt)
        tokens = token_ids(prompt)
        return web.json_response({"count": len(tokens), "max_model_len": self.max_model_len, "tokens": tokens})

    # -- generation ------------------------------------------------------------------------------------------------
    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        if not self._authorised(request):
            return error(401, "Unauthorized", "AuthenticationError")
        try:
            body = await request.json()
        except ValueError:
            return error(400, "request body is not JSON", "BadRequestError")
        self.bodies.append(body)
        model = body.get("model")
        if model not in self.models:
            return error(404, f"The model `{model}` does not exist.", "NotFoundError")
        context_words = 0
        salt = body.get("cache_salt") if "cache_salt" in self.speaks.reads else None
        if chat:
            messages = body.get("messages") or [{}]
            prompt = str(messages[-1].get("content", ""))
            context_words = self._prefix_cache.look_up_messages(messages, self.counters, salt)
        else:
            prompt = str(body.get("prompt", ""))
        rejected = sorted(self.rejected_fields & set(body))
        if rejected:
            return error(400, f"unsupported field: {rejected[0]}", "BadRequestError")
        unread = sorted((EXTENSIONS - self.speaks.reads) & set(body))
        if unread and self.speaks.rejects_unknown:
            return error(400, f"Unrecognized request argument supplied: {unread[0]}", "invalid_request_error")
        body = {key: value for key, value in body.items() if key not in unread}  # not read: as if never sent
        max_tokens = int(body.get("max_tokens") or self.default_max_tokens)
        if max_tokens >= self.max_model_len:
            return error(400, f"max_tokens={max_tokens} cannot be greater than max_model_len", "BadRequestError")
        self.attempts[prompt] += 1
        self.attempt_times.setdefault(prompt, []).append(time.perf_counter())
        fault, argument = fault_of(prompt)
        early = early_fault(request, fault, argument, self.attempts[prompt], self.retry_after)
        if early is not None:
            return early
        if not chat:  # a chat request was counted by its messages (look_up_messages)
            self._prefix_cache.look_up_prompt(prompt, self.counters, salt)
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        prompt_tokens = (context_words or len(prompt.split())) + (3 if chat else 0)
        tokens = 0 if fault == "empty" else max_tokens
        if tokens and self.eos_after_tokens is not None and not body.get("ignore_eos"):
            tokens = min(max_tokens, max(int(body.get("min_tokens") or 0), self.eos_after_tokens))
        words = self._answer_words(prompt)
        if words is not None and fault is None:
            tokens = min(max_tokens, len(words))
        if fault == "wrong_model":
            model = "impostor-model"
        if not stream:
            self.count_answer(prompt_tokens, tokens)
            return web.json_response(full_response(chat, model, tokens, prompt_tokens))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        self.counters.active += 1
        self.max_concurrent = max(self.max_concurrent, self.counters.active)
        try:
            tag = (prompt.split() or [""])[0] + "." if self.tag_answers else ""
            answer = (request, response, chat, model, tokens, prompt_tokens, include_usage, fault, argument, words, tag)
            async with self._queue.slot():  # with a capacity, wait for a generation slot first
                await stream_answer(self, *answer)
        except ConnectionResetError:
            pass  # the client went away (for instance after its read timeout)
        finally:
            self.counters.active -= 1
        return response

    def _answer_words(self, prompt: str) -> list[str] | None:
        """The table's answer for ``prompt`` as words (the first key the prompt contains), or None."""
        for key, answer in self.answers.items():
            if key in prompt:
                return answer.split() or [""]
        return None

    def count_answer(self, prompt_tokens: int, tokens: int) -> None:
        """Count one answer of ``tokens`` tokens to a prompt of ``prompt_tokens`` in the ``/metrics`` counters."""
        counters = self.counters
        counters.prompt_tokens += prompt_tokens
        counters.generation_tokens += tokens
        counters.successes += 1
        # The server's own times: prefill until the first token, decode for the rest (its configured delays).
        counters.prefill_time_s += self.first_token_delay_s
        counters.decode_time_s += self.token_delay_s * max(0, tokens - 1)
        if self.spec_decode is not None:
            per_draft, rate = self.spec_decode
            counters.spec_drafts = (counters.spec_drafts or 0) + tokens
            counters.spec_draft_tokens = (counters.spec_draft_tokens or 0) + tokens * per_draft
            counters.spec_accepted_tokens = (counters.spec_accepted_tokens or 0) + round(tokens * per_draft * rate)


__all__ = ["FakeOpenAIServer", "refused_port", "unaccepting_listener"]
