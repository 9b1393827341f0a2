"""``steady_hardware``: wait for the GPUs to settle before measuring, and let them cool between repetitions.

Only the configuration lives here; the waiting is :mod:`ai_energy_benchmarks.steady`, which reads the temperature
and power the GPU meters (``nvml``, ``amdsmi``) already poll. Temperatures in °C, power in W, times in s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ai_energy_benchmarks.config.coerce import Section


class SteadyHardwareConfig(Section):
    """Steady hardware: before the idle baseline and the measured passes, wait until every metered GPU's
    temperature and power have stayed within a tolerance for `window_s`; between repetitions, let the GPUs cool
    back down. Waits happen outside every measured window and are recorded in the result's `hardware` block."""

    enabled: bool | Literal["auto"] = Field(
        "auto",
        description="`auto`: on when a GPU meter (`nvml`, `amdsmi`) is active, off otherwise (CPU-only hosts, "
        "CodeCarbon alone); `true`/`false` force it.",
    )
    temperature_tolerance_c: float = Field(
        1.0, gt=0, description="Steady when each GPU's temperature varied by at most this much (°C) over `window_s`."
    )
    power_tolerance_w: float = Field(
        5.0, gt=0, description="... and its power by at most this much (W) over `window_s` (idle power is stable)."
    )
    window_s: float = Field(10.0, gt=0, description="The span (s) over which temperature and power must stay steady.")
    min_wait_s: float = Field(0.0, ge=0, description="Wait at least this long (s), steady or not.")
    max_wait_s: float = Field(
        300.0,
        gt=0,
        description="Give up after this long (s): the run goes on, warns 'not steady after X s' and records it.",
    )
    cooldown: Literal["baseline", "fixed", "none"] = Field(
        "baseline",
        description="Between repetitions (and after the warm-up): `baseline` waits until each GPU's temperature "
        "is back within `temperature_tolerance_c` of the steady temperature reached before the run (at most "
        "`max_wait_s`); `fixed` waits `cooldown_s`; `none` does not wait.",
    )
    cooldown_s: float = Field(30.0, ge=0, description="`cooldown: fixed`: how long (s) to wait.")

    @model_validator(mode="after")
    def _waits_in_order(self) -> SteadyHardwareConfig:
        if self.min_wait_s > self.max_wait_s:
            raise ValueError(f"min_wait_s ({self.min_wait_s:g}) is above max_wait_s ({self.max_wait_s:g})")
        return self


__all__ = ["SteadyHardwareConfig"]
