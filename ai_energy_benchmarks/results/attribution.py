"""Energy per request under concurrency: each measured window's energy shared among the requests in it.

Method (docs/workloads.md, "Energy per request"), per window (prefill and generate passes) whose energy is known:

1. **Time bins.** The window's span (the chosen meters' reads at its edges, else its requests' span) is cut at
   every request's start, first token and end (at most :data:`MAX_BINS` bins; beyond that, equal bins).
2. **Energy per bin.** Each device class's window energy (the reading the ``energy`` block reports) is spread over
   the bins in proportion to that class's energy read back over each bin from the meter's power record (NVML's
   counter/power record, RAPL), where the meter keeps one and every bin reads back; otherwise in proportion to
   the bin's duration (constant power). The bins' energies add up to the window's energy exactly.
3. **Requests in a bin.** A bin's energy is shared among the requests by the tokens each processes in it: its
   prompt tokens (times ``prefill_token_weight``) and first output token spread evenly over its prefill
   (start to first token), each later output token over the time since the previous streamed chunk (or evenly
   from first token to end without chunk times). A bin where requests are resident but none has a token is shared
   evenly among them; a bin with no request in flight (harness overhead between batches, the window's edges) goes
   to all the window's requests in proportion to the energy they already have.
4. ``prefill_token_weight``: how much a prompt token costs against an output token, measured from the run's own
   phases where there is a prefill pass (prefill J per prompt token / decode J per output token), else 1 (an
   assumption, stated in the result).

So the requests' ``energy_j`` of a window add up to the window's energy (up to rounding). A batch record (PyTorch)
gets its batch's share. The figure is a model of sharing, not a measurement per request: GPUs meter the device,
not the request.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ai_energy_benchmarks.energy.base import IntervalReading, WindowMeasurement
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.results import stats
from ai_energy_benchmarks.results.meters import _DEVICES, Expected, _device_class, _window_joules

#: Most time bins per window (read-backs per window).
MAX_BINS = 512

ReadBack = Callable[[float, float], list[IntervalReading]]


def _span(window: WindowMeasurement, records: Sequence[RequestRecord], chosen: dict[str, str]) -> tuple[float, float]:
    starts = [r.start_s for r in window.readings if r.start_s is not None and r.meter in chosen.values()]
    ends = [r.end_s for r in window.readings if r.end_s is not None and r.meter in chosen.values()]
    first = min([r.start_s for r in records] + starts)
    last = max([r.end_s for r in records] + ends)
    return first, max(last, first)


def _edges(start: float, end: float, records: Sequence[RequestRecord]) -> list[float]:
    points = {start, end}
    for record in records:
        for t in (record.start_s, record.first_token_s, record.end_s):
            if t is not None and start < t < end:
                points.add(t)
    edges = sorted(points)
    if len(edges) - 1 > MAX_BINS:
        step = (end - start) / MAX_BINS
        edges = [start + i * step for i in range(MAX_BINS)] + [end]
    return edges


def _segments(record: RequestRecord, prefill_weight: float) -> list[tuple[float, float, float]]:
    """``(from_s, to_s, tokens)``: where the record's tokens were processed (see the module docstring)."""
    start, end = record.start_s, max(record.end_s, record.start_s)
    first = record.first_token_s
    first = start if first is None else min(max(first, start), end)
    outputs = max(record.completion_tokens, 0)
    segments = [(start, first, prefill_weight * max(record.prompt_tokens, 0) + min(outputs, 1))]
    later = max(outputs - 1, 0)
    chunks = sorted(t for t in (record.chunk_times_s or []) if start <= t <= end)
    if later and len(chunks) >= 2:
        per_chunk = later / (len(chunks) - 1)
        segments += [(a, b, per_chunk) for a, b in itertools.pairwise(chunks)]
    elif later:
        segments.append((first, end, float(later)))
    return segments


def _spread(edges: list[float], segment: tuple[float, float, float], into: dict[int, float]) -> None:
    """Add the segment's tokens to the bins it overlaps, in proportion to the overlap (a point: its bin)."""
    a, b, tokens = segment
    if tokens <= 0:
        return
    last = len(edges) - 2
    index = min(max(bisect.bisect_right(edges, a) - 1, 0), last)
    if b <= a:
        into[index] = into.get(index, 0.0) + tokens
        return
    while index <= last and edges[index] < b:
        overlap = min(b, edges[index + 1]) - max(a, edges[index])
        if overlap > 0:
            into[index] = into.get(index, 0.0) + tokens * overlap / (b - a)
        index += 1


