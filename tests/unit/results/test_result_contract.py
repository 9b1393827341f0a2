"""0.0.4's result contract: its keys are always numbers, and our readers still see what was unknown."""

from __future__ import annotations

import copy
from typing import Any

from contract import ENERGY_KEYS, SUMMARY_KEYS

from ai_energy_benchmarks.results.contract import apply_0_0_4_types, honest, reader_view
from ai_energy_benchmarks.results.summary import format_summary


def unknown_result() -> dict[str, Any]:
    """A result in which every request failed and no energy was read (as aggregate builds it, before the contract)."""
    summary = dict.fromkeys(SUMMARY_KEYS, 0) | {
        "total_duration_seconds": 1.5,
        "avg_latency_seconds": None,
        "avg_time_to_first_token": None,
        "throughput_tokens_per_second": 0.0,
        "mean_latency_s": None,
        "mean_ttft_s": None,
        "throughput_total_tokens_per_second": 0.0,
    }
    energy = dict.fromkeys(ENERGY_KEYS) | {
        "cpu_energy_wh": 0.002,
        "cpu_energy_j": 7.2,
        "gpu_energy_j": None,
        "total_energy_j": None,
        "enabled": True,
    }
    return {"summary": summary, "energy": energy, "warnings": []}


def test_null_contract_keys_become_zero_and_are_listed() -> None:
    result = unknown_result()
    warnings = apply_0_0_4_types(result)
    for key in SUMMARY_KEYS:
        assert isinstance(result["summary"][key], (int, float)), key
    for key in ENERGY_KEYS:
        assert isinstance(result["energy"][key], float), key
    assert result["summary"]["zero_filled"] == ["avg_latency_seconds", "avg_time_to_first_token"]
    assert "cpu_energy_wh" not in result["energy"]["zero_filled"]  # a real value stays as it was
    assert result["energy"]["cpu_energy_wh"] == 0.002
    assert result["energy"]["emissions_estimated_g_co2eq"] is None  # our own key keeps the null
    assert len(warnings) == 2
    assert "summary.avg_latency_seconds" in warnings[0] and "summary.mean_latency_s" in warnings[0]
    assert "energy.gpu_energy_wh" in warnings[1] and "energy.gpu_energy_j" in warnings[1]


def test_readers_see_zero_filled_keys_as_unknown_and_the_console_says_n_a() -> None:
    result = unknown_result()
    apply_0_0_4_types(result)
    assert honest(result, "energy.gpu_energy_wh") is None
    assert honest(result, "energy.cpu_energy_wh") == 0.002
    view = reader_view(result)
    assert view["energy"]["gpu_energy_wh"] is None and result["energy"]["gpu_energy_wh"] == 0.0  # a copy
    assert view["summary"]["avg_latency_seconds"] is None
    text = format_summary(
        result
        | {
            "config": {"name": "n", "backend": "vllm", "model": "m"},
            "status": "failed",
            "dataset": {"source": "s"},
            "energy": result["energy"]
            | dict.fromkeys(["total_wh_per_1000_queries", "joules_per_output_token", "carbon_intensity_g_per_kwh"])
            | {"sources": {}},
        }
    )
    assert "latency       mean n/a; TTFT mean n/a" in text
    assert "    gpu         n/a" in text


def test_a_schema_1_0_report_is_read_with_todays_names() -> None:
    """Schema 1.0 counted output tokens only in summary.throughput_tokens_per_second and the repetitions' column."""
    old = {
        "schema_version": "1.0",
        "summary": {"throughput_tokens_per_second": 40.0, "throughput_total_tokens_per_second": 55.0},
        "energy": {"gpu_energy_wh": None},
        "repetitions": [{"throughput_tokens_per_second": 39.0}, {"throughput_tokens_per_second": 41.0}],
        "repetition_statistics": {"throughput_tokens_per_second": {"mean": 40.0}},
    }
    before = copy.deepcopy(old)
    view = reader_view(old)
    assert old == before
    assert view["summary"]["throughput_output_tokens_per_second"] == 40.0
    assert view["summary"]["throughput_tokens_per_second"] == 55.0
    assert [r["output_tokens_per_second"] for r in view["repetitions"]] == [39.0, 41.0]
    assert view["repetition_statistics"]["output_tokens_per_second"] == {"mean": 40.0}
    assert view["energy"]["gpu_energy_wh"] is None
