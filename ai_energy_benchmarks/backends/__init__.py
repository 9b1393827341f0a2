"""Backends run prompts and report per-request facts; they know nothing of energy."""

from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.registry import create_backend, register_backend

__all__ = ["Backend", "RequestRecord", "create_backend", "register_backend"]
