"""End-to-end runs of the real runner on the packaged tiny model with real CodeCarbon (no mocks)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
from contract import ENERGY_KEYS, SUMMARY_KEYS
from repo_paths import REPO_ROOT
from run_support import NEW_TOKENS, make_config

from ai_energy_benchmarks import __version__, create_benchmark
from ai_energy_benchmarks.exceptions import DatasetError
from ai_energy_benchmarks.results.writers import append_csv_row
from ai_energy_benchmarks.runner import BenchmarkRunner, run_benchmark_from_config

MODEL_DIR = REPO_ROOT / "ai_energy_benchmarks" / "data" / "models" / "tiny-llama"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("api-run")
    runner = BenchmarkRunner(make_config(out))
    assert runner.validate() is True
    return runner.run(), out


def chat_token_count(tokenizer: Any, prompt: str) -> int:
    """Tokens of ``prompt`` as sent: one user message through the tokenizer's chat template."""
    messages = [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def packaged_prompts(count: int) -> list[str]:
    path = MODEL_DIR.parent.parent / "prompts" / "quickstart.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()[:count]]


def test_result_has_contract_keys(run: tuple[dict[str, Any], Path]) -> None:
    result, _ = run
    assert {"name", "backend", "model", "dataset", "num_samples", "device_ids"} <= set(result["config"])
    assert set(result["summary"]) >= set(SUMMARY_KEYS)
    assert set(result["energy"]) >= set(ENERGY_KEYS)
    assert result["schema_version"] == "1.3"
    assert result["status"] == "completed"
    assert result["config"]["model"] == "packaged:tiny-llama"


def test_report_file_holds_the_returned_result(run: tuple[dict[str, Any], Path]) -> None:
    result, out = run
    on_disk = json.loads((out / "benchmark_report.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(result))


def test_token_counts_are_exact(run: tuple[dict[str, Any], Path]) -> None:
    from transformers import AutoTokenizer

    result, _ = run
    summary = result["summary"]
    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    expected_prompt_tokens = sum(chat_token_count(tokenizer, p) for p in packaged_prompts(12))
    assert summary["total_prompts"] == summary["successful_prompts"] == 12
    assert summary["failed_prompts"] == 0
    assert summary["total_completion_tokens"] == 12 * NEW_TOKENS
    assert summary["total_prompt_tokens"] == expected_prompt_tokens
    assert summary["total_tokens"] == expected_prompt_tokens + 12 * NEW_TOKENS


def test_requests_file_has_one_record_per_batch_with_ttft_before_end(run: tuple[dict[str, Any], Path]) -> None:
    _, out = run
    rows = [json.loads(line) for line in (out / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    generate = [row for row in rows if row["phase"] == "generate"]
    prefill = [row for row in rows if row["phase"] == "prefill"]
    assert len(generate) == len(prefill) == 12
    for row in generate:
        assert row["error"] is None
        assert row["completion_tokens"] == NEW_TOKENS
        assert 0 < row["ttft_s"] < row["latency_s"]
    # The prefill pass generates exactly one token per prompt, from the same prompts.
    assert [row["completion_tokens"] for row in prefill] == [1] * 12
    assert [row["prompt_tokens"] for row in prefill] == [row["prompt_tokens"] for row in generate]


def test_speed_figures_agree_with_records(run: tuple[dict[str, Any], Path]) -> None:
    result, _ = run
    summary = result["summary"]
    assert summary["total_duration_seconds"] > 0
    assert summary["throughput_output_tokens_per_second"] == pytest.approx(
        summary["total_completion_tokens"] / summary["total_duration_seconds"]
    )
    assert summary["throughput_tokens_per_second"] == pytest.approx(  # 0.0.4's meaning: prompt + output tokens
        summary["total_tokens"] / summary["total_duration_seconds"]
    )
    assert 0 < summary["avg_time_to_first_token"] < summary["avg_latency_seconds"]
    assert result["latency"]["latency_s"]["count"] == 12
    # The window holds all requests: their latencies cannot add up to more than it.
    assert summary["avg_latency_seconds"] * 12 <= summary["total_duration_seconds"]


def test_energy_figures_are_consistent_and_labelled(run: tuple[dict[str, Any], Path]) -> None:
    result, _ = run
    energy = result["energy"]
    assert energy["enabled"] is True
    assert energy["cpu_energy_wh"] > 0 and energy["ram_energy_wh"] > 0
    assert energy["total_energy_wh"] == pytest.approx(
        energy["cpu_energy_wh"] + energy["ram_energy_wh"] + energy["gpu_energy_wh"]
    )
    assert energy["energy_wh"] == energy["gpu_energy_wh"]
    assert energy["emissions_g_co2eq"] == pytest.approx(energy["emissions_kg_co2eq"] * 1000)
    assert energy["carbon_intensity_g_per_kwh"] == pytest.approx(
        energy["emissions_g_co2eq"] / (energy["total_energy_wh"] / 1000)
    )
    assert energy["total_wh_per_1000_queries"] == pytest.approx(energy["total_energy_wh"] / 12 * 1000)
    assert energy["joules_per_output_token"] == pytest.approx(energy["total_energy_j"] / (12 * NEW_TOKENS))
    for device in ("cpu", "ram"):
        assert energy["sources"][device].split(":")[0] in ("measured", "estimated")
    # RAM energy is never measured by CodeCarbon: it must say so.
    assert energy["sources"]["ram"] == "estimated:codecarbon-ram"
    assert energy["all_measured"] is False
    readings = energy["readings"]
    assert {r["device"] for r in readings} >= {"cpu", "ram"}


def test_no_gpu_is_reported_as_absence_not_measurement(run: tuple[dict[str, Any], Path]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result, _ = run
    energy = result["energy"]
    assert energy["gpu_energy_wh"] == 0.0
    assert energy["sources"]["gpu"] == "none:no-gpu-metered"
    assert any("no GPU" in note for note in energy["notes"])


def test_environment_and_provenance_are_recorded(run: tuple[dict[str, Any], Path]) -> None:
    result, out = run
    env = result["environment"]
    assert env["ai_energy_benchmarks_version"] == __version__
    assert env["python_version"] and env["os"] and env["cpu_model"]
    for package in ("torch", "transformers", "codecarbon"):
        assert env["packages"][package]
    assert result["model"]["synthetic"] is True
    assert "random weights" in result["model"]["note"]
    sha = result["provenance"]["config_sha256"]
    assert len(sha) == 64
    assert sha in (out / "resolved_config.yaml").read_text(encoding="utf-8")
    assert result["dataset"]["source"] == "packaged:quickstart"
    assert len(result["dataset"]["prompts_sha256"]) == 64


def test_codecarbon_wrote_its_file_in_the_configured_dir(run: tuple[dict[str, Any], Path]) -> None:
    _, out = run
    emissions = out / "codecarbon" / "emissions.csv"
    assert emissions.is_file()
    with emissions.open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["country_iso_code"] == "USA"
    assert row["region"] == "california"


def test_csv_row_appended_and_aligned(run: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    result, out = run
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert rows[0]["model"] == "packaged:tiny-llama"
    assert float(rows[0]["total_energy_wh"]) == pytest.approx(result["energy"]["total_energy_wh"])
    assert rows[0]["cpu_energy_source"].startswith(("estimated:", "measured:"))


def test_second_run_appends_a_second_row(tmp_path: Path) -> None:
    config = make_config(tmp_path, num_samples=3)
    BenchmarkRunner(config).run()
    BenchmarkRunner(config).run()
    with (tmp_path / "results.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    assert len(rows) == 2
    assert all(len(row) == len(header) for row in rows)


def test_csv_with_other_columns_is_migrated_to_their_union(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("a,b\n1,2\n", encoding="utf-8")
    append_csv_row(target, {"a": 3, "c": 4})
    assert target.read_text(encoding="utf-8") == "a,b,c\n1,2,\n3,,4\n"


def test_batch_of_four_counts_tokens_without_padding(tmp_path: Path) -> None:
    result = BenchmarkRunner(make_config(tmp_path, num_samples=10, batch_size=4)).run()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    expected = sum(chat_token_count(tokenizer, p) for p in packaged_prompts(10))
    assert result["summary"]["total_prompt_tokens"] == expected
    assert result["summary"]["total_completion_tokens"] == 10 * NEW_TOKENS
    rows = [json.loads(r) for r in (tmp_path / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["num_prompts"] for r in rows if r["phase"] == "generate"] == [4, 4, 2]


def test_repetitions_report_spread(tmp_path: Path) -> None:
    result = BenchmarkRunner(make_config(tmp_path, num_samples=4, repetitions=3)).run()
    assert len(result["repetitions"]) == 3
    assert result["summary"]["total_prompts"] == 12
    stats = result["repetition_statistics"]["total_energy_wh"]
    assert stats["count"] == 3
    assert stats["ci95_low"] <= stats["mean"] <= stats["ci95_high"]
    assert result["energy"]["total_energy_wh"] == pytest.approx(
        sum(r["total_energy_wh"] for r in result["repetitions"])
    )


def test_metrics_disabled_keeps_keys_without_inventing_energy(tmp_path: Path) -> None:
    config = make_config(tmp_path, num_samples=2)
    config.metrics.enabled = False
    result = BenchmarkRunner(config).run()
    assert result["energy"]["enabled"] is False
    # 0.0.4's keys stay numbers, each listed as zero-filled (unknown, not zero); our own keys are null.
    assert all(result["energy"][key] == 0.0 for key in ENERGY_KEYS)
    assert set(result["energy"]["zero_filled"]) == set(ENERGY_KEYS)
    assert result["energy"]["total_energy_j"] is None and result["energy"]["emissions_estimated_g_co2eq"] is None
    assert result["summary"]["total_completion_tokens"] == 2 * NEW_TOKENS


def test_failure_inside_window_writes_partial_report_and_stops_meter(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    long_prompt = " ".join(["energy"] * 900)
    prompts.write_text("short one\nshort two\nshort three\n" + long_prompt + "\nlast\n", encoding="utf-8")
    config = make_config(tmp_path / "out", num_samples=5, measure_prefill=False)
    config.scenario.dataset_name = str(prompts)
    with pytest.raises(DatasetError, match=r"prompt 3 has \d+ tokens"):
        BenchmarkRunner(config).run()
    report = json.loads((tmp_path / "out" / "benchmark_report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert report["summary"]["total_prompts"] == 3
    assert report["energy"]["cpu_energy_wh"] > 0
    assert (tmp_path / "out" / "codecarbon" / "emissions.csv").is_file()


def test_truncation_lets_a_long_prompt_through(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(" ".join(["energy"] * 900) + "\n", encoding="utf-8")
    config = make_config(tmp_path / "out", num_samples=1, truncation=True)
    config.scenario.dataset_name = str(prompts)
    result = BenchmarkRunner(config).run()
    assert result["summary"]["total_prompt_tokens"] == 512 - NEW_TOKENS
    assert result["summary"]["total_completion_tokens"] == NEW_TOKENS


def test_run_benchmark_from_config_with_nested_overrides(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(
        f"""
name: from-yaml
output_dir: {tmp_path / "out"}
backend: {{type: pytorch, model: "packaged:tiny-llama", no_weights: true, device: cpu}}
scenario:
  num_samples: 50
  generate_kwargs: {{max_new_tokens: 4, min_new_tokens: 4}}
reporter: {{output_file: {tmp_path / "results.csv"}}}
""",
        encoding="utf-8",
    )
    result = run_benchmark_from_config(str(path), overrides={"scenario": {"num_samples": 3}})
    assert result["config"]["name"] == "from-yaml"
    assert result["summary"]["total_prompts"] == 3
    assert result["summary"]["total_completion_tokens"] == 12
    assert result["provenance"]["config"]["scenario"]["num_samples"] == 3

    runner = create_benchmark(config_path=str(path), overrides=["scenario.num_samples=2"])
    assert math.isclose(runner.run()["summary"]["total_prompts"], 2)


def test_phases_prefill_plus_decode_equals_generate(run: tuple[dict[str, Any], Path]) -> None:
    result, _ = run
    phases = result["phases"]
    prefill, generate, decode = phases["prefill"], phases["generate"], phases["decode"]
    assert prefill["prompts"] == generate["prompts"] == 12
    assert prefill["output_tokens"] == 12
    assert generate["output_tokens"] == 12 * NEW_TOKENS
    assert decode["output_tokens"] == 12 * (NEW_TOKENS - 1)
    # The headline energy is the generate pass, as AIEnergyScore sums prefill and decode.
    assert generate["energy_wh"] == pytest.approx(result["energy"]["total_energy_wh"])
    assert prefill["duration_s"] < generate["duration_s"]
    assert prefill["samples_per_kwh"] == pytest.approx(12 / (prefill["energy_wh"] / 1000))
    assert decode["tokens_per_kwh"] == pytest.approx(12 * (NEW_TOKENS - 1) / (decode["energy_wh"] / 1000))


def test_idle_baseline_gives_power_and_active_energy(tmp_path: Path) -> None:
    config = make_config(tmp_path, num_samples=4)
    config.metrics.idle_seconds = 1.0
    result = BenchmarkRunner(config).run()
    energy = result["energy"]
    baseline = energy["idle_baseline"]
    assert baseline["duration_s"] >= 1.0
    duration_s = result["summary"]["total_duration_seconds"]
    for device in ("cpu", "ram"):
        power = baseline["power_w"][device]
        assert power > 0
        expected_active_wh = energy[f"{device}_energy_wh"] - power * duration_s / 3600
        if -0.01 * energy[f"{device}_energy_wh"] <= expected_active_wh < 0:
            expected_active_wh = 0.0  # a constant-power estimate's rounding, not negative energy (methodology.md)
        if expected_active_wh < 0:  # further below zero (timing noise on a busy machine): null and flagged, never < 0
            assert baseline["active_energy_wh"][device] is None and "negative-energy" in energy["flags"]
            continue
        assert baseline["active_energy_wh"][device] == pytest.approx(expected_active_wh, abs=1e-12)
    # CodeCarbon's RAM model is a constant power: idle and loaded RAM power agree, so RAM active energy is ~0.
    ram_loaded_w = energy["ram_energy_wh"] * 3600 / duration_s
    assert baseline["power_w"]["ram"] == pytest.approx(ram_loaded_w, rel=0.02)
    assert 0 < baseline["idle_share"] <= 1.05


def test_without_prefill_there_are_no_phases(tmp_path: Path) -> None:
    result = BenchmarkRunner(make_config(tmp_path, num_samples=2, measure_prefill=False)).run()
    assert result["phases"] is None
    rows = (tmp_path / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2


def test_a_rerun_keeps_the_previous_runs_files(tmp_path: Path) -> None:
    config = make_config(tmp_path, num_samples=2)
    config.metrics.output_dir = None  # CodeCarbon writes into the run's folder
    first = BenchmarkRunner(config).run()
    second = BenchmarkRunner(config).run()
    archived = list((tmp_path / "previous_runs").iterdir())
    assert len(archived) == 1
    kept = json.loads((archived[0] / "benchmark_report.json").read_text(encoding="utf-8"))
    assert kept["timestamps"] == first["timestamps"]
    assert (archived[0] / "requests.jsonl").is_file()
    # CodeCarbon's per-task file of each run goes with that run (its emissions.csv gains a row per run).
    assert len(list(archived[0].glob("emissions_base_*.csv"))) == 1
    assert len(list(tmp_path.glob("emissions_base_*.csv"))) == 1
    current = json.loads((tmp_path / "benchmark_report.json").read_text(encoding="utf-8"))
    assert current["timestamps"] == second["timestamps"]
