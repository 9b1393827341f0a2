"""ai_energy_benchmarks 0.0.4's ``PrefixFormatter``: text put around the prompt while thinking is on.

Kept for code written against 0.0.4 (docs/compat-0.0.4.md). Our backends place a ``<think>`` prefix after the chat
template's generation prompt instead (the ``think_prefix`` family in :mod:`ai_energy_benchmarks.formatters.base`).
"""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.formatters.base import ReasoningFormatter


class PrefixFormatter(ReasoningFormatter):
    """Puts ``prefix`` before and ``suffix`` after the prompt unless ``enable_thinking`` is false."""

    def __init__(self, prefix: str = "", suffix: str = "") -> None:
        self.prefix = prefix
        self.suffix = suffix

    def format_prompt(self, prompt: str, reasoning_params: dict[str, Any] | None = None) -> str:
        """``prefix + prompt + suffix`` (thinking is on unless ``reasoning_params["enable_thinking"]`` is false)."""
        thinking = (reasoning_params or {}).get("enable_thinking", True)
        return f"{self.prefix}{prompt}{self.suffix}" if thinking else prompt

    def get_generation_params(self, reasoning_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """No generation parameters: the prompt carries the switch."""
        return {}
