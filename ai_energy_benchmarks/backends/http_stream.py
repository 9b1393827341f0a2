"""One streamed request of the HTTP backend: the POST, its server-sent events, and the class of any failure.

:func:`stream_once` sends one request body and reads the response to its end, timing every chunk that carries output;
it never raises for a failed request: the :class:`Attempt` says what happened (``error_class`` is one of
:data:`ERROR_CLASSES`). Times are ``time.perf_counter()`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

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

#: Statuses retried with backoff (rate limited, temporarily unavailable).
RETRY_STATUSES = frozenset({429, 503})
_CHAT_OUTPUT_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls")


@dataclass
class Attempt:
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
    #: The answer's text pieces in order (chat ``content``, completion ``text``); None when the text is not kept.
    text_parts: list[str] | None = None


class ReadWatchdog:
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


async def stream_once(
    session: aiohttp.ClientSession,
    url: str,
    data: bytes,
    chat: bool,
    connect_timeout_s: float,
    read_timeout_s: float,
    redact: Callable[[str], str],
    keep_text: bool = False,
) -> Attempt:
    """One streamed POST of ``data``: chunk times, usage (and the answer's text when ``keep_text``), or the failure's
    class and message.

    The read timeout (nothing received for ``read_timeout_s``, before the headers or between chunks) is kept by
    a :class:`_ReadWatchdog` rather than aiohttp's ``sock_read``, which re-arms a timer on every chunk.
    """
    result = Attempt(text_parts=[] if keep_text else None)
    answered = False
    watchdog = ReadWatchdog(read_timeout_s)
    try:
        async with session.post(url, data=data) as response:
            answered = True
            watchdog.last_s = time.perf_counter()
            if response.status != 200:
                await _http_error(response, result, redact)
                return result
            await _read_events(response, result, chat, watchdog)
    except asyncio.CancelledError:
        if not watchdog.expired:
            raise
        watchdog.uncancel()
        result.error_class = READ_TIMEOUT
        where = "between two chunks" if result.chunk_times else "before the first byte of output"
        result.error = f"nothing received for {read_timeout_s:g} s {where}"
    except aiohttp.ConnectionTimeoutError:
        result.error_class = CONNECT_TIMEOUT
        result.error = f"no connection within {connect_timeout_s:g} s"
    except (aiohttp.ServerTimeoutError, asyncio.TimeoutError):  # aiohttp's own read timeouts, if configured
        result.error_class = READ_TIMEOUT
        where = "between two chunks" if result.chunk_times else "before the first byte of output"
        result.error = f"nothing received for {read_timeout_s:g} s {where}"
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
        result.error = redact(result.error)
    return result


async def _http_error(response: aiohttp.ClientResponse, result: Attempt, redact: Callable[[str], str]) -> None:
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
    result.error = redact(f"HTTP {status}: {error_message(body)}")
    result.retryable = status in RETRY_STATUSES
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        try:
            result.retry_after_s = max(0.0, float(retry_after))
        except ValueError:
            result.retry_after_s = None


async def _read_events(response: aiohttp.ClientResponse, result: Attempt, chat: bool, watchdog: ReadWatchdog) -> None:
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


def _handle_line(line: bytes, now: float, result: Attempt, chat: bool) -> bool:
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
                if result.text_parts is not None:
                    piece = choice.get("delta", {}).get("content") if chat else choice.get("text")
                    if isinstance(piece, str):
                        result.text_parts.append(piece)
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
