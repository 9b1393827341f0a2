"""What a formatter produces, and the formatter families.

A formatter turns one prompt into the same request for every backend:

- ``messages``: the chat messages (system message first when the family needs one);
- ``chat_template_kwargs``: extra variables for the chat template (a local tokenizer's ``apply_chat_template`` or a
  server's ``chat_template_kwargs`` request field);
- ``request_fields``: other top-level request fields a server understands (e.g. ``reasoning_effort``);
- ``assistant_prefix``: text the assistant turn must start with (after the template's generation prompt).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.exceptions import ConfigError


@dataclass(frozen=True)
class FormattedPrompt:
    """One prompt ready for a backend (see the module docstring)."""

    messages: list[dict[str, str]]
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    request_fields: dict[str, Any] = field(default_factory=dict)
    assistant_prefix: str = ""

    def server_fields(self) -> dict[str, Any]:
        """Top-level fields of a chat-completions request (never an ``extra_body`` wrapper)."""
        fields = dict(self.request_fields)
        if self.chat_template_kwargs:
            fields["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return fields


class ReasoningFormatter(ABC):
    """ai_energy_benchmarks 0.0.4's formatter interface (kept for callers that subclass or check it).

    Every formatter here is one: ours (:class:`Formatter` and its families) and 0.0.4's own classes
    (``formatters.parameter``, ``formatters.prefix``, ``formatters.system_prompt``; see docs/compat-0.0.4.md).
    """

    @abstractmethod
    def format_prompt(self, prompt: str, reasoning_params: dict[str, Any] | None = None) -> str:
        """The prompt as one string with the reasoning instructions applied."""

    @abstractmethod
    def get_generation_params(self, reasoning_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Extra parameters for generation (``model.generate()`` or the server request)."""

    def supports_backend(self, backend_type: str) -> bool:
        """Whether this formatter works with ``backend_type`` (``pytorch`` or ``vllm``): all do, as in 0.0.4."""
        return True


class Formatter(ReasoningFormatter):
    """The plain family: one user message, no reasoning switch."""

    family = "plain"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})

    def format(
        self, prompt: str, reasoning: bool = False, reasoning_params: dict[str, Any] | None = None
    ) -> FormattedPrompt:
        """Build the request for ``prompt``; ``reasoning`` turns the model's thinking mode on."""
        self._refuse_budget(reasoning_params)
        return FormattedPrompt(messages=[{"role": "user", "content": prompt}])

    def _refuse_budget(self, reasoning_params: dict[str, Any] | None) -> None:
        """A thinking budget this family cannot pass on would be silently ignored: refuse it instead."""
        if (reasoning_params or {}).get("thinking_budget") is not None:
            raise ConfigError(
                f"scenario.reasoning_params.thinking_budget: the {self.family} reasoning family has no thinking "
                "budget parameter"
            )

    def describe(self) -> dict[str, Any]:
        """Family and options (for the report)."""
        return {"family": self.family, **self.options}

    # -- the older string API (kept for callers such as AIEnergyScore) -------------------------------------------
    @staticmethod
    def _reasoning_from_params(reasoning_params: dict[str, Any] | None) -> bool:
        params = reasoning_params or {}
        if "enable_thinking" in params:
            return bool(params["enable_thinking"])
        return str(params.get("reasoning_effort", "")).lower() in ("medium", "high")

    def format_prompt(self, prompt: str, reasoning_params: dict[str, Any] | None = None) -> str:
        """The prompt as one string for a plain completion call (older API; backends use :meth:`format`)."""
        formatted = self.format(prompt, self._reasoning_from_params(reasoning_params), reasoning_params)
        system = [m["content"] for m in formatted.messages if m["role"] == "system"]
        head = "\n".join(system) + "\n" if system else ""
        return f"{head}{prompt}{formatted.assistant_prefix}" if formatted.assistant_prefix else f"{head}{prompt}"

    def get_generation_params(self, reasoning_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Extra generation parameters (older API): the chat-template variables this family uses."""
        return dict(
            self.format("", self._reasoning_from_params(reasoning_params), reasoning_params).chat_template_kwargs
        )

    def supports_backend(self, backend_type: str) -> bool:
        """Every family works with both backends."""
        return backend_type in ("pytorch", "vllm")


class SystemFlagFormatter(Formatter):
    """Reasoning switched by a flag (e.g. ``/think`` / ``/no_think``) in the system message."""

    family = "system_flag"

    def format(
        self, prompt: str, reasoning: bool = False, reasoning_params: dict[str, Any] | None = None
    ) -> FormattedPrompt:
        self._refuse_budget(reasoning_params)
        flag = self.options.get("on_flag", "/think") if reasoning else self.options.get("off_flag", "/no_think")
        system = str((reasoning_params or {}).get("system_prompt", "")).strip()
        content = f"{flag}\n{system}" if system else str(flag)
        return FormattedPrompt(messages=[{"role": "system", "content": content}, {"role": "user", "content": prompt}])


class TemplateParamFormatter(Formatter):
    """Reasoning switched by a chat-template variable (e.g. ``enable_thinking``), optionally with a budget."""

    family = "template_param"

    def format(
        self, prompt: str, reasoning: bool = False, reasoning_params: dict[str, Any] | None = None
    ) -> FormattedPrompt:
        params = reasoning_params or {}
        kwargs: dict[str, Any] = {str(self.options.get("param", "enable_thinking")): bool(reasoning)}
        budget = params.get("thinking_budget")
        if budget is not None:
            budget_param = self.options.get("budget_param")
            if not budget_param:
                self._refuse_budget(params)
            if isinstance(budget, str) and budget.strip().isdigit():  # as a command line gives it
                budget = int(budget)
            if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
                raise ConfigError(
                    "scenario.reasoning_params.thinking_budget: expected a positive whole number of tokens, "
                    f"got {budget!r}"
                )
            kwargs[str(budget_param)] = budget
        return FormattedPrompt(messages=[{"role": "user", "content": prompt}], chat_template_kwargs=kwargs)


class ThinkPrefixFormatter(Formatter):
    """Reasoning models that open their answer with a ``<think>`` tag, placed after the generation prompt."""

    family = "think_prefix"

    def format(
        self, prompt: str, reasoning: bool = False, reasoning_params: dict[str, Any] | None = None
    ) -> FormattedPrompt:
        self._refuse_budget(reasoning_params)
        prefix = str(self.options.get("prefix", "<think>\n")) if reasoning else ""
        return FormattedPrompt(messages=[{"role": "user", "content": prompt}], assistant_prefix=prefix)

    def can_render(self) -> bool:
        """Whether this family knows its model's template text for a completions endpoint (``completions_text``)."""
        return bool(self.options.get("completions_text"))

    def render(self, prompt: str, reasoning: bool = False, reasoning_params: dict[str, Any] | None = None) -> str:
        """The prompt as the model's chat template writes one user turn, then the ``<think>`` prefix when reasoning,
        for a completions endpoint (the prefix is never glued to the bare prompt)."""
        template = self.options.get("completions_text")
        if not template:
            raise ConfigError(
                "scenario.reasoning: the think_prefix format has no completions text for this model (its chat "
                "template is needed to place the <think> prefix); set backend.api=chat or auto"
            )
        formatted = self.format(prompt, reasoning, reasoning_params)
        return str(template).replace("{prompt}", prompt) + formatted.assistant_prefix
