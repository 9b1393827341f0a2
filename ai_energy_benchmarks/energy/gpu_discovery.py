"""Which GPUs the GPU meter (:mod:`ai_energy_benchmarks.energy.gpu`) reads, and who they are.

The requested device ordinals (or a local server's processes) are matched to the vendor library's GPUs, each
selected GPU's energy counter is probed, and the selection is described for the report: how it was made, and per
GPU its name, UUID, bus id, how it was matched, power limit and whether it has a counter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ai_energy_benchmarks.energy.devices.base import NO_PERMISSION, NOT_SUPPORTED, DeviceError, GpuLibrary
from ai_energy_benchmarks.energy.devices.processes import ServerProcesses, server_gpus
from ai_energy_benchmarks.energy.devices.visible import Match, match_gpus
from ai_energy_benchmarks.energy.gpu_state import GpuState
from ai_energy_benchmarks.exceptions import MeterError

# The meter's logger: its messages keep the name they had before they moved here.
logger = logging.getLogger("ai_energy_benchmarks.energy.gpu")

__all__ = [
    "check_indices",
    "gpu_identity",
    "gpu_state",
    "probe_counter",
    "requested_matches",
    "selection_text",
    "server_matches",
]


def requested_matches(library: GpuLibrary, requested: list[int] | None, visible_count: int) -> list[Match]:
    """The library's GPUs of the runtime's device ordinals ``requested`` (None: every visible GPU), matched through
    ``CUDA_VISIBLE_DEVICES`` and the like (by index or UUID)."""
    return match_gpus(
        requested,
        library.visible_devices_variables,
        visible_count,
        lambda index: library.device(index).uuid,
        library.vendor,
    )


def server_matches(
    library: GpuLibrary, server: ServerProcesses, visible_count: int, meter_name: str
) -> tuple[list[Match], bool]:
    """The GPUs ``library`` lists the server's processes on; else every visible GPU, with the reason. The flag says
    whether the server's own GPUs were found."""
    found, reason = server_gpus(library, server)
    if found:
        return found, True
    logger.warning(
        "%s meter: the local server's own GPUs are not known (%s): every GPU visible here is metered as the "
        "server's; set backend.device_ids to name them",
        meter_name,
        reason,
    )
    visible = requested_matches(library, None, visible_count)
    matches = [Match(m.index, f"all visible GPUs, the server's own not known ({reason}): {m.how}") for m in visible]
    return matches, False


def check_indices(library: GpuLibrary, indices: list[int], visible_count: int) -> None:
    """Raise a MeterError naming the first of ``indices`` that is not one of the ``visible_count`` GPUs."""
    for index in indices:
        if not 0 <= index < visible_count:
            visible = f"indices 0-{visible_count - 1}" if visible_count else "none"
            raise MeterError(
                f"{library.vendor}: GPU index {index} out of range: {visible_count} GPU(s) visible ({visible})"
            )


def probe_counter(library: GpuLibrary, index: int, read: Callable[[], int]) -> bool:
    """Whether GPU ``index`` has an energy counter (``read`` answers); a MeterError when it cannot be asked."""
    try:
        read()
    except DeviceError as exc:
        if exc.kind == NOT_SUPPORTED:
            return False
        if exc.kind == NO_PERMISSION:
            raise MeterError(
                f"{library.vendor}: permission denied reading GPU {index}'s energy counter ({exc}); "
                f"{library.permission_hint}"
            ) from exc
        raise MeterError(f"{library.vendor}: cannot read GPU {index}'s energy counter: {exc}") from exc
    return True


def gpu_state(library: GpuLibrary, index: int, poll_interval_s: float, polled_source: str) -> GpuState:
    """The meter's state of GPU ``index``: its power limit and counter probed (a GPU without a counter is logged: its
    energy is polled power, integrated, labelled ``polled_source``; ``poll_interval_s``: the mean interval, s)."""
    device = library.device(index)
    limit_w = device.power_limit_w()
    has_counter = probe_counter(library, device.index, device.energy_counter)
    state = GpuState(device, limit_w, has_counter, int(device.counter_modulus), device.counter_resolution_mj)
    if not has_counter:
        logger.warning(
            "GPU %d has no %s energy counter: its energy is estimated from power polled every %.0f ms on "
            "average and integrated (%s)",
            index,
            library.vendor,
            poll_interval_s * 1000.0,
            polled_source,
        )
    return state


def selection_text(
    requested: list[int] | None,
    server: ServerProcesses | None,
    server_found: bool | None,
    visible_count: int,
    discovered: bool,
) -> str:
    """How the GPUs were selected, as the report says it (``discovered``: the library has been asked)."""
    if requested is None and server is not None and server_found:
        return f"the local server's GPUs ({server.found})"
    if requested is None:
        return f"all visible GPUs ({visible_count})" if discovered else "all visible GPUs"
    return f"gpu_ids {requested}" + (f" of {visible_count} visible" if discovered else "")


def gpu_identity(gpu: GpuState, matched_by: str | None, source: str) -> dict[str, Any]:
    """One metered GPU as the report lists it (power limit in W)."""
    return {
        "index": gpu.index,
        "name": gpu.device.name,
        "uuid": gpu.device.uuid,
        "bus_id": gpu.device.bus_id or None,
        "matched_by": matched_by,
        "power_limit_w": gpu.power_limit_w,
        "energy_counter": gpu.has_counter,
        "source": source,
    }
