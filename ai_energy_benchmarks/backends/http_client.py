"""The asyncio + aiohttp engine of the OpenAI-compatible backend.

One :class:`HttpClient` lives on one event loop (the backend runs that loop in a background thread). It sends on an
arrival schedule (``http_schedule``) under a concurrency limit, or conversations turn by turn
(``http_conversations``), streams each request (``http_stream``), checks each answer against its request and stream
(``http_answers``), retries 429/503 with jittered backoff, and scrapes the server's Prometheus ``/metrics`` (the series
of its profile, ``http_prometheus``) while a run is going.

Times are ``time.perf_counter()`` seconds (the clock of the measured windows); durations are seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import random
import time
from collections.abc import Callable, Iterator

import aiohttp

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_answers import (  # noqa: F401 (re-exported)
    BELOW_MIN_TOKENS,
    CHUNK_SLACK,
    CHUNKS_OVER_MAX_TOKENS,
    CONTRADICTIONS,
    USAGE_BELOW_CHUNKS,
    USAGE_OVER_MAX_TOKENS,
    WRONG_MODEL,
    check_answer,
)
from ai_energy_benchmarks.backends.http_conversations import run_conversations
from ai_energy_benchmarks.backends.http_metrics import SlotTrace
from ai_energy_benchmarks.backends.http_prometheus import parse_prometheus
from ai_energy_benchmarks.backends.http_run import (  # noqa: F401 (re-exported)
    RunPlan,
    RunState,
    build_body,
    encode_body,
    make_record,
    note_contradictions,
)
from ai_energy_benchmarks.backends.http_schedule import (  # noqa: F401 (re-exported)
    MAX_RETRY_WAIT_S,
    RETRY_AFTER_SPREAD,
    arrival_offsets,
    arrival_schedule,
    retry_delay_s,
)
from ai_energy_benchmarks.backends.http_stream import (  # noqa: F401 (re-exported)
    ABORTED,
    CLIENT_ERROR,
    CONNECT_ERROR,
    CONNECT_REFUSED,
    CONNECT_TIMEOUT,
    DISCONNECTED,
    EMPTY_COMPLETION,
    ERROR_CLASSES,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_429,
    HTTP_OTHER,
    MALFORMED_JSON,
    MALFORMED_SSE,
    READ_TIMEOUT,
    RESET_MID_STREAM,
    RETRY_STATUSES,
    STREAM_ERROR,
    STREAM_TRUNCATED,
    Attempt,
    error_message,
    stream_once,
)
from ai_energy_benchmarks.backends.servers.base import MetricNames
from ai_energy_benchmarks.backends.servers.vllm import METRICS as VLLM_METRICS

logger = logging.getLogger(__name__)

#: The outcome of one attempt (the name before the split into modules).
_Attempt = Attempt

#: Client keep-alive for idle pooled connections (s); below uvicorn's 5 s so that the client never reuses a
#: connection the server is closing.
KEEPALIVE_S = 4.0
#: The event loop's timers wake up to 1 ms late (epoll rounds timeouts up to whole milliseconds); the last
#: ``PRECISE_WAIT_S`` before a scheduled send are slept in a helper thread (``time.sleep`` is precise to
#: microseconds) so that arrivals keep their schedule without spinning.
PRECISE_WAIT_S = 0.002


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
        #: The Prometheus series to scrape (the server profile's; None: the server has none); set by the backend.
        self.metrics: MetricNames | None = VLLM_METRICS
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

    async def stream_once(self, data: bytes, chat: bool, keep_text: bool = False) -> Attempt:
        """One streamed POST of ``data`` (see :func:`http_stream.stream_once`)."""
        return await stream_once(
            self.session, self.url, data, chat, self._connect_timeout_s, self._read_timeout_s, self._redact, keep_text
        )

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
        if plan.offsets_s is not None:
            offsets: Iterator[float] = iter(plan.offsets_s)
        else:
            offsets = arrival_offsets(plan.request_rate, plan.arrival, plan.burstiness, plan.seed)
        count = None if plan.duration_s is not None else len(plan.prompts)
        start = time.perf_counter()
        state.trace.start_s = start
        deadline = None if plan.duration_s is None else start + plan.duration_s
        index = 0
        try:
            if plan.conversations is not None:  # every turn of every conversation, sent and answered
                index = count = await run_conversations(
                    state, slots, emit, self._attempts, self._finished, self.model_names
                )
            while (count is None or index < count) and state.stop_reason is None:
                due = start + next(offsets)
                if deadline is not None and due >= deadline:
                    break
                if plan.scheduled:
                    await self.sleep_until(due)
                held = slots.locked()
                await slots.acquire()
                now = time.perf_counter()
                if state.stop_reason is not None or (deadline is not None and now >= deadline):
                    slots.release()
                    break
                state.trace.events.append((now, len(state.tasks) + 1))
                if plan.scheduled and held:
                    state.held_for_slot += 1
                scheduled = due if plan.scheduled and not held else None
                prompt = plan.prompts[index % len(plan.prompts)]
                task = loop.create_task(self._request(state, index, prompt, scheduled, slots, emit))
                state.tasks.add(task)
                index += 1
            if state.trace.sends_done_s is None:
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
            extra = plan.overrides[index] if plan.overrides is not None else None
            body = build_body(plan, prompt, extra)
            try:
                result = await self._attempts(state, json.dumps(body).encode("utf-8"))
            except asyncio.CancelledError:
                if state.stop_reason is None:
                    raise
                result = Attempt(error_class=ABORTED, error=f"aborted: {state.stop_reason}")
            end = time.perf_counter()
            record = make_record(index, start, end, result, state, self.model_names, body)
            if plan.session_ids is not None:
                record.conversation_id = plan.session_ids[index]
        finally:
            if task is not None:
                state.tasks.discard(task)
            state.trace.events.append((time.perf_counter(), len(state.tasks)))
            slots.release()
        self._finished(state, record, emit)

    def _finished(self, state: RunState, record: RequestRecord, emit: Callable[[RequestRecord], None]) -> None:
        """File a completed request's record, emit it, and stop the run after too many failures in a row."""
        plan = state.plan
        state.records.append(record)
        if record.contradictions:
            note_contradictions(state, record)
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

    async def _attempts(self, state: RunState, data: bytes) -> Attempt:
        plan = state.plan
        retries = 0
        while True:
            keep = plan.keep_text or (plan.conversations is not None and plan.history == "model")
            result = await self.stream_once(data, plan.chat, keep)
            if not result.retryable or retries >= plan.max_retries or state.stop_reason is not None:
                return result
            retries += 1
            state.retries[result.error_class or CLIENT_ERROR] += 1
            wait = retry_delay_s(retries, plan.retry_backoff_s, result.retry_after_s, self._retry_rng)
            state.retry_waits_s.append(wait)
            await asyncio.sleep(wait)

    # -- Prometheus ------------------------------------------------------------------------------------------------
    async def scrape(self, state: RunState | None = None) -> dict[str, float] | None:
        """One GET of ``/metrics``, parsed (this server's series of this model); None when it failed or the server
        profile has no metrics."""
        if self.metrics is None:
            return None
        try:
            status, body = await self.get("/metrics", timeout_s=5.0)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status, body = 0, b""
        if status != 200:
            if state is not None:
                state.scrape_errors += 1
            return None
        try:
            return parse_prometheus(body.decode("utf-8", "replace"), self.model_names, self.metrics)
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
            if values is not None and self.metrics is not None:
                sample = {name: values[name] for name in self.metrics.sampled if name in values}
                state.prometheus_samples.append((time.perf_counter(), sample))
            next_s += interval_s
