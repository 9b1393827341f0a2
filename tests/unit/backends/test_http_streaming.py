"""What the HTTP backend reads from a stream: token counts, timing, reasoning tokens, checked answers.

Against the local fake server: fast, no vLLM needed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, fake_server, loaded, make_config, run_all, runner_config

from ai_energy_benchmarks.backends import http_client as hc
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    yield from fake_server()


# -- token counts and timing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["completions", "chat"])
def test_token_counts_come_from_usage_even_when_chunks_merge_tokens(api: str) -> None:
    with FakeOpenAIServer(models=[MODEL], tokens_per_chunk=4) as fake:
        config = make_config(fake.url + "/v1", tokens=10, api=api)
        with loaded(config) as backend:
            records = run_all(backend, ["one two three", "four five"], config)
    assert [r.completion_tokens for r in records] == [10, 10]
    assert [len(r.chunk_times_s or []) for r in records] == [3, 3]  # 4 + 4 + 2 tokens
    assert [r.prompt_tokens for r in records] == ([3, 2] if api == "completions" else [6, 5])
    assert all(r.ok and r.error_class is None for r in records)


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_ttft_is_the_first_output_chunk_even_when_its_text_is_empty(api: str) -> None:
    # The first token decodes to "" and comes 0.15 s after the request; the next one 0.3 s later. The chat role
    # announcement (sent at once) is not output and does not count.
    with FakeOpenAIServer(models=[MODEL], empty_first_token=True, first_token_delay_s=0.15, token_delay_s=0.3) as fake:
        config = make_config(fake.url + "/v1", tokens=2, api=api)
        with loaded(config) as backend:
            (record,) = run_all(backend, ["x"], config)
    assert record.ttft_s is not None and 0.14 <= record.ttft_s < 0.35
    assert record.chunk_times_s is not None and len(record.chunk_times_s) == 2
    assert record.first_token_s == record.chunk_times_s[0]
    assert record.completion_tokens == 2


def test_latency_metrics_in_describe(server: FakeOpenAIServer) -> None:
    server.token_delay_s = 0.002
    config = make_config(server.url + "/v1", tokens=6, concurrency=2, slo_ttft_s=10.0, slo_e2e_s=1e-6)
    with loaded(config) as backend:
        run_all(backend, [f"p{i}" for i in range(6)], config)
        info = backend.describe()
    measured = info["http"]["measured"]
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        assert set(measured[key]) >= {"mean", "median", "std", "p90", "p99"}
    assert measured["itl_s"]["count"] == 6 * 5 and measured["tpot_s"]["count"] == 6
    assert measured["ok"] == 6 and measured["output_tokens"] == 36
    assert measured["request_throughput_per_s"] > 0 and measured["output_token_throughput_per_s"] > 0
    assert measured["goodput"]["good_requests"] == 0  # no request meets a 1 µs end-to-end objective
    json.dumps(info)  # JSON-safe


def test_goodput_counts_requests_within_every_objective(server: FakeOpenAIServer) -> None:
    config = make_config(server.url + "/v1", slo_ttft_s=5.0, slo_tpot_s=5.0, slo_e2e_s=5.0)
    with loaded(config) as backend:
        run_all(backend, ["a", "b", "[fault:http_500]"], config)
        goodput = backend.describe()["http"]["measured"]["goodput"]
    assert goodput["good_requests"] == 2 and goodput["share_of_requests"] == pytest.approx(2 / 3)


def test_reasoning_and_answer_tokens_are_counted_apart(tmp_path: Path) -> None:
    """A server that streams reasoning as `reasoning_content` (and says so in usage): TTFT is the first reasoning
    chunk, and the report splits reasoning from answer tokens."""
    with FakeOpenAIServer(models=[MODEL], reasoning_tokens=5, first_token_delay_s=0.05) as fake:
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            backend={"api": "chat"},
            scenario={
                "num_samples": 3,
                "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8},
                "warmup_runs": 0,
                "measure_prefill": False,
            },
            name="http-reasoning",
        )
        result = BenchmarkRunner(config).run()
    summary = result["summary"]
    assert summary["total_completion_tokens"] == 24
    assert summary["total_reasoning_tokens"] == 15 and summary["total_answer_tokens"] == 9
    assert summary["reasoning_tokens_from"] == "usage"
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    assert all(row["reasoning_tokens"] == 5 for row in rows)
    assert all(row["ttft_s"] is not None and row["ttft_s"] >= 0.05 for row in rows)


def test_time_to_first_token_counts_the_first_reasoning_chunk() -> None:
    """Five reasoning chunks 30 ms apart precede the answer: TTFT is the first reasoning chunk's arrival, at least
    120 ms before the first answer chunk's."""
    with FakeOpenAIServer(models=[MODEL], reasoning_tokens=5, token_delay_s=0.03) as fake:
        config = make_config(fake.url + "/v1", tokens=7, api="chat")
        with loaded(config) as backend:
            records = run_all(backend, ["a", "b"], config)
    for record in records:
        assert record.ok and record.chunk_times_s is not None and len(record.chunk_times_s) == 7
        first_answer_s = record.chunk_times_s[5]
        assert record.first_token_s == record.chunk_times_s[0]
        assert first_answer_s - record.first_token_s >= 0.12


