"""Shared test set-up: the model and dataset hubs are unreachable here, so every test runs offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Every GPU in the tests is simulated (ai_energy_benchmarks.testing): a host's own CUDA_VISIBLE_DEVICES (or ROCm's
# HIP_/ROCR_VISIBLE_DEVICES) would renumber the simulated GPUs the meters read, so the tests run without them.
for _variable in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
    os.environ.pop(_variable, None)

# One torch thread in every test and in the runs they start: a verdict must not depend on how busy the machine is
# (one thread per core on a machine whose cores other work keeps busy made runs many times slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
