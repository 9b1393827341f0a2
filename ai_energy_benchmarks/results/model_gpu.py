"""The ``gpu_control`` block of the typed result: the power limit and SM clock lock a run set (``gpu:`` in the
config), per GPU the original, requested and enforced values. Present only in runs that set them."""

from __future__ import annotations

from pydantic import Field

from ai_energy_benchmarks.results.model_blocks import Number, ResultBlock


class ControlledGpu(ResultBlock):
    """One GPU's settings during the run (W, MHz)."""

    index: int | None = Field(None, description="the vendor library's index of the GPU")
    uuid: str | None = None
    name: str | None = None
    matched_by: str | None = Field(None, description="how the run's device ordinal was matched to it")
    original_power_limit_w: Number | None = Field(None, description="the limit before the run (restored after it)")
    power_limit_range_w: list[Number] | None = Field(None, description="[lowest, highest] limit the GPU accepts")
    requested_power_limit_w: Number | None = Field(None, description="gpu.power_limit_w")
    enforced_power_limit_w: Number | None = Field(None, description="the limit the GPU enforced, read back")
    original_sm_clock_mhz: Number | None = Field(None, description="the SM clock before the lock")
    requested_sm_clock_mhz: list[int] | None = Field(None, description="[min, max] SM clock lock asked for")
    sm_clock_mhz: Number | None = Field(None, description="the SM clock read back after the lock")


class GpuControl(ResultBlock):
    """``gpu_control``: what the run set on its GPUs; the originals were put back when it ended."""

    vendor: str | None = Field(None, description="NVML or AMD SMI")
    restore_records: str | None = Field(None, description="the state directory of the restore records")
    gpus: list[ControlledGpu] = Field(default_factory=list)


def gpu_control_lines(block: GpuControl | None) -> list[str]:
    """The console summary's lines for the block: per GPU what was asked for, enforced, and set before."""
    if block is None:
        return []
    lines = []
    for gpu in block.gpus:
        parts = []
        if gpu.requested_power_limit_w is not None:
            parts.append(
                f"power limit {gpu.requested_power_limit_w:g} W requested, {gpu.enforced_power_limit_w:g} W enforced"
                f" ({gpu.original_power_limit_w:g} W before)"
            )
        if gpu.requested_sm_clock_mhz:
            low, high = gpu.requested_sm_clock_mhz
            parts.append(f"SM clock locked to {low}-{high} MHz (read back {gpu.sm_clock_mhz:g} MHz)")
        lines.append(f"  gpu setting   {block.vendor} GPU {gpu.index}: " + "; ".join(parts))
    return lines


__all__ = ["ControlledGpu", "GpuControl", "gpu_control_lines"]
