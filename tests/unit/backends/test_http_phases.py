"""Prefill and decode on the HTTP backend, cross-checked with the server's own prefill/decode times, and the server
features that shift energy per token (prefix cache, speculative decoding), against the package's test server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, runner_config

from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

TOKENS = 8


def run(tmp_path: Path, fake: FakeOpenAIServer, backend: dict[str, Any] | None = None, **scenario: Any) -> Any:
    options: dict[str, Any] = {
        "num_samples": 6,
        "warmup_runs": 0,
        "generate_kwargs": {"max_new_tokens": TOKENS, "min_new_tokens": TOKENS},
    }
    config = runner_config(
        tmp_path, fake.url, backend={"concurrency": 1, **(backend or {})}, scenario=options | scenario
    )
    return BenchmarkRunner(config).run()


def requests(tmp_path: Path, phase: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    return [row for row in rows if row["phase"] == phase and row["error"] is None]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_http_phases_are_complete_and_cross_checked_with_the_servers_times(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], first_token_delay_s=0.02, token_delay_s=0.004) as fake:
        result = run(tmp_path, fake, repetitions=2)
    phases = result["phases"]
    assert phases["prefill"]["output_tokens"] == 2 * 6  # one token per prompt, two repetitions
    assert phases["generate"]["output_tokens"] == 2 * 6 * TOKENS
    assert phases["decode"]["output_tokens"] == 2 * 6 * (TOKENS - 1)
    assert phases["decode"]["duration_s"] == pytest.approx(
        phases["generate"]["duration_s"] - phases["prefill"]["duration_s"]
    )
    server = phases["server"]
    assert server["available"] is True
    # The test server's own times: prefill = first-token delay; decode = token delay x the tokens after the first.
    assert server["prefill_pass"]["server_mean_prefill_s"] == pytest.approx(0.02)
    assert server["prefill_pass"]["server_mean_decode_s"] == pytest.approx(0.0)
    assert server["generate_pass"]["server_mean_prefill_s"] == pytest.approx(0.02)
    assert server["generate_pass"]["server_mean_decode_s"] == pytest.approx(0.004 * (TOKENS - 1))
    client_prefill = mean([r["latency_s"] for r in requests(tmp_path, "prefill")])
    client_generate = mean([r["latency_s"] for r in requests(tmp_path, "generate")])
    check = server["cross_check"]
    assert check["prefill"]["client_s"] == pytest.approx(client_prefill)
    assert check["decode"]["client_s"] == pytest.approx(client_generate - client_prefill)
    assert check["decode"]["relative_difference"] == pytest.approx(
        (client_generate - client_prefill) / (0.004 * (TOKENS - 1)) - 1
    )
    assert client_prefill >= 0.02  # the client's time includes the server's prefill


def test_without_the_servers_metrics_the_cross_check_says_why(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], metrics=False) as fake:
        result = run(tmp_path, fake)
    server = result["phases"]["server"]
    assert server["available"] is False and server["cross_check"] is None
    assert "gave no prefill/decode time histograms" in server["note"]
    assert result["phases"]["decode"]["output_tokens"] == 6 * (TOKENS - 1)  # the passes stand without it
    features = result["model"]["server_features"]
    assert features["prefix_cache"] is None and features["speculative_decoding"] is None
    assert "was not read" in features["prefix_cache_note"]


def test_each_pass_finds_only_its_own_prompts_in_the_prefix_cache(tmp_path: Path) -> None:
    """On a server that reads cache_salt, the prefill pass, the warm-up and each repetition do not fill the generate
    pass's cache; a prompt repeated within a pass still hits."""
    with FakeOpenAIServer(models=[MODEL]) as fake:
        result = run(tmp_path / "salted", fake, warmup_runs=2, repetitions=2)
        salts = [body.get("cache_salt") for body in fake.bodies]
    assert result["model"]["server_profile"]["prefix_cache_isolation"] == "per pass: cache_salt of this run and pass"
    assert result["model"]["server_features"]["prefix_cache"]["hit_rate"] < 0.1  # distinct prompts, fresh per pass
    assert not any("prefix cache" in warning for warning in result["warnings"])
    # one salt per pass (warm-up, prefill-0, generate-0, prefill-1, generate-1), of this run only; the one request
    # without a salt is load()'s check of the endpoint, sent before any pass
    assert salts.count(None) == 1
    labels = sorted({str(salt).split("-", 2)[2] for salt in salts if salt})
    assert labels == ["generate-0", "generate-1", "prefill-0", "prefill-1", "warmup"]
    assert len({str(salt).split("-", 2)[1] for salt in salts if salt}) == 1  # one run token

    with FakeOpenAIServer(models=[MODEL]) as fake:  # the same prompt twice in a pass: served from the cache
        again = run(tmp_path / "repeated", fake, dataset_name="packaged:quickstart", num_samples=1, repetitions=1)
    assert again["model"]["server_features"]["prefix_cache"]["hit_rate"] == 0.0

    with FakeOpenAIServer(models=[MODEL]) as fake:  # the user's salt is sent as given
        own = run(
            tmp_path / "own",
            fake,
            generate_kwargs={"max_new_tokens": TOKENS, "min_new_tokens": TOKENS, "extra_body": {"cache_salt": "x"}},
        )
        assert {body.get("cache_salt") for body in fake.bodies} == {"x"}
    assert own["model"]["server_profile"]["prefix_cache_isolation"].startswith("the user's cache_salt")


