"""Energy meters: windows in, readings (joules per device, labelled with their source) out."""

from ai_energy_benchmarks.energy.base import EnergyMeter, EnergyReading, MeterSet, WindowMeasurement
from ai_energy_benchmarks.energy.registry import create_meters, register_meter

__all__ = [
    "EnergyMeter",
    "EnergyReading",
    "MeterSet",
    "WindowMeasurement",
    "create_meters",
    "register_meter",
]
