"""The `validate` and `presets` commands.

Everything here drives the real config code (no mocks): values are checked as a user would see them, either as
resolved config values or as the one-line message and exit code of the `ai-energy-benchmark` command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from config_helpers import (
    _isolated,  # noqa: F401  # the autouse fixture: an empty working directory
    assert_one_line_error,
    cli,
    write,
)

from ai_energy_benchmarks.config import load_config
from ai_energy_benchmarks.runner import config_sha256

# ---------------------------------------------------------------------------------------------------------------
# 5. Commands: validate and presets
# ---------------------------------------------------------------------------------------------------------------


def _resolved(result: Result) -> tuple[list[str], dict[str, Any]]:
    """The comment header lines and the resolved config printed by `validate`."""
    assert result.exit_code == 0, result.stderr
    header = [line for line in result.stdout.splitlines() if line.startswith("#")]
    return header, yaml.safe_load(result.stdout)


def test_validate_quickstart_prints_the_resolved_config() -> None:
    header, resolved = _resolved(cli("validate", "--config-name", "quickstart"))
    assert header[0] == "# preset 'quickstart'"
    match = re.fullmatch(r"# sha256 ([0-9a-f]{64})", header[1])
    assert match is not None, header
    assert match.group(1) == config_sha256(load_config(config_name="quickstart"))
    assert resolved["name"] == "quickstart"
    assert resolved["output_dir"] == "./benchmark_output/quickstart"  # ${AIEB_OUTPUT_DIR:-...} resolved
    assert resolved["backend"]["type"] == "pytorch"
    assert resolved["backend"]["model"] == "packaged:tiny-llama"
    assert resolved["backend"]["device"] == "cpu"
    assert resolved["scenario"]["num_samples"] == 100
    assert resolved["scenario"]["generate_kwargs"]["max_new_tokens"] == 32
    assert resolved["scenario"]["generate_kwargs"]["min_new_tokens"] == 32
    assert resolved["reporter"]["output_file"] == "./benchmark_output/quickstart/benchmark_results.csv"
    # Every key is printed with its resolved value, including the defaults the preset does not set.
    assert resolved["scenario"]["input_shapes"] == {"batch_size": 1}
    assert resolved["metrics"]["codecarbon"]["tracking_mode"] == "machine"
    assert resolved["metrics"]["codecarbon"]["measure_power_secs"] == 0.25  # the preset's own section


def test_validate_hash_is_stable_and_tracks_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = _resolved(cli("validate", "--config-name", "quickstart"))
    again, _ = _resolved(cli("validate", "--config-name", "quickstart"))
    changed, resolved = _resolved(cli("validate", "--config-name", "quickstart", "scenario.num_samples=7"))
    assert first[1] == again[1]
    assert changed[1] != first[1]
    assert resolved["scenario"]["num_samples"] == 7
    monkeypatch.setenv("AIEB_OUTPUT_DIR", str(tmp_path / "out"))
    _, resolved = _resolved(cli("validate", "--config-name", "quickstart"))
    assert resolved["output_dir"] == str(tmp_path / "out")


def test_printed_config_reruns_to_the_same_hash(tmp_path: Path) -> None:
    result = cli("validate", "--config-name", "quickstart", "scenario.num_samples=5")
    header, _ = _resolved(result)
    saved = write(tmp_path, "resolved.yaml", result.stdout)
    again, resolved = _resolved(cli("validate", "--config", str(saved)))
    assert again[1] == header[1]
    assert resolved["scenario"]["num_samples"] == 5


def test_presets_lists_packaged_presets_with_descriptions() -> None:
    result = cli("presets")
    assert result.exit_code == 0, result.stderr
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert {"quickstart", "text_generation"} <= set(rows)
    assert "CPU" in rows["quickstart"]
    assert "AIEnergyScore" in rows["text_generation"]
    assert all(description.strip() for description in rows.values())


def test_text_generation_preset_defaults() -> None:
    _, resolved = _resolved(cli("validate", "--config-name", "text_generation", "backend.model=x"))
    assert resolved["backend"]["type"] == "pytorch"
    assert "endpoint" not in resolved["backend"]  # the preset's endpoint is for type vllm; pytorch ignores it
    assert resolved["scenario"]["dataset_name"] == "EnergyStarAI/text_generation"
    assert resolved["scenario"]["num_samples"] == 1000
    assert resolved["scenario"]["input_shapes"]["batch_size"] == 1
    assert resolved["scenario"]["generate_kwargs"]["max_new_tokens"] == 10
    assert resolved["scenario"]["generate_kwargs"]["min_new_tokens"] == 10


def test_text_generation_preset_reads_backend_and_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHMARK_BACKEND", "vllm")
    monkeypatch.setenv("VLLM_ENDPOINT", "http://gpu-host:8001/v1")
    _, resolved = _resolved(cli("validate", "--config-name", "text_generation", "backend.model=x"))
    assert resolved["backend"]["type"] == "vllm"
    assert resolved["backend"]["endpoint"] == "http://gpu-host:8001/v1"
    assert resolved["backend"]["model"] == "x"


def test_text_generation_preset_needs_a_model() -> None:
    assert_one_line_error(
        cli("validate", "--config-name", "text_generation"),
        "preset 'text_generation'",
        "backend.model: required key is missing",
    )


def test_text_generation_preset_bad_backend_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHMARK_BACKEND", "vlm")
    assert_one_line_error(
        cli("validate", "--config-name", "text_generation", "backend.model=x"),
        "backend.type: expected 'pytorch' or 'vllm', got 'vlm'",
    )


def test_api_key_is_redacted_in_the_printed_config(tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.yaml", "backend:\n  type: vllm\n  model: m\n  endpoint: http://h:1/v1\n  api_key: s3cret\n"
    )
    result = cli("validate", "--config", str(path))
    assert result.exit_code == 0, result.stderr
    assert "s3cret" not in result.stdout
    assert load_config(path).backend.api_key is not None
