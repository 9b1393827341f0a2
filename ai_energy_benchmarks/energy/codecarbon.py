"""CodeCarbon meter (the default).

Runs CodeCarbon's ``OfflineEmissionsTracker`` (no network; the carbon intensity comes from the configured country
and region) and measures windows with CodeCarbon tasks, one per segment between window edges.
CodeCarbon reads GPUs through the NVML energy counter
(a measurement), CPUs through RAPL where readable (a measurement) and otherwise through a TDP/load model or a
constant (an estimate), and RAM through a size-based model (always an estimate). Each reading here carries that
distinction in its ``source``. What differs between CodeCarbon releases (its private GPU attributes, its CSV
output argument) is read in :mod:`ai_energy_benchmarks.energy.codecarbon_compat`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyReading, IncompleteWindowError
from ai_energy_benchmarks.energy.codecarbon_compat import (
    COUNTER_SOURCE,
    GPU_NOTES,
    NO_COUNTER_SOURCE,
    codecarbon_version,
    counter_kwh,
    csv_output_kwargs,
    nvidia_devices,
    nvidia_gpu_source,
    unreadable_gpus,
)
from ai_energy_benchmarks.energy.devices.processes import ServerProcesses, server_gpus
from ai_energy_benchmarks.energy.devices.visible import match_gpus
from ai_energy_benchmarks.exceptions import MeterError

logger = logging.getLogger(__name__)

_J_PER_KWH = 3.6e6

# CodeCarbon's CPU modes -> our source labels.
_CPU_SOURCES = {
    "intel_rapl": "measured:codecarbon-rapl",
    "intel_power_gadget": "measured:codecarbon-intel-power-gadget",
    "windows_emi": "measured:codecarbon-windows-emi",
    "apple_powermetrics": "measured:codecarbon-powermetrics",
    "cpu_load": "estimated:codecarbon-cpu-load",
    "constant": "estimated:codecarbon-cpu-tdp-constant",
}
_CPU_NOTES = {
    "cpu_load": "no readable RAPL counter: CodeCarbon models CPU power from utilisation and the CPU's TDP",
    "constant": "no readable RAPL counter and unknown TDP: CodeCarbon assumes a constant power per thread",
}


def _nvml_indices(gpu_ids: list[int] | None) -> tuple[list[int] | None, list[str]]:
    """The NVML indices of device ordinals ``gpu_ids`` (None: every GPU visible to this process) and how each was
    matched. CodeCarbon reads GPUs by NVML index and ignores ``CUDA_VISIBLE_DEVICES`` (its issue #567), so with the
    variable set the ordinals are matched here, as the NVML meter matches them; unchanged without it, or without
    an NVIDIA GPU (CodeCarbon then reads none)."""
    if "CUDA_VISIBLE_DEVICES" not in os.environ or gpu_ids == []:
        return gpu_ids, []
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        logger.debug("NVML unavailable, CUDA_VISIBLE_DEVICES not matched for CodeCarbon: %s", exc)
        return gpu_ids, []
    try:

        def uuid_of(index: int) -> str:
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(index))
            return uuid.decode() if isinstance(uuid, bytes) else str(uuid)

        matches = match_gpus(gpu_ids, ("CUDA_VISIBLE_DEVICES",), int(pynvml.nvmlDeviceGetCount()), uuid_of, "NVML")
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception as exc:
            logger.debug("nvmlShutdown failed: %s", exc)
    return [m.index for m in matches], [m.how for m in matches]


def _server_nvml_indices(server: ServerProcesses) -> tuple[list[int] | None, list[str]]:
    """The NVML indices of the GPUs a local server's processes run on, and how each was matched; (None, [reason])
    when none is known (CodeCarbon then reads every GPU, as before) or NVML is not available."""
    from ai_energy_benchmarks.energy.devices.nvml import NvmlLibrary

    library = NvmlLibrary()
    try:
        library.open()
    except MeterError as exc:
        logger.debug("NVML unavailable, the server's GPUs not looked up for CodeCarbon: %s", exc)
        return None, []
    try:
        found, reason = server_gpus(library, server)
    finally:
        library.close()
    if found:
        return [m.index for m in found], [m.how for m in found]
    logger.warning(
        "codecarbon meter: the local server's own GPUs are not known (%s): CodeCarbon reads every GPU it finds; "
        "set backend.device_ids to name them",
        reason,
    )
    return None, [f"all GPUs CodeCarbon finds, the server's own not known ({reason})"]


class CodeCarbonMeter:
    """Measures windows with CodeCarbon tasks; reports GPU, CPU and RAM energy and emissions."""

    name = "codecarbon"
    #: CodeCarbon's per-task rows, one file per tracker run (its ``emissions.csv`` gains a row per run instead).
    output_files: ClassVar[tuple[str, ...]] = ("emissions_base_*.csv",)

    def __init__(self, config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None = None) -> None:
        self._config = config
        self._output_dir = Path(config.output_dir) if config.output_dir else output_dir
        self._gpu_ids = gpu_ids  # device ordinals until prepare(), then NVML indices
        self._matched_by: list[str] = []
        self._server: ServerProcesses | None = None
        self._tracker: Any = None
        self._hardware: dict[str, str] = {}
        self._open: dict[str, list[float]] = {}  # window -> [cpu kWh, ram kWh, gpu kWh, emissions kg]
        self._segment: str | None = None
        self._segments = 0
        # CodeCarbon's GPU counter (kWh) when its last segment closed, and the grid intensity (kg CO2eq per kWh) it
        # applied: the energy between one segment's last reading and the next one's first is in neither.
        self._counter_at_close_kwh: float | None = None
        self._kg_per_kwh = 0.0
        self._warned_no_counter = False

    def meter_server(self, server: ServerProcesses) -> None:
        """Give CodeCarbon the GPUs a local server's processes run on (before :meth:`prepare`), when no GPU ids were
        given: those NVML lists ``server.pids`` on; every GPU when it lists none of them (logged)."""
        self._server = server

    def prepare(self) -> None:
        """Create the tracker and take its first (slow, ~1.4 s) hardware reading outside the windows."""
        try:
            from codecarbon import EmissionsTracker, OfflineEmissionsTracker
        except ImportError as exc:  # pragma: no cover - codecarbon is a base dependency
            raise MeterError(f"CodeCarbon is not installed: {exc}") from exc
        self._output_dir.mkdir(parents=True, exist_ok=True)
        # CodeCarbon logs at INFO and warns on every start; keep it quiet unless we are debugging.
        if not logger.isEnabledFor(logging.DEBUG):
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
        kwargs: dict[str, Any] = {
            "project_name": self._config.project_name,
            "country_iso_code": self._config.country_iso_code,
            "output_dir": str(self._output_dir),
            "measure_power_secs": self._config.codecarbon.measure_power_secs,
            "tracking_mode": self._config.codecarbon.tracking_mode,
            "log_level": "error",
            "allow_multiple_runs": True,
        }
        kwargs.update(csv_output_kwargs())
        if self._config.region:
            kwargs["region"] = self._config.region
        if self._gpu_ids is None and self._server is not None:
            self._gpu_ids, self._matched_by = _server_nvml_indices(self._server)
        else:
            self._gpu_ids, self._matched_by = _nvml_indices(self._gpu_ids)
        if self._gpu_ids:  # an empty list means "no GPU": CodeCarbon would read every GPU, so its GPU figure is dropped
            kwargs["gpu_ids"] = list(self._gpu_ids)
        try:
            if self._config.codecarbon.online:
                # The online tracker finds the location over the network (and silently assumes Canada when it
                # cannot); country and region are not passed to it.
                logger.warning(
                    "metrics.codecarbon.online: CodeCarbon geolocates this machine over the network for the carbon "
                    "intensity"
                )
                kwargs.pop("country_iso_code", None)
                kwargs.pop("region", None)
                self._tracker = EmissionsTracker(**kwargs)
            else:
                self._tracker = OfflineEmissionsTracker(**kwargs)
            # Hardware discovery and the first reading happen on the first task; keep them out of every window.
            self._tracker.start_task("ai_energy_benchmarks_prepare")
            self._tracker.stop_task("ai_energy_benchmarks_prepare")
        except Exception as exc:
            raise MeterError(f"CodeCarbon could not start: {exc}") from exc
        self._hardware = self._detect_hardware()

    def _detect_hardware(self) -> dict[str, str]:
        """CodeCarbon's view of the hardware it reads, as source labels per device class."""
        found: dict[str, str] = {}
        for item in getattr(self._tracker, "_hardware", []) or []:
            kind = type(item).__name__
            if kind == "CPU":
                mode = str(getattr(item, "_mode", "unknown"))
                found["cpu"] = _CPU_SOURCES.get(mode, f"estimated:codecarbon-cpu-{mode}")
                found["cpu_mode"] = mode
            elif kind == "RAM":
                found["ram"] = "estimated:codecarbon-ram"
            elif kind == "GPU":
                found["gpu"] = nvidia_gpu_source(nvidia_devices(self._tracker, self._gpu_ids))
            elif kind == "AMDGPU":
                found["gpu"] = "measured:codecarbon-amdsmi"
            elif kind == "AppleSiliconChip":
                part = str(getattr(item, "chip_part", "")).lower()
                found[part or "cpu"] = "measured:codecarbon-powermetrics"
        return found

    # CodeCarbon measures one task at a time. Windows may nest and overlap, so the meter runs one CodeCarbon task
    # per *segment* between two window edges and adds each segment's energy to every window open during it.
    def _close_segment(self) -> None:
        if self._segment is None:
            return
        data = self._tracker.stop_task(self._segment)
        self._segment = None
        if data is None:
            raise MeterError("CodeCarbon returned no data for a measured segment")
        deltas = (float(data.cpu_energy), float(data.ram_energy), float(data.gpu_energy), float(data.emissions))
        for totals in self._open.values():
            for i, value in enumerate(deltas):
                totals[i] += value
        if sum(deltas[:3]) > 0:
            self._kg_per_kwh = deltas[3] / sum(deltas[:3])
        self._counter_at_close_kwh = self._gpu_counter_kwh()

    def _open_segment(self) -> None:
        if self._open:
            self._segments += 1
            self._segment = f"segment-{self._segments}"
            self._tracker.start_task(self._segment)
            # CodeCarbon's tasks leave out the GPU energy between one task's last counter reading and the next one's
            # first (2-13 ms of its bookkeeping per window edge, measured with 3.0.4 and 3.3.2): add it back.
            now_kwh = self._gpu_counter_kwh()
            if now_kwh is not None and self._counter_at_close_kwh is not None:
                gap_kwh = now_kwh - self._counter_at_close_kwh
                if gap_kwh > 0:
                    for totals in self._open.values():
                        totals[2] += gap_kwh
                        totals[3] += gap_kwh * self._kg_per_kwh
        self._counter_at_close_kwh = None

    def _gpu_counter_kwh(self) -> float | None:
        """CodeCarbon's last counter reading of the metered GPUs (kWh); None when not read by the counter."""
        if self._gpu_ids == [] or self._hardware.get("gpu") != COUNTER_SOURCE:
            return None
        return counter_kwh(nvidia_devices(self._tracker, self._gpu_ids))

    def start_window(self, name: str) -> None:
        """Open window ``name`` (windows may nest and overlap)."""
        if self._tracker is None:
            raise MeterError("CodeCarbon meter used before prepare()")
        if name in self._open:
            raise MeterError(f"window '{name}' is already open")
        self._close_segment()
        self._open[name] = [0.0, 0.0, 0.0, 0.0]
        self._open_segment()

    def stop_window(self, name: str) -> tuple[list[EnergyReading], float | None]:
        """Close window ``name`` and convert CodeCarbon's kWh into labelled joule readings."""
        if name not in self._open:
            raise MeterError(f"window '{name}' was not started")
        self._close_segment()
        cpu_kwh, ram_kwh, gpu_kwh, emissions_kg = self._open.pop(name)
        self._open_segment()
        if self._gpu_ids == [] and cpu_kwh + ram_kwh + gpu_kwh > 0:
            # CodeCarbon counted every GPU of the host (no gpu_ids); the run used none: keep the emissions of the
            # energy this meter reports (CPU and RAM) at the same grid intensity.
            emissions_kg *= (cpu_kwh + ram_kwh) / (cpu_kwh + ram_kwh + gpu_kwh)
        readings = [
            EnergyReading(
                device="cpu",
                energy_j=cpu_kwh * _J_PER_KWH,
                source=self._hardware.get("cpu", "estimated:codecarbon-cpu"),
                meter=self.name,
                note=_CPU_NOTES.get(self._hardware.get("cpu_mode", ""), ""),
            ),
            EnergyReading(
                device="ram",
                energy_j=ram_kwh * _J_PER_KWH,
                source=self._hardware.get("ram", "estimated:codecarbon-ram"),
                meter=self.name,
                note="CodeCarbon estimates RAM power from the installed memory size; it is not measured",
            ),
        ]
        if "gpu" in self._hardware and self._gpu_ids != []:
            # A GPU that does not answer (neither counter nor power) is not a GPU at 0 W: no GPU figure for the window.
            gpu_item = next(
                (h for h in getattr(self._tracker, "_hardware", None) or [] if type(h).__name__ == "GPU"), None
            )
            unreadable = unreadable_gpus(gpu_item, self._gpu_ids) if gpu_item is not None else []
            if unreadable:
                raise IncompleteWindowError(
                    f"CodeCarbon cannot read {', '.join(unreadable)} at the end of window '{name}': its GPU "
                    "energy for the window is unknown, not zero",
                    readings,
                    emissions_kg,
                    time.perf_counter(),
                )
            # CodeCarbon switches a GPU to averaged power samples (3.3.2+) or reads 0 (older releases) when it has no
            # counter or the counter fails or jumps back: label this window by what CodeCarbon did in it.
            devices = nvidia_devices(self._tracker, self._gpu_ids)
            if devices:
                self._hardware["gpu"] = nvidia_gpu_source(devices)
        if self._hardware.get("gpu") == NO_COUNTER_SOURCE and self._gpu_ids != []:
            if not self._warned_no_counter:
                self._warned_no_counter = True
                logger.warning(
                    "CodeCarbon %s reads 0 kWh for a GPU whose NVML energy counter does not answer (CodeCarbon "
                    "issue #1316): its GPU energy is not measured; add the nvml meter (metrics.type=[codecarbon, "
                    "nvml]) or install codecarbon>=3.3.2",
                    codecarbon_version(),
                )
        elif "gpu" in self._hardware and self._gpu_ids != []:
            readings.append(
                EnergyReading(
                    device="gpu",
                    energy_j=gpu_kwh * _J_PER_KWH,
                    source=self._hardware["gpu"],
                    meter=self.name,
                    note=GPU_NOTES.get(self._hardware["gpu"], ""),
                )
            )
        return readings, emissions_kg

    def describe(self) -> dict[str, Any]:
        """Configuration and detected hardware."""
        return {
            "version": codecarbon_version(),
            "tracker": "EmissionsTracker (online)" if self._config.codecarbon.online else "OfflineEmissionsTracker",
            "country_iso_code": self._config.country_iso_code,
            "region": self._config.region,
            "measure_power_secs": self._config.codecarbon.measure_power_secs,
            # Its CPU/GPU figures come from samples this far apart: windows shorter than ten of them are coarse.
            "update_period_s": self._config.codecarbon.measure_power_secs,
            "tracking_mode": self._config.codecarbon.tracking_mode,
            "gpu_ids": self._gpu_ids,
            "matched_by": self._matched_by or None,
            "gpus": self._gpus_described(),
            "sources": {k: v for k, v in self._hardware.items() if not k.endswith("_mode")},
            "output_dir": str(self._output_dir),
        }

    def _gpus_described(self) -> list[dict[str, Any]]:
        """The GPUs given to CodeCarbon (NVML indices) and how each was matched; CodeCarbon does not report their
        UUIDs, so those are null. Empty when CodeCarbon reads every GPU it finds (no device ids) or none."""
        if not self._gpu_ids or "gpu" not in self._hardware:
            return []
        how = self._matched_by if len(self._matched_by) == len(self._gpu_ids) else []
        return [
            {
                "index": index,
                "uuid": None,
                "name": None,
                "bus_id": None,
                "matched_by": how[position] if how else f"NVML index {index} (no CUDA_VISIBLE_DEVICES)",
                "source": self._hardware["gpu"],
            }
            for position, index in enumerate(self._gpu_ids)
        ]

    def close(self) -> None:
        """Stop the tracker; CodeCarbon writes its emissions.csv into the output directory."""
        if self._tracker is not None:
            try:
                if self._segment is not None:
                    self._tracker.stop_task(self._segment)
                    self._segment = None
                self._tracker.stop()
            finally:
                self._tracker = None
