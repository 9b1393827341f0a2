"""Pieces of the test server (:mod:`.sse_server`): loopback ports that refuse or never accept connections, and the
JSON shapes of its events, answers and errors (as vLLM sends them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from ai_energy_benchmarks.testing.server_profiles import Counters

HOST = "127.0.0.1"


class GenerationQueue:
    """At most ``capacity`` requests generating at once (None: no limit); the others wait, first come first served,
    counted in ``counters.waiting`` meanwhile: a server that saturates deterministically."""

    def __init__(self, capacity: int | None, counters: Counters) -> None:
        self.capacity = capacity
        self._counters = counters
        self._slots: asyncio.Semaphore | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a generation slot for the ``async with`` block (created on the server's loop when first used)."""
        if self.capacity is None:
            yield
            return
        self._slots = self._slots or asyncio.Semaphore(self.capacity)
        self._counters.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._counters.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connecting is refused."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def unaccepting_listener(fill: int = 4) -> Iterator[int]:
    """A loopback port that listens but never accepts, with its accept queue full: new connections time out."""
    server = socket.socket()
    pending: list[socket.socket] = []
    try:
        server.bind((HOST, 0))
        server.listen(0)
        port = int(server.getsockname()[1])
        for _ in range(fill):
            client = socket.socket()
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                client.connect((HOST, port))
            pending.append(client)
        time.sleep(0.05)
        yield port
    finally:
        for client in pending:
            client.close()
        server.close()


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n\n"


def chunk(
    chat: bool,
    ident: str,
    model: str,
    text: str,
    finish: str | None = None,
    role: bool = False,
    reasoning: bool = False,
) -> dict[str, Any]:
    if chat:
        delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {"content": text}
        if reasoning and not role:
            delta = {"reasoning_content": text}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"id": ident, "object": "chat.completion.chunk", "model": model, "choices": [choice]}
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
    return {"id": ident, "object": "text_completion", "model": model, "choices": [choice]}


def full_response(chat: bool, model: str, tokens: int, prompt_tokens: int) -> dict[str, Any]:
    text = "".join(f" t{i}" for i in range(tokens))
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + tokens, "completion_tokens": tokens}
    if chat:
        message = {"role": "assistant", "content": text}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "length"}
        return {"object": "chat.completion", "model": model, "choices": [choice], "usage": usage}
    return {"object": "text_completion", "model": model, "choices": [{"index": 0, "text": text}], "usage": usage}


def error(status: int, message: str, kind: str, retry_after: str | None = None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return web.json_response(
        {"error": {"message": message, "type": kind, "code": status}}, status=status, headers=headers
    )
