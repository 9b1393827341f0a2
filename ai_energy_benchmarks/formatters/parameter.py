"""ai_energy_benchmarks 0.0.4's ``ParameterFormatter``: reasoning switched by generation parameters.

Kept for code written against 0.0.4 (docs/compat-0.0.4.md). Our backends use the families in
:mod:`ai_energy_benchmarks.formatters.base` (``template_param`` is the one that passes such switches today).
"""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.formatters.base import ReasoningFormatter

#: The reasoning parameters passed on to generation, as 0.0.4 passed them.
PASSED_KEYS = ("enable_thinking", "thinking_budget", "cot_depth", "reasoning")


class ParameterFormatter(ReasoningFormatter):
    """Leaves the prompt as it is and passes the known reasoning parameters to generation."""

    def format_prompt(self, prompt: str, reasoning_params: dict[str, Any] | None = None) -> str:
        """The prompt unchanged."""
        return prompt

    def get_generation_params(self, reasoning_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The keys of ``reasoning_params`` among :data:`PASSED_KEYS` (others are left out)."""
        params = reasoning_params or {}
        return {key: params[key] for key in PASSED_KEYS if key in params}
