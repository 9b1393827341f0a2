"""Meter registry keyed by ``metrics.type``; third parties add meters through the
``ai_energy_benchmarks.meters`` entry-point group (a callable ``(MetricsConfig, output_dir, gpu_ids) -> meter``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from ai_energy_benchmarks.config.schema import MetricsConfig
from ai_energy_benchmarks.energy.base import EnergyMeter
from ai_energy_benchmarks.energy.devices.processes import ServerProcesses
from ai_energy_benchmarks.exceptions import ConfigError

MeterFactory = Callable[[MetricsConfig, Path, "list[int] | None"], EnergyMeter]

MeterSettingsCheck = Callable[[MetricsConfig], None]

_FACTORIES: dict[str, MeterFactory] = {}
_CHECKS: dict[str, MeterSettingsCheck] = {}


def register_meter(name: str, factory: MeterFactory, check: MeterSettingsCheck | None = None) -> None:
    """Make ``metrics.type: name`` create a meter with ``factory``; ``check`` (optional) raises a ConfigError for
    settings the meter cannot run with, before anything is loaded (``validate`` and the start of a run)."""
    _FACTORIES[name] = factory
    if check is not None:
        _CHECKS[name] = check


def check_meter_settings(config: MetricsConfig) -> None:
    """Run the settings check of every meter ``config`` names (a ConfigError naming the setting when one fails)."""
    for name in config.meter_types:
        check = _CHECKS.get(name)
        if check is not None:
            check(config)


def _codecarbon(config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None) -> EnergyMeter:
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter

    return CodeCarbonMeter(config, output_dir, gpu_ids)


def _nvml(config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None) -> EnergyMeter:
    from ai_energy_benchmarks.energy.nvml import NvmlMeter

    return NvmlMeter(config, output_dir, gpu_ids)


def _amdsmi(config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None) -> EnergyMeter:
    from ai_energy_benchmarks.energy.amdsmi import AmdSmiMeter

    return AmdSmiMeter(config, output_dir, gpu_ids)


def _rapl(config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None) -> EnergyMeter:
    from ai_energy_benchmarks.energy.rapl import RaplMeter

    return RaplMeter(config, output_dir, gpu_ids)


def _dcgm(config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None) -> EnergyMeter:
    from ai_energy_benchmarks.energy.dcgm import DcgmMeter

    return DcgmMeter(config, output_dir, gpu_ids)


register_meter("codecarbon", _codecarbon)
register_meter("nvml", _nvml)
register_meter("amdsmi", _amdsmi)
register_meter("rapl", _rapl)


def _dcgm_check(config: MetricsConfig) -> None:
    from ai_energy_benchmarks.energy.dcgm import check_settings

    check_settings(config)


register_meter("dcgm", _dcgm, _dcgm_check)


def meter_output_files() -> list[str]:
    """Glob patterns, relative to a run directory, of the files meters write there: those of every meter type
    registered or loaded so far (an earlier run's files are recognised whichever meters it used)."""
    from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter
    from ai_energy_benchmarks.energy.nvml import NvmlMeter
    from ai_energy_benchmarks.energy.rapl import RaplMeter

    makers: list[object] = [CodeCarbonMeter, NvmlMeter, RaplMeter, *_FACTORIES.values()]
    # A meter's class says what it writes (EnergyMeter.output_files); a plugin's factory may say it too.
    return sorted({pattern for maker in makers for pattern in getattr(maker, "output_files", ())})


def available_meters() -> list[str]:
    """Meter names: the built-in ones and those third-party packages declare as entry points."""
    names = set(_FACTORIES) | {e.name for e in metadata.entry_points(group="ai_energy_benchmarks.meters")}
    return sorted(names)


def check_meter_names(names: list[str]) -> None:
    """Raise a ConfigError naming the first unknown meter, with a hint."""
    from ai_energy_benchmarks.config.errors import did_you_mean

    known = available_meters()
    for name in names:
        if name not in known:
            raise ConfigError(
                f"metrics.type: unknown meter '{name}'{did_you_mean(name, known)}; available: {', '.join(known)}"
            )


def _factory(name: str) -> MeterFactory:
    if name in _FACTORIES:
        return _FACTORIES[name]
    for entry in metadata.entry_points(group="ai_energy_benchmarks.meters"):
        if entry.name == name:
            factory: MeterFactory = entry.load()
            register_meter(name, factory)
            return factory
    check_meter_names([name])
    raise AssertionError("unreachable")  # pragma: no cover


def create_meters(
    config: MetricsConfig, output_dir: Path, gpu_ids: list[int] | None, server: ServerProcesses | None = None
) -> list[EnergyMeter]:
    """The meters ``config`` asks for (none when metrics are disabled).

    ``server``: the processes of a model server on this host; with ``gpu_ids`` None the GPU meters (NVML, AMD SMI)
    meter the GPUs those processes run on (every visible GPU when the library lists none of them), and so does
    CodeCarbon's GPU figure.
    """
    if not config.enabled:
        return []
    meters = [_factory(name)(config, output_dir, gpu_ids) for name in config.meter_types]
    if server is not None and gpu_ids is None:
        from ai_energy_benchmarks.energy.codecarbon import CodeCarbonMeter
        from ai_energy_benchmarks.energy.gpu import GpuMeter

        for meter in meters:
            if isinstance(meter, (GpuMeter, CodeCarbonMeter)):
                meter.meter_server(server)
    return meters
