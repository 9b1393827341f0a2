"""Trace replay: the trace file (units, scale, errors), prompts synthesised to its lengths and shared prefixes, and a
replay against the test server at the trace's (scaled) times with schedule drift and output lengths checked."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from http_support import MODEL, runner_config

from ai_energy_benchmarks.config.sessions import TraceConfig
from ai_energy_benchmarks.datasets.traces import (
    generate_trace,
    load_trace,
    read_trace,
    synthesize_words,
    trace_path,
)
from ai_energy_benchmarks.exceptions import DatasetError
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


def write_trace(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_the_packaged_trace_is_the_projects_own_generator_output() -> None:
    lines = trace_path("packaged:tiny_trace").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == generate_trace()
    assert len(lines) == 26


@pytest.mark.parametrize(
    ("unit", "scale", "expected"), [("ms", 1.0, [0.0, 0.25, 1.5]), ("s", 0.5, [0.0, 125.0, 750.0])]
)
def test_timestamps_are_read_in_their_unit_relative_to_the_first_and_scaled(
    tmp_path: Path, unit: str, scale: float, expected: list[float]
) -> None:
    rows = [{"timestamp": t, "input_length": 4, "output_length": 2} for t in (1000, 1250, 2500)]
    entries, available = read_trace(write_trace(tmp_path, rows), unit, scale, None)
    assert [e.offset_s for e in entries] == pytest.approx(expected) and available == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"timestamp": 5, "output_length": 2}, r"trace\.jsonl:2: 'input_length' must be a number >= 1, got None"),
        ({"timestamp": 1, "input_length": 3, "output_length": 2}, r"trace\.jsonl:2: timestamp 1 is earlier"),
        ({"timestamp": 9, "input_length": 2.5, "output_length": 2}, r"trace\.jsonl:2: 'input_length' must be a whole"),
        ({"timestamp": 9, "input_length": 2, "output_length": 2, "hash_ids": ["x"]}, r"'hash_ids' must be a list"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, row: dict[str, Any], message: str) -> None:
    rows = [{"timestamp": 3, "input_length": 4, "output_length": 2}, row]
    with pytest.raises(DatasetError, match=message):
        read_trace(write_trace(tmp_path, rows), "ms", 1.0, None)


def test_prompts_have_the_traces_lengths_and_share_the_prefix_of_shared_blocks() -> None:
    shared_a = synthesize_words(40, [7, 8], 16, index=0)
    shared_b = synthesize_words(40, [7, 9], 16, index=1)
    alone = synthesize_words(40, [], 16, index=2)
    assert [len(p.split()) for p in (shared_a, shared_b, alone)] == [40, 40, 40]
    assert shared_a.split()[:16] == shared_b.split()[:16]  # block 7
    assert shared_a.split()[16:32] != shared_b.split()[16:32]  # blocks 8 and 9
    assert (
        synthesize_words(24, [1000], 512, 3)
        == synthesize_words(60, [1000], 512, 4)[: len(synthesize_words(24, [1000], 512, 3))]
    )
    assert alone.split()[:16] != shared_a.split()[:16]


def test_the_packaged_trace_loads_with_prompts_of_its_lengths() -> None:
    trace = load_trace(TraceConfig(enabled=True, scale=0.5))
    assert [len(p.split()) for p in trace.prompts] == [e.input_length for e in trace.entries]
    assert trace.entries[-1].offset_s == pytest.approx((2692 - 120) / 1000 * 0.5)


def test_a_trace_is_replayed_at_its_scaled_times_with_its_output_lengths(tmp_path: Path) -> None:
    trace = load_trace(TraceConfig(enabled=True, scale=0.5))
    with FakeOpenAIServer(models=[MODEL]) as server:
        config = runner_config(
            tmp_path,
            server.url + "/v1",
            backend={"concurrency": 32},
            scenario={"warmup_runs": 0, "trace": {"enabled": True, "scale": 0.5}},
        )
        result = BenchmarkRunner(config).run()
        bodies = {b["messages"][-1]["content"]: b for b in server.bodies if b.get("messages")}
        arrivals = {prompt: times[-1] for prompt, times in server.attempt_times.items()}
    assert result["status"] == "completed"
    for prompt, entry in zip(trace.prompts, trace.entries, strict=True):
        assert (bodies[prompt]["max_tokens"], bodies[prompt]["min_tokens"]) == (entry.output_length,) * 2
    first = arrivals[trace.prompts[0]]
    late_s = [arrivals[p] - first - e.offset_s for p, e in zip(trace.prompts, trace.entries, strict=True)]
    assert max(abs(d) for d in late_s) < 0.05  # the server saw each request at its scaled trace time
    workload = result["workload"]
    assert workload["kind"] == "trace" and workload["requests"] == 26 and workload["sessions"] == 4
    assert workload["scale"] == 0.5 and workload["timestamp_unit"] == "ms"
    (drift,) = workload["schedule_drift"]
    assert drift["count"] == 26 and drift["held_for_a_slot"] == 0 and drift["p99"] < 50.0 and drift["unit"] == "ms"
    outputs = workload["output_tokens"]
    assert outputs["trace_total"] == outputs["served_total"] == sum(e.output_length for e in trace.entries)
    assert outputs["requests_off_length"] == 0
    assert sorted(r["id"] for r in workload["per_session"]) == ["s0", "s1", "s2", "s3"]
    assert all(r["requests"] == 5 for r in workload["per_session"])
    assert result["summary"]["total_duration_seconds"] >= trace.entries[-1].offset_s
    assert "  trace         26 requests over 1.286 s (scale 0.5); drift p99 " in format_summary(result)


def test_a_sessions_energy_is_the_sum_of_its_requests_energy_j(tmp_path: Path) -> None:
    """The trace replayed against a (simulated) 80 W GPU: each session's energy is the sum of its requests' ``energy_j``
    in requests.jsonl, and the requests' shares (sessions and lone requests) cover the whole window's energy, the
    trace's idle gaps between arrivals included."""
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    with FakeNvml([FakeGpu(power=80.0)]), FakeOpenAIServer(models=[MODEL]) as server:
        config = runner_config(
            tmp_path,
            server.url + "/v1",
            backend={"concurrency": 32, "device": "cuda", "device_ids": [0]},
            scenario={"warmup_runs": 0, "trace": {"enabled": True, "scale": 0.5}},
            metrics={"type": "nvml", "idle_seconds": 0},
        )
        result = BenchmarkRunner(config).run()
    workload = result["workload"]
    assert workload["energy_source"] == "estimated:request-attribution"
    window_j = workload["window_energy_j"]
    assert window_j == pytest.approx(result["energy"]["gpu_energy_wh"] * 3600)
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    assert len(rows) == 26 and all(r["energy_j"] is not None and r["energy_j"] >= 0 for r in rows)
    for session in workload["per_session"]:
        mine = [r["energy_j"] for r in rows if r["conversation_id"] == session["id"]]
        assert len(mine) == session["requests"] == 5
        assert session["energy_j"] == pytest.approx(sum(mine), rel=1e-12)
    assert workload["unattributed_energy_j"] == pytest.approx(0.0, abs=1e-9 * window_j)
    assert sum(r["energy_j"] for r in rows) + workload["unattributed_energy_j"] == pytest.approx(window_j, rel=1e-9)


