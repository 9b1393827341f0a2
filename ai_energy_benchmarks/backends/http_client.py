"""The asyncio + aiohttp engine of the OpenAI-compatible backend.

One :class:`HttpClient` lives on one event loop (the backend runs that loop in a background thread). It streams
requests with server-sent events, classifies every failure, checks each answer against its request and stream,
retries 429/503 with jittered exponential backoff (or a jittered ``Retry-After``), sends on an arrival schedule
under a concurrency limit, and scrapes the server's Prometheus ``/metrics`` while a run is going.

Times are ``time.perf_counter()`` seconds (the clock of the measured windows); durations are seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_metrics import SAMPLED_SERIES, SlotTrace, parse_prometheus

logger = logging.getLogger(__name__)

# -- error classes ---------------------------------------------------------------------------------------------------
CONNECT_REFUSED = "connect_refused"  #: nothing listens on the endpoint's port
CONNECT_ERROR = "connect_error"  #: any other failure to connect (DNS, TLS, unreachable)
CONNECT_TIMEOUT = "connect_timeout"  #: no TCP connection within backend.connect_timeout_s
READ_TIMEOUT = "read_timeout"  #: no response byte within backend.read_timeout_s (before or between chunks)
DISCONNECTED = "disconnected"  #: the server closed the connection before answering
RESET_MID_STREAM = "reset_mid_stream"  #: the connection broke while the response streamed
STREAM_TRUNCATED = "stream_truncated"  #: the response ended cleanly but without ``data: [DONE]``
HTTP_429 = "http_429"  #: rate limited, still after backend.max_retries retries
HTTP_4XX = "http_4xx"  #: any other client error status (400 bad request, 401, 404 unknown model, ...)
HTTP_5XX = "http_5xx"  #: server error status (503 after its retries)
HTTP_OTHER = "http_other"  #: an unexpected non-200 status (1xx, 3xx)
MALFORMED_SSE = "malformed_sse"  #: a line that is not server-sent events
MALFORMED_JSON = "malformed_json"  #: an event whose data is not the expected JSON object
STREAM_ERROR = "stream_error"  #: the server reported an error inside the stream (``data: {"error": ...}``)
EMPTY_COMPLETION = "empty_completion"  #: the stream completed with no output token
ABORTED = "aborted"  #: in flight when the run was stopped by backend.max_consecutive_failures
CLIENT_ERROR = "client_error"  #: any other client-side failure

ERROR_CLASSES = (
    CONNECT_REFUSED,
    CONNECT_ERROR,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    DISCONNECTED,
    RESET_MID_STREAM,
    STREAM_TRUNCATED,
    HTTP_429,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_OTHER,
    MALFORMED_SSE,
    MALFORMED_JSON,
    STREAM_ERROR,
    EMPTY_COMPLETION,
    ABORTED,
    CLIENT_ERROR,
)

# -- contradictions in an answer that succeeded (the request stays ok; flagged and counted) -------------------------
#: ``usage.completion_tokens`` above the request's ``max_tokens``: impossible, the stream-derived count is used.
USAGE_OVER_MAX_TOKENS = "usage_over_max_tokens"
#: ``usage.completion_tokens`` below the number of content chunks (each carries a token): the stream's count is used.
USAGE_BELOW_CHUNKS = "usage_below_chunks"
#: Fewer output tokens than the request's ``min_tokens`` (or ``max_tokens`` with ``ignore_eos``): not fixed length.
BELOW_MIN_TOKENS = "below_min_tokens"
#: More content chunks than ``max_tokens``: the stream itself contradicts the request.
CHUNKS_OVER_MAX_TOKENS = "chunks_over_max_tokens"
#: The response names another model than the one requested.
WRONG_MODEL = "wrong_model"

#: Content chunks that may carry no token: some servers end a stream with an empty-text chunk holding only the
#: ``finish_reason``. The chunk checks allow this many.
CHUNK_SLACK = 1

CONTRADICTIONS = (USAGE_OVER_MAX_TOKENS, USAGE_BELOW_CHUNKS, BELOW_MIN_TOKENS, CHUNKS_OVER_MAX_TOKENS, WRONG_MODEL)

#: Statuses retried with backoff (rate limited, temporarily unavailable).
RETRY_STATUSES = frozenset({429, 503})
#: Longest single wait before a retry (s), whatever Retry-After says.
MAX_RETRY_WAIT_S = 60.0
#: A Retry-After of R seconds is waited as a uniform draw from [R, (1 + RETRY_AFTER_SPREAD) * R].
RETRY_AFTER_SPREAD = 0.5
#: Client keep-alive for idle pooled connections (s); below uvicorn's 5 s so that the client never reuses a
#: connection the server is closing.
KEEPALIVE_S = 4.0
#: The event loop's timers wake up to 1 ms late (epoll rounds timeouts up to whole milliseconds); the last
#: ``PRECISE_WAIT_S`` before a scheduled send are slept in a helper thread (``time.sleep`` is precise to
#: microseconds) so that arrivals keep their schedule without spinning.
PRECISE_WAIT_S = 0.002
_CHAT_OUTPUT_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls")


def retry_delay_s(retry: int, backoff_s: float, retry_after_s: float | None, rng: random.Random) -> float:
    """The wait (s) before retry number ``retry`` (1 for the first), jittered so that clients do not retry in lockstep.

    Without ``Retry-After``: "equal jitter" on the exponential delay d = ``backoff_s`` * 2^(retry - 1), a uniform draw
    from [d / 2, d]. With ``Retry-After: R``: a uniform draw from [R, (1 + :data:`RETRY_AFTER_SPREAD`) R], never
    earlier than the server asked. Both capped at :data:`MAX_RETRY_WAIT_S`.
    """
    if retry_after_s is not None:
        low, high = retry_after_s, retry_after_s * (1.0 + RETRY_AFTER_SPREAD)
    else:
        high = backoff_s * 2.0 ** (retry - 1)
        low = high / 2.0
    return min(rng.uniform(low, high), MAX_RETRY_WAIT_S)


def arrival_offsets(rate: float | None, arrival: str, burstiness: float, seed: int) -> Iterator[float]:
    """Endless send times (s after the start): all 0 without a rate, ``i / rate`` for ``constant``, and for
    ``poisson`` cumulative gamma-distributed gaps (shape ``burstiness``, mean ``1 / rate``) from ``seed``."""
    if rate is None:
        while True:
            yield 0.0
    if arrival == "constant":
        index = 0
        while True:
            yield index / rate
            index += 1
    rng = random.Random(seed)
    offset = 0.0
    scale = 1.0 / (rate * burstiness)
    while True:
        yield offset
        offset += rng.gammavariate(burstiness, scale)


def arrival_schedule(count: int, rate: float | None, arrival: str, burstiness: float, seed: int) -> list[float]:
    """The first ``count`` send times of :func:`arrival_offsets` (s after the start)."""
    offsets = arrival_offsets(rate, arrival, burstiness, seed)
    return [next(offsets) for _ in range(count)]


@dataclass
class RunPlan:
    """One call of ``Backend.run``: what to send and how."""

    label: str
    prompts: list[str]
    base_body: dict[str, Any]
    chat: bool
    concurrency: int
    render: Callable[[str], dict[str, Any]] | None = None
    request_rate: float | None = None
    arrival: str = "poisson"
    burstiness: float = 1.0
    seed: int = 0
    duration_s: float | None = None
    max_retries: int = 3
    retry_backoff_s: float = 0.5
    max_consecutive_failures: int = 0
    scrape_interval_s: float | None = None


@dataclass
class RunState:
    """What happened during one run (filled on the event loop, read by the backend afterwards)."""

    plan: RunPlan
    trace: SlotTrace
    records: list[RequestRecord] = field(default_factory=list)
    sent: int = 0
    not_sent: int = 0
    drift_s: list[float] = field(default_factory=list)
    held_for_slot: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    #: Every wait before a retry (s), in the order they were drawn.
    retry_waits_s: list[float] = field(default_factory=list)
    #: Requests whose answer contradicted the request or the stream, by contradiction.
    contradictions: Counter[str] = field(default_factory=Counter)
    consecutive_failures: int = 0
    stop_reason: str | None = None
    usage_missing: int = 0
    prometheus_before: dict[str, float] | None = None
    prometheus_after: dict[str, float] | None = None
    prometheus_samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    scrape_errors: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass
class _Attempt:
    """The outcome of one HTTP attempt of a request."""

    error_class: str | None = None
    error: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    first_token_s: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    done: bool = False
    reasoning_chunks: int = 0
    #: Every distinct ``model`` named in the response's events.
    models: set[str] = field(default_factory=set)


class _ReadWatchdog:
    """Cancels the current task when nothing was received for ``timeout_s`` (one timer per ``timeout_s`` of
    silence, not one per chunk). Readers set ``last_s`` (``time.perf_counter()``) whenever data arrives."""

    __slots__ = ("_handle", "_loop", "_task", "_timeout_s", "expired", "last_s")

    def __init__(self, timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._timeout_s = timeout_s
        self.last_s = time.perf_counter()
        self.expired = False
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(timeout_s, self._check)

    def _check(self) -> None:
        idle = time.perf_counter() - self.last_s
        if idle < self._timeout_s:
            self._handle = self._loop.call_later(self._timeout_s - idle, self._check)
            return
        self._handle = None
        if self._task is not None:
            self.expired = True
            self._task.cancel()

    def uncancel(self) -> None:
        """Withdraw this watchdog's cancellation once it has been caught (Python 3.11+ counts them)."""
        uncancel = getattr(self._task, "uncancel", None)
        if uncancel is not None:
            uncancel()

    def stop(self) -> None:
        """Disarm the timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class HttpClient:
    """Streams OpenAI-compatible requests on the running event loop; create and use it on that loop only."""

    def __init__(
        self,
        base_url: str,
        api_path: str,
        model: str,
        headers: dict[str, str],
        connect_timeout_s: float,
        read_timeout_s: float,
        connections: int,
        redact: Callable[[str], str] = lambda text: text,
        retry_seed: int | None = None,
    ) -> None:
        """``retry_seed`` seeds the jitter of retry waits (for tests); None draws it from the OS, so that two
        clients (two benchmark processes with one config) never retry in lockstep."""
        self.base_url = base_url
        self.url = base_url + api_path
        self.model = model
        #: Names the server may answer for this model: the requested one and its aliases (vLLM answers with the first
        #: of its --served-model-name list whichever alias was asked for); set by the backend from /v1/models.
        self.model_names: frozenset[str] = frozenset({model})
        self._headers = headers
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._connections = connections
        self._redact = redact
        self._retry_rng = random.Random(retry_seed)
        self._session: aiohttp.ClientSession | None = None
        self._timer: concurrent.futures.ThreadPoolExecutor | None = None

    # -- session ---------------------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the connection pool (``connections`` keep-alive connections at most)."""
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0, keepalive_timeout=KEEPALIVE_S)
        timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=self._connect_timeout_s, sock_read=None)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers)
        self._timer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="aieb-http-timer")

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._timer is not None:
            self._timer.shutdown(wait=False)
            self._timer = None

    async def sleep_until(self, due_s: float) -> None:
        """Wait until ``time.perf_counter()`` reaches ``due_s``: the event loop's timer for the bulk, a helper
        thread's precise sleep for the last :data:`PRECISE_WAIT_S` (no busy waiting)."""
        remaining = due_s - time.perf_counter()
        if remaining > PRECISE_WAIT_S:
            await asyncio.sleep(remaining - PRECISE_WAIT_S)
            remaining = due_s - time.perf_counter()
        if remaining <= 0:
            return
        if self._timer is None:
            await asyncio.sleep(remaining)
            return
        await asyncio.get_running_loop().run_in_executor(self._timer, time.sleep, remaining)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session (``open()`` first)."""
        if self._session is None:
            raise RuntimeError("HttpClient.open() was not called")
        return self._session

    async def get(self, path: str, timeout_s: float) -> tuple[int, bytes]:
        """``GET base_url + path``: status and body; raises aiohttp/asyncio errors."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self.session.get(self.base_url + path, timeout=timeout) as response:
            return response.status, await response.read()

    async def fill_pool(self, count: int, path: str, timeout_s: float) -> int:
        """Open up to ``count`` keep-alive connections with concurrent GETs of ``path``; the number that worked."""
        results = await asyncio.gather(*(self.get(path, timeout_s) for _ in range(count)), return_exceptions=True)
        return sum(1 for r in results if isinstance(r, tuple) and r[0] == 200)

    # -- one request -----------------------------------------------------------------------------------------------
    async def stream_once(self, data: bytes, chat: bool) -> _Attempt:
        """One streamed POST of ``data``: chunk times, usage, or the failure's class and message.

        The read timeout (nothing received for ``read_timeout_s``, before the headers or between chunks) is kept by
        a :class:`_ReadWatchdog` rather than aiohttp's ``sock_read``, which re-arms a timer on every chunk.
        """
        result = _Attempt()
        answered = False
        watchdog = _ReadWatchdog(self._read_timeout_s)
        try:
            async with self.session.post(self.url, data=data) as response:
                answered = True
                watchdog.last_s = time.perf_counter()
                if response.status != 200:
                    await self._http_error(response, result)
                    return result
                await self._read_events(response, result, chat, watchdog)
        except asyncio.CancelledError:
            if not watchdog.expired:
                raise
            watchdog.uncancel()
            result.error_class = READ_TIMEOUT
            where = "between two chunks" if result.chunk_times else "before the first byte of output"
            result.error = f"nothing received for {self._read_timeout_s:g} s {where}"
        except aiohttp.ConnectionTimeoutError:
            result.error_class = CONNECT_TIMEOUT
            result.error = f"no connection within {self._connect_timeout_s:g} s"
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError):  # aiohttp's own read timeouts, if configured
            result.error_class = READ_TIMEOUT
            where = "between two chunks" if result.chunk_times else "before the first byte of output"
            result.error = f"nothing received for {self._read_timeout_s:g} s {where}"
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            result.error_class = CONNECT_REFUSED if refused else CONNECT_ERROR
            result.error = f"cannot connect: {exc.os_error or exc}"
        except aiohttp.ServerDisconnectedError:
            result.error_class = RESET_MID_STREAM if answered else DISCONNECTED
            result.error = "server disconnected" + (" mid-stream" if answered else " before answering")
            result.retryable = not answered
        except aiohttp.ClientPayloadError as exc:
            result.error_class = RESET_MID_STREAM
            result.error = f"response broken mid-stream: {_short(exc)}"
        except aiohttp.ClientOSError as exc:
            result.error_class = RESET_MID_STREAM if answered else DISCONNECTED
            result.error = f"connection error: {_short(exc)}"
            result.retryable = not answered
        except aiohttp.ClientError as exc:
            result.error_class = CLIENT_ERROR
            result.error = f"{type(exc).__name__}: {_short(exc)}"
        finally:
            watchdog.stop()
        if result.error is not None:
            result.error = self._redact(result.error)
        return result

    async def _http_error(self, response: aiohttp.ClientResponse, result: _Attempt) -> None:
        status = response.status
        try:
            body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            body = b""
        if status == 429:
            result.error_class = HTTP_429
        elif 400 <= status < 500:
            result.error_class = HTTP_4XX
        elif status >= 500:
            result.error_class = HTTP_5XX
        else:
            result.error_class = HTTP_OTHER
        result.error = self._redact(f"HTTP {status}: {error_message(body)}")
        result.retryable = status in RETRY_STATUSES
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            try:
                result.retry_after_s = max(0.0, float(retry_after))
            except ValueError:
                result.retry_after_s = None

    async def _read_events(
        self, response: aiohttp.ClientResponse, result: _Attempt, chat: bool, watchdog: _ReadWatchdog
    ) -> None:
        """Read server-sent events to the end of the response, timing every chunk that carries output."""
        buffer = b""
        clock = time.perf_counter
        async for data in response.content.iter_any():
            now = watchdog.last_s = clock()
            if buffer:
                data = buffer + data
            lines = data.split(b"\n")
            buffer = lines.pop()
            for line in lines:
                if not _handle_line(line, now, result, chat):
                    return
        if buffer.strip() and not _handle_line(buffer, clock(), result, chat):
            return
        if not result.done:
            result.error_class = STREAM_TRUNCATED
            result.error = "the response ended without 'data: [DONE]'"

    # -- a run -----------------------------------------------------------------------------------------------------
    async def execute(self, plan: RunPlan, emit: Callable[[RequestRecord], None]) -> RunState:
        """Send ``plan``'s requests on its schedule under its concurrency limit; ``emit`` each record as it ends."""
        loop = asyncio.get_running_loop()
        state = RunState(plan=plan, trace=SlotTrace(plan.concurrency, start_s=time.perf_counter()))
        scraper: asyncio.Task[None] | None = None
        if plan.scrape_interval_s is not None:
            state.prometheus_before = await self.scrape(state)
            scraper = loop.create_task(self._scrape_loop(state, plan.scrape_interval_s))
        slots = asyncio.Semaphore(plan.concurrency)
        offsets = arrival_offsets(plan.request_rate, plan.arrival, plan.burstiness, plan.seed)
        count = None if plan.duration_s is not None else len(plan.prompts)
        start = time.perf_counter()
        state.trace.start_s = start
        deadline = None if plan.duration_s is None else start + plan.duration_s
        index = 0
        try:
            while (count is None or index < count) and state.stop_reason is None:
                due = start + next(offsets)
                if deadline is not None and due >= deadline:
                    break
                if plan.request_rate is not None:
                    await self.sleep_until(due)
                held = slots.locked()
                await slots.acquire()
                now = time.perf_counter()
                if state.stop_reason is not None or (deadline is not None and now >= deadline):
                    slots.release()
                    break
                state.trace.events.append((now, len(state.tasks) + 1))
                if plan.request_rate is not None and held:
                    state.held_for_slot += 1
                scheduled = due if plan.request_rate is not None and not held else None
                prompt = plan.prompts[index % len(plan.prompts)]
                task = loop.create_task(self._request(state, index, prompt, scheduled, slots, emit))
                state.tasks.add(task)
                index += 1
            state.trace.sends_done_s = time.perf_counter()
            state.sent = index
            state.not_sent = 0 if count is None else count - index
            while state.tasks:
                done, _ = await asyncio.wait(set(state.tasks))
                state.tasks.difference_update(done)
            unstarted = state.sent - len(state.records)
            if unstarted > 0:  # cancelled by a stop before they ever ran: never sent
                state.sent -= unstarted
                state.not_sent += unstarted
                state.trace.events.append((time.perf_counter(), 0))
        except asyncio.CancelledError:
            for task in state.tasks:
                task.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)
            raise
        finally:
            state.trace.end_s = time.perf_counter()
            if scraper is not None:
                scraper.cancel()
                await asyncio.gather(scraper, return_exceptions=True)
        if plan.scrape_interval_s is not None:
            state.prometheus_after = await self.scrape(state)
        return state

    async def _request(
        self,
        state: RunState,
        index: int,
        prompt: str,
        scheduled_s: float | None,
        slots: asyncio.Semaphore,
        emit: Callable[[RequestRecord], None],
    ) -> None:
        plan = state.plan
        start = time.perf_counter()
        if scheduled_s is not None:
            state.drift_s.append(start - scheduled_s)
        task = asyncio.current_task()
        try:
            try:
                result = await self._attempts(state, encode_body(plan, prompt))
            except asyncio.CancelledError:
                if state.stop_reason is None:
                    raise
                result = _Attempt(error_class=ABORTED, error=f"aborted: {state.stop_reason}")
            end = time.perf_counter()
            record = _record(index, start, end, result, state, self.model_names)
        finally:
            if task is not None:
                state.tasks.discard(task)
            state.trace.events.append((time.perf_counter(), len(state.tasks)))
            slots.release()
        state.records.append(record)
        if record.contradictions:
            _note_contradictions(state, record)
        emit(record)
        if record.error_class == ABORTED:
            return
        if record.ok:
            state.consecutive_failures = 0
            return
        state.consecutive_failures += 1
        limit = plan.max_consecutive_failures
        if limit and state.consecutive_failures >= limit and state.stop_reason is None:
            state.stop_reason = f"{limit} requests failed in a row (last: {record.error_class}: {record.error})"
            logger.error("stopping the run: %s", state.stop_reason)
            for other in list(state.tasks):
                other.cancel()

    async def _attempts(self, state: RunState, data: bytes) -> _Attempt:
        plan = state.plan
        retries = 0
        while True:
            result = await self.stream_once(data, plan.chat)
            if not result.retryable or retries >= plan.max_retries or state.stop_reason is not None:
                return result
            retries += 1
            state.retries[result.error_class or CLIENT_ERROR] += 1
            wait = retry_delay_s(retries, plan.retry_backoff_s, result.retry_after_s, self._retry_rng)
            state.retry_waits_s.append(wait)
            await asyncio.sleep(wait)

    # -- Prometheus ------------------------------------------------------------------------------------------------
    async def scrape(self, state: RunState | None = None) -> dict[str, float] | None:
        """One GET of ``/metrics``, parsed (``vllm:`` series of this model); None when it failed."""
        try:
            status, body = await self.get("/metrics", timeout_s=5.0)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status, body = 0, b""
        if status != 200:
            if state is not None:
                state.scrape_errors += 1
            return None
        try:
            return parse_prometheus(body.decode("utf-8", "replace"), self.model_names)
        except ValueError as exc:  # not the Prometheus text format: count it as a failed scrape
            logger.debug("unparsable /metrics: %s", exc)
            if state is not None:
                state.scrape_errors += 1
            return None

    async def _scrape_loop(self, state: RunState, interval_s: float) -> None:
        next_s = time.perf_counter() + interval_s
        while True:
            await asyncio.sleep(max(0.0, next_s - time.perf_counter()))
            values = await self.scrape(state)
            if values is not None:
                sample = {name: values[name] for name in SAMPLED_SERIES if name in values}
                state.prometheus_samples.append((time.perf_counter(), sample))
            next_s += interval_s


