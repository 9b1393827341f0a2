"""Prompt formatting: chat messages and reasoning switches, the same for local models and servers.

``ReasoningFormatter``, ``ParameterFormatter``, ``PrefixFormatter`` and ``SystemPromptFormatter`` are
ai_energy_benchmarks 0.0.4's classes, kept for code written against it (docs/compat-0.0.4.md).
"""

from ai_energy_benchmarks.formatters.base import FormattedPrompt, Formatter, ReasoningFormatter
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter
from ai_energy_benchmarks.formatters.parameter import ParameterFormatter
from ai_energy_benchmarks.formatters.prefix import PrefixFormatter
from ai_energy_benchmarks.formatters.registry import FormatterRegistry
from ai_energy_benchmarks.formatters.system_prompt import SystemPromptFormatter

__all__ = [
    "FormattedPrompt",
    "Formatter",
    "FormatterRegistry",
    "HarmonyFormatter",
    "ParameterFormatter",
    "PrefixFormatter",
    "ReasoningFormatter",
    "SystemPromptFormatter",
]
