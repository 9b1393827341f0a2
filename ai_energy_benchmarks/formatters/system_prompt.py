"""ai_energy_benchmarks 0.0.4's ``SystemPromptFormatter``: a ``/think`` or ``/no_think`` flag before the prompt.

Kept for code written against 0.0.4 (docs/compat-0.0.4.md). Our backends put the flag in a system message instead
(the ``system_flag`` family in :mod:`ai_energy_benchmarks.formatters.base`).
"""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.formatters.base import ReasoningFormatter


class SystemPromptFormatter(ReasoningFormatter):
    """Writes ``enable_flag`` (or ``disable_flag``) on a line before the prompt when the wanted thinking mode
    differs from the model's default (``default_enabled``); writes nothing when they agree."""

    def __init__(
        self,
        enable_flag: str | None = "/think",
        disable_flag: str | None = "/no_think",
        default_enabled: bool = False,
    ) -> None:
        self.enable_flag = enable_flag
        self.disable_flag = disable_flag
        self.default_enabled = default_enabled

    def thinking(self, reasoning_params: dict[str, Any] | None) -> bool:
        """The wanted mode: ``enable_thinking``, else ``reasoning_effort`` high or medium, else the default."""
        params = reasoning_params or {}
        if "enable_thinking" in params:
            return bool(params["enable_thinking"])
        if "reasoning_effort" in params:
            return params["reasoning_effort"] in ("high", "medium")
        return self.default_enabled

    def format_prompt(self, prompt: str, reasoning_params: dict[str, Any] | None = None) -> str:
        """The prompt, with the flag that changes the model's default mode on a line before it."""
        wanted = self.thinking(reasoning_params)
        flag: str | None = None
        if wanted != self.default_enabled:
            flag = self.enable_flag if wanted else self.disable_flag
        return f"{flag}\n{prompt}" if flag else prompt

    def get_generation_params(self, reasoning_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """No generation parameters: the prompt carries the flag."""
        return {}
