"""DCGM meter (``metrics.type: dcgm``): the serving fleet's GPU energy from NVIDIA DCGM exporters.

The GPUs doing the work of a remote or multi-node server are not this host's: their energy comes from the telemetry
the cluster already runs. Two modes (``metrics.dcgm``):

- **Prometheus** (``prometheus_url``): after each window closes, the meter waits until every selected series has a
  scrape newer than the window's end, then reads each series' raw samples (a range-vector selector evaluated at
  the end, so every sample keeps its own scrape timestamp) through Prometheus's HTTP API;
- **direct** (``exporter_urls``): the exporters' ``/metrics`` are read at each window edge and every
  ``poll_interval_s`` in between (a single server, no Prometheus).

Per GPU, the window's energy is the energy counter ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (mJ since boot;
``measured:dcgm-energy-counter``), or without one the power gauge ``DCGM_FI_DEV_POWER_USAGE`` (W) integrated over
its samples (``estimated:dcgm-power-samples``), bounded by the samples bracketing each edge (see
:mod:`~ai_energy_benchmarks.energy.dcgm_series`). A window with a counter reset inside is labelled
``estimated:dcgm-energy-counter-reset``; one read mostly by interpolation (shorter than the scrape interval)
``estimated:dcgm-interpolated-counter``; one shorter than ``min_window_scrapes`` scrape intervals is flagged.

A GPU whose series stops (exporter down) or has no scrape after the window within ``wait_timeout_s`` is not counted
for that window, never read as 0: :class:`IncompleteWindowError` says which and why. Readings are one per GPU,
device ``gpu:<Hostname>/<UUID>``; :meth:`DcgmMeter.describe` sums them per node and in total for each window and
says what was counted and what was not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyReading, IncompleteWindowError, IntervalReading, SnapshotWindows
from ai_energy_benchmarks.energy.dcgm_fleet import (
    COUNTER_METRIC,
    COUNTER_SOURCE,
    INTERPOLATED_SOURCE,
    POWER_METRIC,
    POWER_SOURCE,
    RESET_SOURCE,
    Fetched,
    FleetGpu,
)
from ai_energy_benchmarks.energy.dcgm_series import Samples, Span, counter_span, power_span
from ai_energy_benchmarks.energy.prometheus_query import ExporterReader, PrometheusApi, Selector, SeriesKey
from ai_energy_benchmarks.exceptions import ConfigError, MeterError

logger = logging.getLogger(__name__)

__all__ = [
    "COUNTER_METRIC",
    "COUNTER_SOURCE",
    "INTERPOLATED_SOURCE",
    "NOT_COUNTED",
    "POWER_METRIC",
    "POWER_SOURCE",
    "RESET_SOURCE",
    "STALE_INTERVALS",
    "DcgmMeter",
    "check_settings",
]

#: A series whose newest sample is this many of its scrape intervals behind the fleet's newest has stopped.
STALE_INTERVALS = 3.0
NOT_COUNTED = (
    "only the selected GPUs' own energy (board power as DCGM reports it): not the nodes' CPUs, memory, network, "
    "storage, fans or power supplies, not GPUs the selector does not match (idle nodes), and not this client"
)


@dataclass(frozen=True)
class _Edge:
    perf_s: float
    unix_s: float


def check_settings(config: MetricsConfig) -> None:
    """Raise a ConfigError when ``metrics.dcgm`` cannot be read: no Prometheus URL and no exporter URL."""
    settings = config.dcgm
    if not settings.prometheus_url and not settings.exporter_urls:
        raise ConfigError("metrics.dcgm: set prometheus_url (or exporter_urls) for metrics.type dcgm")


class DcgmMeter(SnapshotWindows[_Edge]):
    """Energy of the selected fleet GPUs per window, from DCGM exporters (via Prometheus or read directly)."""

    name = "dcgm"
    #: Nothing is written into the run directory: what the meter read is in the report (``meters.dcgm``).
    output_files: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None = None) -> None:
        check_settings(config)
        settings = config.dcgm
        self._settings = settings
        self._selector = Selector.parse(settings.selector)
        self._api = (
            PrometheusApi(settings.prometheus_url, settings.request_timeout_s) if settings.prometheus_url else None
        )
        self._gpus: dict[SeriesKey, FleetGpu] = {}
        self._duplicates: dict[SeriesKey, str] = {}
        #: Every node the exporters report, selected or not (those not selected are named in the report).
        self._seen_nodes: set[str] = set()
        self._reader = (
            None
            if self._api is not None
            else ExporterReader(
                settings.exporter_urls, settings.request_timeout_s, (COUNTER_METRIC, POWER_METRIC), self._selector
            )
        )
        self._windows: list[dict[str, Any]] = []
        self._unix_minus_perf = 0.0
        self._prepared = False
        self._init_windows()

    # -- reading the series ------------------------------------------------------------------------------------------

    def _poll(self) -> None:
        if self._reader is not None:
            self._reader.read()

    def _fetch(self, start_unix_s: float) -> Fetched:
        """Every selected series' samples from ``start_unix_s`` until now."""
        fetched = Fetched()
        if self._reader is not None:
            self._reader.read()
            by_metric, fetched.labels = self._reader.since(start_unix_s)
            fetched.counters, fetched.powers = by_metric[COUNTER_METRIC], by_metric[POWER_METRIC]
            return fetched
        assert self._api is not None
        now_s = time.time()
        for metric, target in ((COUNTER_METRIC, fetched.counters), (POWER_METRIC, fetched.powers)):
            for key, (labels, samples) in self._api.samples(self._selector.of(metric), start_unix_s, now_s).items():
                target[key] = samples
                fetched.labels[key] = labels
        return fetched

    def _gpu(self, key: SeriesKey, labels: dict[str, str], has_counter: bool) -> None:
        if key in self._gpus:
            self._gpus[key].has_counter = self._gpus[key].has_counter or has_counter
            return
        url = self._reader.url_of(key) if self._reader is not None else None
        gpu = FleetGpu.from_labels(key, labels, has_counter, url)
        if any(other.device == gpu.device for other in self._gpus.values()):
            # One GPU scraped twice (two jobs, an HA pair): counted once.
            if key not in self._duplicates:
                self._duplicates[key] = gpu.device
                logger.warning("dcgm meter: a second series of %s (%s) is ignored", gpu.device, dict(key))
            return
        self._gpus[key] = gpu

    def _discover(self, fetched: Fetched, live_since_s: float | None = None) -> None:
        """Add the series in ``fetched`` as GPUs; after set-up only those with a sample since ``live_since_s`` (a
        series that ended before a window, e.g. a finished pod's, has no part in it)."""
        for key, labels in fetched.labels.items():
            if key in self._duplicates:
                continue
            if live_since_s is not None and key not in self._gpus:
                samples = fetched.counters.get(key) or fetched.powers.get(key) or []
                if not samples or samples[-1][0] < live_since_s:
                    continue
            self._gpu(key, labels, key in fetched.counters)

    # -- set-up ------------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Find the selected GPUs (a selector that matches none is an error) and, in direct mode, start polling."""
        if self._prepared:
            return
        self._unix_minus_perf = time.time() - time.perf_counter()
        if self._api is not None:
            now_s = time.time()
            fetched = Fetched()
            for metric in (COUNTER_METRIC, POWER_METRIC):
                for key, labels in self._api.latest(self._selector.of(metric), now_s).items():
                    fetched.labels[key] = labels
                    if metric == COUNTER_METRIC:
                        fetched.counters[key] = []
            everything = self._api.latest(POWER_METRIC, now_s).values()
            self._seen_nodes.update(labels.get("Hostname") or labels.get("instance") or "?" for labels in everything)
        else:
            assert self._reader is not None
            fetched = self._fetch(0.0)
            if len(self._reader.down) == len(self._reader.urls):
                failures = "; ".join(error for _, error in self._reader.down.values())
                raise MeterError(f"dcgm meter: no exporter answered: {failures}")
            self._seen_nodes = self._reader.seen_nodes
        self._discover(fetched)
        if not self._gpus:
            where = self._settings.prometheus_url or ", ".join(self._settings.exporter_urls)
            raise MeterError(
                f"dcgm meter: no {COUNTER_METRIC} or {POWER_METRIC} series match selector "
                f"{self._selector.text or '(none)'} at {where}"
            )
        if self._reader is not None:
            self._start_polling(self._settings.poll_interval_s)
        self._prepared = True
        logger.debug("dcgm meter ready: %d GPUs on %d nodes", len(self._gpus), len(self._nodes()))

    def unix_time(self, perf_s: float) -> float:
        """The Unix time (s) of a ``time.perf_counter()`` instant, as this meter converts window edges."""
        return perf_s + self._unix_minus_perf

    def _nodes(self) -> list[str]:
        return sorted({gpu.node for gpu in self._gpus.values()})

    def _ready(self) -> bool:
        return self._prepared

    def _snapshot(self) -> _Edge:
        perf_s = time.perf_counter()
        return _Edge(perf_s, perf_s + self._unix_minus_perf)

    # -- windows -----------------------------------------------------------------------------------------------------

    def _samples_of(self, gpu: FleetGpu, fetched: Fetched) -> Samples:
        source = fetched.counters if gpu.has_counter else fetched.powers
        return source.get(gpu.key, [])

    def _waiting(self, fetched: Fetched, end_unix_s: float) -> tuple[list[FleetGpu], dict[SeriesKey, str]]:
        """GPUs still to be scraped after ``end_unix_s``, and GPUs given up on (key -> reason)."""
        lag_s = self._settings.exporter_lag_s
        newest_s = max((s[-1][0] for s in (*fetched.counters.values(), *fetched.powers.values()) if s), default=0.0)
        waiting: list[FleetGpu] = []
        gone: dict[SeriesKey, str] = {}
        for gpu in self._gpus.values():
            samples = self._samples_of(gpu, fetched)
            down = self._reader.down.get(gpu.url or "") if self._reader is not None else None
            if not samples:
                gone[gpu.key] = "no samples around the window (series absent)"
                continue
            last_s = samples[-1][0]
            if last_s >= end_unix_s + lag_s:
                continue
            interval_s = (samples[-1][0] - samples[0][0]) / max(1, len(samples) - 1) if len(samples) > 1 else 0.0
            if down is not None:
                gone[gpu.key] = f"its exporter stopped answering ({down[1]})"
            elif interval_s and newest_s - last_s > STALE_INTERVALS * interval_s:
                gone[gpu.key] = (
                    f"its series stopped {end_unix_s - last_s:.2f} s before the window's end while the others "
                    "went on (exporter or node down?)"
                )
            else:
                waiting.append(gpu)
        return waiting, gone

    def _collect(self, start_unix_s: float, end_unix_s: float, wait: bool) -> tuple[Fetched, dict[SeriesKey, str]]:
        """The samples covering the window, once every live GPU has a scrape after its end (or the wait timed out)."""
        deadline_s = time.monotonic() + (self._settings.wait_timeout_s if wait else 0.0)
        while True:
            fetched = self._fetch(start_unix_s - self._settings.lookback_s)
            with self._lock:
                self._discover(fetched, start_unix_s)
                waiting, gone = self._waiting(fetched, end_unix_s)
            if not waiting:
                return fetched, gone
            if time.monotonic() >= deadline_s:
                for gpu in waiting:
                    gone[gpu.key] = (
                        f"no scrape after the window's end within metrics.dcgm.wait_timeout_s "
                        f"({self._settings.wait_timeout_s:g} s)"
                    )
                return fetched, gone
            time.sleep(0.05)

    def _span(self, gpu: FleetGpu, fetched: Fetched, start_unix_s: float, end_unix_s: float) -> Span | None:
        samples = self._samples_of(gpu, fetched)
        lag_s = self._settings.exporter_lag_s
        if gpu.has_counter:
            return counter_span(samples, start_unix_s, end_unix_s, lag_s)
        return power_span(samples, start_unix_s, end_unix_s, lag_s)

    def _measure(self, name: str, start: _Edge, end: _Edge, wait: bool) -> tuple[list[EnergyReading], list[str]]:
        """Readings of the GPUs counted over ``start``-``end`` and the reasons of those not counted; the window's
        per-node summary is kept for :meth:`describe`."""
        fetched, gone = self._collect(start.unix_s, end.unix_s, wait)
        duration_s = end.unix_s - start.unix_s
        readings: list[EnergyReading] = []
        problems: list[str] = []
        nodes: dict[str, float] = {}
        intervals: list[float] = []
        for gpu in sorted(self._gpus.values(), key=lambda g: (g.node, g.index, g.gpu_id)):
            span = None if gpu.key in gone else self._span(gpu, fetched, start.unix_s, end.unix_s)
            if span is None:
                reason = gone.get(gpu.key, "no sample before the window's start (series appeared during the window)")
                problems.append(f"{gpu.device} not counted: {reason}; its energy for the window is unknown, not zero")
                continue
            intervals.append(span.scrape_interval_s)
            notes = [f"node {gpu.node}, GPU {gpu.index} {gpu.model}".rstrip()]
            if span.resets:
                notes.append(f"{span.resets} counter reset(s): energy after each counted from the new value")
            short = duration_s < self._settings.min_window_scrapes * span.scrape_interval_s
            if short:
                notes.append(
                    f"window shorter than {self._settings.min_window_scrapes} scrape intervals "
                    f"({span.scrape_interval_s:.3g} s): wide bounds"
                )
            source = gpu.source(span, duration_s)
            readings.append(
                EnergyReading(
                    gpu.device, span.energy_j, source, self.name, "; ".join(notes), lower_j=span.lower_j,
                    upper_j=span.upper_j, start_s=start.perf_s, end_s=end.perf_s,
                )
            )  # fmt: skip
            nodes[gpu.node] = nodes.get(gpu.node, 0.0) + span.energy_j
        interval_s = max(intervals) if intervals else None
        self._windows.append(
            {
                "window": name,
                "duration_s": duration_s,
                "scrape_interval_s": interval_s,
                "short_window": bool(interval_s and duration_s < self._settings.min_window_scrapes * interval_s),
                "energy_j_per_node": nodes,
                "energy_j": sum(nodes.values()),
                "lower_j": sum(r.lower_j or 0.0 for r in readings),
                "upper_j": sum(r.upper_j or 0.0 for r in readings),
                "counted": [r.device for r in readings],
                "not_counted": problems,
            }
        )
        return readings, problems

    def _readings(self, start: _Edge, end: _Edge) -> list[EnergyReading]:
        name = f"window-{len(self._windows)}"
        readings, problems = self._measure(name, start, end, wait=True)
        if problems:
            raise IncompleteWindowError("dcgm meter: " + "; ".join(problems), readings, None, end.perf_s)
        return readings

    def stop_window(self, name: str) -> tuple[list[EnergyReading], float | None]:
        """Close window ``name``: waits for the first scrape after it (see the module docstring)."""
        count = len(self._windows)
        try:
            return super().stop_window(name)
        finally:
            if len(self._windows) > count:
                self._windows[-1]["window"] = name

    # -- past intervals ----------------------------------------------------------------------------------------------

    def energy_between(self, start_s: float, end_s: float) -> list[IntervalReading]:
        """Each GPU's energy between two ``time.perf_counter()`` instants from the samples already scraped."""
        if not self._prepared or end_s <= start_s:
            return []
        start = _Edge(start_s, start_s + self._unix_minus_perf)
        end = _Edge(end_s, end_s + self._unix_minus_perf)
        readings, _ = self._measure(f"interval {start_s:.3f}-{end_s:.3f}", start, end, wait=False)
        self._windows.pop()
        return [
            IntervalReading(
                r.device, r.energy_j, r.source, r.meter, r.note, lower_j=r.lower_j or 0.0, upper_j=r.upper_j or 0.0
            )
            for r in readings
        ]

    # -- description and shutdown ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Mode, selector, the GPUs found per node, and per window the energy per node, counted and not counted."""
        from ai_energy_benchmarks.config.redact import redact_url

        return {
            "mode": "prometheus" if self._api is not None else "exporters",
            "prometheus_url": redact_url(self._settings.prometheus_url) if self._settings.prometheus_url else None,
            "exporter_urls": [redact_url(u) for u in self._settings.exporter_urls],
            "selector": self._selector.text,
            "metrics": {"energy": f"{COUNTER_METRIC} (mJ)", "fallback_power": f"{POWER_METRIC} (W)"},
            "exporter_lag_s": self._settings.exporter_lag_s,
            # The scrape interval seen: a window much shorter than it is mostly interpolation (flagged).
            "update_period_s": max((w["scrape_interval_s"] or 0.0 for w in self._windows), default=None) or None,
            "nodes": self._nodes(),
            "nodes_not_selected": sorted(self._seen_nodes - set(self._nodes())),
            "gpus": [gpu.described() for gpu in sorted(self._gpus.values(), key=lambda g: (g.node, g.index, g.gpu_id))],
            "duplicate_series_ignored": sorted(set(self._duplicates.values())),
            "windows": list(self._windows),
            "includes": "the selected GPUs' energy as DCGM reports it (board power), per GPU, node and in total",
            "excludes": NOT_COUNTED,
        }

    def close(self) -> None:
        """Stop polling the exporters (direct mode)."""
        self._stop_polling()
        self._drop_open_windows()
        self._prepared = False
