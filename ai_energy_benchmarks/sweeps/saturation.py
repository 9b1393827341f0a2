"""Whether a rate point over-saturated the server: what each point's run says about the load it met (its report and
``requests.jsonl``), and the criteria of the adaptive sweep (:mod:`.adaptive`) for stopping. Rates are requests
per second, times seconds."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.reporting.runs import REQUESTS_FILE
from ai_energy_benchmarks.results.model import BenchmarkResult

#: The stop criteria that mean the server was over-saturated (the others: every rate ran, no headroom, a failure).
SATURATION_CRITERIA = ("queue_growing", "server_queue_growing", "ttft_diverging")


@dataclass(frozen=True)
class SaturationLimits:
    """When a rate point over-saturates the server (see :func:`saturation`)."""

    #: Queue growing: the achieved completion rate is below this share of the offered rate.
    min_achieved_share: float = 0.8
    #: TTFT diverging: p50 or p99 TTFT more than this many times the previous point's ...
    max_ttft_growth: float = 3.0
    #: ... and larger by at least this much (s), so that a few milliseconds of noise do not stop the sweep.
    min_ttft_growth_s: float = 0.05
    #: Server queue growing: the waiting gauge's mean over the last third of the run's scrapes exceeds the first
    #: third's by at least this many requests.
    min_waiting_growth: float = 1.0
    #: The p99 TTFT is compared only when both points have this many first tokens; below, it is the slowest one or
    #: two requests, and one stall of a busy machine would stop the sweep (the p50 is compared whatever the count).
    min_requests_for_p99: int = 100


@dataclass
class PointLoad:
    """What one point's run says about the load it met (from its report and ``requests.jsonl``); rates per s."""

    profile: str | None
    offered_rate_per_s: float | None
    request_throughput_per_s: float | None
    achieved_rate_per_s: float | None
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    #: How many requests the TTFT percentiles are over (None when unknown).
    ttft_count: int | None
    waiting_growth: float | None
    held_for_slot: int
    goodput_per_s: float | None
    goodput_from: str | None


@dataclass
class StopReason:
    """Why the adaptive sweep stopped: ``criterion`` ``completed`` (every rate ran), ``no_headroom`` (throughput not
    above synchronous), ``point_failed``, ``queue_growing``, ``server_queue_growing`` or ``ttft_diverging``."""

    criterion: str
    reason: str
    point: str | None = None
    early: bool = False
    values: dict[str, Any] = field(default_factory=dict)


#: Most values :func:`_slope` pairs (evenly spaced among them beyond): 200 values are 19,900 pairs.
_MOST_SLOPE_VALUES = 200


def _slope(values: Sequence[float]) -> float | None:
    """Theil-Sen slope of ``values`` against their index, the median of the slopes of all pairs (None below three
    values): a stall that delays a few requests, then drains, barely moves it, unlike a least-squares fit."""
    n = len(values)
    if n < 3:
        return None
    step = max(1, math.ceil(n / _MOST_SLOPE_VALUES))
    points = list(enumerate(values))[::step]
    slopes = sorted((vj - vi) / (j - i) for a, (i, vi) in enumerate(points) for j, vj in points[a + 1 :])
    middle = len(slopes) // 2
    return slopes[middle] if len(slopes) % 2 else (slopes[middle - 1] + slopes[middle]) / 2


def _requests(run_dir: Path) -> list[dict[str, Any]]:
    """The generate requests of ``run_dir``'s ``requests.jsonl`` (none when it is missing)."""
    try:
        lines = (run_dir / REQUESTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if str(r.get("phase", "generate")).startswith("generate")]


def achieved_rate_per_s(requests: Sequence[Mapping[str, Any]]) -> float | None:
    """Completions per second in a run: the inverse Theil-Sen slope of the successful requests' sorted end times
    against their rank, per repetition, averaged (fill and drain, and a few late requests, barely move it)."""
    rates = []
    for repetition in sorted({r.get("repetition") or 0 for r in requests}):
        ends = sorted(
            float(r["end_s"]) for r in requests if (r.get("repetition") or 0) == repetition and not r.get("error")
        )
        slope = _slope(ends)
        if slope is not None and slope > 0:
            rates.append(1.0 / slope)
    return sum(rates) / len(rates) if rates else None


def waiting_growth(runs: Sequence[Mapping[str, Any]]) -> float | None:
    """How much the server's waiting gauge rose through the measured runs (mean of the last third of the scrapes
    minus the first third's; the largest over runs), or None without enough scrapes."""
    growths = []
    for run in runs:
        samples = (run.get("prometheus") or {}).get("samples") or []
        waiting = [float(s["num_requests_waiting"]) for s in samples if "num_requests_waiting" in s]
        if len(waiting) >= 3:
            third = len(waiting) // 3
            growths.append(sum(waiting[-third:]) / third - sum(waiting[:third]) / third)
    return max(growths) if growths else None


