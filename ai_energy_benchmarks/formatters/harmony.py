"""gpt-oss models and the Harmony response format.

The chat template of gpt-oss reads ``reasoning_effort`` (low, medium, high) and writes it into the system message
("Reasoning: high"); servers such as vLLM take the same value as the top-level ``reasoning_effort`` field of a chat
request. For a plain completions endpoint, :meth:`HarmonyFormatter.render` writes the Harmony text itself.
"""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.formatters.base import FormattedPrompt, Formatter

EFFORTS = ("low", "medium", "high")


class HarmonyFormatter(Formatter):
    """Formats prompts for gpt-oss with a reasoning effort."""

    family = "harmony"

    def effort(self, reasoning: bool, reasoning_params: dict[str, Any] | None) -> str:
        """The effort to request: ``reasoning_params.reasoning_effort``, else the family default (or low when off)."""
        params = reasoning_params or {}
        value = params.get("reasoning_effort")
        if value is None:
            value = self.options.get("default_effort", "medium") if reasoning else "low"
        value = str(value).strip().lower()
        if value not in EFFORTS:
            raise ConfigError(
                f"scenario.reasoning_params.reasoning_effort: expected one of {', '.join(EFFORTS)}, got {value!r}"
            )
        return value

    def format(
        self, prompt: str, reasoning: bool = False, reasoning_params: dict[str, Any] | None = None
    ) -> FormattedPrompt:
        self._refuse_budget(reasoning_params)
        effort = self.effort(reasoning, reasoning_params)
        return FormattedPrompt(
            messages=[{"role": "user", "content": prompt}],
            chat_template_kwargs={"reasoning_effort": effort},
            request_fields={"reasoning_effort": effort},
        )

    def format_prompt(self, prompt: str, reasoning_params: dict[str, Any] | None = None) -> str:
        """The Harmony text (older string API): effort from ``reasoning_params``, high by default as before."""
        params = {"reasoning_effort": "high"} | dict(reasoning_params or {})
        return self.render(prompt, True, params)

    def get_generation_params(self, reasoning_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Harmony needs no generation parameters beyond the prompt text (older API)."""
        return {}

    def render(self, prompt: str, reasoning: bool = False, reasoning_params: dict[str, Any] | None = None) -> str:
        """The Harmony prompt text for a completions endpoint, ending where the assistant starts to write."""
        effort = self.effort(reasoning, reasoning_params)
        system = (
            "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
            f"Reasoning: {effort}\n\n# Valid channels: analysis, commentary, final. "
            "Channel must be included for every message.<|end|>"
        )
        return f"{system}<|start|>user<|message|>{prompt}<|end|><|start|>assistant"
