"""SGLang's OpenAI-compatible server (``python -m sglang.launch_server``, metrics with ``--enable-metrics``).

Facts from SGLang's documentation and source: "Production Metrics" (docs.sglang.io/references/production_metrics)
for the ``sglang:`` series labelled ``model_name``; ``ChatCompletionRequest`` in
``python/sglang/srt/entrypoints/openai/protocol.py`` for the extensions it reads (``ignore_eos``, ``min_tokens``,
``continue_final_message``, ``chat_template_kwargs``; no ``add_generation_prompt``); ``ModelCard.owned_by`` is
``"sglang"``; ``http_server.py`` serves ``/health`` and ``/get_server_info`` (with ``version``).
"""

from __future__ import annotations

from ai_energy_benchmarks.backends.servers.base import (
    MetricNames,
    ServerFacts,
    ServerProfile,
    metric_prefix_reason,
    owned_by_reason,
)

METRICS = MetricNames(
    prefix="sglang:",
    running="sglang:num_running_reqs",
    waiting="sglang:num_queue_reqs",
    cache_usage="sglang:token_usage",
    generation_tokens="sglang:generation_tokens_total",
    prompt_tokens="sglang:prompt_tokens_total",
    counters=("sglang:generation_tokens_total", "sglang:prompt_tokens_total", "sglang:num_requests_total"),
    histograms={
        "ttft_s": "sglang:time_to_first_token_seconds",
        "itl_s": "sglang:inter_token_latency_seconds",
        "e2e_s": "sglang:e2e_request_latency_seconds",
    },
)


class SGLangProfile(ServerProfile):
    """SGLang: fixed length, continued assistant messages and template options; ``sglang:`` series."""

    def recognise(self, facts: ServerFacts) -> str | None:
        return metric_prefix_reason(facts, "sglang:") or owned_by_reason(facts, "sglang")


PROFILE = SGLangProfile(
    name="sglang",
    title="SGLang",
    extensions=frozenset({"ignore_eos", "min_tokens", "continue_final_message", "chat_template_kwargs"}),
    health_path="/health",
    version_path="/get_server_info",
    metrics=METRICS,
    sources=(
        "docs.sglang.io/references/production_metrics",
        "github.com/sgl-project/sglang python/sglang/srt/entrypoints/openai/protocol.py (ChatCompletionRequest)",
        "github.com/sgl-project/sglang python/sglang/srt/entrypoints/http_server.py (/health, /get_server_info)",
    ),
)
