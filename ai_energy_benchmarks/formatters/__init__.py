"""Prompt formatting: chat messages and reasoning switches, the same for local models and servers."""

from ai_energy_benchmarks.formatters.base import FormattedPrompt, Formatter
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter
from ai_energy_benchmarks.formatters.registry import FormatterRegistry

__all__ = ["FormattedPrompt", "Formatter", "FormatterRegistry", "HarmonyFormatter"]