def encode_body(plan: RunPlan, prompt: str) -> bytes:
    """The JSON body of one request: the plan's base body and the prompt's fields from ``plan.render`` (by default
    ``prompt`` as is, or one user message for chat)."""
    body = dict(plan.base_body)
    if plan.render is not None:
        body.update(plan.render(prompt))
    elif plan.chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return json.dumps(body).encode("utf-8")


def _handle_line(line: bytes, now: float, result: _Attempt, chat: bool) -> bool:
    """Process one SSE line; False once the response is known to be broken (``result`` says why)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line or line.startswith(b":"):
        return True
    if not line.startswith(b"data:"):
        if line.startswith((b"event:", b"id:", b"retry:")):
            return True
        result.error_class = MALFORMED_SSE
        result.error = f"not a server-sent event line: {line[:80]!r}"
        return False
    payload = line[6:] if line.startswith(b"data: ") else line[5:]
    if payload == b"[DONE]":
        result.done = True
        return True
    try:
        event = json.loads(payload)
        choices = event.get("choices")
        if choices:
            choice = choices[0]
            if not isinstance(choice, dict):
                raise TypeError("choice is not an object")
            if _carries_output(choice, chat):
                if result.first_token_s is None:
                    result.first_token_s = now
                result.chunk_times.append(now)
                if chat and _carries_reasoning(choice):
                    result.reasoning_chunks += 1
        elif "error" in event:
            error = event["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            result.error_class = STREAM_ERROR
            result.error = f"server error in the stream: {str(message)[:300]}"
            return False
        usage = event.get("usage")
        if usage:
            result.usage = usage
        model = event.get("model")
        if isinstance(model, str):
            result.models.add(model)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        result.error_class = MALFORMED_JSON
        result.error = f"event data is not the expected JSON object: {payload[:80]!r}"
        return False
    return True


def _carries_output(choice: dict[str, Any], chat: bool) -> bool:
    """Whether a choice chunk is an output event (even with empty text: a byte-level token may decode to '')."""
    if not chat:
        return "text" in choice
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return False
    if "role" in delta and not any(delta.get(key) for key in _CHAT_OUTPUT_KEYS):
        return False  # the role announcement some servers send before any token
    return any(key in delta for key in _CHAT_OUTPUT_KEYS)


def _carries_reasoning(choice: dict[str, Any]) -> bool:
    """Whether a chat chunk is reasoning (``reasoning_content`` or ``reasoning``), as servers with a reasoning
    parser send it, rather than answer text."""
    delta = choice.get("delta")
    return isinstance(delta, dict) and any(delta.get(key) is not None for key in ("reasoning_content", "reasoning"))


def _reasoning_tokens(usage: dict[str, Any] | None, result: _Attempt) -> tuple[int | None, str | None]:
    """Reasoning tokens from ``usage.completion_tokens_details`` when the server reports them, else the number of
    reasoning chunks (a lower bound: a chunk may carry several tokens); None when the server marked none."""
    details = usage.get("completion_tokens_details") if usage else None
    if isinstance(details, dict) and _int(details.get("reasoning_tokens")) is not None:
        return _int(details.get("reasoning_tokens")), "usage"
    if result.reasoning_chunks:
        return result.reasoning_chunks, "chunks"
    return None, None


def _limits(body: dict[str, Any]) -> tuple[int | None, int | None]:
    """(least, most) output tokens the request asked for: ``min_tokens`` (``max_tokens`` with ``ignore_eos``) and
    ``max_tokens``; None where it set none."""
    most = _int(body.get("max_tokens"))
    if most is None:
        most = _int(body.get("max_completion_tokens"))
    least = most if body.get("ignore_eos") is True else _int(body.get("min_tokens"))
    return least, most


def check_answer(
    claimed: int | None, chunks: int, models: set[str], body: dict[str, Any], model: str | Collection[str]
) -> tuple[int, list[str]]:
    """The output token count to believe and what in the answer contradicts the request or the stream.

    ``claimed`` is ``usage.completion_tokens`` (None when absent), ``chunks`` the number of streamed content chunks
    (each carries at least one token, but for :data:`CHUNK_SLACK`), ``models`` the ``model`` names in the response,
    ``body`` the request. A claim above ``max_tokens`` or below ``chunks - CHUNK_SLACK`` is not believed: the count
    is then ``chunks`` (a lower bound).
    """
    least, most = _limits(body)
    flags: list[str] = []
    count = chunks if claimed is None else claimed
    if claimed is not None and most is not None and claimed > most:
        flags.append(USAGE_OVER_MAX_TOKENS)
        count = chunks
    if claimed is not None and claimed < chunks - CHUNK_SLACK:
        flags.append(USAGE_BELOW_CHUNKS)
        count = chunks
    if most is not None and chunks > most + CHUNK_SLACK:
        flags.append(CHUNKS_OVER_MAX_TOKENS)
    if least is not None and 0 < count < least:
        flags.append(BELOW_MIN_TOKENS)
    expected = {model} if isinstance(model, str) else set(model)
    if any(name not in expected for name in models):
        flags.append(WRONG_MODEL)
    return count, flags


def _note_contradictions(state: RunState, record: RequestRecord) -> None:
    """Count a record's contradictions; log the first of each kind in a run as a warning."""
    for flag in record.contradictions or ():
        if not state.contradictions[flag]:
            logger.warning(
                "run '%s', request %d: the server's answer contradicts %s (%s); flagged in requests.jsonl%s",
                state.plan.label,
                record.index,
                "the stream" if flag == USAGE_BELOW_CHUNKS else "the request",
                flag,
                f", usage claimed {record.usage_completion_tokens} output tokens, {record.completion_tokens} counted "
                "from the stream"
                if record.usage_completion_tokens is not None
                else "",
            )
        state.contradictions[flag] += 1


