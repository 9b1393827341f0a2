"""NVML meter: NVIDIA GPU energy from the driver's cumulative energy counter, power polling as a labelled fallback.

The GPU meter (:mod:`ai_energy_benchmarks.energy.gpu`) over the NVML adapter
(:mod:`ai_energy_benchmarks.energy.devices.nvml`): per selected GPU, a window's energy is the difference of
``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded) between the window's edges
(``measured:nvml-energy-counter``); GPUs without that counter (pre-Volta, many vGPUs) are estimated by polling
``nvmlDeviceGetPowerUsage`` at jittered intervals averaging ``metrics.nvml.poll_interval_s`` and integrating
(``estimated:nvml-power-integrated``, with bounds). The poller also writes ``<output_dir>/timeline.csv``.

The bindings are nvidia-ml-py (module ``pynvml``), imported only when the meter is prepared.
"""

from __future__ import annotations

from pathlib import Path

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.clock import SYSTEM_CLOCK, Clock
from ai_energy_benchmarks.energy.devices.nvml import NVML_COUNTER_MODULUS_MJ, MissingBindingsError, NvmlLibrary
from ai_energy_benchmarks.energy.gpu import SAMPLING_BOUND_SIGMAS, TIMELINE_COLUMNS, TIMELINE_FILE, GpuMeter

__all__ = [
    "COUNTER_SOURCE",
    "NVML_COUNTER_MODULUS_MJ",
    "POLLED_SOURCE",
    "SAMPLING_BOUND_SIGMAS",
    "TIMELINE_COLUMNS",
    "TIMELINE_FILE",
    "MissingBindingsError",
    "NvmlMeter",
]

COUNTER_SOURCE = "measured:nvml-energy-counter"
#: Polled power is an estimate: the power between samples is not read, and NVML's reading is itself an average.
POLLED_SOURCE = "estimated:nvml-power-integrated"


class NvmlMeter(GpuMeter):
    """Energy of the selected NVIDIA GPUs through NVML, one ``gpu:N`` reading per GPU and window."""

    name = "nvml"

    def __init__(
        self,
        config: MetricsConfig,
        output_dir: Path,
        gpu_ids: list[int] | None = None,
        *,
        counter_modulus_mj: int = NVML_COUNTER_MODULUS_MJ,
        poll_seed: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``counter_modulus_mj``: where the energy counter wraps (NVML: 2^64 mJ; tests of a simulated short counter
        may set less). ``poll_seed`` seeds the random polling intervals (None: a fresh seed). ``clock`` times every
        read (a test passes the clock its simulated GPUs run on)."""
        if counter_modulus_mj <= 0:
            raise ValueError("counter_modulus_mj must be positive")
        modulus_mj = int(counter_modulus_mj)
        super().__init__(
            config,
            output_dir,
            gpu_ids,
            library=lambda: NvmlLibrary(modulus_mj),
            counter_source=COUNTER_SOURCE,
            polled_source=POLLED_SOURCE,
            poll_interval_s=config.nvml.poll_interval_s,
            poll_seed=poll_seed,
            clock=clock,
        )