def test_reasoning_tokens_counted_from_chunks_when_usage_is_missing() -> None:
    """Without a usage block the split comes from counting `reasoning_content` chunks, labelled as such."""
    with FakeOpenAIServer(models=[MODEL], reasoning_tokens=3) as fake:
        config = make_config(fake.url + "/v1", tokens=8, api="chat")
        with loaded(config) as backend:
            (record,) = run_all(backend, ["[fault:no_usage] q"], config)
    assert record.ok and record.completion_tokens == 8
    assert record.reasoning_tokens == 3 and record.reasoning_tokens_from == "chunks"


def test_without_reasoning_marks_the_split_is_unknown(server: FakeOpenAIServer, tmp_path: Path) -> None:
    config = make_config(server.url + "/v1", tokens=3, api="chat")
    with loaded(config) as backend:
        records = run_all(backend, ["a", "b"], config)
    assert all(r.reasoning_tokens is None for r in records)


# -- the server's answers are checked, not believed ------------------------------------------------------------------
def test_check_answer_believes_only_what_the_request_and_the_stream_allow() -> None:
    body = {"model": MODEL, "max_tokens": 8, "min_tokens": 8}
    assert hc.check_answer(8, 8, {MODEL}, body, MODEL) == (8, [])
    assert hc.check_answer(8, 2, {MODEL}, body, MODEL) == (8, [])  # several tokens per chunk is normal
    assert hc.check_answer(100_000, 1, {MODEL}, body, MODEL) == (1, [hc.USAGE_OVER_MAX_TOKENS, hc.BELOW_MIN_TOKENS])
    assert hc.check_answer(3, 8, {MODEL}, body, MODEL) == (8, [hc.USAGE_BELOW_CHUNKS])
    assert hc.check_answer(5, 5, {MODEL}, body, MODEL) == (5, [hc.BELOW_MIN_TOKENS])
    assert hc.check_answer(10, 10, {MODEL}, body, MODEL) == (
        10,
        [hc.USAGE_OVER_MAX_TOKENS, hc.CHUNKS_OVER_MAX_TOKENS],
    )
    assert hc.check_answer(8, 9, {MODEL}, body, MODEL) == (8, [])  # a last chunk with only a finish_reason
    assert hc.check_answer(8, 8, {MODEL, "other"}, body, MODEL) == (8, [hc.WRONG_MODEL])
    assert hc.check_answer(None, 6, set(), body, MODEL) == (6, [hc.BELOW_MIN_TOKENS])
    free = {"model": MODEL, "max_tokens": 8}  # the model may stop early: no lower bound
    assert hc.check_answer(3, 3, {MODEL}, free, MODEL) == (3, [])
    assert hc.check_answer(3, 3, {MODEL}, free | {"ignore_eos": True}, MODEL) == (3, [hc.BELOW_MIN_TOKENS])