def _record(
    index: int, start: float, end: float, result: _Attempt, state: RunState, model: str | Collection[str]
) -> RequestRecord:
    usage = result.usage if isinstance(result.usage, dict) else None
    if usage is None and result.error_class is None:
        state.usage_missing += 1
    claimed = _int(usage.get("completion_tokens")) if usage else None
    completion, flags = check_answer(claimed, len(result.chunk_times), result.models, state.plan.base_body, model)
    if result.error_class is not None:  # a broken stream is short by nature: only what it said is checked
        flags = [flag for flag in flags if flag != BELOW_MIN_TOKENS]
    believed = not (USAGE_OVER_MAX_TOKENS in flags or USAGE_BELOW_CHUNKS in flags)
    prompt_tokens = (_int(usage.get("prompt_tokens")) if usage else None) or 0
    reasoning_tokens, reasoning_from = _reasoning_tokens(usage, result)
    error_class, error = result.error_class, result.error
    if error_class is None and completion == 0:
        error_class, error = EMPTY_COMPLETION, "the stream completed without any output token"
    return RequestRecord(
        index=index,
        num_prompts=1,
        start_s=start,
        end_s=end,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        first_token_s=result.first_token_s,
        error=error,
        chunk_times_s=result.chunk_times,
        error_class=error_class,
        reasoning_tokens=reasoning_tokens,
        reasoning_tokens_from=reasoning_from,
        contradictions=flags or None,
        usage_completion_tokens=None if believed else claimed,
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def error_message(body: bytes) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message": ...}}``), else its start."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data)
        message = (error.get("message") or error.get("detail") or error) if isinstance(error, dict) else error
        return str(message)[:300]
    return text[:300]


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
