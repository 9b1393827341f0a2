"""The HTTP backend's run plans and how one is carried out: the plan of a prompt list (``run()``), of conversations
or a trace (``run_workload()``), and the execution of a plan on the loop thread, its records handed to the thread
iterating them as they complete."""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_checks import describe_exception
from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_loop import Handoff, LoopThread
from ai_energy_benchmarks.backends.http_run import RunPlan, RunState
from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.datasets.workload import Workload
from ai_energy_benchmarks.exceptions import BackendError, ConfigError

logger = logging.getLogger(__name__)


def check_conversations_api(scenario: ScenarioConfig, chat: bool, api_reason: str) -> None:
    """Refuse ``scenario.multi_turn`` on the completions API (``chat`` false, chosen for ``api_reason``):
    conversations are sent as chat messages."""
    if scenario.multi_turn.enabled and not chat:
        raise ConfigError(
            "scenario.multi_turn: conversations are sent as chat messages, and this run uses the completions "
            f"API ({api_reason}); set backend.api=chat"
        )


def prompt_plan(
    label: str,
    prompts: list[str],
    backend: OpenAIHTTPConfig,
    base_body: dict[str, Any],
    per_text: dict[str, dict[str, Any]] | None,
    fields_of: Callable[[str], dict[str, Any]],
    chat: bool,
    scrape_interval_s: float | None,
    keep_text: bool,
) -> RunPlan:
    """The plan of one run named ``label``: ``prompts`` with the shared ``base_body`` and each prompt's fields
    (``fields_of``, plus its own length fields in ``per_text``), under ``backend``'s load settings. A ``warmup`` run
    sends each prompt once (no ``duration_s``) and is not scraped (``scrape_interval_s``: None for no scrape)."""
    measured = label != "warmup"
    render = fields_of
    if per_text is not None:

        def render(prompt: str) -> dict[str, Any]:
            return fields_of(prompt) | per_text[prompt]

    return RunPlan(
        label=label,
        prompts=list(prompts),
        base_body=base_body,
        chat=chat,
        render=render,
        concurrency=backend.concurrency,
        request_rate=backend.request_rate,
        arrival=backend.arrival,
        burstiness=backend.burstiness,
        seed=backend.seed,
        duration_s=backend.duration_s if measured else None,
        max_retries=backend.max_retries,
        retry_backoff_s=backend.retry_backoff_s,
        max_consecutive_failures=backend.max_consecutive_failures,
        scrape_interval_s=scrape_interval_s if measured else None,
        keep_text=keep_text,
    )


def session_plan(workload: Workload, make_plan: Callable[[list[str]], RunPlan], min_tokens: bool) -> RunPlan:
    """The plan of a session workload, from ``make_plan`` of its prompts: conversations turn by turn (no arrival
    rate: each turn follows the last), or a trace at its arrival offsets with each request's output length fixed to
    the trace's (``max_tokens`` and, with ``min_tokens`` where the server reads it, ``min_tokens``). Never timed by
    ``duration_s``."""
    if workload.conversations is not None:
        plan = make_plan([])
        plan.conversations = workload.conversations.conversations
        plan.history = workload.history
        if plan.request_rate is not None:
            logger.warning("backend.request_rate does not apply to conversations: each turn follows the last")
            plan.request_rate = None
    else:
        assert workload.trace is not None
        trace = workload.trace
        plan = make_plan(trace.prompts)
        plan.request_rate = None
        plan.offsets_s = [entry.offset_s for entry in trace.entries]
        plan.session_ids = [entry.session_id for entry in trace.entries]
        plan.overrides = [
            {"max_tokens": e.output_length} | ({"min_tokens": e.output_length} if min_tokens else {})
            for e in trace.entries
        ]
    plan.duration_s = None
    return plan


def execute(
    loop: LoopThread,
    drive: Callable[[RunPlan, Handoff], Coroutine[Any, Any, RunState]],
    plan: RunPlan,
) -> Generator[RequestRecord, None, RunState]:
    """Run ``drive(plan, handoff)`` on ``loop`` and yield its records as they are handed over; returns the run's
    state. Closing the generator early cancels the run (and waits up to 30 s for it to end).

    Raises:
        BackendError: the load generator itself failed (not a request: those are records).
    """
    handoff = Handoff(loop.loop)
    future = loop.submit(drive(plan, handoff))
    finished = False
    try:
        while True:
            batch = handoff.get()
            if batch is None:
                break
            yield from batch
        finished = True
    finally:
        if not finished:
            future.cancel()
            concurrent.futures.wait([future], timeout=30)
    try:
        return future.result()
    except KeyboardInterrupt:  # a signal while the generator hands over its end: the run is interrupted
        future.cancel()
        raise
    except BaseException as exc:
        raise BackendError(f"the HTTP load generator failed: {describe_exception(exc)}") from exc
