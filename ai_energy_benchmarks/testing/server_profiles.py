"""How the test server (:mod:`.sse_server`) speaks as each OpenAI-compatible server: its ``/metrics`` exposition,
its info endpoint, its ``/v1/models`` ``owned_by`` and which request extensions it reads.

Facts as in ``backends/servers/`` (vLLM observed; SGLang and TGI from their documentation and source; the plain
OpenAI API answers 400 "Unrecognized request argument" to a field it does not know).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Request fields beyond the OpenAI API (as ``backends.servers.base.EXTENSIONS``).
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


@dataclass
class Counters:
    """The token and request counters behind ``/metrics``."""

    active: int = 0
    #: Requests queued for a generation slot (the server's ``capacity``), the ``num_requests_waiting`` gauge.
    waiting: int = 0
    generation_tokens: int = 0
    prompt_tokens: int = 0
    successes: int = 0
    #: The server's own per-request times summed (its prefill and decode time histograms' ``_sum``).
    prefill_time_s: float = 0.0
    decode_time_s: float = 0.0
    #: Prefix-cache tokens queried and hit; speculative-decoding drafts, draft tokens and accepted tokens (None:
    #: speculative decoding off, the series absent, as vLLM leaves them out).
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0
    spec_drafts: int | None = None
    spec_draft_tokens: int | None = None
    spec_accepted_tokens: int | None = None


@dataclass(frozen=True)
class Speaks:
    """One server's observable manners."""

    name: str
    #: Extensions it reads (others are not read: dropped unseen, or refused where ``rejects_unknown``).
    reads: frozenset[str]
    #: Answers 400 to a request field it does not know (the OpenAI API does; vLLM, SGLang and TGI do not).
    rejects_unknown: bool
    #: ``GET`` path of its info/version object (None: none).
    info_path: str | None
    has_health: bool = True

    def owned_by(self, model: str) -> str:
        """``owned_by`` in ``/v1/models``."""
        return {"vllm": "vllm", "sglang": "sglang", "tgi": model, "openai": "system"}[self.name]

    def info(self, model: str, max_model_len: int) -> dict[str, Any]:
        """The JSON at :attr:`info_path`."""
        if self.name == "tgi":
            return {"model_id": model, "max_total_tokens": max_model_len, "version": "fake-tgi-3.0"}
        if self.name == "sglang":
            return {"model_path": model, "version": "fake-sglang-0.5"}
        return {"version": "fake-0.1"}

    def metrics(self, models: list[str], counters: Counters) -> list[str]:
        """The Prometheus text lines of ``/metrics`` (the first model has all the traffic)."""
        if self.name == "tgi":
            return _tgi_metrics(counters)
        lines: list[str] = []
        for model in models:
            share = 1.0 if model == models[0] else 0.0
            if self.name == "sglang":
                lines += _sglang_metrics(model, counters, share)
            else:
                lines += _vllm_metrics(model, counters, share)
        return lines


SPEAKS = {
    "vllm": Speaks("vllm", EXTENSIONS, rejects_unknown=False, info_path="/version"),
    "sglang": Speaks(
        "sglang",
        frozenset({"ignore_eos", "min_tokens", "continue_final_message", "chat_template_kwargs"}),
        rejects_unknown=False,
        info_path="/get_server_info",
    ),
    "tgi": Speaks("tgi", frozenset(), rejects_unknown=False, info_path="/info"),
    "openai": Speaks("openai", frozenset(), rejects_unknown=True, info_path=None, has_health=False),
}


def _vllm_metrics(model: str, c: Counters, share: float) -> list[str]:
    labels = f'engine="0",model_name="{model}"'
    return [
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{labels}}} {float(c.active) * share}",
        f"vllm:num_requests_waiting{{{labels}}} {float(c.waiting) * share}",
        f"vllm:kv_cache_usage_perc{{{labels}}} {min(1.0, c.active / 100) * share}",
        "# TYPE vllm:generation_tokens_total counter",
        f"vllm:generation_tokens_total{{{labels}}} {float(c.generation_tokens) * share}",
        f"vllm:generation_tokens_created{{{labels}}} 1.7e9",
        f"vllm:prompt_tokens_total{{{labels}}} {float(c.prompt_tokens) * share}",
        f'vllm:request_success_total{{engine="0",finished_reason="length",model_name="{model}"}} '
        f"{float(c.successes) * share}",
        f'vllm:time_to_first_token_seconds_bucket{{{labels},le="0.1"}} 1.0',
        "# TYPE vllm:request_prefill_time_seconds histogram",
        f'vllm:request_prefill_time_seconds_bucket{{{labels},le="+Inf"}} {float(c.successes) * share}',
        f"vllm:request_prefill_time_seconds_sum{{{labels}}} {c.prefill_time_s * share}",
        f"vllm:request_prefill_time_seconds_count{{{labels}}} {float(c.successes) * share}",
        "# TYPE vllm:request_decode_time_seconds histogram",
        f'vllm:request_decode_time_seconds_bucket{{{labels},le="+Inf"}} {float(c.successes) * share}',
        f"vllm:request_decode_time_seconds_sum{{{labels}}} {c.decode_time_s * share}",
        f"vllm:request_decode_time_seconds_count{{{labels}}} {float(c.successes) * share}",
        "# TYPE vllm:prefix_cache_queries counter",
        f"vllm:prefix_cache_queries_total{{{labels}}} {float(c.prefix_cache_queries) * share}",
        "# TYPE vllm:prefix_cache_hits counter",
        f"vllm:prefix_cache_hits_total{{{labels}}} {float(c.prefix_cache_hits) * share}",
        *_spec_decode_metrics(labels, c, share),
    ]


