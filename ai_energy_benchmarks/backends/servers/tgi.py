"""Hugging Face text-generation-inference (TGI) through its OpenAI-compatible Messages API (``/v1/chat/completions``,
``/v1/completions``).

Facts from TGI's documentation and source: "Metrics" (huggingface.co/docs/text-generation-inference/reference/
metrics) for the ``tgi_`` series (no model label: one TGI serves one model); ``ChatRequest`` in ``router/src/lib.rs``
reads the OpenAI fields only (none of :data:`~.base.EXTENSIONS`; fields it does not know are not read, so an
``ignore_eos`` sent there would be dropped unseen and a "fixed length" run would not be one); ``GET /info`` answers
``model_id`` and ``version``; ``GET /health`` answers 200 once ready. Token totals come from the per-request
histograms' ``_sum`` (``tgi_request_generated_tokens``, ``tgi_request_input_length``); there is no TTFT series.
"""

from __future__ import annotations

from ai_energy_benchmarks.backends.servers.base import MetricNames, ServerFacts, ServerProfile, metric_prefix_reason

METRICS = MetricNames(
    prefix="tgi_",
    running="tgi_batch_current_size",
    waiting="tgi_queue_size",
    cache_usage=None,
    generation_tokens="tgi_request_generated_tokens_sum",
    prompt_tokens="tgi_request_input_length_sum",
    counters=(
        "tgi_request_generated_tokens_sum",
        "tgi_request_input_length_sum",
        "tgi_request_success",
        "tgi_request_count",
    ),
    histograms={
        "e2e_s": "tgi_request_duration",
        "queue_s": "tgi_request_queue_duration",
        "inference_s": "tgi_request_inference_duration",
        "tpot_s": "tgi_request_mean_time_per_token_duration",
    },
    model_label=None,
)


class TGIProfile(ServerProfile):
    """TGI: no extension; ``/health``, ``/info``; ``tgi_`` series."""

    def recognise(self, facts: ServerFacts) -> str | None:
        reason = metric_prefix_reason(facts, "tgi_")
        if reason:
            return reason
        info = facts.info
        if isinstance(info, dict) and "model_id" in info and ("max_total_tokens" in info or "router" in info):
            return "/info answers TGI's model_id and max_total_tokens"
        return None


PROFILE = TGIProfile(
    name="tgi",
    title="text-generation-inference",
    extensions=frozenset(),
    health_path="/health",
    version_path="/info",
    metrics=METRICS,
    sources=(
        "huggingface.co/docs/text-generation-inference/reference/metrics",
        "github.com/huggingface/text-generation-inference router/src/lib.rs (ChatRequest, Info)",
    ),
)
