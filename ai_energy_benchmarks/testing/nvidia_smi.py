"""A simulated ``nvidia-smi`` executable: CodeCarbon decides an NVIDIA GPU is present by running it."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu

__all__ = ["write_fake_nvidia_smi"]


def write_fake_nvidia_smi(directory: str | os.PathLike[str], gpus: Sequence[FakeGpu] | None = None) -> Path:
    """Write an executable ``nvidia-smi`` into ``directory`` and return its path.

    CodeCarbon decides an NVIDIA GPU is present by running ``nvidia-smi --help``; put ``directory`` first on
    ``PATH`` so it finds this one. ``nvidia-smi -L`` lists ``gpus`` (one simulated GPU when None).
    """
    if gpus is None:
        from ai_energy_benchmarks.testing.fake_nvml import FakeGpu

        gpus = [FakeGpu(uuid="GPU-00000000-0000-4000-8000-000000000000")]
    lines = [f"GPU {i}: {gpu.name} (UUID: {gpu.uuid or f'GPU-simulated-{i}'})" for i, gpu in enumerate(gpus)]
    listing_text = "\n".join(lines).replace("'", "")
    script = (
        "#!/bin/sh\n"
        "# Simulated nvidia-smi written by ai_energy_benchmarks.testing.fake_nvml\n"
        'if [ "$1" = "-L" ]; then\n'
        f"  printf '%s\\n' '{listing_text}'\n"
        "  exit 0\n"
        "fi\n"
        "echo 'NVIDIA System Management Interface (simulated by ai_energy_benchmarks.testing)'\n"
        "exit 0\n"
    )
    path = Path(directory) / "nvidia-smi"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
