"""The ``workload`` block of a session workload's result: conversations (per turn, per conversation) or a trace replay
(schedule drift, lengths against the trace), with each request's energy and the server's prefix-cache counters
beside it. docs/workloads.md gives every definition.

Energy of a request: its record's ``energy_j``, its share of its window's energy as
:mod:`~ai_energy_benchmarks.results.attribution` set it (``energy.request_attribution``; docs/workloads.md, "Energy
per request under concurrency"): the one per-request model of the result, so a turn's energy here is the same figure
as that request's ``energy_j`` in ``requests.jsonl``. A conversation's (or trace session's) energy is the sum of its
requests'. ``unattributed_energy_j`` is what the requests' shares leave of the generate windows' energy (0 up to
rounding where every window was attributed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.datasets.workload import Workload
from ai_energy_benchmarks.energy.base import WindowMeasurement
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.results import stats
from ai_energy_benchmarks.results.meters import Expected, _joules, _required, _total

#: Where a request's energy in the ``workload`` block comes from: the attribution's share of a measured window.
REQUEST_ATTRIBUTION_SOURCE = "estimated:request-attribution"
ENERGY_METHOD = (
    "each request's energy_j as in requests.jsonl: its share of its window's energy by the request attribution "
    "(energy.request_attribution; docs/workloads.md, 'Energy per request under concurrency'); a conversation's or "
    "session's energy is the sum of its requests'; unattributed: the window energy the shares leave"
)


def _window_energy(windows: Sequence[WindowMeasurement], chosen: dict[str, str], expected: Expected) -> float | None:
    """Total energy of the generate windows (J), None where a window's total is unknown (a meter missed it)."""
    if not chosen:
        return None
    total_j = 0.0
    for window in windows:
        window_j = _total(_joules([window], chosen, expected), _required(chosen))
        if window_j is None:
            return None
        total_j += window_j
    return total_j


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return stats.mean(present) if present else None


def _energies(records: Sequence[RequestRecord], known: bool) -> list[float] | None:
    """The records' ``energy_j`` (J); None unless the run's energy is known and every record has its share."""
    values = [r.energy_j for r in records]
    return [float(v) for v in values if v is not None] if known and None not in values else None


def _prefix_cache(model_info: dict[str, Any]) -> dict[str, Any] | None:
    """The server's prefix-cache counters over the generate runs (the HTTP backend's run summaries), summed."""
    runs = [r for r in (model_info.get("http") or {}).get("runs") or [] if str(r.get("label", "")).startswith("gen")]
    blocks = [r.get("prefix_cache") for r in runs]
    if not blocks or any(b is None or b.get("queries_tokens") is None for b in blocks):
        return None
    queries = sum(int(b["queries_tokens"]) for b in blocks)
    hits = sum(int(b["hits_tokens"]) for b in blocks)
    return {
        "queries_tokens": queries,
        "hits_tokens": hits,
        "hit_rate": hits / queries if queries else None,
        "source": blocks[0].get("source"),
        "note": "the server's counters over the measured runs; they include every client of the server",
    }