def _bin_energy(
    window: WindowMeasurement,
    edges: list[float],
    chosen: dict[str, str],
    expected: Expected | None,
    read_back: ReadBack | None,
) -> tuple[list[float], list[str]] | None:
    """Energy per bin (J) and per class how it was spread; None when the window's energy is unknown."""
    widths = [b - a for a, b in itertools.pairwise(edges)]
    duration = sum(widths)
    totals = {d: _window_joules(window, d, chosen.get(d), expected) for d in _DEVICES if chosen.get(d)}
    if not totals or any(v is None for v in totals.values()):
        return None
    readings = [read_back(a, b) for a, b in itertools.pairwise(edges)] if read_back else []
    per_bin = [0.0] * len(widths)
    shapes = []
    for device, energy in totals.items():
        assert energy is not None
        shape = None
        if readings:
            values = [
                [r.energy_j for r in bin_readings if _device_class(r) == device and r.meter == chosen[device]]
                for bin_readings in readings
            ]
            if all(values) and sum(map(sum, values)) > 0:
                shape = [max(sum(v), 0.0) for v in values]
        if shape is None:
            shape = widths if duration > 0 else [1.0] * len(widths)
            shapes.append(f"{device}: time")
        else:
            shapes.append(f"{device}: power record")
        weight = sum(shape)
        for k, share in enumerate(shape):
            per_bin[k] += energy * share / weight
    return per_bin, shapes


def _attribute_window(
    window: WindowMeasurement,
    records: Sequence[RequestRecord],
    chosen: dict[str, str],
    expected: Expected | None,
    read_back: ReadBack | None,
    prefill_weight: float,
) -> list[str] | None:
    start, end = _span(window, records, chosen)
    edges = _edges(start, end, records)
    if len(edges) < 2:
        edges = [start, start]
    binned = _bin_energy(window, edges, chosen, expected, read_back)
    if binned is None:
        return None
    per_bin, shapes = binned
    # tokens processed per bin, by request: {bin: {request: tokens}} (sparse: a request spans few bins)
    by_bin: dict[int, dict[int, float]] = {}
    for i, record in enumerate(records):
        spread: dict[int, float] = {}
        for segment in _segments(record, prefill_weight):
            _spread(edges, segment, spread)
        for k, tokens in spread.items():
            if tokens > 0:
                by_bin.setdefault(k, {})[i] = tokens
    shares = [0.0] * len(records)
    unassigned = 0.0
    for k, energy in enumerate(per_bin):
        weights = by_bin.get(k) or {
            i: 1.0 for i, r in enumerate(records) if r.start_s < edges[k + 1] and r.end_s > edges[k]
        }  # nobody processes a token here: those resident share it evenly
        weight = sum(weights.values())
        if weight <= 0:
            unassigned += energy
            continue
        for i, w in weights.items():
            shares[i] += energy * w / weight
    assigned = sum(shares)
    for i in range(len(records)):
        extra = unassigned * (shares[i] / assigned if assigned > 0 else 1.0 / len(records))
        records[i].energy_j = shares[i] + extra
    return shapes


def prefill_token_weight(phases: dict[str, Any] | None) -> tuple[float, str]:
    """J per prompt token in the prefill pass / J per output token in decode, from the run's phases; else 1."""
    if phases:
        prefill, decode = phases.get("prefill") or {}, phases.get("decode") or {}
        pre_wh, pre_tokens = prefill.get("energy_wh"), prefill.get("prompt_tokens")
        dec_wh, dec_tokens = decode.get("energy_wh"), decode.get("output_tokens")
        if pre_wh and pre_tokens and dec_wh and dec_tokens and pre_wh > 0 and dec_wh > 0:
            return (pre_wh / pre_tokens) / (dec_wh / dec_tokens), "measured:phases"
    return 1.0, "assumed:equal-to-an-output-token"


def attribute_energy(
    records: Sequence[RequestRecord],
    windows: Sequence[WindowMeasurement],
    chosen: dict[str, str],
    expected: Expected | None = None,
    read_back: ReadBack | None = None,
    phases: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Set ``energy_j`` on every record of every measured window whose energy is known (others keep None); return
    the method's description for ``energy.request_attribution`` (None when no window was attributed)."""
    if not chosen:
        return None
    weight, weight_from = prefill_token_weight(phases)
    attributed: list[dict[str, Any]] = []
    for window in windows:
        if window.kind == "idle" or window.repetition is None:
            continue
        label = window.name
        mine = [r for r in records if f"{r.phase}-{r.repetition}" == label]
        if not mine:
            continue
        shapes = _attribute_window(window, mine, chosen, expected, read_back, weight)
        if shapes is not None:
            attributed.append({"window": label, "requests": len(mine), "spread": shapes})
    if not attributed:
        return None
    generate = [r.energy_j for r in records if r.phase == "generate" and r.energy_j is not None]
    return {
        "method": "window energy spread over time bins (power record where read back, else time), each bin shared "
        "by the tokens each request processed in it (docs/workloads.md)",
        "prefill_token_weight": weight,
        "prefill_token_weight_from": weight_from,
        "windows": attributed,
        "generate_request_energy_j": stats.describe(generate) if generate else None,
    }


__all__ = ["MAX_BINS", "attribute_energy", "prefill_token_weight"]
