"""Reading DCGM series: Prometheus's HTTP API (raw samples of a range vector) and exporters' ``/metrics`` text.

Both give the same thing: per series (a label set without ``__name__``), samples ``(time_s, value)`` where
``time_s`` is Unix seconds. Prometheus's samples carry the scrape's own timestamp; an exporter read directly gives
its explicit timestamp when the exposition has one, else the midpoint of the HTTP read.

Label selectors (``{Hostname=~"node-[12]", namespace="llm"}``) are passed to Prometheus as they are, and applied
here to directly read exporters (the four PromQL matchers ``=``, ``!=``, ``=~``, ``!~``; regexes fully anchored as
in PromQL).
"""

from __future__ import annotations

import math
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ai_energy_benchmarks.exceptions import ConfigError, MeterError

#: A series' identity: its labels without ``__name__``, sorted.
SeriesKey = tuple[tuple[str, str], ...]
Samples = list[tuple[float, float]]

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def series_key(labels: Mapping[str, str]) -> SeriesKey:
    """The identity of a series with ``labels`` (``__name__`` left out)."""
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


@dataclass(frozen=True)
class Selector:
    """PromQL label matchers, as text (for Prometheus) and as predicates (for exporters read directly)."""

    text: str
    matchers: tuple[tuple[str, str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse ``{label op "value", ...}`` (empty: everything); a malformed selector is a ConfigError."""
        body = text.strip()
        if not body:
            return cls("", ())
        if not (body.startswith("{") and body.endswith("}")):
            raise ConfigError(f"metrics.dcgm.selector: expected label matchers in braces, got {text!r}")
        inner, matchers, position = body[1:-1].strip(), [], 0
        while position < len(inner):
            match = _MATCHER.match(inner, position)
            if match is None:
                raise ConfigError(
                    f'metrics.dcgm.selector: cannot read {inner[position:]!r} (expected label="value", '
                    'label!="value", label=~"regex" or label!~"regex")'
                )
            name, op, raw = match.groups()
            value = raw.encode("utf-8").decode("unicode_escape")
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ConfigError(f"metrics.dcgm.selector: bad regex for {name}: {exc}") from exc
            matchers.append((name, op, value))
            position = match.end()
        return cls(body, tuple(matchers))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with ``labels`` is selected (a missing label reads as the empty string, as in PromQL)."""
        for name, op, value in self.matchers:
            have = labels.get(name, "")
            if op == "=" and have != value:
                return False
            if op == "!=" and have == value:
                return False
            if op == "=~" and re.fullmatch(value, have) is None:
                return False
            if op == "!~" and re.fullmatch(value, have) is not None:
                return False
        return True

    def of(self, metric: str) -> str:
        """The PromQL instant-vector selector of ``metric`` with these matchers."""
        return metric + (self.text or "")


class PrometheusApi:
    """The few calls of Prometheus's HTTP API the fleet meter needs (``requests``, JSON answers)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s

    def _query(self, query: str, at_s: float) -> list[dict[str, Any]]:
        import requests

        try:
            response = requests.get(
                f"{self.url}/api/v1/query", params={"query": query, "time": f"{at_s:.3f}"}, timeout=self._timeout_s
            )
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise MeterError(f"Prometheus at {self.url} did not answer the query {query!r}: {exc}") from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise MeterError(
                f"Prometheus at {self.url} refused the query {query!r}: HTTP {response.status_code} "
                f"{body.get('errorType', '')} {body.get('error', '')}".rstrip()
            )
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def latest(self, selector: str, at_s: float) -> dict[SeriesKey, dict[str, str]]:
        """The series an instant query of ``selector`` returns at ``at_s``: key -> labels."""
        return {series_key(item["metric"]): dict(item["metric"]) for item in self._query(selector, at_s)}

    def samples(self, selector: str, start_s: float, end_s: float) -> dict[SeriesKey, tuple[dict[str, str], Samples]]:
        """Every raw sample of ``selector``'s series between ``start_s`` and ``end_s`` (Unix s), with its own
        timestamp: a range-vector selector ``selector[Nms]`` evaluated at ``end_s``."""
        range_ms = max(1, math.ceil((end_s - start_s) * 1000.0))
        found: dict[SeriesKey, tuple[dict[str, str], Samples]] = {}
        for item in self._query(f"{selector}[{range_ms}ms]", end_s):
            values = [(float(t), float(v)) for t, v in item.get("values", [])]
            found[series_key(item["metric"])] = (dict(item["metric"]), values)
        return found


def read_exporter(
    url: str, timeout_s: float, wanted: set[str], clock: Callable[[], float] = time.time
) -> list[tuple[str, dict[str, str], float, float]]:
    """The samples of the ``wanted`` metrics on one exporter's ``/metrics``: ``(name, labels, time_s, value)``.

    Parsed with ``prometheus_client``'s parser; ``time_s`` is the sample's explicit timestamp, or the midpoint of
    the read (Unix s) when the exposition gives none.
    """
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    before_s = clock()
    try:
        response = requests.get(url, timeout=timeout_s)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise MeterError(f"DCGM exporter {url} did not answer: {exc}") from exc
    read_s = (before_s + clock()) / 2.0
    found: list[tuple[str, dict[str, str], float, float]] = []
    try:
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name in wanted and not math.isnan(sample.value):
                    stamp = float(sample.timestamp) if sample.timestamp is not None else read_s
                    found.append((sample.name, dict(sample.labels), stamp, float(sample.value)))
    except ValueError as exc:
        raise MeterError(f"DCGM exporter {url}: cannot parse its /metrics: {exc}") from exc
    return found


#: Samples kept per series by :class:`ExporterReader` (at 1 s polls, more than two days).
MAX_SAMPLES_PER_SERIES = 200_000


class ExporterReader:
    """Exporters' ``/metrics`` read directly (no Prometheus): the selected series' samples of ``metrics`` kept per
    metric and series; an exporter that fails to answer is noted as down until it answers again. Thread-safe."""

    def __init__(self, urls: list[str], timeout_s: float, metrics: tuple[str, ...], selector: Selector) -> None:
        self.urls = list(urls)
        self._timeout_s = timeout_s
        self._selector = selector
        self._lock = threading.Lock()
        self._samples: dict[str, dict[SeriesKey, Samples]] = {metric: {} for metric in metrics}
        self._labels: dict[SeriesKey, tuple[str, dict[str, str]]] = {}
        #: url -> (Unix s of the first failure, the error), while it fails.
        self.down: dict[str, tuple[float, str]] = {}
        #: Every node (``Hostname``, else the exporter's host) the exporters report, selected or not.
        self.seen_nodes: set[str] = set()

    def read(self) -> None:
        """Read every exporter now."""
        for url in self.urls:
            try:
                found = read_exporter(url, self._timeout_s, set(self._samples))
            except MeterError as exc:
                with self._lock:
                    self.down.setdefault(url, (time.time(), str(exc)))
                continue
            with self._lock:
                self.down.pop(url, None)
                for metric, labels, time_s, value in found:
                    self.seen_nodes.add(labels.get("Hostname") or urllib.parse.urlsplit(url).hostname or "unknown")
                    if not self._selector.matches(labels):
                        continue
                    key = series_key(labels)
                    self._labels[key] = (url, labels)
                    samples = self._samples[metric].setdefault(key, [])
                    if not samples or time_s > samples[-1][0]:
                        samples.append((time_s, value))
                        if len(samples) > MAX_SAMPLES_PER_SERIES:
                            del samples[: len(samples) // 2]

    def since(self, start_s: float) -> tuple[dict[str, dict[SeriesKey, Samples]], dict[SeriesKey, dict[str, str]]]:
        """Per metric and series, the samples from ``start_s`` (Unix s) on; and each series' labels."""
        with self._lock:
            samples = {
                metric: {key: [s for s in values if s[0] >= start_s] for key, values in series.items()}
                for metric, series in self._samples.items()
            }
            return samples, {key: labels for key, (_, labels) in self._labels.items()}

    def url_of(self, key: SeriesKey) -> str | None:
        """The exporter a series was read from."""
        with self._lock:
            return self._labels[key][0] if key in self._labels else None
