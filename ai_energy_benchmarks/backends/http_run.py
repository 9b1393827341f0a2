"""One run of the HTTP backend: its plan (what to send and how) and its state (what happened), each request's body
built from the plan, and the record of each request built from its attempt and checked against the plan."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_answers import (
    BELOW_MIN_TOKENS,
    USAGE_BELOW_CHUNKS,
    USAGE_OVER_MAX_TOKENS,
    as_int,
    check_answer,
    reasoning_token_count,
)
from ai_energy_benchmarks.backends.http_metrics import SlotTrace
from ai_energy_benchmarks.backends.http_stream import EMPTY_COMPLETION, Attempt
from ai_energy_benchmarks.datasets.conversations import Conversation

logger = logging.getLogger(__name__)


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
    #: Keep each answer's text in its record (``RequestRecord.output_text``).
    keep_text: bool = False
    #: Trace replay: each request's send time (s after the start; replaces ``request_rate``), its own body fields
    #: (e.g. its output length) and its session (``RequestRecord.conversation_id``).
    offsets_s: list[float] | None = None
    overrides: list[dict[str, Any]] | None = None
    session_ids: list[str | None] | None = None
    #: Multi-turn: the conversations, sent turn by turn (``prompts`` unused), and whose answers are the history
    #: (``model``: the answers just received; ``dataset``: the dataset's).
    conversations: list[Conversation] | None = None
    history: str = "model"

    @property
    def scheduled(self) -> bool:
        """Whether requests have send times (an arrival rate or a trace), whose drift is reported."""
        return self.request_rate is not None or self.offsets_s is not None


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


def note_contradictions(state: RunState, record: RequestRecord) -> None:
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


def make_record(
    index: int,
    start: float,
    end: float,
    result: Attempt,
    state: RunState,
    model: str | Collection[str],
    body: dict[str, Any] | None = None,
) -> RequestRecord:
    """The record of one request; its answer is checked against ``body`` (default: the plan's base body)."""
    usage = result.usage if isinstance(result.usage, dict) else None
    if usage is None and result.error_class is None:
        state.usage_missing += 1
    claimed = as_int(usage.get("completion_tokens")) if usage else None
    sent = body if body is not None else state.plan.base_body
    completion, flags = check_answer(claimed, len(result.chunk_times), result.models, sent, model)
    if result.error_class is not None:  # a broken stream is short by nature: only what it said is checked
        flags = [flag for flag in flags if flag != BELOW_MIN_TOKENS]
    believed = not (USAGE_OVER_MAX_TOKENS in flags or USAGE_BELOW_CHUNKS in flags)
    prompt_tokens = (as_int(usage.get("prompt_tokens")) if usage else None) or 0
    reasoning_tokens, reasoning_from = reasoning_token_count(usage, result)
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
        output_text=None if result.text_parts is None else "".join(result.text_parts),
    )


def encode_body(plan: RunPlan, prompt: str) -> bytes:
    """The JSON body of one request: the plan's base body and the prompt's fields from ``plan.render`` (by default
    ``prompt`` as is, or one user message for chat)."""
    return json.dumps(build_body(plan, prompt)).encode("utf-8")


def build_body(plan: RunPlan, prompt: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`encode_body`'s body as a dict, with ``extra`` fields (a trace request's output length) on top."""
    body = dict(plan.base_body)
    body.update(extra or {})
    if plan.render is not None:
        body.update(plan.render(prompt))
    elif plan.chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return body