def test_a_prefill_pass_that_fills_the_prefix_cache_is_warned_of(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL]) as fake:
        result = run(tmp_path / "with-prefill", fake, backend={"isolate_prefix_cache": False})
    assert result["model"]["server_profile"]["prefix_cache_isolation"].startswith("off (")
    prefix = result["model"]["server_features"]["prefix_cache"]
    assert prefix["hit_rate"] == 1.0  # every prompt was sent in the prefill pass first
    assert prefix["hit_tokens"] == prefix["queried_tokens"] > 0
    assert result["phases"]["server"]["generate_pass_prefix_cache_hit_rate"] == 1.0
    assert any("prefix cache" in warning and "biased low" in warning for warning in result["warnings"])

    with FakeOpenAIServer(models=[MODEL]) as fake:
        lone = run(tmp_path / "generate-only", fake, measure_prefill=False)
    assert lone["model"]["server_features"]["prefix_cache"]["hit_rate"] < 0.1  # distinct prompts, sent once
    assert not any("prefix cache" in warning for warning in lone["warnings"])


def test_speculative_decoding_acceptance_is_reported_when_the_server_counts_it(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], spec_decode=(4, 0.25)) as fake:
        result = run(tmp_path / "spec", fake)
    spec = result["model"]["server_features"]["speculative_decoding"]
    assert spec["acceptance_rate"] == pytest.approx(0.25)
    assert spec["draft_tokens"] == 4 * 6 * TOKENS  # the generate pass only
    assert spec["mean_accepted_tokens_per_draft"] == pytest.approx(1.0)
    assert result["model"]["server_features"]["speculative_decoding_note"] is None

    with FakeOpenAIServer(models=[MODEL]) as fake:
        plain = run(tmp_path / "plain", fake)
    assert plain["model"]["server_features"]["speculative_decoding"] is None
    assert "no speculative-decoding counters" in plain["model"]["server_features"]["speculative_decoding_note"]


def test_the_console_names_the_server_features_and_the_energy_per_token_and_request(tmp_path: Path) -> None:
    from result_scenarios import three_meters

    from ai_energy_benchmarks.results.summary import format_summary

    with FakeOpenAIServer(models=[MODEL], spec_decode=(4, 0.25), first_token_delay_s=0.01) as fake:
        shown = format_summary(run(tmp_path, fake))
    assert "server        prefix-cache hit rate 0%; speculative acceptance 25.0%" in shown  # salted passes
    assert "server times  prefill 0.0100 s" in shown
    result = three_meters().to_dict()
    energy, summary = result["energy"], result["summary"]
    per_token = energy["total_energy_j"] / (summary["total_prompt_tokens"] + summary["total_completion_tokens"])
    per_request = energy["total_energy_j"] / summary["successful_prompts"]
    assert energy["joules_per_total_token"] == pytest.approx(per_token)
    assert energy["joules_per_request"] == pytest.approx(per_request)
    text = format_summary(three_meters())
    assert f"J/output token; {per_token:.4f} J/token (prompt + output); {per_request:.4f} J/request" in text


def test_a_server_whose_profile_names_no_feature_series_says_so(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], server="tgi") as fake:
        result = run(tmp_path, fake, backend={"server": "tgi"})
    features = result["model"]["server_features"]
    assert features["prefix_cache"] is None and features["speculative_decoding"] is None
    assert features["prefix_cache_note"] == "the server exposes no prefix-cache counters"
    assert result["phases"]["server"]["available"] is False  # TGI's Prometheus has no prefill/decode time histograms
    assert result["phases"]["decode"]["output_tokens"] == 6 * (TOKENS - 1)
