"""Latency statistics, goodput and the steady-state window for the HTTP backend (the server's Prometheus view is
in ``http_prometheus``).

Pure functions over :class:`RequestRecord` lists and scraped samples: no I/O here. Times are
``time.perf_counter()`` seconds unless a key says otherwise.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_prometheus import (  # noqa: F401 (re-exported)
    COUNTER_SERIES,
    CROSS_CHECK_TOLERANCE,
    HISTOGRAM_SERIES,
    SAMPLED_SERIES,
    parse_prometheus,
    prometheus_summary,
    token_cross_check,
)
from ai_energy_benchmarks.results import stats


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, median, std (sample), p90, p99, min and max of ``values`` (in their own unit)."""
    return {
        "count": len(values),
        "mean": stats.mean(values),
        "median": stats.percentile(values, 50),
        "std": stats.stdev(values),
        "p90": stats.percentile(values, 90),
        "p99": stats.percentile(values, 99),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }


def tpot_s(record: RequestRecord) -> float | None:
    """Time per output token after the first (s): (end - first token) / (tokens - 1); None below two tokens."""
    if record.first_token_s is None or record.completion_tokens < 2:
        return None
    return (record.end_s - record.first_token_s) / (record.completion_tokens - 1)


def inter_chunk_latencies_s(record: RequestRecord) -> list[float]:
    """Gaps between consecutive streamed chunks of one request (s). A chunk may carry several tokens."""
    times = record.chunk_times_s or []
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def goodput(
    records: Sequence[RequestRecord],
    duration_s: float,
    slo_ttft_s: float | None,
    slo_tpot_s: float | None,
    slo_e2e_s: float | None,
) -> dict[str, Any] | None:
    """Requests that succeeded within every set objective, per second and as a share; None when no SLO is set."""
    if slo_ttft_s is None and slo_tpot_s is None and slo_e2e_s is None:
        return None
    good = 0
    for record in records:
        if not record.ok:
            continue
        ttft = record.ttft_s
        if slo_ttft_s is not None and (ttft is None or ttft > slo_ttft_s):
            continue
        tpot = tpot_s(record)
        if slo_tpot_s is not None and tpot is not None and tpot > slo_tpot_s:
            continue
        if slo_e2e_s is not None and record.latency_s > slo_e2e_s:
            continue
        good += 1
    return {
        "slo": {"ttft_s": slo_ttft_s, "tpot_s": slo_tpot_s, "e2e_s": slo_e2e_s},
        "good_requests": good,
        "share_of_requests": good / len(records) if records else None,
        "requests_per_s": good / duration_s if duration_s > 0 else None,
    }


def request_metrics(
    records: Sequence[RequestRecord],
    duration_s: float,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    slo_e2e_s: float | None = None,
) -> dict[str, Any]:
    """TTFT, TPOT, ITL and end-to-end latency distributions (s), throughput and goodput over ``duration_s``."""
    ok = [r for r in records if r.ok]
    output_tokens = sum(r.completion_tokens for r in ok)
    prompt_tokens = sum(r.prompt_tokens for r in ok)
    itl: list[float] = []
    for record in ok:
        itl.extend(inter_chunk_latencies_s(record))
    tpot = [value for value in (tpot_s(r) for r in ok) if value is not None]
    return {
        "requests": len(records),
        "ok": len(ok),
        "failed": len(records) - len(ok),
        "errors_by_class": error_counts(records),
        "duration_s": duration_s,
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "request_throughput_per_s": len(ok) / duration_s if duration_s > 0 else None,
        "output_token_throughput_per_s": output_tokens / duration_s if duration_s > 0 else None,
        "total_token_throughput_per_s": (prompt_tokens + output_tokens) / duration_s if duration_s > 0 else None,
        "ttft_s": distribution([r.ttft_s for r in ok if r.ttft_s is not None]),
        "tpot_s": distribution(tpot),
        "itl_s": distribution(itl),
        "e2e_s": distribution([r.latency_s for r in ok]),
        "goodput": goodput(records, duration_s, slo_ttft_s, slo_tpot_s, slo_e2e_s),
        "answer_checks": answer_checks(records),
    }


def answer_checks(records: Sequence[RequestRecord]) -> dict[str, Any]:
    """How many answers contradicted their request or their stream (``RequestRecord.contradictions``), by kind, and
    a warning when any did (None otherwise)."""
    flagged = [r for r in records if r.contradictions]
    counts = Counter(flag for r in flagged for flag in r.contradictions or ())
    recounted = sum(1 for r in flagged if r.usage_completion_tokens is not None)
    warning = None
    if flagged:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
        warning = (
            f"{len(flagged)} of {len(records)} server answers contradicted the request or the stream ({kinds})"
            + (
                f"; the usage count of {recounted} was not believed, their output tokens are counted from the stream"
                if recounted
                else ""
            )
            + "; see 'contradictions' in requests.jsonl"
        )
    return {
        "checked": len(records),
        "contradicted": len(flagged),
        "by_kind": dict(sorted(counts.items())),
        "usage_not_believed": recounted,
        "warning": warning,
        "rules": "usage.completion_tokens must be <= max_tokens and >= the number of content chunks (else the chunks "
        "are counted); output >= min_tokens (max_tokens with ignore_eos); the response's model is the one requested",
    }