def _spec_decode_metrics(labels: str, c: Counters, share: float) -> list[str]:
    if c.spec_drafts is None or c.spec_draft_tokens is None or c.spec_accepted_tokens is None:
        return []
    return [
        "# TYPE vllm:spec_decode_num_drafts counter",
        f"vllm:spec_decode_num_drafts_total{{{labels}}} {float(c.spec_drafts) * share}",
        "# TYPE vllm:spec_decode_num_draft_tokens counter",
        f"vllm:spec_decode_num_draft_tokens_total{{{labels}}} {float(c.spec_draft_tokens) * share}",
        "# TYPE vllm:spec_decode_num_accepted_tokens counter",
        f"vllm:spec_decode_num_accepted_tokens_total{{{labels}}} {float(c.spec_accepted_tokens) * share}",
    ]


def _sglang_metrics(model: str, c: Counters, share: float) -> list[str]:
    labels = f'model_name="{model}"'
    return [
        "# TYPE sglang:num_running_reqs gauge",
        f"sglang:num_running_reqs{{{labels}}} {float(c.active) * share}",
        "# TYPE sglang:num_queue_reqs gauge",
        f"sglang:num_queue_reqs{{{labels}}} 0.0",
        "# TYPE sglang:token_usage gauge",
        f"sglang:token_usage{{{labels}}} {min(1.0, c.active / 100) * share}",
        "# TYPE sglang:generation_tokens_total counter",
        f"sglang:generation_tokens_total{{{labels}}} {float(c.generation_tokens) * share}",
        "# TYPE sglang:prompt_tokens_total counter",
        f"sglang:prompt_tokens_total{{{labels}}} {float(c.prompt_tokens) * share}",
        "# TYPE sglang:num_requests_total counter",
        f"sglang:num_requests_total{{{labels}}} {float(c.successes) * share}",
        "# TYPE sglang:time_to_first_token_seconds histogram",
        f'sglang:time_to_first_token_seconds_bucket{{le="0.1",{labels}}} {float(c.successes) * share}',
        f'sglang:time_to_first_token_seconds_bucket{{le="+Inf",{labels}}} {float(c.successes) * share}',
        f"sglang:time_to_first_token_seconds_sum{{{labels}}} {0.01 * c.successes * share}",
        f"sglang:time_to_first_token_seconds_count{{{labels}}} {float(c.successes) * share}",
    ]


def _tgi_metrics(c: Counters) -> list[str]:
    return [
        "# TYPE tgi_batch_current_size gauge",
        f"tgi_batch_current_size {float(c.active)}",
        "# TYPE tgi_queue_size gauge",
        "tgi_queue_size 0",
        "# TYPE tgi_request_success counter",
        f"tgi_request_success {c.successes}",
        "# TYPE tgi_request_count counter",
        f"tgi_request_count {c.successes}",
        "# TYPE tgi_request_generated_tokens histogram",
        f'tgi_request_generated_tokens_bucket{{le="+Inf"}} {c.successes}',
        f"tgi_request_generated_tokens_sum {c.generation_tokens}",
        f"tgi_request_generated_tokens_count {c.successes}",
        "# TYPE tgi_request_input_length histogram",
        f'tgi_request_input_length_bucket{{le="+Inf"}} {c.successes}',
        f"tgi_request_input_length_sum {c.prompt_tokens}",
        f"tgi_request_input_length_count {c.successes}",
        "# TYPE tgi_request_duration histogram",
        f'tgi_request_duration_bucket{{le="+Inf"}} {c.successes}',
        f"tgi_request_duration_sum {0.05 * c.successes}",
        f"tgi_request_duration_count {c.successes}",
    ]