def point_load(
    report: BenchmarkResult, run_dir: Path, slo_ttft_s: float | None = None, slo_e2e_s: float | None = None
) -> PointLoad:
    """The load ``report`` (run in ``run_dir``) met. Goodput is the report's (``backend.slo_*``), else counted from
    ``requests.jsonl`` with ``slo_ttft_s`` / ``slo_e2e_s`` as per-request limits (the sweep's objectives)."""
    http = report.model.get("http") or {}
    load = report.model.get("load") or {}
    measured = http.get("measured") or {}
    runs = [r for r in http.get("runs") or [] if str(r.get("label", "")).startswith("generate")]
    requests = _requests(run_dir)
    ttft = measured.get("ttft_s") or {}
    goodput = measured.get("goodput")
    goodput_per_s, goodput_from = (goodput["requests_per_s"], "backend.slo_*") if goodput else (None, None)
    duration = measured.get("duration_s")
    if goodput_per_s is None and (slo_ttft_s or slo_e2e_s) and requests and duration:
        good = [
            r
            for r in requests
            if not r.get("error")
            and (slo_ttft_s is None or (r.get("ttft_s") is not None and r["ttft_s"] <= slo_ttft_s))
            and (slo_e2e_s is None or r.get("latency_s", math.inf) <= slo_e2e_s)
        ]
        goodput_per_s, goodput_from = len(good) / float(duration), "the sweep's SLOs, per request"
    return PointLoad(
        profile=load.get("load_profile"),
        offered_rate_per_s=load.get("request_rate_per_s"),
        request_throughput_per_s=measured.get("request_throughput_per_s"),
        # Without a rate (synchronous, throughput) completions bunch at the end: their rate is the run's throughput.
        achieved_rate_per_s=achieved_rate_per_s(requests)
        if load.get("request_rate_per_s") is not None
        else measured.get("request_throughput_per_s"),
        ttft_p50_s=ttft.get("median"),
        ttft_p99_s=ttft.get("p99"),
        ttft_count=ttft.get("count"),
        waiting_growth=waiting_growth(runs),
        held_for_slot=sum(int((r.get("schedule_drift") or {}).get("held_for_a_slot") or 0) for r in runs),
        goodput_per_s=goodput_per_s,
        goodput_from=goodput_from,
    )


def saturation(current: PointLoad, previous: PointLoad | None, limits: SaturationLimits) -> StopReason | None:
    """Why ``current`` (a rate point) over-saturated the server, or None: its queue grew (achieved completion rate
    below ``min_achieved_share`` of the offered rate; or the server's waiting gauge rose), or its TTFT diverged from
    ``previous``'s (p50, or p99 from ``min_requests_for_p99`` requests, more than ``max_ttft_growth`` times, and by
    ``min_ttft_growth_s`` or more)."""
    offered, achieved = current.offered_rate_per_s, current.achieved_rate_per_s
    if offered and achieved is not None and achieved < limits.min_achieved_share * offered:
        return StopReason(
            "queue_growing",
            f"queue growing: achieved {achieved:.3g} req/s, below {limits.min_achieved_share:.0%} of the offered "
            f"{offered:.3g} req/s"
            + (f" ({current.held_for_slot} requests waited for a free slot)" * bool(current.held_for_slot)),
            values={
                "offered_rate_per_s": offered,
                "achieved_rate_per_s": achieved,
                "held_for_slot": current.held_for_slot,
            },
        )
    growth = current.waiting_growth
    if growth is not None and growth >= limits.min_waiting_growth:
        return StopReason(
            "server_queue_growing",
            f"server queue growing: its waiting requests rose by {growth:.3g} on average through the run",
            values={"waiting_growth": growth},
        )
    if previous is None:
        return None
    counts = (current.ttft_count or 0, previous.ttft_count or 0)
    tail = min(counts) >= limits.min_requests_for_p99
    for name in ("ttft_p50_s", "ttft_p99_s") if tail else ("ttft_p50_s",):
        now, before = getattr(current, name), getattr(previous, name)
        if now is None or before is None:
            continue
        if now > limits.max_ttft_growth * before and now - before >= limits.min_ttft_growth_s:
            return StopReason(
                "ttft_diverging",
                f"TTFT diverging: {name[5:8]} {now:.3g} s, {now / before:.3g}x the previous point's {before:.3g} s",
                values={name: now, f"previous_{name}": before},
            )
    return None


__all__ = [
    "SATURATION_CRITERIA",
    "PointLoad",
    "SaturationLimits",
    "StopReason",
    "achieved_rate_per_s",
    "point_load",
    "saturation",
    "waiting_growth",
]
