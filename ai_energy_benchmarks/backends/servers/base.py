"""What makes one OpenAI-compatible server different from another: its :class:`ServerProfile`.

The HTTP backend speaks the OpenAI completions/chat API to every server. A profile says what it may add on top
(request extensions such as ``ignore_eos``), where the server says it is ready, where its version is, and which
Prometheus series on ``/metrics`` carry its view of the run. One module per server (``vllm.py``, ``sglang.py``,
``tgi.py``, ``openai.py``) defines one profile; ``servers/__init__.py`` registers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Request fields beyond the OpenAI API that the backend may send: ``ignore_eos`` and ``min_tokens`` (fixed or
#: minimum output length), ``continue_final_message`` and ``add_generation_prompt`` (continue an assistant prefix),
#: ``chat_template_kwargs`` (options for the server's chat template, e.g. ``enable_thinking``).
EXTENSIONS = frozenset(
    {
        "ignore_eos",
        "min_tokens",
        "continue_final_message",
        "add_generation_prompt",
        "chat_template_kwargs",
        "cache_salt",
    }
)


@dataclass(frozen=True)
class MetricNames:
    """The Prometheus series of one server that the backend reads (None where the server has no such series).

    Gauges are sampled every second; counters (and histogram ``_sum``/``_count``) are read before and after a run.
    ``model_label`` is the label naming the served model (None: the server serves one model, every series counts).
    """

    prefix: str
    running: str | None = None
    waiting: str | None = None
    cache_usage: str | None = None
    generation_tokens: str | None = None
    prompt_tokens: str | None = None
    #: Counters reported as deltas over a run (the token counters first).
    counters: tuple[str, ...] = ()
    #: Histograms whose mean over a run (delta of ``_sum`` / delta of ``_count``) is reported, by short name.
    histograms: Mapping[str, str] = field(default_factory=dict)
    model_label: str | None = "model_name"
    #: Counters of the server features that shift energy per token unseen (None: the server has no such series):
    #: prefix-cache queried and hit tokens, speculative-decoding drafts, draft tokens and accepted tokens.
    prefix_cache_queries: str | None = None
    prefix_cache_hits: str | None = None
    spec_decode_drafts: str | None = None
    spec_decode_draft_tokens: str | None = None
    spec_decode_accepted_tokens: str | None = None

    @property
    def feature_counters(self) -> tuple[str, ...]:
        """The feature counters this server has (read before and after every run, like :attr:`counters`)."""
        names = (
            self.prefix_cache_queries,
            self.prefix_cache_hits,
            self.spec_decode_drafts,
            self.spec_decode_draft_tokens,
            self.spec_decode_accepted_tokens,
        )
        return tuple(name for name in names if name is not None)

    @property
    def gauges(self) -> dict[str, str]:
        """The gauges by their report key (``num_requests_running``, ``num_requests_waiting``,
        ``kv_cache_usage_perc``), for those this server has."""
        named = {
            "num_requests_running": self.running,
            "num_requests_waiting": self.waiting,
            "kv_cache_usage_perc": self.cache_usage,
        }
        return {key: name for key, name in named.items() if name is not None}

    @property
    def sampled(self) -> tuple[str, ...]:
        """Series kept in every 1 s sample: the gauges and the token counters."""
        names = [*self.gauges.values(), self.generation_tokens, self.prompt_tokens]
        return tuple(name for name in names if name is not None)


@dataclass
class ServerFacts:
    """What the server answered to the backend's checks, for detection (None: no answer or not JSON)."""

    metrics_text: str | None = None
    models: list[dict[str, Any]] | None = None
    info: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServerProfile:
    """One OpenAI-compatible server: its request extensions, endpoints, metrics and how to recognise it."""

    name: str
    #: A few words for logs and reports.
    title: str
    #: The request fields of :data:`EXTENSIONS` this server reads.
    extensions: frozenset[str]
    #: ``GET`` path answering 200 once the server is ready (None: ``/v1/models``).
    health_path: str | None
    #: ``GET`` path of a JSON object whose ``version`` key is the server's version (None: not asked).
    version_path: str | None
    metrics: MetricNames | None
    #: Where the facts above come from.
    sources: tuple[str, ...] = ()
    #: ``POST`` path counting a prompt's tokens with the served model's tokenizer (vLLM's ``/tokenize``: JSON
    #: ``{"model", "prompt", "add_special_tokens"}`` in, ``{"count", "tokens", ...}`` out); None: the server has none.
    tokenize_path: str | None = None

    def recognise(self, facts: ServerFacts) -> str | None:
        """Why ``facts`` look like this server (a short reason), or None."""
        return None

    def supports(self, field_name: str) -> bool:
        """Whether this server reads the request extension ``field_name``."""
        return field_name in self.extensions

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary for the report."""
        return {
            "name": self.name,
            "title": self.title,
            "extensions": sorted(self.extensions),
            "health_path": self.health_path,
            "metrics_prefix": self.metrics.prefix if self.metrics is not None else None,
            "tokenize_path": self.tokenize_path,
        }


def metric_prefix_reason(facts: ServerFacts, prefix: str) -> str | None:
    """A reason when ``/metrics`` has a series named with ``prefix`` (at the start of a line), else None."""
    text = facts.metrics_text
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith(prefix):
            return f"/metrics has '{prefix}' series"
    return None


def owned_by_reason(facts: ServerFacts, owner: str) -> str | None:
    """A reason when ``/v1/models`` names ``owner`` in ``owned_by``, else None."""
    if facts.models and any(str(m.get("owned_by", "")).lower() == owner for m in facts.models):
        return f"/v1/models says owned_by '{owner}'"
    return None
