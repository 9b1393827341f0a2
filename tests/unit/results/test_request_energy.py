"""Energy per request under concurrency: each window's energy shared among its requests (``energy_j``), by hand and
through the runner against a simulated GPU whose power changes during the window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from http_support import MODEL, runner_config

from ai_energy_benchmarks.energy.base import EnergyReading, IntervalReading, WindowMeasurement
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.results.attribution import attribute_energy, prefill_token_weight
from ai_energy_benchmarks.results.summary import format_summary
from ai_energy_benchmarks.runner import BenchmarkRunner

CHOSEN = {"gpu": "nvml"}


def window(energy_j: float, start_s: float = 0.0, end_s: float = 10.0) -> WindowMeasurement:
    reading = EnergyReading("gpu:0", energy_j, "measured:test", "nvml", start_s=start_s, end_s=end_s)
    return WindowMeasurement(name="generate-0", duration_s=end_s - start_s, repetition=0, readings=[reading])


def record(
    index: int, start: float, end: float, outputs: int, prompt: int = 0, first: float | None = None
) -> RequestRecord:
    return RequestRecord(
        index=index,
        num_prompts=1,
        start_s=start,
        end_s=end,
        prompt_tokens=prompt,
        completion_tokens=outputs,
        first_token_s=start if first is None else first,
    )


def test_two_overlapping_requests_by_hand_at_constant_power() -> None:
    """100 J over [0, 10] s. A: 0-10 s, 11 output tokens (the first at 0 s, ten spread over 0-10 s); B: 5-10 s, 6
    tokens (the first at 5 s, five over 5-10 s). Bin 0-5 s (50 J): only A works (1 + 5 tokens) -> A 50 J. Bin 5-10 s
    (50 J): A 5 tokens, B 1 + 5 -> A 50 x 5/11, B 50 x 6/11. A = 72.727 J, B = 27.273 J, together 100 J."""
    a, b = record(0, 0.0, 10.0, 11), record(1, 5.0, 10.0, 6)
    info = attribute_energy([a, b], [window(100.0)], CHOSEN)
    assert a.energy_j == pytest.approx(50 + 50 * 5 / 11) and b.energy_j == pytest.approx(50 * 6 / 11)
    assert info is not None and info["windows"] == [{"window": "generate-0", "requests": 2, "spread": ["gpu: time"]}]
    assert info["prefill_token_weight"] == 1.0 and info["prefill_token_weight_from"].startswith("assumed:")


def test_the_power_record_shapes_the_bins() -> None:
    """The same requests; the meter's record says 80 J were used in 0-5 s and 20 J in 5-10 s."""

    def read_back(start_s: float, end_s: float) -> list[IntervalReading]:
        joules = 80.0 if end_s <= 5.0 else 20.0
        return [IntervalReading("gpu:0", joules, "measured:test", "nvml", lower_j=joules, upper_j=joules)]

    a, b = record(0, 0.0, 10.0, 11), record(1, 5.0, 10.0, 6)
    info = attribute_energy([a, b], [window(100.0)], CHOSEN, read_back=read_back)
    assert a.energy_j == pytest.approx(80 + 20 * 5 / 11) and b.energy_j == pytest.approx(20 * 6 / 11)
    assert info is not None and info["windows"][0]["spread"] == ["gpu: power record"]


def test_prefill_tokens_and_idle_gaps() -> None:
    """60 J over [0, 6] s. A: prefill 0-1 s (4 prompt tokens + its first output token), 1 more token over 1-2 s.
    B: 2-4 s, no prompt tokens, 2 output tokens. 4-6 s: nobody in flight (20 J) -> shared in proportion to what
    each already has. Bins (10 J/s): 0-1 s: A 10 J; 1-2 s: A 10 J; 2-4 s: B 20 J; gap 20 J: A 10, B 10."""
    a, b = record(0, 0.0, 2.0, 2, prompt=4, first=1.0), record(1, 2.0, 4.0, 2)
    attribute_energy([a, b], [window(60.0, 0.0, 6.0)], CHOSEN)
    assert a.energy_j == pytest.approx(30.0) and b.energy_j == pytest.approx(30.0)


def test_a_prompt_tokens_weight_comes_from_the_measured_phases() -> None:
    phases = {
        "prefill": {"energy_wh": 1.0, "prompt_tokens": 1000},  # 3.6 J per prompt token
        "decode": {"energy_wh": 2.0, "output_tokens": 200},  # 36 J per output token
    }
    assert prefill_token_weight(phases) == (pytest.approx(0.1), "measured:phases")
    assert prefill_token_weight({"prefill": {"energy_wh": None}, "decode": {}})[0] == 1.0


def test_an_unknown_window_energy_attributes_nothing() -> None:
    a = record(0, 0.0, 1.0, 3)
    reading = EnergyReading("cpu", 5.0, "measured:test", "rapl")  # the GPU's chosen meter read nothing here
    lost = WindowMeasurement(name="generate-0", duration_s=1.0, repetition=0, readings=[reading])
    assert attribute_energy([a], [lost], CHOSEN) is None and a.energy_j is None


def test_under_concurrency_the_requests_energy_adds_up_to_each_window(tmp_path: Path) -> None:
    """12 requests, 4 at a time, against a simulated GPU whose power falls from 900 W to 100 W: in every measured
    window the requests' ``energy_j`` add up to the window's GPU energy, none is negative, and the
    power record (not time alone) shaped the split."""
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml, ramp_trace
    from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

    with (
        FakeNvml([FakeGpu(power=ramp_trace(900.0, 100.0, 0.0, 4.0))]),
        FakeOpenAIServer(models=[MODEL], token_delay_s=0.01) as fake,
    ):
        config = runner_config(
            tmp_path,
            fake.url + "/v1",
            backend={"device": "cuda", "device_ids": [0], "concurrency": 4},
            scenario={"num_samples": 12, "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8}},
            metrics={"type": "nvml", "nvml_poll_interval_s": 0.02},
        )
        result = BenchmarkRunner(config).run()
    records = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    windows = {r["window"]: r["energy_j"] for r in result["energy"]["readings"] if r["device"].startswith("gpu")}
    windows["prefill-0"] = result["phases"]["prefill"]["gpu_energy_wh"] * 3600  # the readings list generate only
    assert set(windows) == {"prefill-0", "generate-0"} and len(records) == 24
    for label, energy_j in windows.items():
        shares = [r["energy_j"] for r in records if f"{r['phase']}-{r['repetition']}" == label]
        assert len(shares) == 12 and all(s is not None and s >= 0 for s in shares)
        assert sum(shares) == pytest.approx(energy_j, rel=1e-9)
    attribution = result["energy"]["request_attribution"]
    assert [w["spread"] for w in attribution["windows"]] == [["gpu: power record"]] * len(windows)
    assert attribution["prefill_token_weight_from"] in ("measured:phases", "assumed:equal-to-an-output-token")
    per_request = attribution["generate_request_energy_j"]
    generate = [r["energy_j"] for r in records if r["phase"] == "generate"]
    assert per_request["count"] == 12 and per_request["mean"] == pytest.approx(sum(generate) / 12)
    assert f"  per request   {sum(generate) / 12:.4f} J mean" in format_summary(result)
