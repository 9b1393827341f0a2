"""One streamed answer of the test server (:mod:`.sse_server`): the chat role chunk, the tokens in chunks at the
server's pace, the faults that strike mid-stream (reset, stall, broken events, lying or missing usage, truncation),
the usage chunk and ``data: [DONE]``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ai_energy_benchmarks.testing.sse_faults import broken_event
from ai_energy_benchmarks.testing.sse_parts import chunk, event

if TYPE_CHECKING:
    from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

__all__ = ["answer_word", "stream_answer"]


def answer_word(words: list[str] | None, position: int, tag: str = "") -> str:
    """The text of token ``position``: the answer table's word, or `` t<position>`` (with the request's ``tag``)."""
    if words is None:
        return f" {tag}t{position}"
    return ("" if position == 0 else " ") + words[position]


async def stream_answer(
    server: FakeOpenAIServer,
    request: web.Request,
    response: web.StreamResponse,
    chat: bool,
    model: str,
    tokens: int,
    prompt_tokens: int,
    include_usage: bool,
    fault: str | None,
    argument: str | None,
    words: list[str] | None = None,
    tag: str = "",
) -> None:
    """Stream ``tokens`` tokens of ``model`` on ``response`` as ``server`` is set to (pace, chunking, reasoning),
    with the request's ``fault`` (and its ``argument``), and count the answer in the server's counters."""
    ident = f"fake-{id(response):x}"
    if chat and server.role_chunk:
        await response.write(event(chunk(chat, ident, model, "", role=True)))
    if fault == "stall":
        await asyncio.sleep(float(argument or 1))
    if server.first_token_delay_s:
        await asyncio.sleep(server.first_token_delay_s)
    sent = 0
    chunk_index = 0
    while sent < tokens:
        count = min(server.tokens_per_chunk, tokens - sent)
        text = "".join(
            "" if (sent + i == 0 and server.empty_first_token) else answer_word(words, sent + i, tag)
            for i in range(count)
        )
        finish = "length" if sent + count >= tokens else None
        if chunk_index == 2 and fault == "reset":
            server.counters.generation_tokens += sent
            if request.transport is not None:
                request.transport.abort()
            return
        if chunk_index == 1 and fault in ("bad_sse", "bad_json", "error_event"):
            await response.write(broken_event(fault))
            if fault == "error_event":
                await response.write(b"data: [DONE]\n\n")
            server.counters.generation_tokens += sent
            await response.write_eof()
            return
        if chunk_index == 2 and fault == "stall_mid":
            await asyncio.sleep(float(argument or 1))
        thinking = chat and sent < server.reasoning_tokens
        await response.write(event(chunk(chat, ident, model, text, finish=finish, reasoning=thinking)))
        sent += count
        chunk_index += 1
        if server.token_delay_s and sent < tokens:
            await asyncio.sleep(server.token_delay_s)
    if include_usage and fault != "no_usage":
        claimed = int(float(argument or 0)) if fault == "lying_usage" else tokens
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + claimed,
            "completion_tokens": claimed,
        }
        if chat and server.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": min(server.reasoning_tokens, tokens)}
        kind = "chat.completion.chunk" if chat else "text_completion"
        await response.write(event({"id": ident, "object": kind, "model": model, "choices": [], "usage": usage}))
    server.count_answer(prompt_tokens, tokens)
    if fault != "truncated":
        await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
