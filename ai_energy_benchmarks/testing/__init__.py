"""Test helpers shipped with the package: simulated hardware for checking meters against ground truth.

Nothing here is imported by the library itself; tests (ours, and those of projects that build on us) use it to
stand in for hardware this machine may not have.
"""

from ai_energy_benchmarks.testing.clock import SimulatedClock
from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi
from ai_energy_benchmarks.testing.fake_nvml import (
    FakeGpu,
    FakeNvml,
    PiecewiseLinearTrace,
    constant_trace,
    ramp_trace,
    step_trace,
    write_fake_nvidia_smi,
)
from ai_energy_benchmarks.testing.fake_powercap import FakePowercap

__all__ = [
    "FakeAmdGpu",
    "FakeAmdSmi",
    "FakeGpu",
    "FakeNvml",
    "FakePowercap",
    "PiecewiseLinearTrace",
    "SimulatedClock",
    "constant_trace",
    "ramp_trace",
    "step_trace",
    "write_fake_nvidia_smi",
]
