"""The keyword API AIEnergyScore calls (DESIGN.md, Contracts): construction by keyword, string and container coercion.

Everything here drives the real config code (no mocks): values are checked as a user would see them, either as
resolved config values or as the one-line message and exit code of the `ai-energy-benchmark` command.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from config_helpers import (
    FakeDictConfig,
    FakeListConfig,
    _isolated,  # noqa: F401  # the autouse fixture: an empty working directory
    config_error_from_data,
)
from pydantic import BaseModel, ValidationError

from ai_energy_benchmarks.config.schema import (
    BackendConfig,
    BenchmarkConfig,
    MetricsConfig,
    ReporterConfig,
    ScenarioConfig,
)

# ---------------------------------------------------------------------------------------------------------------
# 1. The keyword API AIEnergyScore calls (DESIGN.md, Contracts)
# ---------------------------------------------------------------------------------------------------------------


def _aienergyscore_config(backend: BackendConfig) -> BenchmarkConfig:
    scenario = ScenarioConfig(
        dataset_name="EnergyStarAI/text_generation",
        text_column_name="text",
        num_samples=10,
        reasoning=False,
        reasoning_params=None,
        generate_kwargs={"max_new_tokens": 10, "min_new_tokens": 10},
    )
    metrics = MetricsConfig(
        enabled=True,
        type="codecarbon",
        project_name="text_generation",
        output_dir="/results/codecarbon",
        country_iso_code="USA",
        region="california",
    )
    reporter = ReporterConfig(type="csv", output_file="/results/benchmark_results.csv")
    return BenchmarkConfig(
        name="text_generation",
        backend=backend,
        scenario=scenario,
        metrics=metrics,
        reporter=reporter,
        output_dir="/results",
    )


def test_aienergyscore_pytorch_construction_by_keyword() -> None:
    backend = BackendConfig(type="pytorch", model="openai/gpt-oss-20b", device="cuda", device_ids=[0])
    config = _aienergyscore_config(backend)

    assert config.name == "text_generation"
    assert config.output_dir == "/results"
    assert config.backend.type == "pytorch"
    assert config.backend.model == "openai/gpt-oss-20b"
    assert config.backend.device == "cuda"
    assert config.backend.device_ids == [0]
    assert config.scenario.dataset_name == "EnergyStarAI/text_generation"
    assert config.scenario.text_column_name == "text"
    assert config.scenario.num_samples == 10
    assert config.scenario.reasoning is False
    assert config.scenario.reasoning_params is None
    assert config.scenario.generate_kwargs.max_new_tokens == 10
    assert config.scenario.generate_kwargs.min_new_tokens == 10
    assert config.metrics.enabled is True
    assert config.metrics.type == "codecarbon"
    assert config.metrics.project_name == "text_generation"
    assert config.metrics.output_dir == "/results/codecarbon"
    assert config.metrics.country_iso_code == "USA"
    assert config.metrics.region == "california"
    assert config.reporter.type == "csv"
    assert config.reporter.output_file == "/results/benchmark_results.csv"
    # The resolved config is plain, JSON-safe data (it is saved with the results).
    json.dumps(config.to_public_dict())


def test_aienergyscore_vllm_construction_by_keyword() -> None:
    backend = BackendConfig(type="vllm", model="openai/gpt-oss-20b", endpoint="http://host:8000/v1")
    config = _aienergyscore_config(backend)
    assert config.backend.type == "vllm"
    assert config.backend.endpoint == "http://host:8000/v1"


@pytest.mark.parametrize("text", ["False", "false", "0", "no", "off"])
@pytest.mark.parametrize(
    ("section", "key"),
    [
        (ScenarioConfig, "reasoning"),
        (MetricsConfig, "enabled"),
        (ScenarioConfig, "truncation"),
    ],
)
def test_false_strings_are_false_never_true(section: type[BaseModel], key: str, text: str) -> None:
    assert getattr(section(**{key: text}), key) is False


@pytest.mark.parametrize("text", ["True", "true", "1", "yes"])
def test_true_strings_are_true(text: str) -> None:
    assert ScenarioConfig(reasoning=text).reasoning is True
    assert MetricsConfig(enabled=text).enabled is True


def test_false_string_for_a_backend_flag() -> None:
    backend = BackendConfig(type="pytorch", model="m", no_weights="False", load_in_8bit="0", trust_remote_code="false")
    assert backend.no_weights is False
    assert backend.load_in_8bit is False
    assert backend.trust_remote_code is False


def test_number_strings_become_numbers() -> None:
    scenario = ScenarioConfig(
        num_samples="10", generate_kwargs={"max_new_tokens": "10", "min_new_tokens": "10"}, warmup_runs="0"
    )
    assert scenario.num_samples == 10
    assert scenario.generate_kwargs.max_new_tokens == 10
    assert scenario.generate_kwargs.min_new_tokens == 10
    assert scenario.warmup_runs == 0
    assert MetricsConfig(measure_power_secs="0.5").measure_power_secs == 0.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0, 1, 2", [0, 1, 2]),
        ("[0,1]", [0, 1]),
        ("[0, 1]", [0, 1]),
        (0, [0]),
        ("0", [0]),
        ("3", [3]),
        ([0, "1"], [0, 1]),
        ((2, 3), [2, 3]),
    ],
)
def test_device_ids_forms(value: Any, expected: list[int]) -> None:
    assert BackendConfig(type="pytorch", model="m", device="cuda", device_ids=value).device_ids == expected


def test_reasoning_params_values_are_kept_or_typed() -> None:
    scenario = ScenarioConfig(
        reasoning="True", reasoning_params={"reasoning_effort": "high", "budget": "128", "show": "False"}
    )
    assert scenario.reasoning is True
    assert scenario.reasoning_params == {"reasoning_effort": "high", "budget": 128, "show": False}
    assert ScenarioConfig(reasoning_params="None").reasoning_params is None


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: ScenarioConfig(reasoning="maybe"), "reasoning"),
        (lambda: ScenarioConfig(reasoning=2), "reasoning"),
        (lambda: ScenarioConfig(num_samples="ten"), "num_samples"),
        (lambda: ScenarioConfig(num_samples=True), "num_samples"),  # never read true as 1
        (lambda: BackendConfig(type="pytorch", model="m", device_ids="0, x"), "device_ids"),
        (lambda: BackendConfig(type="pytorch", model="m", device_ids=[True]), "device_ids"),
        (lambda: ScenarioConfig(reasoning_params="high"), "reasoning_params"),
        (lambda: MetricsConfig(enabled="enabled"), "enabled"),
    ],
)
def test_uncoercible_values_are_rejected_not_misread(build: Any, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert key in str(info.value)


def test_bad_keyword_value_reaches_the_user_as_one_line() -> None:
    message = config_error_from_data({"backend": {"model": "m"}, "scenario": {"reasoning": "maybe"}})
    assert message == "python: scenario.reasoning: expected true or false, got 'maybe'"


def test_omegaconf_like_containers_are_accepted() -> None:
    backend = BackendConfig(type="pytorch", model="m", device="cuda", device_ids=FakeListConfig([0, "1"]))
    scenario = ScenarioConfig(
        generate_kwargs=FakeDictConfig({"max_new_tokens": "12", "min_new_tokens": 12}),
        reasoning_params=FakeDictConfig({"reasoning_effort": "high"}),
        input_shapes=FakeDictConfig({"batch_size": "4"}),
    )
    assert backend.device_ids == [0, 1]
    assert scenario.generate_kwargs.max_new_tokens == 12
    assert scenario.input_shapes.batch_size == 4
    assert scenario.reasoning_params == {"reasoning_effort": "high"}
    assert type(scenario.reasoning_params) is dict


def test_omegaconf_like_whole_config_is_accepted_and_becomes_plain_data() -> None:
    data = FakeDictConfig(
        {
            "name": "omega",
            "backend": FakeDictConfig({"model": "m", "device": "cuda", "device_ids": FakeListConfig(["0", "1"])}),
            "scenario": FakeDictConfig(
                {"reasoning": "False", "generate_kwargs": FakeDictConfig({"max_new_tokens": 5, "min_new_tokens": 5})}
            ),
            "metrics": FakeDictConfig({"enabled": "false"}),
        }
    )
    config = BenchmarkConfig.model_validate(data)
    assert config.backend.device_ids == [0, 1]
    assert config.scenario.reasoning is False
    assert config.metrics.enabled is False
    dumped = config.to_public_dict()
    assert type(dumped["backend"]) is dict
    assert type(dumped["backend"]["device_ids"]) is list
    json.dumps(dumped)


def test_assignment_is_validated_and_coerced() -> None:
    config = BenchmarkConfig(backend=BackendConfig(type="pytorch", model="m"))
    config.scenario.reasoning = "False"  # type: ignore[assignment]
    config.backend.device_ids = "1, 2"  # type: ignore[assignment]
    assert config.scenario.reasoning is False
    assert config.backend.device_ids == [1, 2]
    with pytest.raises(ValidationError):
        config.scenario.num_samples = -1


# ---------------------------------------------------------------------------------------------------------------
# 3. Each meter's settings in its own section; the flat names of earlier releases still read (issue 17)
# ---------------------------------------------------------------------------------------------------------------


def test_0_0_4_metrics_keywords_keep_working_by_keyword_and_attribute() -> None:
    """AIEnergyScore builds MetricsConfig with 0.0.4's six keywords and reads them back as attributes."""
    from ai_energy_benchmarks.config import parser

    for cls in (MetricsConfig, parser.MetricsConfig):
        metrics = cls(
            type="codecarbon",
            enabled=True,
            project_name="aienergyscore",
            output_dir="/tmp/emissions",
            country_iso_code="FRA",
            region="ile-de-france",
        )
        assert (metrics.type, metrics.enabled, metrics.project_name) == ("codecarbon", True, "aienergyscore")
        assert (metrics.output_dir, metrics.country_iso_code, metrics.region) == (
            "/tmp/emissions",
            "FRA",
            "ile-de-france",
        )


