"""The ``workload`` block of a session workload's result: conversations (per turn, per conversation) or a trace replay
(schedule drift, lengths against the trace), with energy shared among the requests in flight and the server's
prefix-cache counters beside it. docs/workloads.md gives every definition.

Energy of a request (``TIME_SHARE_SOURCE``): each generate window's measured energy E over its duration D is taken
at its mean power P = E / D; at every instant, P is split evenly among the window's requests in flight then, so a
request's energy is the integral of P / n(t) over its own span (n(t): requests in flight at t, itself included).
Time with no request in flight (the window's edges, the client's gaps between turns) is ``unattributed_energy_j``;
the requests' energies and it add up to E. A conversation's (or trace session's) energy is the sum of its requests'.
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

TIME_SHARE_SOURCE = "estimated:time-share-of-window"
ENERGY_METHOD = (
    "each generate window's measured energy at its mean power, split evenly at every instant among the requests "
    "in flight (a request's energy: integral of P / n(t) over its span); a conversation's energy is the sum of "
    "its turns'; time with no request in flight is unattributed"
)


def share_energy_by_time(records: Sequence[RequestRecord], power_w: float) -> list[float]:
    """Each record's energy (J) at constant ``power_w``, shared evenly among the records in flight at each instant."""
    # A sweep over start (+1) and end (-1) events; work is bounded by the requests in flight at once.
    events = sorted(
        [(r.start_s, 1, i) for i, r in enumerate(records)] + [(r.end_s, -1, i) for i, r in enumerate(records)]
    )
    shares = [0.0] * len(records)
    active: set[int] = set()
    previous = events[0][0] if events else 0.0
    for time_s, change, index in events:
        if active and time_s > previous:
            each = power_w * (time_s - previous) / len(active)
            for i in active:
                shares[i] += each
        previous = time_s
        if change > 0:
            active.add(index)
        else:
            active.discard(index)
    return shares


def _energies(
    records: Sequence[RequestRecord],
    windows: Sequence[WindowMeasurement],
    chosen: dict[str, str],
    expected: Expected,
) -> tuple[dict[int, float], float | None, float | None]:
    """Energy per record (by ``id``), total window energy and unattributed energy (J); None where a window's total
    is unknown (a meter missed it: no request of the run gets an energy then)."""
    per_record: dict[int, float] = {}
    window_total = 0.0
    unattributed = 0.0
    for window in windows:
        total_j = _total(_joules([window], chosen, expected), _required(chosen)) if chosen else None
        if total_j is None or window.duration_s <= 0:
            return {}, None, None
        mine = [r for r in records if r.repetition == window.repetition]
        shares = share_energy_by_time(mine, total_j / window.duration_s)
        per_record.update({id(r): j for r, j in zip(mine, shares, strict=True)})
        window_total += total_j
        unattributed += total_j - sum(shares)
    return per_record, window_total, max(0.0, unattributed)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return stats.mean(present) if present else None


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


def _group_rows(records: Sequence[RequestRecord], energy: dict[int, float], energy_known: bool) -> list[dict[str, Any]]:
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
                "energy_j": sum(energy[id(r)] for r in mine) if energy_known else None,
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
    """The result's ``workload`` block (None for single prompts)."""
    if workload is None:
        return None
    generate = [r for r in records if r.phase == "generate"]
    energy, window_j, unattributed_j = _energies(
        generate, [w for w in windows if w.kind == "generate"], chosen, expected
    )
    known = window_j is not None
    block: dict[str, Any] = {
        "kind": workload.kind,
        "energy_method": ENERGY_METHOD,
        "energy_source": TIME_SHARE_SOURCE if known else None,
        "window_energy_j": window_j,
        "unattributed_energy_j": unattributed_j,
        "prefix_cache": _prefix_cache(model_info),
    }
    if workload.conversations is not None:
        block |= _conversations_block(workload, generate, energy, known)
    elif workload.trace is not None:
        block |= _trace_block(workload, generate, energy, known, model_info)
    return block


def _conversations_block(
    workload: Workload, records: Sequence[RequestRecord], energy: dict[int, float], known: bool
) -> dict[str, Any]:
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
            "mean_energy_j": _mean([energy[id(r)] for r in mine]) if known else None,
        }
        for turn, mine in sorted(by_turn.items())
    ]
    rows = _group_rows(records, energy, known)
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
    energy: dict[int, float],
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
    rows = _group_rows(records, energy, known)
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


__all__ = ["ENERGY_METHOD", "TIME_SHARE_SOURCE", "share_energy_by_time", "workload_block"]
