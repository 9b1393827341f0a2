"""The vendor layer: what the GPU meter (:mod:`ai_energy_benchmarks.energy.gpu`) needs from a GPU and its library.

An adapter (``devices/nvml.py``, ``devices/amdsmi.py``) turns a vendor's management library into a
:class:`GpuLibrary` of :class:`GpuDevice`; the counter, polling, record and timeline logic is written once, above it.
Units: energy counters in the device's own ticks (``counter_resolution_mj`` millijoules each, wrapping at
``counter_modulus`` ticks), power in W, clocks in MHz, temperatures in °C, utilisation in percent.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

# How a read failed (DeviceError.kind).
NOT_SUPPORTED = "not-supported"
NO_PERMISSION = "no-permission"
FAILED = "failed"


class DeviceError(Exception):
    """A device read failed; ``kind`` is :data:`NOT_SUPPORTED`, :data:`NO_PERMISSION` or :data:`FAILED`."""

    def __init__(self, message: str, kind: str = FAILED) -> None:
        super().__init__(message)
        self.kind = kind


@runtime_checkable
class GpuDevice(Protocol):
    """One GPU (or one die of a multi-die part, as the vendor library lists it)."""

    #: The library's index of the device (the meter's ``gpu:N`` label).
    index: int
    name: str
    uuid: str
    #: PCI bus id ("" when the library does not say).
    bus_id: str
    #: Millijoules per counter tick, and the tick count at which the counter wraps to 0.
    counter_resolution_mj: float
    counter_modulus: int

    def energy_counter(self) -> int:
        """The cumulative energy counter (ticks); :class:`DeviceError` (``NOT_SUPPORTED`` when it has none)."""

    def power_w(self) -> float:
        """The power the meter integrates without a counter (W): instantaneous where the device gives it."""

    def average_power_w(self) -> float | None:
        """The device's own averaged power (W), None when it gives none apart from :meth:`power_w`."""

    def power_limit_w(self) -> float | None:
        """The enforced power limit (W), None when unknown."""

    def clocks_mhz(self) -> tuple[float | None, float | None]:
        """(compute clock, memory clock) in MHz; None for a clock it does not report."""

    def temperature_c(self) -> float | None:
        """The GPU temperature (°C)."""

    def utilization_pct(self) -> float | None:
        """How busy the GPU was over its last sample period (%)."""

    def throttle_reasons(self) -> list[str] | None:
        """Why the clocks are held down now (vendor names; empty when nothing holds them); None when the device
        cannot say (no such query, or it failed): unknown, never "not throttled"."""

    def process_ids(self) -> set[int]:
        """The PIDs of the processes with a context on the device (compute and graphics); :class:`DeviceError`
        (``NOT_SUPPORTED``) when the library cannot list them."""


class GpuLibrary(Protocol):
    """A vendor's management library, opened once per meter."""

    #: The library's name in messages ("NVML", "AMD SMI").
    vendor: str
    #: The Python bindings, for the report ("nvidia-ml-py (pynvml)").
    bindings: str
    #: What the reading of :meth:`GpuDevice.power_w` is, for the note of a polled (estimated) figure.
    power_note: str
    #: How to grant access when a read is refused.
    permission_hint: str
    #: The environment variables that renumber the runtime's devices, outermost first (``CUDA_VISIBLE_DEVICES``).
    visible_devices_variables: tuple[str, ...]

    def open(self) -> None:
        """Initialise the library; raise :class:`~ai_energy_benchmarks.exceptions.MeterError` saying why not."""

    def close(self) -> None:
        """Shut the library down (errors are logged, not raised)."""

    def driver_version(self) -> str:
        """The driver's version ("unknown" when it does not say)."""

    def count(self) -> int:
        """How many devices the library lists."""

    def device(self, index: int) -> GpuDevice:
        """Device ``index`` (0 <= index < :meth:`count`)."""