def test_flat_metrics_keys_are_read_into_their_meters_sections(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ai_energy_benchmarks.config import metrics as metrics_module

    monkeypatch.setattr(metrics_module, "_deprecation_logged", set())
    with caplog.at_level("WARNING", logger="ai_energy_benchmarks.config.metrics"):
        metrics = MetricsConfig(
            measure_power_secs="0.5",
            tracking_mode="process",
            online="false",
            nvml_poll_interval_s=0.02,
            rapl_root="/srv/powercap",
            rapl_poll_interval_s=2,
        )
        MetricsConfig(measure_power_secs=0.25)  # the deprecation is logged once per key
    assert metrics.codecarbon.model_dump() == {"measure_power_secs": 0.5, "tracking_mode": "process", "online": False}
    assert metrics.nvml.poll_interval_s == 0.02 and metrics.amdsmi.poll_interval_s == 0.05  # AMD keeps its own
    assert (metrics.rapl.root, metrics.rapl.poll_interval_s) == ("/srv/powercap", 2.0)
    # the flat names still read (and write) the sections' values
    assert (metrics.measure_power_secs, metrics.tracking_mode, metrics.nvml_poll_interval_s) == (0.5, "process", 0.02)
    metrics.nvml_poll_interval_s = "0.03"
    assert metrics.nvml.poll_interval_s == 0.03
    deprecations = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert "metrics.measure_power_secs is deprecated: write metrics.codecarbon.measure_power_secs (read as that)" in (
        deprecations
    )
    assert len(deprecations) == 6
    # the resolved config (what `validate` prints and the report keeps) holds the sections only
    dumped = BenchmarkConfig(backend=BackendConfig(model="m"), metrics=metrics).to_public_dict()["metrics"]
    assert "measure_power_secs" not in dumped and dumped["codecarbon"]["measure_power_secs"] == 0.5


def test_a_setting_given_flat_and_in_its_section_must_agree() -> None:
    assert MetricsConfig(measure_power_secs="0.5", codecarbon={"measure_power_secs": 0.5}).measure_power_secs == 0.5
    with pytest.raises(ValidationError, match=r"measure_power_secs \(2\) and codecarbon.measure_power_secs \(1\)"):
        MetricsConfig(measure_power_secs=2, codecarbon={"measure_power_secs": 1})


def test_meters_read_their_own_sections(tmp_path: Any) -> None:
    from ai_energy_benchmarks.energy.registry import create_meters

    metrics = MetricsConfig(
        type=["codecarbon", "nvml", "amdsmi", "rapl"],
        codecarbon={"measure_power_secs": 0.5},
        nvml={"poll_interval_s": 0.02},
        amdsmi={"poll_interval_s": 0.08},
        rapl={"poll_interval_s": 0.5, "root": str(tmp_path)},
    )
    codecarbon, nvml, amdsmi, rapl = create_meters(metrics, tmp_path, None)
    assert codecarbon.describe()["measure_power_secs"] == 0.5
    assert nvml.describe()["poll_interval_s"] == 0.02 and amdsmi.describe()["poll_interval_s"] == 0.08
    assert rapl.poll_interval_s == 0.5  # type: ignore[attr-defined]
