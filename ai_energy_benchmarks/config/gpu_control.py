"""``gpu``: the power limit and SM clock lock a run sets on the GPUs it uses, and always restores.

Absent (the default), a run changes nothing on its GPUs. With it, the run reads each GPU's current settings, checks
the requested values against what the GPU accepts, sets them before anything is measured, records the requested and
the enforced values in the report (``gpu_control``), and restores the original values when it ends (also on an error,
SIGINT or SIGTERM). Setting needs root or CAP_SYS_ADMIN. A sweep over these keys is an ordinary sweep::

    ai-energy-benchmark sweep --config my.yaml --param gpu.power_limit_w=300,400,500
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ai_energy_benchmarks.config.coerce import Section


class GpuControlConfig(Section):
    """Power limit (W) and SM clock lock (MHz) applied to every GPU the run uses, restored at its end."""

    power_limit_w: float | None = Field(
        None, gt=0, description="Power limit per GPU in W (within the GPU's own minimum and maximum)."
    )
    sm_clock_mhz: int | None = Field(
        None, gt=0, description="Lock the SM (graphics) clock at this frequency in MHz (min = max). NVIDIA only."
    )
    sm_clock_min_mhz: int | None = Field(
        None, gt=0, description="Lock the SM clock to a range: its lower end in MHz (with `sm_clock_max_mhz`)."
    )
    sm_clock_max_mhz: int | None = Field(
        None, gt=0, description="Lock the SM clock to a range: its upper end in MHz (with `sm_clock_min_mhz`)."
    )
    vendor: Literal["auto", "nvml", "amdsmi"] = Field(
        "auto", description="Library that sets them: `nvml` (NVIDIA), `amdsmi` (AMD), or `auto` (the one present)."
    )
    state_dir: str | None = Field(
        None,
        description="Where restore records are kept (one file per GPU, written before anything is changed) "
        "[$AIEB_STATE_DIR, else $XDG_STATE_HOME/ai_energy_benchmarks, else ~/.local/state/ai_energy_benchmarks].",
    )

    @model_validator(mode="after")
    def _clock_range(self) -> GpuControlConfig:
        low, high = self.sm_clock_min_mhz, self.sm_clock_max_mhz
        if self.sm_clock_mhz is not None and (low is not None or high is not None):
            raise ValueError("give either sm_clock_mhz or sm_clock_min_mhz/sm_clock_max_mhz, not both")
        if (low is None) != (high is None):
            raise ValueError("sm_clock_min_mhz and sm_clock_max_mhz go together")
        if low is not None and high is not None and low > high:
            raise ValueError(f"sm_clock_min_mhz ({low}) is above sm_clock_max_mhz ({high})")
        return self

    @property
    def sm_clock_range_mhz(self) -> tuple[int, int] | None:
        """The SM clock lock as (min, max) MHz, None when no lock is asked for."""
        if self.sm_clock_mhz is not None:
            return self.sm_clock_mhz, self.sm_clock_mhz
        if self.sm_clock_min_mhz is not None and self.sm_clock_max_mhz is not None:
            return self.sm_clock_min_mhz, self.sm_clock_max_mhz
        return None

    @property
    def changes_anything(self) -> bool:
        """True when a power limit or a clock lock is asked for."""
        return self.power_limit_w is not None or self.sm_clock_range_mhz is not None


__all__ = ["GpuControlConfig"]
