"""Multi-turn conversations on the HTTP backend's event loop: each conversation takes a concurrency slot for all
its turns, sent one after another, each with the history so far (``datasets.conversations.history_messages``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_run import RunState, build_body, make_record
from ai_energy_benchmarks.backends.http_stream import ABORTED, Attempt
from ai_energy_benchmarks.datasets.conversations import Conversation, history_messages, with_history

logger = logging.getLogger(__name__)

#: Sends one request body with the client's retries: the outcome of its last attempt.
Send = Callable[[RunState, bytes], Awaitable[Attempt]]
#: Files a completed request's record, emits it, and stops the run after too many failures in a row.
Finish = Callable[[RunState, RequestRecord, Callable[[RequestRecord], None]], None]


async def run_conversations(
    state: RunState,
    slots: asyncio.Semaphore,
    emit: Callable[[RequestRecord], None],
    send: Send,
    finish: Finish,
    model_names: frozenset[str],
) -> int:
    """Run ``state.plan.conversations``: each takes a slot for all its turns (sent one after another), up to
    ``concurrency`` conversations at once. Returns when all have ended: the number of turns they hold."""
    plan = state.plan
    conversations = plan.conversations or []
    loop = asyncio.get_running_loop()
    active: list[asyncio.Task[None]] = []
    for position, conversation in enumerate(conversations):
        await slots.acquire()
        if state.stop_reason is not None:
            slots.release()
            break
        state.trace.events.append((time.perf_counter(), len(state.tasks) + 1))
        turns = _conversation(state, position, conversation, slots, emit, send, finish, model_names)
        task = loop.create_task(turns)
        active.append(task)
        state.tasks.add(task)
    state.trace.sends_done_s = time.perf_counter()
    while state.tasks:
        done, _ = await asyncio.wait(set(state.tasks))
        state.tasks.difference_update(done)
    for task in active:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    return sum(len(c.user_turns) for c in conversations)


async def _conversation(
    state: RunState,
    position: int,
    conversation: Conversation,
    slots: asyncio.Semaphore,
    emit: Callable[[RequestRecord], None],
    send: Send,
    finish: Finish,
    model_names: frozenset[str],
) -> None:
    """One conversation's turns in order, each sent with the history so far (see ``history_messages``)."""
    plan = state.plan
    answers: list[str | None] = []
    first_index = sum(len(c.user_turns) for c in (plan.conversations or [])[:position])
    task = asyncio.current_task()
    try:
        for turn, text in enumerate(conversation.user_turns):
            if state.stop_reason is not None:
                break
            body = build_body(plan, text)
            formatted = body.get("messages") or [{"role": "user", "content": text}]
            history = history_messages(conversation, turn, answers, plan.history)[:-1]
            body["messages"] = with_history(formatted, history)
            start = time.perf_counter()
            try:
                result = await send(state, json.dumps(body).encode("utf-8"))
            except asyncio.CancelledError:
                if state.stop_reason is None:
                    raise
                result = Attempt(error_class=ABORTED, error=f"aborted: {state.stop_reason}")
            end = time.perf_counter()
            record = make_record(first_index + turn, start, end, result, state, model_names, body)
            record.conversation_id = conversation.id
            record.turn = turn
            answers.append(record.output_text if record.ok else None)
            if not plan.keep_text:  # kept for the history only
                record.output_text = None
            finish(state, record, emit)
            if record.error_class == ABORTED:
                break
            if not record.ok and plan.history == "model":
                # The model gave no answer to put in the history: the later turns cannot be what was asked.
                logger.warning(
                    "conversation '%s': turn %d failed (%s); its %d later turn(s) are not sent",
                    conversation.id,
                    turn,
                    record.error_class,
                    len(conversation.user_turns) - turn - 1,
                )
                break
    finally:
        if task is not None:
            state.tasks.discard(task)
        state.trace.events.append((time.perf_counter(), len(state.tasks)))
        slots.release()
