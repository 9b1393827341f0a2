"""The typed result: ``aggregate()`` returns a ``BenchmarkResult`` whose ``to_dict()`` is exactly the dict the
pre-model code returned (keys, key order, values, ints kept ints), reports read from disk parse into it, the CSV row
is unchanged, and its JSON Schema is published (command and docs)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from repo_paths import REPO_ROOT
from result_scenarios import GOLDEN_DIR, SCENARIOS

from ai_energy_benchmarks.results.columns import QUALITY_COLUMNS, csv_row
from ai_energy_benchmarks.results.model import (
    SCHEMA_VERSION,
    BenchmarkResult,
    json_schema,
    json_schema_text,
    parse_report,
)
from ai_energy_benchmarks.results.summary import format_summary

ROOT = REPO_ROOT
DOCS = ROOT / "docs" / "results.md"
BEGIN, END = "<!-- BEGIN GENERATED: result JSON Schema -->", "<!-- END GENERATED: result JSON Schema -->"


def golden(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def text(data: dict[str, Any]) -> str:
    """JSON text: equal texts mean equal keys, key order and values (2 and 2.0 differ)."""
    return json.dumps(data, indent=1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_aggregate_gives_the_dict_the_pre_model_code_gave(name: str) -> None:
    result = SCENARIOS[name]()
    assert isinstance(result, BenchmarkResult)
    # the goldens were recorded at schema 1.1; 1.2 only added keys (``quality``, absent without a scorer, and
    # ``energy.request_attribution``, checked in tests/unit/results/test_request_energy.py)
    data = result.to_dict()
    data["energy"].pop("request_attribution", None)
    assert text(data) == text(golden(name) | {"schema_version": SCHEMA_VERSION})


@pytest.mark.parametrize("name", [*sorted(SCENARIOS), "fresh_run_report"])
def test_a_recorded_result_parses_and_dumps_unchanged(name: str) -> None:
    recorded = golden(name)
    assert text(BenchmarkResult.model_validate(recorded).to_dict()) == text(recorded)


def test_typed_fields_hold_the_dicts_values() -> None:
    result = SCENARIOS["idle_and_repetitions"]()
    data = result.to_dict()
    assert result.energy.total_energy_wh == data["energy"]["total_energy_wh"]
    assert result.energy.sources["gpu"] == "measured:nvml-power-polled"
    assert result.energy.idle_baseline is not None and result.energy.idle_baseline.power_w["gpu"] == 50.0
    assert [r.repetition for r in result.repetitions] == [0, 1, 2]
    assert result.repetition_statistics is not None and result.repetition_statistics.total_energy_wh is not None
    assert result.repetition_statistics.total_energy_wh.count == 3
    # 0.0.4's keys read 0.0 in the dict; the typed reader says unknown
    assert data["energy"]["cpu_energy_wh"] == 0.0 and result.energy.known("cpu_energy_wh") is None
    remote = SCENARIOS["remote_server_with_steady_state"]()
    steady = remote.energy.steady_state
    assert steady is not None and [w.reached for w in steady.windows] == [True, False]
    assert set(steady.windows[1].to_dict()) == {"label", "reached", "energy_wh"}  # its shape is kept
    assert "steady_state" not in SCENARIOS["unmetered_all_failed"]().to_dict()["energy"]


def test_the_csv_row_is_unchanged() -> None:
    """Rows recorded from the pre-model ``runner.csv_row`` for each scenario (with a report path added)."""
    recorded = json.loads((GOLDEN_DIR / "csv_rows.json").read_text(encoding="utf-8"))
    for name, row in recorded.items():
        data = golden(name) | {"files": {"report": f"/runs/{name}/benchmark_report.json", "csv": "/runs/results.csv"}}
        # schema 1.2 added the quality columns after all of these (empty without a scorer)
        row = row | dict.fromkeys(QUALITY_COLUMNS)
        assert list(csv_row(data).items()) == list(row.items()), name
        assert csv_row(BenchmarkResult.model_validate(data)) == row, name


def test_the_csv_row_of_a_recorded_run_matches_its_csv() -> None:
    report = golden("fresh_run_report")
    with (GOLDEN_DIR / "fresh_run_results.csv").open(encoding="utf-8", newline="") as handle:
        (written,) = list(csv.DictReader(handle))
    row = {k: "" if v is None else str(v) for k, v in csv_row(report).items()}
    assert row == written | dict.fromkeys(QUALITY_COLUMNS, "")  # schema 1.2's columns: empty without a scorer


def test_a_fresh_run_returns_what_it_writes_and_round_trips(tmp_path: Path) -> None:
    from run_support import make_config

    from ai_energy_benchmarks.runner import BenchmarkRunner

    result = BenchmarkRunner(make_config(tmp_path, num_samples=3, repetitions=2)).run()
    written = json.loads((tmp_path / "benchmark_report.json").read_text(encoding="utf-8"))
    assert text(result) == text(written)
    assert text(BenchmarkResult.model_validate(result).to_dict()) == text(result)
    assert list(result) == list(golden("fresh_run_report"))
    added = ["request_attribution"]  # schema 1.2's key, last
    assert list(result["energy"]) == list(golden("fresh_run_report")["energy"]) + added
    assert list(result["summary"]) == list(golden("fresh_run_report")["summary"])


def test_a_schema_1_0_report_reads_with_todays_names_and_unknowns() -> None:
    old = golden("three_meters") | {"schema_version": "1.0"}
    old["summary"] = old["summary"] | {"throughput_tokens_per_second": 40.0, "throughput_total_tokens_per_second": 55.0}
    old["energy"] = old["energy"] | {"cpu_energy_wh": 0.0, "zero_filled": ["cpu_energy_wh"]}
    typed = parse_report(old)
    assert typed.summary.throughput_output_tokens_per_second == 40.0
    assert typed.summary.throughput_tokens_per_second == 55.0
    assert typed.energy.cpu_energy_wh is None


def test_a_report_that_does_not_parse_is_refused_naming_the_key(tmp_path: Path) -> None:
    from ai_energy_benchmarks.reporting import ReportError
    from ai_energy_benchmarks.reporting.runs import load_run

    report = golden("three_meters")
    report["summary"] = report["summary"] | {"total_prompts": "many"}
    (tmp_path / "benchmark_report.json").write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(ReportError, match=r"not a benchmark report \(summary\.total_prompts: Input should be a valid"):
        load_run(tmp_path)


def test_the_console_summary_reads_the_typed_result() -> None:
    result = SCENARIOS["phases_with_negative_decode"]()
    assert format_summary(result) == format_summary(result.to_dict())
    summary = format_summary(SCENARIOS["remote_server_with_steady_state"]())
    assert "steady state  0.8667 J/output token over 30.0 tokens (cpu measured over the interval; ram ESTIMATE" in (
        summary
    )


def test_every_key_of_a_result_is_declared_in_the_schema() -> None:
    """Free-form blocks (model, meters, environment, provenance, generate_kwargs, hub, readings) aside."""
    schema = json_schema()
    free = {"model", "meters", "environment", "provenance", "generate_kwargs", "hub"}

    def props(node: dict[str, Any]) -> dict[str, Any]:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node
        for option in node.get("anyOf", []):
            if option.get("type") != "null":
                return props(option)
        return node

    def check(data: Any, node: dict[str, Any], path: str) -> None:
        node = props(node)
        if isinstance(data, dict) and "properties" in node:
            for key, value in data.items():
                assert key in node["properties"], f"{path}.{key} is not declared"
                if key not in free:
                    check(value, node["properties"][key], f"{path}.{key}")
        elif isinstance(data, dict) and isinstance(node.get("additionalProperties"), dict):
            for key, value in data.items():
                check(value, node["additionalProperties"], f"{path}.{key}")
        elif isinstance(data, list) and isinstance(node.get("items"), dict):
            for item in data:
                check(item, node["items"], f"{path}[]")

    for name in [*SCENARIOS, "fresh_run_report"]:
        check(golden(name), schema, name)


def test_recorded_results_validate_against_the_schema() -> None:
    import jsonschema  # the [test] extra declares it: a missing package fails here rather than skipping

    for name in [*SCENARIOS, "fresh_run_report"]:
        jsonschema.validate(golden(name), json_schema())


def generated_docs_section() -> str:
    return f"{BEGIN}\n\n```json\n{json_schema_text()}```\n\n{END}"


def test_docs_publish_the_current_schema() -> None:
    """docs/results.md holds the schema between the markers; regenerate with
    ``python tests/unit/results/test_result_model.py``."""
    found = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), DOCS.read_text(encoding="utf-8"), re.S)
    assert found, f"{DOCS} has no generated schema section"
    assert found.group(0) == generated_docs_section(), (
        "docs/results.md's schema is stale: python tests/unit/results/test_result_model.py"
    )


def test_schema_command_prints_and_writes_the_schema(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "ai_energy_benchmarks", "schema"]
    shown = subprocess.run(command, capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout) == json_schema()
    target = tmp_path / "result.schema.json"
    written = subprocess.run([*command, "--output", str(target)], capture_output=True, text=True, check=True)
    assert json.loads(target.read_text(encoding="utf-8")) == json_schema()
    assert str(target) in written.stderr + written.stdout


if __name__ == "__main__":  # regenerate docs/results.md's schema section
    page = DOCS.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    section = generated_docs_section()
    page = pattern.sub(lambda _: section, page) if pattern.search(page) else page.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.write_text(page, encoding="utf-8")