def error_counts(records: Iterable[RequestRecord]) -> dict[str, int]:
    """Failed requests counted by error class (sorted by class name)."""
    counts = Counter(r.error_class or "error" for r in records if not r.ok)
    return dict(sorted(counts.items()))


# -- load shape and the steady-state window ------------------------------------------------------------------------
@dataclass
class SlotTrace:
    """How many of the ``concurrency`` slots were occupied over a run.

    ``events`` holds ``(time_s, occupied_after)`` at every change; a slot is occupied from when the dispatcher
    takes it for a request until that request (with its retries) has finished. ``sends_done_s`` is when the
    dispatcher stopped sending.
    """

    concurrency: int
    start_s: float
    events: list[tuple[float, int]] = field(default_factory=list)
    sends_done_s: float | None = None
    end_s: float | None = None

    def max_occupied(self) -> int:
        """Most slots occupied at once."""
        return max((level for _, level in self.events), default=0)

    def mean_occupied(self) -> float | None:
        """Time-weighted mean number of occupied slots from the first send to the end."""
        if not self.events or self.end_s is None or self.end_s <= self.start_s:
            return None
        area, previous_t, level = 0.0, self.start_s, 0
        for time_s, after in self.events:
            area += level * (time_s - previous_t)
            previous_t, level = time_s, after
        area += level * (self.end_s - previous_t)
        return area / (self.end_s - self.start_s)

    def steady_bounds(self) -> tuple[float, float] | None:
        """(start, end) of the steady state: all slots first busy -> drain begins; None if never all busy.

        The drain begins at the first moment, once sending has stopped, at which a slot is free and will not be
        refilled: the first completion after the last send, or the completion that freed the slot the dispatcher
        took and gave back when it stopped (duration mode).
        """
        full = self.concurrency
        start = next((t for t, level in self.events if level == full), None)
        if start is None or self.sends_done_s is None:
            return None
        level_at_stop, previous, last_full_exit = 0, 0, None
        for time_s, level in self.events:
            if time_s > self.sends_done_s:
                break
            if previous == full and level < full:
                last_full_exit = time_s
            previous = level_at_stop = level
        if level_at_stop < full:
            end = last_full_exit
        else:
            end = next((t for t, level in self.events if t > self.sends_done_s and level < full), None)
        if end is None or end < start:
            return None
        return start, end

    def full_seconds_between(self, start: float, end: float) -> float:
        """Seconds within [start, end] during which every slot was occupied."""
        points = [(self.start_s, 0), *self.events]
        ends = [t for t, _ in points[1:]] + [self.end_s if self.end_s is not None else end]
        total = 0.0
        for (begin_s, level), end_s in zip(points, ends, strict=True):
            if level == self.concurrency:
                total += max(0.0, min(end_s, end) - max(begin_s, start))
        return total


def tokens_between(records: Iterable[RequestRecord], start: float, end: float) -> float:
    """Output tokens delivered within [start, end]: each request's tokens spread over its chunks' arrival times.

    A chunk may carry several tokens (the server merges them under load), so a request's ``completion_tokens``
    are shared equally among its chunks; with one token per chunk the count is exact.
    """
    total = 0.0
    for record in records:
        times = record.chunk_times_s
        if not times or record.completion_tokens <= 0:
            continue
        inside = sum(1 for t in times if start <= t <= end)
        total += record.completion_tokens * inside / len(times)
    return total


def steady_state(trace: SlotTrace, records: Sequence[RequestRecord]) -> dict[str, Any]:
    """The steady-state window (all slots busy until the drain begins) with its duration and output tokens."""
    bounds = trace.steady_bounds()
    if bounds is None:
        reason = (
            f"the {trace.concurrency} concurrency slots were never all busy at once "
            f"(at most {trace.max_occupied()}): fewer requests than slots, or the request rate kept the load lower"
        )
        return {"reached": False, "reason": reason, "concurrency": trace.concurrency}
    start, end = bounds
    duration = end - start
    tokens = tokens_between(records, start, end)
    completed = sum(1 for r in records if r.ok and start <= r.end_s <= end)
    return {
        "reached": True,
        "concurrency": trace.concurrency,
        "start_s": start,
        "end_s": end,
        "start_offset_s": start - trace.start_s,
        "end_offset_s": end - trace.start_s,
        "duration_s": duration,
        "output_tokens": round(tokens, 3),
        "output_tokens_per_s": tokens / duration if duration > 0 else None,
        "requests_completed": completed,
        "all_slots_busy_share": trace.full_seconds_between(start, end) / duration if duration > 0 else None,
        "method": "from the first moment all concurrency slots were busy to the first moment after the last send "
        "when a slot freed and was not refilled; start_s/end_s are time.perf_counter() seconds (the clock of the "
        "measured windows); tokens are spread over each request's chunk arrival times",
    }


def schedule_drift(drift_s: Sequence[float], late_for_slot: int) -> dict[str, Any]:
    """How late requests were sent against their arrival schedule (ms), for those that found a free slot."""
    values_ms = [d * 1000.0 for d in drift_s]
    return {
        "unit": "ms",
        "p50": stats.percentile(values_ms, 50),
        "p99": stats.percentile(values_ms, 99),
        "max": max(values_ms) if values_ms else None,
        "count": len(values_ms),
        "held_for_a_slot": late_for_slot,
        "note": "send time minus scheduled time, for requests whose slot was free when they were due",
    }