def test_lying_usage_and_a_wrong_model_from_the_test_server_are_flagged_and_counted(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    lines = ["fine one", "[fault:lying_usage:100000] big", "[fault:wrong_model] who", "[fault:lying_usage:2] small"]
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with FakeOpenAIServer(models=[MODEL]) as fake:
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            scenario={
                "dataset_name": str(prompts),
                "num_samples": 4,
                "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8},
                "warmup_runs": 0,
                "measure_prefill": False,
            },
        )
        result = BenchmarkRunner(config).run()
    rows = {
        row["index"]: row
        for row in map(json.loads, (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines())
    }
    assert rows[0]["contradictions"] is None and rows[0]["completion_tokens"] == 8
    assert rows[1]["contradictions"] == [hc.USAGE_OVER_MAX_TOKENS]
    assert rows[1]["usage_completion_tokens"] == 100_000 and rows[1]["completion_tokens"] == 8  # eight chunks
    assert rows[2]["contradictions"] == [hc.WRONG_MODEL] and rows[2]["completion_tokens"] == 8
    assert rows[3]["contradictions"] == [hc.USAGE_BELOW_CHUNKS] and rows[3]["usage_completion_tokens"] == 2
    assert all(row["error"] is None for row in rows.values())
    # Throughput counts what streamed, not the claim: 4 x 8 tokens.
    assert result["summary"]["total_completion_tokens"] == 32
    checks = result["model"]["http"]["measured"]["answer_checks"]
    assert checks["contradicted"] == 3 and checks["usage_not_believed"] == 2
    assert checks["by_kind"] == {hc.USAGE_BELOW_CHUNKS: 1, hc.USAGE_OVER_MAX_TOKENS: 1, hc.WRONG_MODEL: 1}
    assert checks["warning"] in result["warnings"]
    assert "3 of 4 server answers contradicted" in checks["warning"]


def test_a_lying_server_of_our_own_cannot_inflate_throughput(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A server written here (not the package's): one chunk, usage claiming 100,000 tokens, another model's name,
    for max_tokens 8. The run reports what streamed and says what was wrong."""
    import threading

    from aiohttp import web

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        events: list[dict[str, Any]] = [
            {"object": "text_completion", "model": "liar-70b", "choices": [{"index": 0, "text": " hi"}]},
            {
                "object": "text_completion",
                "model": "liar-70b",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 100_000, "total_tokens": 100_003},
            },
        ]
        if body.get("max_tokens") == 1:  # the backend's check request before measuring: answer it honestly
            events = [{"object": "text_completion", "model": MODEL, "choices": [{"index": 0, "text": " x"}]}]
        for event in events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/completions", completions)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        holder["port"] = runner.addresses[0][1]
        holder["loop"], holder["runner"] = loop, runner
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        config = runner_config(
            tmp_path,
            f"http://127.0.0.1:{holder['port']}/v1",
            backend={"ready_timeout_s": 5, "ignore_eos": False, "api": "completions"},
            scenario={
                "num_samples": 3,
                "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 1},
                "warmup_runs": 0,
                "measure_prefill": False,
            },
        )
        with caplog.at_level(logging.WARNING, logger="ai_energy_benchmarks.backends.http_client"):
            result = BenchmarkRunner(config).run()
    finally:
        holder["loop"].call_soon_threadsafe(holder["loop"].stop)
        thread.join(10)
    summary = result["summary"]
    assert summary["total_completion_tokens"] == 3  # one streamed chunk each, not 300,000
    assert summary["throughput_output_tokens_per_second"] <= 3 / summary["total_duration_seconds"] + 1e-9
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(row["contradictions"] == [hc.USAGE_OVER_MAX_TOKENS, hc.WRONG_MODEL] for row in rows)
    assert all(row["usage_completion_tokens"] == 100_000 and row["completion_tokens"] == 1 for row in rows)
    checks = result["model"]["http"]["measured"]["answer_checks"]
    assert checks["contradicted"] == 3 and checks["by_kind"] == {hc.USAGE_OVER_MAX_TOKENS: 3, hc.WRONG_MODEL: 3}
    assert any("contradicted the request or the stream" in w for w in result["warnings"])
    assert any("usage claimed 100000 output tokens, 1 counted from the stream" in r.message for r in caplog.records)
