"""Speed over the measured windows: the ``summary`` block (0.0.4's keys and ours) and the ``latency`` statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.results import stats
from ai_energy_benchmarks.results.meters import _ratio, _weighted_mean


def _summary(records: Sequence[RequestRecord], duration_s: float) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    prompt_tokens = sum(r.prompt_tokens for r in ok)
    completion_tokens = sum(r.completion_tokens for r in ok)
    ttft = [(r.ttft_s, r.num_prompts) for r in ok if r.ttft_s is not None]
    mean_latency_s = _weighted_mean([(r.latency_s, r.num_prompts) for r in ok])
    mean_ttft_s = _weighted_mean([(v, w) for v, w in ttft if v is not None])
    return {
        "total_prompts": sum(r.num_prompts for r in records),
        "successful_prompts": sum(r.num_prompts for r in ok),
        "failed_prompts": sum(r.num_prompts for r in records if not r.ok),
        "total_duration_seconds": duration_s,
        "avg_latency_seconds": mean_latency_s,
        "avg_time_to_first_token": mean_ttft_s,
        "total_tokens": prompt_tokens + completion_tokens,
        "total_prompt_tokens": prompt_tokens,
        "total_completion_tokens": completion_tokens,
        # 0.0.4's meaning: prompt + output tokens per second (results/contract.py)
        "throughput_tokens_per_second": _ratio(prompt_tokens + completion_tokens, duration_s),
        "throughput_total_tokens_per_second": _ratio(prompt_tokens + completion_tokens, duration_s),
        "throughput_output_tokens_per_second": _ratio(completion_tokens, duration_s),
        "mean_latency_s": mean_latency_s,
        "mean_ttft_s": mean_ttft_s,
        **_reasoning_split(ok, completion_tokens),
        "requests_per_second": _ratio(len(ok), duration_s),
    }


def _reasoning_split(ok: Sequence[RequestRecord], completion_tokens: int) -> dict[str, Any]:
    """Reasoning and answer tokens apart, where the server said which is which (None otherwise)."""
    marked = [r for r in ok if r.reasoning_tokens is not None]
    if not marked:
        return {"total_reasoning_tokens": None, "total_answer_tokens": None, "reasoning_tokens_from": None}
    reasoning = sum(r.reasoning_tokens or 0 for r in marked)
    sources = sorted({r.reasoning_tokens_from for r in marked if r.reasoning_tokens_from})
    return {
        "total_reasoning_tokens": reasoning,
        "total_answer_tokens": completion_tokens - reasoning,
        "reasoning_tokens_from": "+".join(sources) or None,
    }


def _latency(records: Sequence[RequestRecord]) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    return {
        "unit": "s",
        "per": "request (a batch counts once)",
        "latency_s": stats.describe([r.latency_s for r in ok]),
        "ttft_s": stats.describe([r.ttft_s for r in ok if r.ttft_s is not None]),
    }