def test_the_pytorch_backend_replays_a_trace_one_request_at_a_time(tmp_path: Path) -> None:
    trace = load_trace(TraceConfig(enabled=True))
    config = {
        "output_dir": str(tmp_path / "out"),
        "backend": {"type": "pytorch", "model": "packaged:tiny-llama", "no_weights": True, "device": "cpu"},
        "scenario": {"warmup_runs": 1, "trace": {"enabled": True}},
        "metrics": {"enabled": False},
        "reporter": {"output_file": str(tmp_path / "r.csv")},
    }
    result = BenchmarkRunner(config).run()
    assert result["status"] == "completed"
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(26))
    assert [r["completion_tokens"] for r in rows] == [e.output_length for e in trace.entries]
    assert [r["conversation_id"] for r in rows] == [e.session_id for e in trace.entries]
    for before, after in itertools.pairwise(rows):
        assert after["start_s"] >= before["end_s"]  # one at a time
    offsets = [r["start_s"] - rows[0]["start_s"] for r in rows]
    # every request starts at its arrival time, or later when the one before was still running
    for offset, entry in zip(offsets, trace.entries, strict=True):
        assert offset >= entry.offset_s - 0.005
    (drift,) = result["workload"]["schedule_drift"]
    assert drift["count"] + drift["held_for_a_slot"] == 26 and drift["count"] > 0 and drift["p99"] < 50.0
    assert result["workload"]["output_tokens"]["requests_off_length"] == 0
