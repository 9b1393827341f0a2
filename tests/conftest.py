"""Shared test set-up: the model and dataset hubs are unreachable here, so every test runs offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One torch thread in every test and in the runs they start: a verdict must not depend on how busy the machine is
# (one thread per core on a machine whose cores other work keeps busy made runs many times slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
