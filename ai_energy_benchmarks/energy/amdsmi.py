"""AMD SMI meter: AMD GPU energy from the driver's energy accumulator, power polling as a labelled fallback.

The GPU meter (:mod:`ai_energy_benchmarks.energy.gpu`) over the AMD SMI adapter
(:mod:`ai_energy_benchmarks.energy.devices.amdsmi`): the same counter, polling, record and timeline logic as the NVML
meter, with AMD's counter resolution (µJ per tick) and wraparound. Each die or partition AMD SMI lists (MI250X's two
GCDs, an MI300X partition) is one ``gpu:N`` device, numbered as AMD SMI numbers them.
"""

from __future__ import annotations

from pathlib import Path

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.clock import SYSTEM_CLOCK, Clock
from ai_energy_benchmarks.energy.devices.amdsmi import AMDSMI_COUNTER_MODULUS, AmdSmiLibrary
from ai_energy_benchmarks.energy.gpu import GpuMeter

__all__ = ["COUNTER_SOURCE", "POLLED_SOURCE", "AmdSmiMeter"]

COUNTER_SOURCE = "measured:amdsmi-energy-counter"
POLLED_SOURCE = "estimated:amdsmi-power-integrated"


class AmdSmiMeter(GpuMeter):
    """Energy of the selected AMD GPUs through AMD SMI, one ``gpu:N`` reading per GPU (die) and window."""

    name = "amdsmi"

    def __init__(
        self,
        config: MetricsConfig,
        output_dir: Path,
        gpu_ids: list[int] | None = None,
        *,
        counter_modulus: int = AMDSMI_COUNTER_MODULUS,
        poll_seed: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``counter_modulus``: where the accumulator wraps, in ticks (2^64 as AMD SMI returns it; a part whose
        firmware counter is narrower may set it). ``poll_seed`` and ``clock`` as for the NVML meter."""
        if counter_modulus <= 0:
            raise ValueError("counter_modulus must be positive")
        modulus = int(counter_modulus)
        super().__init__(
            config,
            output_dir,
            gpu_ids,
            library=lambda: AmdSmiLibrary(modulus),
            counter_source=COUNTER_SOURCE,
            polled_source=POLLED_SOURCE,
            poll_interval_s=config.amdsmi.poll_interval_s,
            poll_seed=poll_seed,
            clock=clock,
        )
