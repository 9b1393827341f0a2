"""The ``gpu:`` section at work: set a run's GPU power limit and SM clock lock, and always put the originals back.

:func:`apply_gpu_settings` runs before anything is measured. For each GPU the run uses it reads the current limit,
checks the requested one against the GPU's range (a :class:`ConfigError`, exit code 2, otherwise), writes a *restore
record* (one JSON file per GPU in the state directory) before it changes anything, sets the values, and reads the
enforced limit back. The returned :class:`GpuSettings` restores the originals; it is registered on the caller's
``ExitStack`` before the first change, so an error or a SIGINT/SIGTERM (raised as an exception by
:mod:`ai_energy_benchmarks.interrupts`) restores them on the way out. Setting and restoring are never torn by a
signal (:func:`~ai_energy_benchmarks.interrupts.deferred`). A run killed outright (SIGKILL, power loss) leaves its
records: the next run that controls that GPU restores them first, and ``ai-energy-benchmark gpu restore`` restores
every record whose run is gone (:mod:`ai_energy_benchmarks.energy.gpu_restore`).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

from ai_energy_benchmarks import interrupts
from ai_energy_benchmarks.config.gpu_control import GpuControlConfig
from ai_energy_benchmarks.energy.devices.base import NO_PERMISSION, DeviceError
from ai_energy_benchmarks.energy.devices.control import CONTROL_PERMISSION_HINT, GpuController, controller
from ai_energy_benchmarks.energy.gpu_discovery import requested_matches
from ai_energy_benchmarks.energy.gpu_restore import (
    RestoreRecord,
    open_library,
    restore_stale_record,
    state_dir,
)
from ai_energy_benchmarks.exceptions import ConfigError, MeterError

logger = logging.getLogger(__name__)

#: The enforced limit may differ from the requested one by this much (W) before a warning says so.
ENFORCED_TOLERANCE_W = 1.0


class GpuSettings:
    """What one run set on its GPUs, and how to put it back (:meth:`restore`, idempotent)."""

    def __init__(self, config: GpuControlConfig, library: Any, state_path: str) -> None:
        self.config = config
        self.library = library
        self.state_dir = state_path
        self.gpus: list[dict[str, Any]] = []
        self._controllers: list[tuple[GpuController, RestoreRecord, dict[str, Any]]] = []
        self._restored = False
        #: The GPUs whose SM clock this run locked (only those are unlocked again).
        self._locked: set[int] = set()

    def describe(self) -> dict[str, Any]:
        """The report's ``gpu_control`` block: per GPU the original, requested and enforced values."""
        return {"vendor": self.library.vendor, "restore_records": self.state_dir, "gpus": self.gpus}

    def _apply(self, matches: list[Any]) -> None:
        config = self.config
        clocks = config.sm_clock_range_mhz
        planned: list[tuple[GpuController, dict[str, Any]]] = []
        for match in matches:
            gpu = controller(self.library, match.index)
            restore_stale_record(self.library, gpu, self.state_dir)
            entry: dict[str, Any] = {"index": gpu.index, "uuid": gpu.uuid, "name": gpu.name, "matched_by": match.how}
            try:
                entry["original_power_limit_w"] = gpu.power_limit_w()
                if config.power_limit_w is not None:
                    low_w, high_w = gpu.power_limit_range_w()
                    entry["power_limit_range_w"] = [low_w, high_w]
                    if not low_w <= config.power_limit_w <= high_w:
                        raise ConfigError(
                            f"gpu.power_limit_w: {config.power_limit_w:g} W is outside the range GPU {gpu.index} "
                            f"({gpu.name}) accepts, {low_w:g}-{high_w:g} W"
                        )
            except DeviceError as exc:
                raise MeterError(f"{self.library.vendor}: cannot read GPU {gpu.index}'s power limit: {exc}") from exc
            if clocks is not None:
                if not gpu.can_lock_clocks:
                    raise ConfigError(f"gpu.sm_clock_mhz: {self.library.vendor} clock locks are not supported here")
                entry["original_sm_clock_mhz"] = gpu.sm_clock_mhz()
                highest = gpu.max_sm_clock_mhz()
                if highest is not None and clocks[1] > highest:
                    raise ConfigError(
                        f"gpu.sm_clock_mhz: {clocks[1]} MHz is above GPU {gpu.index} ({gpu.name})'s highest SM "
                        f"clock, {highest:g} MHz"
                    )
            planned.append((gpu, entry))
        for gpu, entry in planned:
            record = RestoreRecord.for_gpu(
                self.library.vendor, gpu, entry["original_power_limit_w"], clocks is not None
            )
            record.write(self.state_dir)  # before anything changes: a killed run leaves what to restore
            self._controllers.append((gpu, record, entry))
            self._set(gpu, entry, clocks)
            self.gpus.append(entry)

    def _set(self, gpu: GpuController, entry: dict[str, Any], clocks: tuple[int, int] | None) -> None:
        config = self.config
        what = "power limit"
        try:
            if config.power_limit_w is not None:
                gpu.set_power_limit_w(config.power_limit_w)
                entry["requested_power_limit_w"] = config.power_limit_w
            if clocks is not None:
                what = "SM clock lock"
                gpu.lock_sm_clocks(*clocks)
                self._locked.add(gpu.index)
                entry["requested_sm_clock_mhz"] = list(clocks)
                entry["sm_clock_mhz"] = gpu.sm_clock_mhz()
            what = "enforced power limit"
            entry["enforced_power_limit_w"] = gpu.enforced_power_limit_w()
        except DeviceError as exc:
            if exc.kind == NO_PERMISSION:
                raise ConfigError(
                    f"gpu: {self.library.vendor} refused to set GPU {gpu.index}'s {what} ({exc}): "
                    f"{CONTROL_PERMISSION_HINT}"
                ) from exc
            raise MeterError(f"gpu: {self.library.vendor} could not set GPU {gpu.index}'s {what}: {exc}") from exc
        requested = config.power_limit_w
        enforced = entry["enforced_power_limit_w"]
        logger.info(
            "GPU %d (%s): power limit %g W -> requested %s, enforced %g W%s",
            gpu.index,
            gpu.uuid,
            entry["original_power_limit_w"],
            f"{requested:g} W" if requested is not None else "(unchanged)",
            enforced,
            f"; SM clock locked to {clocks[0]}-{clocks[1]} MHz" if clocks else "",
        )
        if requested is not None and abs(enforced - requested) > ENFORCED_TOLERANCE_W:
            logger.warning(
                "GPU %d: the enforced power limit is %g W, not the %g W requested (another limiter holds it)",
                gpu.index,
                enforced,
                requested,
            )

    def restore(self) -> None:
        """Put every changed GPU back as it was (power limit set again, clock lock removed); delete the records of
        the GPUs restored. Errors are logged; a GPU that could not be restored keeps its record."""
        if self._restored:
            return
        self._restored = True
        with interrupts.deferred():
            for gpu, record, _ in reversed(self._controllers):
                try:
                    record.restore(gpu, unlock=gpu.index in self._locked)
                except DeviceError as exc:
                    logger.error(
                        "GPU %d (%s): could not restore its settings (%s); the restore record %s is kept: run "
                        "`ai-energy-benchmark gpu restore` as root",
                        gpu.index,
                        gpu.uuid,
                        exc,
                        record.path(self.state_dir),
                    )
                    continue
                record.remove(self.state_dir)
            self.library.close()


def apply_gpu_settings(
    config: GpuControlConfig | None, gpu_ids: list[int] | None, cleanup: ExitStack
) -> GpuSettings | None:
    """Set ``config``'s power limit / clock lock on the GPUs ``gpu_ids`` (device ordinals; None: every visible GPU).

    Returns None when ``config`` asks for nothing. The restore is registered on ``cleanup`` before the first change.
    Raises :class:`ConfigError` (exit code 2) for a value outside a GPU's range, a run without GPUs here, or a
    refused change (root / CAP_SYS_ADMIN), after restoring whatever was already set.
    """
    if config is None or not config.changes_anything:
        return None
    if gpu_ids is not None and not gpu_ids:
        raise ConfigError("gpu: this run uses no GPU on this host, so there is no power limit or clock to set")
    library = open_library(config.vendor)
    settings = GpuSettings(config, library, str(state_dir(config.state_dir)))
    try:
        with interrupts.deferred():
            cleanup.callback(settings.restore)
            matches = requested_matches(library, gpu_ids, library.count())
            settings._apply(matches)
    except BaseException:
        settings.restore()
        raise
    return settings


__all__ = ["ENFORCED_TOLERANCE_W", "GpuSettings", "apply_gpu_settings"]
