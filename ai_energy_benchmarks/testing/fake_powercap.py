"""A simulated Linux powercap (RAPL) tree in an ordinary directory, for testing the RAPL meter.

The layout follows ``/sys/class/powercap``: one ``intel-rapl:N`` directory per CPU package (``name`` =
``package-N``), each with subzones ``intel-rapl:N:M`` (``core``, ``dram``, ...), and in every zone the files
``name``, ``energy_uj`` (cumulative energy in µJ) and ``max_energy_range_uj`` (where ``energy_uj`` wraps to 0).
Like sysfs, the subzones also appear at the top level (as symbolic links). Tests set counter values directly, so the
expected differences are exact.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_MAX_ENERGY_RANGE_UJ", "FakePowercap"]

#: A typical ``max_energy_range_uj`` (2**32 energy-status units of 61 µJ).
DEFAULT_MAX_ENERGY_RANGE_UJ = 262_143_328_850


class FakePowercap:
    """Creates ``packages`` package zones under ``root``, each with a ``core`` subzone and (optionally) ``dram``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        packages: int = 1,
        *,
        dram: bool = True,
        max_energy_range_uj: int = DEFAULT_MAX_ENERGY_RANGE_UJ,
        psys: bool = False,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "intel-rapl").mkdir(exist_ok=True)  # the control type directory, not a zone
        (self.root / "intel-rapl" / "enabled").write_text("1\n")
        for package in range(packages):
            zone = self._zone(self.root / f"intel-rapl:{package}", f"package-{package}", max_energy_range_uj)
            subzones = ["core", "dram"] if dram else ["core"]
            for number, name in enumerate(subzones):
                sub = self._zone(zone / f"intel-rapl:{package}:{number}", name, max_energy_range_uj)
                link = self.root / sub.name
                if not link.exists():
                    link.symlink_to(sub, target_is_directory=True)
        if psys:
            self._zone(self.root / f"intel-rapl:{packages}", "psys", max_energy_range_uj)

    @staticmethod
    def _zone(path: Path, name: str, max_energy_range_uj: int) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        (path / "energy_uj").write_text("0\n")
        (path / "enabled").write_text("1\n")
        return path

    def zone_dir(self, package: int, dram: bool = False) -> Path:
        """The package zone directory, or its ``dram`` subzone."""
        zone = self.root / f"intel-rapl:{package}"
        if not dram:
            return zone
        for sub in sorted(zone.glob(f"intel-rapl:{package}:*")):
            if (sub / "name").read_text().strip() == "dram":
                return sub
        raise KeyError(f"package {package} has no dram subzone")

    def energy_file(self, package: int, dram: bool = False) -> Path:
        """The ``energy_uj`` file of a package zone or its ``dram`` subzone."""
        return self.zone_dir(package, dram) / "energy_uj"

    def set_energy_uj(self, package: int, value_uj: int, dram: bool = False) -> None:
        """Set a counter (µJ)."""
        self.energy_file(package, dram).write_text(f"{value_uj}\n")

    def energy_uj(self, package: int, dram: bool = False) -> int:
        """A counter's current value (µJ)."""
        return int(self.energy_file(package, dram).read_text())