def _group_rows(records: Sequence[RequestRecord], known: bool) -> list[dict[str, Any]]:
    """One row per (repetition, conversation or session), in first-request order."""
    groups: dict[tuple[int, str], list[RequestRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.start_s):
        if record.conversation_id is not None:
            groups[(record.repetition, record.conversation_id)].append(record)
    rows = []
    for (repetition, ident), mine in groups.items():
        rows.append(
            {
                "id": ident,
                "repetition": repetition,
                "requests": len(mine),
                "ok": sum(r.ok for r in mine),
                "latency_s": sum(r.latency_s for r in mine),
                "wall_s": max(r.end_s for r in mine) - min(r.start_s for r in mine),
                "prompt_tokens": sum(r.prompt_tokens for r in mine),
                "completion_tokens": sum(r.completion_tokens for r in mine),
                "energy_j": sum(joules) if (joules := _energies(mine, known)) is not None else None,
            }
        )
    return rows


def _stats(rows: Sequence[dict[str, Any]], key: str) -> dict[str, Any] | None:
    values = [float(r[key]) for r in rows if r[key] is not None]
    return stats.describe(values) if values and len(values) == len(rows) else None


def workload_block(
    workload: Workload | None,
    records: Sequence[RequestRecord],
    windows: Sequence[WindowMeasurement],
    chosen: dict[str, str],
    expected: Expected,
    model_info: dict[str, Any],
) -> dict[str, Any] | None:
    """The result's ``workload`` block (None for single prompts). The records' ``energy_j`` must already be set by
    :func:`~ai_energy_benchmarks.results.attribution.attribute_energy` (``aggregate`` runs it first)."""
    if workload is None:
        return None
    generate = [r for r in records if r.phase == "generate"]
    window_j = _window_energy([w for w in windows if w.kind == "generate"], chosen, expected)
    shares = _energies(generate, window_j is not None)
    known = shares is not None
    # what the requests' shares leave of the windows' energy (0 up to rounding where the attribution shared it all)
    unattributed_j = max(0.0, window_j - sum(shares)) if window_j is not None and shares is not None else None
    block: dict[str, Any] = {
        "kind": workload.kind,
        "energy_method": ENERGY_METHOD,
        "energy_source": REQUEST_ATTRIBUTION_SOURCE if known else None,
        "window_energy_j": window_j,
        "unattributed_energy_j": unattributed_j,
        "prefix_cache": _prefix_cache(model_info),
    }
    if workload.conversations is not None:
        block |= _conversations_block(workload, generate, known)
    elif workload.trace is not None:
        block |= _trace_block(workload, generate, known, model_info)
    return block


def _conversations_block(workload: Workload, records: Sequence[RequestRecord], known: bool) -> dict[str, Any]:
    assert workload.conversations is not None
    conversations = workload.conversations
    by_turn: dict[int, list[RequestRecord]] = defaultdict(list)
    for record in records:
        if record.turn is not None:
            by_turn[record.turn].append(record)
    per_turn = [
        {
            "turn": turn,
            "requests": len(mine),
            "ok": sum(r.ok for r in mine),
            "mean_latency_s": _mean([r.latency_s for r in mine]),
            "mean_ttft_s": _mean([r.ttft_s for r in mine]),
            "mean_prompt_tokens": _mean([float(r.prompt_tokens) for r in mine]),
            "mean_completion_tokens": _mean([float(r.completion_tokens) for r in mine]),
            "mean_energy_j": _mean(joules) if (joules := _energies(mine, known)) is not None else None,
        }
        for turn, mine in sorted(by_turn.items())
    ]
    rows = _group_rows(records, known)
    return {
        "source": conversations.source,
        "history": workload.history,
        "conversations": len(conversations.conversations),
        "turns": conversations.num_turns,
        "per_turn": per_turn,
        "per_conversation": rows,
        "conversation_latency_s": _stats(rows, "latency_s"),
        "conversation_wall_s": _stats(rows, "wall_s"),
        "conversation_energy_j": _stats(rows, "energy_j") if known else None,
    }


def _trace_block(
    workload: Workload,
    records: Sequence[RequestRecord],
    known: bool,
    model_info: dict[str, Any],
) -> dict[str, Any]:
    assert workload.trace is not None
    trace = workload.trace
    entries = trace.entries
    ok = [r for r in records if r.ok and 0 <= r.index < len(entries)]
    input_errors = [
        (r.prompt_tokens - entries[r.index].input_length) / entries[r.index].input_length for r in ok if r.prompt_tokens
    ]
    runs = [r for r in (model_info.get("http") or {}).get("runs") or [] if str(r.get("label", "")).startswith("gen")]
    drift = [r["schedule_drift"] | {"label": r.get("label")} for r in runs if r.get("schedule_drift")]
    drift += [d for d in model_info.get("schedule_drift") or [] if str(d.get("label", "")).startswith("gen")]
    rows = _group_rows(records, known)
    return {
        "source": trace.source,
        "timestamp_unit": trace.timestamp_unit,
        "scale": trace.scale,
        "requests": len(entries),
        "requests_available": trace.num_available,
        "sessions": len({e.session_id for e in entries if e.session_id is not None}),
        "span_s": entries[-1].offset_s if entries else 0.0,
        "prompt_method": trace.prompt_method,
        "schedule_drift": drift or None,
        "input_tokens": {
            "trace_total": sum(e.input_length for e in entries),
            "served_total": sum(r.prompt_tokens for r in ok),
            "mean_relative_error": _mean(input_errors),
            "note": "served: the server's usage.prompt_tokens (chat templates add tokens of their own)",
        },
        "output_tokens": {
            "trace_total": sum(e.output_length for e in entries),
            "served_total": sum(r.completion_tokens for r in ok),
            "requests_off_length": sum(r.completion_tokens != entries[r.index].output_length for r in ok),
        },
        "per_session": rows,
    }


__all__ = ["ENERGY_METHOD", "REQUEST_ATTRIBUTION_SOURCE", "workload_block"]
