"""Request shaping for the HTTP backend: the body every request shares, and each prompt's part of it.

What is sent beyond the OpenAI API (``ignore_eos``, ``min_tokens``, ``continue_final_message``,
``add_generation_prompt``, ``chat_template_kwargs``) depends on the server's profile (``backends/servers/``). An
extension the configuration asks for by name (``backend.ignore_eos: true``, a field in ``generate_kwargs``, a
reasoning format that needs one) on a server that does not read it is a :class:`ConfigError`; one the backend would
only derive from the workload (``min_tokens`` from ``min_new_tokens``, ``ignore_eos`` for a fixed length) is not sent,
and the backend logs and reports it (``server_profile.not_sent``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.http_endpoint import API_PATHS
from ai_energy_benchmarks.backends.servers import get_profile
from ai_energy_benchmarks.backends.servers.base import EXTENSIONS, ServerProfile
from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.formatters.base import Formatter, ThinkPrefixFormatter
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter

logger = logging.getLogger(__name__)

#: Body keys the backend sets itself; generate_kwargs may not override them.
_RESERVED_KEYS = frozenset({"model", "prompt", "messages", "stream", "stream_options"})

#: Request fields the backend derives from other settings: given directly they would override the workload unseen.
_DERIVED_FIELDS = {
    "max_tokens": "scenario.generate_kwargs.max_new_tokens",
    "min_tokens": "scenario.generate_kwargs.min_new_tokens",
    "ignore_eos": "backend.ignore_eos",
}


def field_origins(generate_kwargs: Mapping[str, Any]) -> dict[str, str]:
    """Where each request field in ``generate_kwargs`` was set: its config key (``extra_body`` fields included)."""
    origins = {key: f"scenario.generate_kwargs.{key}" for key in generate_kwargs if key != "extra_body"}
    extra = generate_kwargs.get("extra_body")
    if isinstance(extra, dict):
        origins |= {key: f"scenario.generate_kwargs.extra_body.{key}" for key in extra}
    return origins


def fixed_length(generate_kwargs: Mapping[str, Any]) -> bool:
    """Whether the workload asks for a fixed output length (``min_new_tokens == max_new_tokens``)."""
    max_new, min_new = generate_kwargs.get("max_new_tokens"), generate_kwargs.get("min_new_tokens")
    return max_new is not None and min_new is not None and int(min_new) == int(max_new)


def resolve_ignore_eos(configured: bool | None, generate_kwargs: Mapping[str, Any]) -> bool:
    """``backend.ignore_eos`` as asked: the configured value, or (unset) true exactly for a fixed output length."""
    return fixed_length(generate_kwargs) if configured is None else configured


def _unsupported(profile: ServerProfile, key: str) -> str:
    readers = ", ".join(sorted(p for p in ("vllm", "sglang") if get_profile(p).supports(key)))
    return (
        f"'{key}' is a request extension the {profile.name} server profile ({profile.title}) does not send: "
        f"the server would not read it (servers that do: {readers}; see backend.server)"
    )


def build_base_body(
    api: str,
    model: str,
    generate_kwargs: Mapping[str, Any],
    ignore_eos: bool | None,
    profile: ServerProfile | None = None,
    not_sent: set[str] | None = None,
) -> dict[str, Any]:
    """The request body without the prompt: streaming with usage, ``max_tokens`` (and, where ``profile`` reads
    them, ``min_tokens`` and ``ignore_eos``) from max/min_new_tokens, temperature 0 unless ``do_sample``, other keys
    passed through top-level. ``ignore_eos`` unset is sent only for a fixed length, so that a model with a length
    range stops at its end-of-sequence token. ``profile`` defaults to vLLM's; derived extensions it does not read are
    added to ``not_sent``."""
    profile = profile if profile is not None else get_profile("vllm")
    kwargs = dict(generate_kwargs)
    extra = kwargs.pop("extra_body", None)
    if extra is not None:
        # The OpenAI client merges `extra_body` into the request body; a server never reads a field of that name.
        if not isinstance(extra, dict):
            raise ConfigError(
                f"scenario.generate_kwargs.extra_body: expected a mapping of request fields, got {type(extra).__name__}"
            )
        clash = sorted(set(extra) & set(kwargs))
        if clash:
            raise ConfigError(f"scenario.generate_kwargs.extra_body.{clash[0]}: also set in scenario.generate_kwargs")
        kwargs.update(extra)
    origin = field_origins(generate_kwargs)
    for key, setting in _DERIVED_FIELDS.items():
        if key in kwargs:
            raise ConfigError(f"{origin[key]}: the vllm backend sets '{key}' from {setting}; set that instead")
    foreign = sorted(key for key in EXTENSIONS & set(kwargs) if not profile.supports(key))
    if foreign:
        raise ConfigError(f"{origin[foreign[0]]}: {_unsupported(profile, foreign[0])}")
    max_new = kwargs.pop("max_new_tokens", None)
    min_new = kwargs.pop("min_new_tokens", None)
    do_sample = bool(kwargs.pop("do_sample", False))
    temperature = kwargs.get("temperature")
    if not do_sample and temperature not in (None, 0, 0.0):
        raise ConfigError(
            f"{origin['temperature']}: {temperature} with greedy decoding (do_sample false, sent as temperature 0); "
            "set scenario.generate_kwargs.do_sample: true to sample"
        )
    beams = kwargs.pop("num_beams", None)
    if beams not in (None, 1):
        raise ConfigError(
            "scenario.generate_kwargs.num_beams: beam search is not part of the OpenAI streaming API; "
            "the vllm backend supports num_beams=1 only"
        )
    reserved = sorted(_RESERVED_KEYS & set(kwargs))
    if reserved:
        raise ConfigError(f"{origin[reserved[0]]}: '{reserved[0]}' is set by the vllm backend itself")
    body: dict[str, Any] = {"model": model, "stream": True, "stream_options": {"include_usage": True}}
    if max_new is not None:
        body["max_tokens"] = int(max_new)
    if min_new:
        if profile.supports("min_tokens"):
            body["min_tokens"] = int(min_new)
        elif not_sent is not None:
            not_sent.add("min_tokens")
    if resolve_ignore_eos(ignore_eos, {"max_new_tokens": max_new, "min_new_tokens": min_new}):
        if profile.supports("ignore_eos"):
            body["ignore_eos"] = True
        elif ignore_eos is True:
            raise ConfigError(f"backend.ignore_eos: {_unsupported(profile, 'ignore_eos')}")
        elif not_sent is not None:
            not_sent.add("ignore_eos")
    if not do_sample:
        kwargs["temperature"] = 0.0
    body.update(kwargs)
    if api not in API_PATHS:
        raise ConfigError(f"backend.api: unknown API '{api}' (choose {', '.join(API_PATHS)})")
    return body


class RequestShaper:
    """Each prompt's part of a request (``prompt`` text, or chat ``messages`` with the reasoning format's fields)
    and the shared body, for one API, model, reasoning format and server profile."""

    def __init__(self, backend: OpenAIHTTPConfig, scenario: ScenarioConfig, api: str, profile: ServerProfile) -> None:
        self._backend = backend
        self._scenario = scenario
        self.api = api
        self.chat = api == "chat"
        self.profile = profile
        #: This backend's own prefix-cache salt prefix (:meth:`pass_body`): random, so that no two runs share one.
        self.run_token = secrets.token_hex(8)
        #: Derived extensions the profile does not read (so not sent), e.g. ``ignore_eos`` for a fixed length.
        self.not_sent: set[str] = set()
        base_body = self.base_body(scenario.generate_kwargs.as_kwargs())
        self._user_template_kwargs: dict[str, Any] = dict(base_body.get("chat_template_kwargs") or {})
        self._user_salt = "cache_salt" in base_body
        self.formatter = self._choose_formatter()
        self._check_reasoning_fields(base_body)

    def base_body(self, generate_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The shared body for ``generate_kwargs`` (see :func:`build_base_body`)."""
        backend = self._backend
        return build_base_body(
            self.api, backend.model, generate_kwargs, backend.ignore_eos, self.profile, self.not_sent
        )

    def pass_body(self, base_body: dict[str, Any], label: str) -> dict[str, Any]:
        """``base_body`` for the pass named ``label``, its prefix-cache lookups salted (``cache_salt``) with this
        backend's own token and the label, so that the pass finds in the server's prefix cache only what it sent
        itself: never the warm-up's or the prefill pass's prompts, nor another run's. Only on a server that reads
        ``cache_salt`` (vLLM), unless ``backend.isolate_prefix_cache`` is false or the user set a ``cache_salt``."""
        if (
            not self._backend.isolate_prefix_cache
            or not self.profile.supports("cache_salt")
            or "cache_salt" in base_body
        ):
            return base_body
        return {**base_body, "cache_salt": f"aieb-{self.run_token}-{label}"}

    def cache_isolation(self) -> str:
        """How the passes' prefix-cache lookups are kept apart (:meth:`pass_body`), for the report."""
        if self._user_salt:
            return "the user's cache_salt (scenario.generate_kwargs): passes share it"
        if not self.profile.supports("cache_salt"):
            return f"none: {self.profile.title} reads no cache_salt; passes share the server's prefix cache"
        if not self._backend.isolate_prefix_cache:
            return "off (backend.isolate_prefix_cache: false): passes share the server's prefix cache"
        return "per pass: cache_salt of this run and pass"

    def prompt_format(self) -> dict[str, Any]:
        """How prompts are sent (``describe()["prompt_format"]``): the server's chat template or plain text, the
        reasoning switch and the formatter."""
        return {
            "chat_template": "server's (chat endpoint)" if self.chat else False,
            "reasoning": self._scenario.reasoning,
            "formatter": self.formatter.describe(),
        }

    def _choose_formatter(self) -> Formatter:
        """The reasoning formatter for the model, checked against the API (chat messages or plain text)."""
        from ai_energy_benchmarks.formatters.registry import FormatterRegistry

        scenario = self._scenario
        formatter = FormatterRegistry().formatter_for(self._backend.model, scenario.reasoning_format)
        if scenario.chat_template is True and not self.chat:
            raise ConfigError(
                "scenario.chat_template is true: the vllm backend sends chat messages through the server's chat "
                "endpoint; set backend.api=chat"
            )
        if scenario.chat_template is False and self.chat:
            raise ConfigError(
                "scenario.chat_template is false (plain text) but backend.api is chat, whose endpoint always applies "
                "the server's chat template; set backend.api=completions"
            )
        if not self.chat and scenario.reasoning and formatter.family in ("system_flag", "template_param"):
            raise ConfigError(
                f"scenario.reasoning: the {formatter.family} reasoning switch needs chat messages; "
                "set backend.api=chat (or leave it auto)"
            )
        if (
            not self.chat
            and scenario.reasoning
            and isinstance(formatter, ThinkPrefixFormatter)
            and not formatter.can_render()
        ):
            raise ConfigError(
                "scenario.reasoning: the think_prefix format needs the model's chat template around the <think> "
                "prefix; set backend.api=chat (or leave it auto)"
            )
        formatter.format("", scenario.reasoning, scenario.reasoning_params)  # a bad reasoning option fails now
        return formatter

    def _check_reasoning_fields(self, base_body: dict[str, Any]) -> None:
        """A request field set in generate_kwargs must not contradict the one the reasoning format sends, and the
        server must read the fields the format needs."""
        if not self.chat:
            return
        scenario = self._scenario
        formatted = self.formatter.format("", scenario.reasoning, scenario.reasoning_params)
        fields = formatted.server_fields()
        family = self.formatter.family
        needed = set(fields) & EXTENSIONS
        if formatted.assistant_prefix:
            needed.add("continue_final_message")
        for key in sorted(needed):
            if not self.profile.supports(key):
                raise ConfigError(
                    f"scenario.reasoning: the {family} reasoning format needs {_unsupported(self.profile, key)}"
                )
        origin = field_origins(scenario.generate_kwargs.as_kwargs())
        for key, value in fields.items():
            if key == "chat_template_kwargs":
                for name, wanted in value.items():
                    given = self._user_template_kwargs.get(name, wanted)
                    if given != wanted:
                        raise ConfigError(
                            f"{origin.get(key, 'scenario.generate_kwargs.' + key)}.{name}: {given!r} contradicts the "
                            f"{family} reasoning format's {wanted!r}; set scenario.reasoning / reasoning_params instead"
                        )
            elif key in base_body and base_body[key] != value:
                raise ConfigError(
                    f"{origin.get(key, 'scenario.generate_kwargs.' + key)}: {base_body[key]!r} contradicts the "
                    f"{family} reasoning format's {value!r}; set scenario.reasoning / reasoning_params instead"
                )

    def request_fields(self, prompt: str) -> dict[str, Any]:
        """The prompt's part of a request body: ``prompt`` text, or ``messages`` and the reasoning fields."""
        scenario = self._scenario
        formatter = self.formatter
        formatted = formatter.format(prompt, scenario.reasoning, scenario.reasoning_params)
        if not self.chat:
            if isinstance(formatter, HarmonyFormatter) or (
                isinstance(formatter, ThinkPrefixFormatter) and formatter.can_render()
            ):
                # The model's own template text around the prompt: a <think> prefix never follows the bare prompt.
                return {"prompt": formatter.render(prompt, scenario.reasoning, scenario.reasoning_params)}
            return {"prompt": prompt + formatted.assistant_prefix}
        fields: dict[str, Any] = {"messages": list(formatted.messages), **formatted.server_fields()}
        if "chat_template_kwargs" in fields and self._user_template_kwargs:
            fields["chat_template_kwargs"] = self._user_template_kwargs | fields["chat_template_kwargs"]
        if formatted.assistant_prefix:
            # The server continues a final assistant message instead of opening a new turn.
            fields["messages"].append({"role": "assistant", "content": formatted.assistant_prefix})
            if self.profile.supports("add_generation_prompt"):
                fields["add_generation_prompt"] = False
            fields["continue_final_message"] = True
        return fields

    def render(self, prompt: str) -> str | dict[str, Any]:
        """What is sent for ``prompt``: the completions text, or the chat fields (messages, reasoning options)."""
        fields = self.request_fields(prompt)
        return str(fields["prompt"]) if not self.chat else fields


def log_not_sent(shaper: RequestShaper, warned: set[str]) -> None:
    """Log each derived extension ``shaper``'s server profile leaves out (``shaper.not_sent``) once: ``warned``
    holds those already logged and gains the rest."""
    profile = shaper.profile
    for key in sorted(shaper.not_sent - warned):
        warned.add(key)
        logger.warning(
            "the %s server profile does not send '%s' (%s does not read it): %s",
            profile.name,
            key,
            profile.title,
            "output lengths are the model's own, not fixed"
            if key == "ignore_eos"
            else "the server may stop before min_new_tokens",
        )
