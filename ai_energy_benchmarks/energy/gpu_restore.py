"""Restore records: what a run changed on a GPU, written before the change, so that it can always be undone.

One JSON file per GPU, ``<state dir>/gpu-restore/<uuid>.json``, holding the vendor, the GPU's UUID, index and name,
the original power limit (W), whether the run locked the SM clock, and the run's PID and host. The run deletes it
once it has restored the GPU. A file left behind means the run was killed before it could restore (SIGKILL, a lost
node): the next run that sets that GPU restores it first, and ``ai-energy-benchmark gpu restore`` restores every
record whose run is gone. The state directory is ``gpu.state_dir``, else ``$AIEB_STATE_DIR``, else
``$XDG_STATE_HOME/ai_energy_benchmarks``, else ``~/.local/state/ai_energy_benchmarks``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.energy.devices.base import DeviceError
from ai_energy_benchmarks.energy.devices.control import GpuController, controller
from ai_energy_benchmarks.exceptions import ConfigError, MeterError

logger = logging.getLogger("ai_energy_benchmarks.energy.gpu_control")

RECORD_DIR = "gpu-restore"


def state_dir(configured: str | None = None) -> Path:
    """The directory restore records live under (see the module docstring)."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("AIEB_STATE_DIR"):
        return Path(os.environ["AIEB_STATE_DIR"]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ai_energy_benchmarks"


def open_library(vendor: str) -> Any:
    """An opened NVML or AMD SMI library (``vendor``: ``nvml``, ``amdsmi`` or ``auto``: NVML first)."""
    from ai_energy_benchmarks.energy.devices.amdsmi import AmdSmiLibrary
    from ai_energy_benchmarks.energy.devices.nvml import NvmlLibrary

    candidates: list[Any] = [NvmlLibrary(), AmdSmiLibrary()]
    if vendor != "auto":
        candidates = [NvmlLibrary() if vendor == "nvml" else AmdSmiLibrary()]
    reasons: list[str] = []
    for library in candidates:
        try:
            library.open()
        except MeterError as exc:
            reasons.append(str(exc))
            continue
        return library
    raise ConfigError(
        "gpu: no GPU management library could be opened to set power limits or clocks: " + "; ".join(reasons)
    )


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RestoreRecord:
    """What to put back on one GPU (power in W)."""

    vendor: str
    uuid: str
    index: int
    name: str
    power_limit_w: float
    clocks_locked: bool
    pid: int
    host: str
    written_at: str

    @classmethod
    def for_gpu(cls, vendor: str, gpu: GpuController, power_limit_w: float, clocks_locked: bool) -> RestoreRecord:
        return cls(
            vendor=vendor,
            uuid=gpu.uuid,
            index=gpu.index,
            name=gpu.name,
            power_limit_w=power_limit_w,
            clocks_locked=clocks_locked,
            pid=os.getpid(),
            host=socket.gethostname(),
            written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    @staticmethod
    def file_name(uuid: str) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in uuid) + ".json"

    def path(self, directory: str | Path) -> Path:
        return Path(directory) / RECORD_DIR / self.file_name(self.uuid)

    def write(self, directory: str | Path) -> None:
        """Write the record (atomically: a temporary file renamed over it)."""
        path = self.path(directory)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, path)
        except OSError as exc:
            raise ConfigError(
                f"gpu.state_dir: cannot write the restore record {path} ({exc}); set gpu.state_dir or "
                "AIEB_STATE_DIR to a writable directory"
            ) from exc

    def remove(self, directory: str | Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(directory).unlink()

    @classmethod
    def read(cls, path: Path) -> RestoreRecord:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})

    def restore(self, gpu: GpuController, unlock: bool | None = None) -> None:
        """Put the original values back on ``gpu`` (:class:`DeviceError` when refused). ``unlock``: whether the
        SM clock was locked (None: as the record says, for a killed run that may have locked it)."""
        unlock = self.clocks_locked if unlock is None else unlock
        if gpu.power_limit_w() != self.power_limit_w:
            gpu.set_power_limit_w(self.power_limit_w)
        if unlock:
            gpu.unlock_sm_clocks()
        logger.info(
            "GPU %d (%s): restored power limit %g W%s",
            gpu.index,
            gpu.uuid,
            self.power_limit_w,
            " and unlocked the SM clock" if unlock else "",
        )


def restore_stale_record(library: Any, gpu: GpuController, directory: str | Path) -> None:
    """Restore ``gpu`` from a record a killed run left; refuse when the run that wrote it still runs."""
    path = Path(directory) / RECORD_DIR / RestoreRecord.file_name(gpu.uuid)
    if not path.exists():
        return
    record = RestoreRecord.read(path)
    if record.host == socket.gethostname() and record.pid != os.getpid() and pid_alive(record.pid):
        raise ConfigError(
            f"gpu: GPU {gpu.index} ({gpu.uuid}) has settings of another run that is still running (PID {record.pid}, "
            f"record {path}); wait for it to finish"
        )
    logger.warning(
        "GPU %d (%s): restoring the settings a killed run (PID %d, %s) left changed (record %s)",
        gpu.index,
        gpu.uuid,
        record.pid,
        record.written_at,
        path,
    )
    try:
        record.restore(gpu)
    except DeviceError as exc:
        raise ConfigError(f"gpu: cannot restore GPU {gpu.index} from {path} ({exc})") from exc
    path.unlink()


def restore_all(directory: str | Path, force: bool = False) -> list[str]:
    """Restore every record under ``directory`` whose run is gone (all of them with ``force``); return one line per
    record saying what was done. Raises :class:`MeterError` when a record could not be restored."""
    folder = Path(directory) / RECORD_DIR
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    lines: list[str] = []
    failed: list[str] = []
    libraries: dict[str, Any] = {}
    try:
        for path in paths:
            record = RestoreRecord.read(path)
            if not force and record.host == socket.gethostname() and pid_alive(record.pid):
                lines.append(f"skipped {path}: its run (PID {record.pid}) is still running")
                continue
            vendor = "amdsmi" if record.vendor == "AMD SMI" else "nvml"
            if vendor not in libraries:
                libraries[vendor] = open_library(vendor)
            library = libraries[vendor]
            found = [i for i in range(library.count()) if library.device(i).uuid == record.uuid]
            if not found:
                failed.append(f"{path}: no GPU with UUID {record.uuid} on this host")
                continue
            try:
                record.restore(controller(library, found[0]))
            except DeviceError as exc:
                failed.append(f"{path}: {exc}")
                continue
            path.unlink()
            lines.append(f"restored GPU {found[0]} ({record.uuid}): power limit {record.power_limit_w:g} W")
    finally:
        for library in libraries.values():
            library.close()
    if failed:
        raise MeterError("could not restore: " + "; ".join(failed))
    return lines


__all__ = [
    "RECORD_DIR",
    "RestoreRecord",
    "open_library",
    "pid_alive",
    "restore_all",
    "restore_stale_record",
    "state_dir",
]
