"""The fleet as the DCGM meter (:mod:`ai_energy_benchmarks.energy.dcgm`) finds it in the exporters' series: the
metric names it reads, the source labels it gives, one GPU found in the series (node, UUID, model, whether it has
an energy counter) and the samples one fetch returned.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.energy.dcgm_series import Samples, Span
from ai_energy_benchmarks.energy.prometheus_query import SeriesKey

__all__ = [
    "COUNTER_METRIC",
    "COUNTER_SOURCE",
    "INTERPOLATED_SOURCE",
    "POWER_METRIC",
    "POWER_SOURCE",
    "RESET_SOURCE",
    "Fetched",
    "FleetGpu",
]

COUNTER_METRIC = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
POWER_METRIC = "DCGM_FI_DEV_POWER_USAGE"
COUNTER_SOURCE = "measured:dcgm-energy-counter"
POWER_SOURCE = "estimated:dcgm-power-samples"
RESET_SOURCE = "estimated:dcgm-energy-counter-reset"
INTERPOLATED_SOURCE = "estimated:dcgm-interpolated-counter"


@dataclass
class FleetGpu:
    """One GPU of the fleet: its series key, node (``Hostname`` label), id (``UUID``), model and DCGM index."""

    key: SeriesKey
    node: str
    gpu_id: str
    model: str
    index: str
    has_counter: bool
    url: str | None = None

    @property
    def device(self) -> str:
        return f"gpu:{self.node}/{self.gpu_id}"

    @classmethod
    def from_labels(cls, key: SeriesKey, labels: dict[str, str], has_counter: bool, url: str | None) -> FleetGpu:
        """The GPU of series ``key`` with ``labels`` (the node from ``Hostname``, else ``instance``, else the host
        of the exporter's ``url``)."""
        host = labels.get("Hostname") or labels.get("instance") or urllib.parse.urlsplit(url or "").hostname
        return cls(
            key,
            host or "unknown",
            labels.get("UUID") or f"gpu{labels.get('gpu', '?')}",
            labels.get("modelName", ""),
            labels.get("gpu", ""),
            has_counter,
            url,
        )

    def source(self, span: Span, duration_s: float) -> str:
        """The label of this GPU's figure over a window of ``duration_s`` (s) read as ``span``."""
        if not self.has_counter:
            return POWER_SOURCE
        if span.resets:
            return RESET_SOURCE
        return COUNTER_SOURCE if span.inside_s >= 0.5 * duration_s else INTERPOLATED_SOURCE

    def described(self) -> dict[str, Any]:
        """This GPU as the meter's description lists it."""
        return {
            "device": self.device,
            "node": self.node,
            "gpu": self.index,
            "uuid": self.gpu_id,
            "model": self.model,
            "energy_counter": self.has_counter,
            "source": COUNTER_SOURCE if self.has_counter else POWER_SOURCE,
        }


@dataclass
class Fetched:
    """The samples of every selected series from one fetch (counters in mJ, powers in W), and their labels."""

    counters: dict[SeriesKey, Samples] = field(default_factory=dict)
    powers: dict[SeriesKey, Samples] = field(default_factory=dict)
    labels: dict[SeriesKey, dict[str, str]] = field(default_factory=dict)
