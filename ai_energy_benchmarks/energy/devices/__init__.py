"""The vendor layer: one adapter per GPU management library (NVML, AMD SMI) behind one device protocol."""

from ai_energy_benchmarks.energy.devices.base import DeviceError, GpuDevice, GpuLibrary

__all__ = ["DeviceError", "GpuDevice", "GpuLibrary"]
