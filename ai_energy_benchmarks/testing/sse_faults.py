"""The fault markers of the test server (:mod:`.sse_server`): a prompt's ``[fault:NAME]`` or ``[fault:NAME:N]``
marker (listed in that module's docstring), the faults answered before any token is streamed, and the broken events
sent in place of a stream's second chunk."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from ai_energy_benchmarks.testing.sse_parts import error, event

__all__ = ["FAULT", "broken_event", "early_fault", "fault_of"]

FAULT = re.compile(r"\[fault:([a-z0-9_]+)(?::([0-9.]+))?\]")


def fault_of(prompt: str) -> tuple[str | None, str | None]:
    """The fault a prompt asks for and its argument (``None, None`` without a marker)."""
    match = FAULT.search(prompt)
    return (match.group(1), match.group(2)) if match else (None, None)


def early_fault(
    request: web.Request, fault: str | None, argument: str | None, attempt: int, retry_after: str | None
) -> web.Response | None:
    """The answer of a fault that comes before any token (an HTTP error, a retry, a dropped connection), or None.

    ``attempt``: how many times this prompt has been asked (this time included); ``retry_after``: the header sent
    with the ``retry429`` / ``retry503`` answers.
    """
    if fault is None:
        return None
    status = re.fullmatch(r"http_(\d{3})", fault)
    if status:
        code = int(status.group(1))
        return error(code, f"injected HTTP {code}", "InjectedError", retry_after="0" if code == 429 else None)
    if fault in ("retry429", "retry503") and attempt <= int(float(argument or 1)):
        code = int(fault[-3:])
        message = f"injected HTTP {code} (attempt {attempt})"
        return error(code, message, "Retry", retry_after=retry_after)
    if fault == "drop":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing more to send on an aborted connection
    return None


def broken_event(fault: str) -> bytes:
    """What the ``bad_sse``, ``bad_json`` and ``error_event`` faults send in place of the second chunk."""
    return {
        "bad_sse": b"this line is not an event\n\n",
        "bad_json": b"data: {not json\n\n",
        "error_event": event({"error": {"message": "injected engine error", "code": 500}}),
    }[fault]
