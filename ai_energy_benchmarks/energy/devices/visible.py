"""Which GPUs of a vendor library a process's device ordinals are, whatever ``CUDA_VISIBLE_DEVICES`` (or ROCm's
``ROCR_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES``) says.

``backend.device_ids`` are the ordinals torch and the runtime use (``cuda:0`` is the first *visible* GPU); NVML and
AMD SMI number every GPU of the host. With ``CUDA_VISIBLE_DEVICES=2,3``, ``cuda:0`` is NVML's GPU 2: metering NVML
index 0 would measure another GPU. Entries are indices or UUIDs (``GPU-8e3f...``, any unique prefix), as the runtimes
accept them; each variable's entries index into what the previous one left visible (ROCm applies
``ROCR_VISIBLE_DEVICES``, then ``HIP_VISIBLE_DEVICES``). MIG instances (``MIG-...``) are refused: the energy
counter belongs to the whole GPU, shared with its other instances.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ai_energy_benchmarks.exceptions import MeterError


@dataclass(frozen=True)
class Match:
    """A library index and how it was found (for the report)."""

    index: int
    how: str


def _entries(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def match_gpus(
    requested: Sequence[int] | None,
    variables: Sequence[str],
    count: int,
    uuid_of: Callable[[int], str],
    vendor: str,
    environ: Mapping[str, str] | None = None,
) -> list[Match]:
    """The library indices of the requested device ordinals (every visible GPU when ``requested`` is None).

    ``variables`` are read from ``environ`` (the process's environment) outermost first; ``uuid_of(index)`` gives a
    library device's UUID and is called only when an entry is a UUID. Raises :class:`MeterError` naming the entry
    that matches no GPU, or several.
    """
    environ = os.environ if environ is None else environ
    visible: list[Match] = [Match(i, f"{vendor} index {i}") for i in range(count)]
    uuids: dict[int, str] = {}
    set_any = False
    for variable in variables:
        value = environ.get(variable)
        if value is None:
            continue
        set_any = True
        layer: list[Match] = []
        for position, entry in enumerate(_entries(value)):
            if entry.isdigit():
                if int(entry) >= len(visible):
                    raise MeterError(
                        f"{variable}={value}: entry {entry} names no GPU ({len(visible)} visible to it on this host)"
                    )
                found = visible[int(entry)]
            elif entry.upper().startswith("MIG-"):
                raise MeterError(
                    f"{variable}={value}: {entry} is a MIG instance; GPU energy counters belong to the whole GPU "
                    "(shared with its other instances), so it cannot be metered alone: use a whole GPU, or a meter "
                    "without GPU energy (metrics.type: codecarbon with backend.device_ids: [])"
                )
            else:
                for match in visible:
                    if match.index not in uuids:
                        uuids[match.index] = uuid_of(match.index)
                candidates = [m for m in visible if uuids[m.index].lower().startswith(entry.lower())]
                if len(candidates) != 1:
                    what = "no GPU" if not candidates else f"{len(candidates)} GPUs"
                    raise MeterError(f"{variable}={value}: {entry} matches {what} by UUID")
                found = candidates[0]
            layer.append(Match(found.index, f"{variable} entry {position} ({entry}) -> {found.how}"))
        visible = layer
    ordinals = list(requested) if requested is not None else list(range(len(visible)))
    if not set_any:
        return [Match(i, f"{vendor} index {i}") for i in ordinals]
    matches: list[Match] = []
    for ordinal in ordinals:
        if not 0 <= ordinal < len(visible):
            shown = ", ".join(f"{v}={environ[v]}" for v in variables if v in environ)
            raise MeterError(
                f"device ordinal {ordinal} is not visible to this process ({shown}: {len(visible)} GPU(s) visible)"
            )
        matches.append(Match(visible[ordinal].index, f"device ordinal {ordinal} = {visible[ordinal].how}"))
    return matches
