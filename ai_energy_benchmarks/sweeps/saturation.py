"""Whether a rate point over-saturated the server: what each point's run says about the load it met (its report and
``requests.jsonl``), and the criteria of the adaptive sweep (:mod:`.adaptive`) for stopping. Rates are requests
per second, times seconds."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.backends.http_schedule import arrival_schedule
from ai_energy_benchmarks.reporting.runs import REQUESTS_FILE
from ai_energy_benchmarks.results import stats
from ai_energy_benchmarks.results.model import BenchmarkResult

#: The stop criteria that mean the server was over-saturated (the others: every rate ran, no headroom, a failure).
SATURATION_CRITERIA = ("queue_growing", "server_queue_growing", "ttft_diverging")


@dataclass(frozen=True)
class SaturationLimits:
    """When a rate point over-saturates the server (see :func:`saturation`)."""

    #: Queue growing: the achieved rate is below this share of a server's keeping up (:func:`run_rates_per_s`).
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
    #: The rate the server would have achieved keeping up with the schedule (see :func:`run_rates_per_s`).
    kept_up_rate_per_s: float | None
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


def _requests(run_dir: Path) -> list[dict[str, Any]]:
    """The generate requests of ``run_dir``'s ``requests.jsonl`` (none when it is missing)."""
    try:
        lines = (run_dir / REQUESTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if str(r.get("phase", "generate")).startswith("generate")]


def run_rates_per_s(
    requests: Sequence[Mapping[str, Any]], schedule_span_s: Callable[[int], float]
) -> tuple[float, float] | None:
    """The achieved rate of a run and the rate it would have achieved had the server kept up (req/s), over its
    repetitions: requests / (last end - first start), and requests / (the schedule's span for that many requests,
    ``schedule_span_s(n)``, + the latency of the quickest tenth of them). A queue that grows stretches the run past
    its schedule; a stall that drains before the end, or answers that come back in bunches (continuous batching of
    equal lengths), do not. None without requests."""
    count, took_s, kept_up_s = 0, 0.0, 0.0
    for repetition in sorted({r.get("repetition") or 0 for r in requests}):
        run = [r for r in requests if (r.get("repetition") or 0) == repetition]
        latencies = [float(r["latency_s"]) for r in run if not r.get("error") and r.get("latency_s") is not None]
        if len(run) < 2 or not latencies:
            continue
        count += len(run)
        took_s += max(float(r["end_s"]) for r in run) - min(float(r["start_s"]) for r in run)
        kept_up_s += schedule_span_s(len(run)) + (stats.percentile(latencies, 10) or 0.0)
    if not count or took_s <= 0 or kept_up_s <= 0:
        return None
    return count / took_s, count / kept_up_s


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
    rate = load.get("request_rate_per_s")
    rates = None
    if rate is not None:  # synchronous and throughput points: the run's throughput is their achieved rate

        def span_s(count: int) -> float:
            schedule = arrival_schedule(count, rate, load["arrival"], load["burstiness"], load["seed"])
            return schedule[-1]

        rates = run_rates_per_s(requests, span_s)
    return PointLoad(
        profile=load.get("load_profile"),
        offered_rate_per_s=load.get("request_rate_per_s"),
        request_throughput_per_s=measured.get("request_throughput_per_s"),
        achieved_rate_per_s=rates[0] if rates else measured.get("request_throughput_per_s"),
        kept_up_rate_per_s=rates[1] if rates else None,
        ttft_p50_s=ttft.get("median"),
        ttft_p99_s=ttft.get("p99"),
        ttft_count=ttft.get("count"),
        waiting_growth=waiting_growth(runs),
        held_for_slot=sum(int((r.get("schedule_drift") or {}).get("held_for_a_slot") or 0) for r in runs),
        goodput_per_s=goodput_per_s,
        goodput_from=goodput_from,
    )


def saturation(current: PointLoad, previous: PointLoad | None, limits: SaturationLimits) -> StopReason | None:
    """Why ``current`` (a rate point) over-saturated the server, or None: its queue grew (achieved rate below
    ``min_achieved_share`` of the rate of a server keeping up, :func:`run_rates_per_s`; or the server's waiting
    gauge rose), or its TTFT diverged from
    ``previous``'s (p50, or p99 from ``min_requests_for_p99`` requests, more than ``max_ttft_growth`` times, and by
    ``min_ttft_growth_s`` or more)."""
    offered, achieved, kept_up = current.offered_rate_per_s, current.achieved_rate_per_s, current.kept_up_rate_per_s
    if offered and achieved is not None and kept_up is not None and achieved < limits.min_achieved_share * kept_up:
        return StopReason(
            "queue_growing",
            f"queue growing: achieved {achieved:.3g} req/s, below {limits.min_achieved_share:.0%} of the "
            f"{kept_up:.3g} req/s of a server keeping up with the offered {offered:.3g} req/s"
            + (f" ({current.held_for_slot} requests waited for a free slot)" * bool(current.held_for_slot)),
            values={
                "offered_rate_per_s": offered,
                "achieved_rate_per_s": achieved,
                "kept_up_rate_per_s": kept_up,
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
    "point_load",
    "run_rates_per_s",
    "saturation",
    "waiting_growth",
]
