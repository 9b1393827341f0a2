"""The result's ``hardware`` block (schema 1.3): the steady-hardware waits before and between the measured passes,
and each window's GPU temperature range and throttling (:mod:`ai_energy_benchmarks.steady_hardware`). Present only
when a GPU meter (``nvml``, ``amdsmi``) ran. Temperatures °C, power W, durations s; fractions are of the samples
whose throttle state was known (0-1).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ai_energy_benchmarks.results.model_blocks import Number, ResultBlock

_THROTTLE = "throttled | not-throttled | unknown (the device could not say, or no sample fell in the window)"


class ThrottleSummary(ResultBlock):
    """One GPU's samples over one window."""

    samples: int = Field(0, description="poller samples inside the window")
    temperature_min_c: Number | None = None
    temperature_max_c: Number | None = None
    throttle: str | None = Field(None, description=_THROTTLE)
    throttled_fraction: Number | None = Field(None, description="share of known samples with a throttle reason")
    reasons: dict[str, Number] = Field(
        default_factory=dict,
        description="share of samples per kind: thermal, power_cap, hw_slowdown, power_brake, current_limit, other, "
        "unspecified",
    )
    vendor_reasons: dict[str, Number] = Field(default_factory=dict, description="share of samples per vendor reason")
    unknown_samples: int = Field(0, description="samples whose throttle state the device could not give")


class HardwareWindow(ResultBlock):
    """One window (idle, prefill, generate): every metered GPU's samples together, and each GPU's."""

    window: str | None = None
    kind: str | None = None
    repetition: int | None = None
    samples: int = 0
    temperature_min_c: Number | None = None
    temperature_max_c: Number | None = None
    throttle: str | None = Field(None, description=_THROTTLE)
    throttled_fraction: Number | None = None
    reasons: dict[str, Number] = Field(default_factory=dict)
    vendor_reasons: dict[str, Number] = Field(default_factory=dict)
    unknown_samples: int = 0
    gpus: dict[str, ThrottleSummary] = Field(default_factory=dict, description="by device label, gpu:N")


class HardwareWait(ResultBlock):
    """A wait outside the measured windows: for steady GPUs, or a cooldown before a repetition."""

    kind: str | None = Field(None, description="steady | cooldown")
    before: str | None = Field(None, description="what came next: idle (the baseline, then the passes) or a window")
    duration_s: Number | None = None
    reached: bool | None = Field(None, description="false: max_wait_s ran out and the run went on")
    temperature_c: dict[str, Number | None] = Field(default_factory=dict, description="each GPU's at the end")
    power_w: dict[str, Number | None] = Field(default_factory=dict, description="each GPU's at the end")
    target: str | None = Field(None, description="cooldowns: baseline or fixed")
    baseline_c: dict[str, Number] | None = Field(None, description="baseline cooldowns: the steady temperatures")


class Hardware(ResultBlock):
    """Steady hardware and throttling (``hardware``)."""

    steady_wait: str | None = Field(None, description="on | off (steady_hardware.enabled, or no GPU meter)")
    settings: dict[str, Any] | None = Field(None, description="the steady_hardware section, when on")
    waits: list[HardwareWait] = Field(default_factory=list)
    throttle: str | None = Field(None, description="over the measured windows: " + _THROTTLE)
    throttled_windows: list[str] = Field(default_factory=list, description="measured windows the GPUs throttled in")
    windows: list[HardwareWindow] = Field(default_factory=list)


__all__ = ["Hardware", "HardwareWait", "HardwareWindow", "ThrottleSummary"]
