"""The configuration: the keyword API AIEnergyScore calls, YAML loading, overrides, errors, commands and docs.

Everything here drives the real config code (no mocks): values are checked as a user would see them, either as
resolved config values or as the one-line message and exit code of the `ai-energy-benchmark` command.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from pydantic import BaseModel, ValidationError

from ai_energy_benchmarks.cli import main
from ai_energy_benchmarks.config import load_config
from ai_energy_benchmarks.config.backend import BackendConfig as BackendConfigBase
from ai_energy_benchmarks.config.backend import builtin_config_models
from ai_energy_benchmarks.config.docs import render_markdown
from ai_energy_benchmarks.config.loader import build_config, interpolate_env, load_config_data
from ai_energy_benchmarks.config.parser import (
    BackendConfig,
    BenchmarkConfig,
    MetricsConfig,
    ReporterConfig,
    ScenarioConfig,
)
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.runner import config_sha256, create_benchmark

REPO_ROOT = Path(__file__).resolve().parents[1]

# Variables the packaged presets read; cleared so the tests see the documented defaults.
_PRESET_VARIABLES = ("BENCHMARK_BACKEND", "BENCHMARK_DEVICE", "VLLM_ENDPOINT", "RESULTS_DIR", "AIEB_OUTPUT_DIR")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in an empty directory with the presets' variables unset; restore logging the CLI reconfigures."""
    for name in _PRESET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def write(directory: Path, name: str, text: str) -> Path:
    """Write dedented ``text`` to ``directory/name`` (creating folders) and return the path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def cli(*args: str) -> Result:
    """Invoke the real command line in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit code 2, stderr exactly one line "error: ...", containing every fragment and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def config_error(path: Path, overrides: Any = None) -> str:
    """The message of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


def config_error_from_data(data: dict[str, Any]) -> str:
    """The message of the ConfigError that validating plain ``data`` raises."""
    with pytest.raises(ConfigError) as info:
        build_config(data, "python")
    return str(info.value)


MINIMAL = """\
name: mini
backend:
  type: pytorch
  model: gpt2
"""


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


class FakeDictConfig(Mapping[str, Any]):
    """Stands in for OmegaConf's DictConfig: a Mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class FakeListConfig(Sequence[Any]):
    """Stands in for OmegaConf's ListConfig: a Sequence that is not a list."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    def __getitem__(self, index: Any) -> Any:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)


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
# 2. YAML loading: defaults composition, environment, overrides
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def composed_dir(tmp_path: Path) -> Path:
    """A config folder with a base fragment, group fragments and a nested fragment."""
    write(
        tmp_path,
        "base.yaml",
        """\
        name: from-base
        output_dir: base_out
        metrics:
          project_name: base-project
          region: oregon
        """,
    )
    write(
        tmp_path,
        "backend/pytorch.yaml",
        """\
        type: pytorch
        model: base-model
        device: cpu
        seed: 7
        """,
    )
    write(
        tmp_path,
        "scenario/small.yaml",
        """\
        defaults:
          - common
        num_samples: 5
        """,
    )
    write(
        tmp_path,
        "scenario/common.yaml",
        """\
        dataset_name: packaged:quickstart
        num_samples: 99
        generate_kwargs:
          max_new_tokens: 16
          min_new_tokens: 16
        """,
    )
    return tmp_path


def test_defaults_compose_files_groups_and_nested_fragments(composed_dir: Path) -> None:
    path = write(
        composed_dir,
        "main.yaml",
        """\
        defaults:
          - base
          - backend: pytorch
          - scenario: small
        name: from-main
        backend:
          model: main-model
        """,
    )
    config = load_config(path)
    assert config.name == "from-main"  # the file's own keys come after its defaults
    assert config.output_dir == "base_out"  # from base.yaml
    assert config.metrics.project_name == "base-project"
    assert config.metrics.region == "oregon"
    assert config.backend.type == "pytorch"  # backend/pytorch.yaml merged under `backend`
    assert config.backend.device == "cpu"
    assert config.backend.seed == 7
    assert config.backend.model == "main-model"  # merged key by key, the file wins
    assert config.scenario.num_samples == 5  # scenario/small.yaml after its own nested default
    assert config.scenario.generate_kwargs.max_new_tokens == 16  # scenario/common.yaml, relative to scenario/


def test_self_position_decides_what_wins(composed_dir: Path) -> None:
    write(
        composed_dir,
        "self_first.yaml",
        """\
        defaults:
          - _self_
          - base
          - backend: pytorch
        name: from-self
        output_dir: self_out
        backend:
          model: self-model
        """,
    )
    write(
        composed_dir,
        "self_last.yaml",
        """\
        defaults:
          - base
          - backend: pytorch
          - _self_
        name: from-self
        backend:
          model: self-model
        """,
    )
    first = load_config(composed_dir / "self_first.yaml")
    assert first.name == "from-base"  # fragments listed after _self_ win
    assert first.output_dir == "base_out"
    assert first.backend.model == "base-model"
    last = load_config(composed_dir / "self_last.yaml")
    assert last.name == "from-self"
    assert last.backend.model == "self-model"


def test_defaults_entry_may_name_the_yaml_suffix(composed_dir: Path) -> None:
    path = write(composed_dir, "suffix.yaml", "defaults:\n  - base.yaml\n  - backend: pytorch.yaml\n")
    config = load_config(path)
    assert config.name == "from-base"
    assert config.backend.model == "base-model"


def test_environment_variables_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "env.yaml",
        """\
        name: ${AIEB_TEST_NAME}
        output_dir: ${AIEB_TEST_ROOT:-/data}/out
        backend:
          model: ${AIEB_TEST_MODEL:-fallback-model}
        scenario:
          num_samples: ${AIEB_TEST_SAMPLES:-7}
        metrics:
          enabled: ${AIEB_TEST_ENABLED:-true}
        """,
    )
    monkeypatch.setenv("AIEB_TEST_NAME", "from-env")
    monkeypatch.delenv("AIEB_TEST_ROOT", raising=False)
    monkeypatch.delenv("AIEB_TEST_MODEL", raising=False)
    monkeypatch.delenv("AIEB_TEST_SAMPLES", raising=False)
    monkeypatch.setenv("AIEB_TEST_ENABLED", "False")
    config = load_config(path)
    assert config.name == "from-env"
    assert config.output_dir == "/data/out"
    assert config.backend.model == "fallback-model"
    assert config.scenario.num_samples == 7
    assert config.metrics.enabled is False

    monkeypatch.setenv("AIEB_TEST_ROOT", "/scratch")
    monkeypatch.setenv("AIEB_TEST_MODEL", "env-model")
    monkeypatch.setenv("AIEB_TEST_SAMPLES", "25")
    config = load_config(path)
    assert config.output_dir == "/scratch/out"
    assert config.backend.model == "env-model"
    assert config.scenario.num_samples == 25


def test_empty_variable_falls_back_to_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "env.yaml", "backend:\n  model: ${AIEB_TEST_MODEL:-fallback-model}\n")
    monkeypatch.setenv("AIEB_TEST_MODEL", "")
    assert load_config(path).backend.model == "fallback-model"


def test_omegaconf_env_references_of_a_0_0_4_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A YAML file written for 0.0.4 (loaded by OmegaConf there) uses ${oc.env:VAR,default}: it loads unchanged."""
    path = write(
        tmp_path,
        "old.yaml",
        """\
        name: ${oc.env:AIEB_TEST_NAME}
        output_dir: ${oc.env:AIEB_TEST_ROOT,'/data'}/out
        backend:
          type: ${oc.env:AIEB_TEST_BACKEND,vllm}
          model: ${oc.env:AIEB_TEST_MODEL, fallback-model}
          endpoint: ${oc.env:AIEB_TEST_ENDPOINT,http://localhost:8000/v1}
        scenario:
          num_samples: ${oc.env:AIEB_TEST_SAMPLES,7}
          dataset_config: ${oc.env:AIEB_TEST_SUBSET,null}
        """,
    )
    monkeypatch.setenv("AIEB_TEST_NAME", "from-env")
    for name in ("AIEB_TEST_ROOT", "AIEB_TEST_BACKEND", "AIEB_TEST_MODEL", "AIEB_TEST_ENDPOINT", "AIEB_TEST_SUBSET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIEB_TEST_SAMPLES", "25")
    config = load_config(path)
    assert (config.name, config.output_dir, config.backend.type) == ("from-env", "/data/out", "vllm")
    assert config.backend.model == "fallback-model" and config.backend.endpoint == "http://localhost:8000/v1"
    assert config.scenario.num_samples == 25 and config.scenario.dataset_config is None
    # As in OmegaConf, a variable set to "" is a value (the shell-style ${VAR:-x} treats it as unset).
    monkeypatch.setenv("AIEB_TEST_ROOT", "")
    assert load_config(path).output_dir == "/out"
    monkeypatch.delenv("AIEB_TEST_NAME")
    with pytest.raises(ConfigError, match=r"name: environment variable AIEB_TEST_NAME is not set .*oc\.env"):
        load_config(path)


def test_other_omegaconf_interpolations_are_named_not_kept_as_text(tmp_path: Path) -> None:
    path = write(tmp_path, "node.yaml", "name: run-${backend.model}\nbackend:\n  model: m\n")
    with pytest.raises(ConfigError, match=r"name: interpolation \$\{backend\.model\} is not supported"):
        load_config(path)


def test_whole_string_reference_is_typed_like_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIEB_TEST_N", "10")
    monkeypatch.setenv("AIEB_TEST_FLAG", "false")
    data = {"n": "${AIEB_TEST_N}", "flag": "${AIEB_TEST_FLAG}", "text": "n=${AIEB_TEST_N}", "items": ["${AIEB_TEST_N}"]}
    resolved = interpolate_env(data, "test")
    assert resolved == {"n": 10, "flag": False, "text": "n=10", "items": [10]}
    assert type(resolved["n"]) is int


def test_resolved_data_types_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIEB_TEST_BUDGET", "10")
    path = write(tmp_path, "r.yaml", MINIMAL + "scenario:\n  reasoning_params:\n    budget: ${AIEB_TEST_BUDGET}\n")
    data, _origin = load_config_data(path)
    assert data["scenario"]["reasoning_params"]["budget"] == 10
    assert load_config(path).scenario.reasoning_params == {"budget": 10}


def test_key_value_overrides_are_typed_by_the_schema(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", MINIMAL)
    config = load_config(
        path,
        [
            "backend.model=gpt2-medium",
            "scenario.generate_kwargs.max_new_tokens=20",
            "backend.device_ids=[0,1]",
            "metrics.enabled=False",
            "scenario.num_samples=100",
            "scenario.reasoning_params={reasoning_effort: high}",
            "metrics.region=null",
        ],
    )
    assert config.backend.model == "gpt2-medium"
    assert config.scenario.generate_kwargs.max_new_tokens == 20
    assert config.scenario.generate_kwargs.min_new_tokens == 10  # untouched siblings stay
    assert config.backend.device_ids == [0, 1]
    assert config.metrics.enabled is False
    assert config.scenario.num_samples == 100
    assert config.scenario.reasoning_params == {"reasoning_effort": "high"}
    assert config.metrics.region is None
    assert config.name == "mini"


def test_key_value_overrides_from_the_cli(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", MINIMAL)
    result = cli(
        "validate",
        "--config",
        str(path),
        "backend.model=gpt2",
        "scenario.generate_kwargs.max_new_tokens=20",
        "backend.device_ids=[0,1]",
        "metrics.enabled=False",
    )
    assert result.exit_code == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["backend"]["model"] == "gpt2"
    assert resolved["scenario"]["generate_kwargs"]["max_new_tokens"] == 20
    assert resolved["backend"]["device_ids"] == [0, 1]
    assert resolved["metrics"]["enabled"] is False
    assert "with overrides backend.model" in result.stdout.splitlines()[0]


def test_nested_dict_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", MINIMAL + "scenario:\n  num_samples: 3\n")
    overrides = {"backend": {"device_ids": "0, 1"}, "scenario": {"generate_kwargs": {"max_new_tokens": 20}}}
    config = load_config(path, overrides=overrides)
    assert config.backend.device_ids == [0, 1]
    assert config.backend.model == "gpt2"  # merged, not replaced
    assert config.scenario.num_samples == 3
    assert config.scenario.generate_kwargs.max_new_tokens == 20
    runner = create_benchmark(config_path=path, overrides={"backend": {"model": "distilgpt2"}})
    assert runner.config.backend.model == "distilgpt2"


def test_overrides_win_over_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "c.yaml", "backend:\n  model: ${AIEB_TEST_MODEL:-file-model}\n")
    monkeypatch.delenv("AIEB_TEST_MODEL", raising=False)
    assert load_config(path).backend.model == "file-model"
    monkeypatch.setenv("AIEB_TEST_MODEL", "env-model")
    assert load_config(path).backend.model == "env-model"
    assert load_config(path, ["backend.model=cli-model"]).backend.model == "cli-model"
    assert load_config(path, {"backend": {"model": "dict-model"}}).backend.model == "dict-model"


def test_omegaconf_like_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", MINIMAL)
    overrides = FakeDictConfig({"backend": FakeDictConfig({"device_ids": FakeListConfig([2, 3])})})
    assert load_config(path, overrides).backend.device_ids == [2, 3]


# ---------------------------------------------------------------------------------------------------------------
# 3. Unknown keys
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (MINIMAL + "nmae: x\n", "nmae: unknown key (did you mean 'name'?)"),
        (MINIMAL + "  modle: gpt2\n", "backend.modle: unknown key (did you mean 'model'?)"),
        (MINIMAL + "  device_id: [0]\n", "backend.device_id: unknown key (did you mean 'device_ids'?)"),
        (MINIMAL + "scenario:\n  num_sample: 5\n", "scenario.num_sample: unknown key (did you mean 'num_samples'?)"),
        (
            MINIMAL + "scenario:\n  input_shapes:\n    batch_sise: 2\n",
            "scenario.input_shapes.batch_sise: unknown key (did you mean 'batch_size'?)",
        ),
        (
            MINIMAL + "scenario:\n  generate_kwargs:\n    max_new_token: 2\n",
            "scenario.generate_kwargs: unknown key 'max_new_token' (did you mean 'max_new_tokens'?)",
        ),
        (MINIMAL + "metrics:\n  enable: false\n", "metrics.enable: unknown key (did you mean 'enabled'?)"),
        (
            MINIMAL + "reporter:\n  outptu_file: x.csv\n",
            "reporter.outptu_file: unknown key (did you mean 'output_file'?)",
        ),
    ],
)
def test_unknown_keys_are_errors_with_a_hint(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = write(tmp_path, "c.yaml", yaml_text)
    message = config_error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_unknown_key_without_a_close_match_has_no_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", MINIMAL + "zzzzzz: 1\n")
    message = config_error(path)
    assert message == f"{path}: zzzzzz: unknown key"


def test_unknown_key_in_an_override(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", MINIMAL)
    message = config_error(path, ["backend.modle=gpt2"])
    assert "backend.modle: unknown key (did you mean 'model'?)" in message
    assert "with overrides backend.modle" in message


def test_other_generate_kwargs_pass_through_typed(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", MINIMAL)
    config = load_config(
        path, ["scenario.generate_kwargs.repetition_penalty=1.2", "scenario.generate_kwargs.max_tokens=8"]
    )
    kwargs = config.scenario.generate_kwargs.as_kwargs()
    assert kwargs["repetition_penalty"] == 1.2
    assert kwargs["max_tokens"] == 8  # an OpenAI-style key: not mistaken for a typo of max_new_tokens


# ---------------------------------------------------------------------------------------------------------------
# 4. Bad configs through the real CLI: exit code 2, one line, the file and the key path, no traceback
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadConfig:
    """One bad config: the YAML (None: no file), extra CLI arguments, and what the message must contain."""

    id: str
    yaml_text: str | None
    fragments: tuple[str, ...]
    args: tuple[str, ...] = ()
    names: str = "file"  # what the message must name: the file, a fragment, the override or the preset
    extra_files: dict[str, str] = field(default_factory=dict)


def _m(extra: str) -> str:
    """The minimal valid config plus ``extra`` YAML."""
    return MINIMAL + extra


BAD_CONFIGS = [
    # YAML syntax: the message names file:line:col
    BadConfig("yaml-unclosed-list", "name: x\nbackend:\n  model: [gpt2\n", (":4:1: invalid YAML",)),
    BadConfig("yaml-bad-indent", "backend:\n  model: gpt2\n type: vllm\n", (":3:2: invalid YAML",)),
    BadConfig("yaml-tab", "backend:\n\tmodel: gpt2\n", (":2:1: invalid YAML", "'\\t'")),
    BadConfig("yaml-unclosed-quote", 'name: x\nbackend:\n  model: "gpt2\n', (":4:1: invalid YAML",)),
    BadConfig("yaml-mapping-in-scalar", "name: x: y\n", (":1:8: invalid YAML", "mapping values are not allowed")),
    # Shape
    BadConfig("top-level-list", "- name\n- backend\n", ("expected a mapping at the top level, got list",)),
    BadConfig("top-level-scalar", "just text\n", ("expected a mapping at the top level, got str",)),
    BadConfig("empty-file", "", ("backend: required key is missing",)),
    BadConfig("missing-model", "backend:\n  type: pytorch\n", ("backend.model: required key is missing",)),
    # Wrong types
    BadConfig("backend-is-a-string", "backend: gpt2\n", ("backend: expected a mapping, got 'gpt2'",)),
    BadConfig(
        "num-samples-word", _m("scenario:\n  num_samples: ten\n"), ("scenario.num_samples: expected an integer",)
    ),
    BadConfig(
        "num-samples-float", _m("scenario:\n  num_samples: 10.5\n"), ("scenario.num_samples: expected an integer",)
    ),
    BadConfig(
        "num-samples-bool", _m("scenario:\n  num_samples: true\n"), ("scenario.num_samples: expected an integer",)
    ),
    BadConfig("reasoning-word", _m("scenario:\n  reasoning: maybe\n"), ("scenario.reasoning: expected true or false",)),
    BadConfig(
        "generate-kwargs-list",
        _m("scenario:\n  generate_kwargs: [1, 2]\n"),
        ("scenario.generate_kwargs: expected a mapping",),
    ),
    BadConfig("device-ids-words", _m("  device_ids: 'a, b'\n"), ("backend.device_ids", "expected an integer")),
    BadConfig(
        "measure-power-word",
        _m("metrics:\n  measure_power_secs: fast\n"),
        ("metrics.measure_power_secs: expected a number",),
    ),
    BadConfig("model-is-a-list", "backend:\n  model: [a, b]\n", ("backend.model: expected a string",)),
    # Unknown keys at every level
    BadConfig("unknown-top", _m("nmae: x\n"), ("nmae: unknown key (did you mean 'name'?)",)),
    BadConfig("unknown-backend", _m("  modle: x\n"), ("backend.modle: unknown key (did you mean 'model'?)",)),
    BadConfig(
        "unknown-scenario",
        _m("scenario:\n  num_sample: 3\n"),
        ("scenario.num_sample: unknown key (did you mean 'num_samples'?)",),
    ),
    BadConfig(
        "unknown-input-shapes",
        _m("scenario:\n  input_shapes:\n    batch_sise: 2\n"),
        ("scenario.input_shapes.batch_sise: unknown key (did you mean 'batch_size'?)",),
    ),
    BadConfig(
        "unknown-generate-kwargs",
        _m("scenario:\n  generate_kwargs:\n    min_new_token: 2\n"),
        ("scenario.generate_kwargs: unknown key 'min_new_token' (did you mean 'min_new_tokens'?)",),
    ),
    BadConfig("unknown-metrics", _m("metrics:\n  enable: false\n"), ("metrics.enable: unknown key (did you mean",)),
    BadConfig(
        "unknown-reporter",
        _m("reporter:\n  outptu_file: r.csv\n"),
        ("reporter.outptu_file: unknown key (did you mean 'output_file'?)",),
    ),
    # Environment
    BadConfig(
        "unset-variable",
        "backend:\n  model: ${AIEB_TEST_UNSET_VARIABLE}\n",
        ("backend.model: environment variable AIEB_TEST_UNSET_VARIABLE is not set",),
    ),
    BadConfig(
        "unset-variable-in-list",
        _m("  device_ids: [0, '${AIEB_TEST_UNSET_VARIABLE}']\n"),
        ("backend.device_ids[1]: environment variable AIEB_TEST_UNSET_VARIABLE is not set",),
    ),
    # Impossible values
    BadConfig(
        "negative-num-samples",
        _m("scenario:\n  num_samples: -1\n"),
        ("scenario.num_samples: input should be greater than or equal to 1, got -1",),
    ),
    BadConfig(
        "zero-batch-size",
        _m("scenario:\n  input_shapes:\n    batch_size: 0\n"),
        ("scenario.input_shapes.batch_size: input should be greater than or equal to 1, got 0",),
    ),
    BadConfig("negative-warmup", _m("scenario:\n  warmup_runs: -1\n"), ("scenario.warmup_runs:",)),
    BadConfig("zero-repetitions", _m("scenario:\n  repetitions: 0\n"), ("scenario.repetitions:",)),
    BadConfig("empty-model", "backend:\n  model: ''\n", ("backend.model: string should have at least 1 character",)),
    BadConfig("blank-model", "backend:\n  model: '   '\n", ("backend.model: must not be empty",)),
    BadConfig(
        "min-above-max",
        _m("scenario:\n  generate_kwargs:\n    max_new_tokens: 10\n    min_new_tokens: 20\n"),
        ("scenario.generate_kwargs: min_new_tokens (20) must not exceed max_new_tokens (10)",),
    ),
    BadConfig(
        "zero-temperature",
        _m("scenario:\n  generate_kwargs:\n    temperature: 0\n"),
        ("scenario.generate_kwargs.temperature:",),
    ),
    BadConfig(
        "top-p-above-one", _m("scenario:\n  generate_kwargs:\n    top_p: 1.5\n"), ("scenario.generate_kwargs.top_p:",)
    ),
    BadConfig(
        "bad-country",
        _m("metrics:\n  country_iso_code: US\n"),
        ("metrics.country_iso_code: must be a three-letter ISO 3166-1 alpha-3 code", "got 'US'"),
    ),
    BadConfig("bad-device", _m("  device: gpu\n"), ("backend.device: must be one of auto, cpu, cuda", "got 'gpu'")),
    BadConfig("negative-device-id", _m("  device_ids: [0, -1]\n"), ("backend.device_ids: GPU indices must be >= 0",)),
    BadConfig(
        "repeated-device-ids", _m("  device_ids: '0, 1, 0'\n"), ("backend.device_ids: GPU indices must not repeat",)
    ),
    BadConfig(
        "vllm-without-endpoint",
        "backend:\n  type: vllm\n  model: m\n",
        ("backend: endpoint is required when type is 'vllm'",),
    ),
    BadConfig(
        "unknown-backend-type",
        "backend:\n  type: tensorrt\n  model: m\n",
        ("backend.type: expected 'pytorch' or 'vllm', got 'tensorrt'",),
    ),
    BadConfig("unknown-dtype", _m("  torch_dtype: float8\n"), ("backend.torch_dtype: expected", "got 'float8'")),
    BadConfig(
        "8bit-and-4bit",
        _m("  load_in_8bit: true\n  load_in_4bit: true\n"),
        ("backend: load_in_8bit and load_in_4bit cannot both be true",),
    ),
    BadConfig(
        "unknown-meter",
        _m("metrics:\n  type: [codecarbn]\n"),
        ("metrics.type: unknown meter 'codecarbn' (did you mean 'codecarbon'?)",),
    ),
    BadConfig("unknown-reporter-type", _m("reporter:\n  type: json\n"), ("reporter.type: expected 'csv'",)),
    # Composition
    BadConfig(
        "missing-defaults-fragment",
        "defaults:\n  - backend: nope\nname: x\n",
        ("defaults: fragment 'backend/nope' not found",),
    ),
    BadConfig("defaults-not-a-list", "defaults: base\n" + MINIMAL, ("defaults: expected a list, got str",)),
    BadConfig("defaults-bad-entry", "defaults:\n  - 3\n" + MINIMAL, ("defaults: entries are",)),
    BadConfig(
        "error-inside-fragment",
        "defaults:\n  - backend: broken\n",
        ("backend/broken.yaml:2:1: invalid YAML",),
        names="fragment",
        extra_files={"backend/broken.yaml": "model: [x\n"},
    ),
    # Overrides
    BadConfig(
        "override-without-equals",
        MINIMAL,
        ("override 'backend.model': expected key=value",),
        args=("backend.model",),
        names="override",
    ),
    BadConfig(
        "override-into-a-value",
        MINIMAL,
        ("override 'name.first=1': 'name' is a value, not a section",),
        args=("name.first=1",),
        names="override",
    ),
    BadConfig(
        "override-empty-key-part",
        MINIMAL,
        ("override 'backend..model=x': malformed key",),
        args=("backend..model=x",),
        names="override",
    ),
    BadConfig(
        "override-wrong-type",
        MINIMAL,
        ("(with overrides scenario.num_samples): scenario.num_samples: expected an integer, got 'abc'",),
        args=("scenario.num_samples=abc",),
    ),
    BadConfig(
        "override-unknown-key",
        MINIMAL,
        ("backend.modle: unknown key (did you mean 'model'?)",),
        args=("backend.modle=gpt2",),
    ),
    BadConfig(
        "override-bool-string",
        MINIMAL,
        ("metrics.enabled: expected true or false",),
        args=("metrics.enabled=sometimes",),
    ),
    # Where the config comes from
    BadConfig(
        "unknown-preset",
        None,
        ("unknown preset 'quikstart' (did you mean 'quickstart'?)", "available: quickstart, text_generation"),
        args=("--config-name", "quikstart"),
        names="preset",
    ),
    BadConfig(
        "missing-file",
        None,
        ("does-not-exist.yaml: config file not found",),
        args=("--config", "does-not-exist.yaml"),
        names="-",
    ),
    BadConfig("no-config", None, ("no config given: pass --config PATH or --config-name NAME",), names="-"),
]


def test_at_least_thirty_distinct_bad_configs() -> None:
    assert len({case.id for case in BAD_CONFIGS}) == len(BAD_CONFIGS) >= 30


def _bad_config_args(case: BadConfig, directory: Path) -> tuple[list[str], Path | None]:
    for name, text in case.extra_files.items():
        write(directory, name, text)
    if case.yaml_text is None:
        return list(case.args), None
    path = directory / "bad.yaml"
    path.write_text(case.yaml_text, encoding="utf-8")
    return ["--config", str(path), *case.args], path


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[case.id for case in BAD_CONFIGS])
def test_bad_config_gives_one_line_and_exit_code_2(
    case: BadConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIEB_TEST_UNSET_VARIABLE", raising=False)
    args, path = _bad_config_args(case, tmp_path)
    result = cli("validate", *args)
    line = assert_one_line_error(result, *case.fragments)
    assert result.stdout == ""
    if case.names == "file":
        assert path is not None
        assert line.startswith(f"error: {path}"), line
    elif case.names == "fragment":
        assert any(line.startswith(f"error: {tmp_path / name}:") for name in case.extra_files), line
    elif case.names == "override":
        assert line.startswith("error: override '"), line
    elif case.names == "preset":
        assert "preset" in line


@pytest.mark.parametrize("case_id", ["unknown-backend", "negative-num-samples", "yaml-unclosed-list"])
def test_bad_config_with_run_command_too(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in BAD_CONFIGS if c.id == case_id)
    args, _path = _bad_config_args(case, tmp_path)
    assert_one_line_error(cli(*args), *case.fragments)  # the default command is `run`
    assert_one_line_error(cli("run", *args), *case.fragments)


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", _m("scenario:\n  num_samples: -1\n"))
    result = cli("validate", "-v", "--config", str(path))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: ")


def _subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ai_energy_benchmarks.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("yaml_text", "extra", "fragment"),
    [
        (_m("  modle: x\n"), (), "backend.modle: unknown key (did you mean 'model'?)"),
        ("name: x\nbackend:\n  model: [gpt2\n", (), "bad.yaml:4:1: invalid YAML"),
        (MINIMAL, ("scenario.input_shapes.batch_size=0",), "scenario.input_shapes.batch_size"),
    ],
)
def test_real_process_exit_code_2_and_no_traceback(
    tmp_path: Path, yaml_text: str, extra: tuple[str, ...], fragment: str
) -> None:
    path = write(tmp_path, "bad.yaml", yaml_text)
    for command in (["validate"], []):
        proc = _subprocess(*command, "--config", str(path), *extra, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"error: {path}")
        assert fragment in lines[0]


def test_real_process_verbose_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", _m("  modle: x\n"))
    proc = _subprocess("validate", "-v", "--config", str(path), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


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
    assert resolved["metrics"]["tracking_mode"] == "machine"


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


# ---------------------------------------------------------------------------------------------------------------
# 6. docs/configuration.md is generated from the schema
# ---------------------------------------------------------------------------------------------------------------

DOCS_FILE = REPO_ROOT / "docs" / "configuration.md"


def _schema_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, info
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _schema_keys(annotation, path)
            if annotation is BackendConfigBase:  # and every built-in backend type's own keys
                for backend_model in builtin_config_models().values():
                    yield from ((k, v) for k, v in _schema_keys(backend_model, path) if k.split(".")[-1] != "type")


def test_committed_reference_matches_the_schema() -> None:
    assert DOCS_FILE.read_text(encoding="utf-8") == render_markdown(), (
        "docs/configuration.md is out of date: run `python -m ai_energy_benchmarks.config.docs > docs/configuration.md`"
    )


def test_reference_lists_every_key_with_its_default_and_description() -> None:
    text = render_markdown()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    keys = list(_schema_keys(BenchmarkConfig))
    assert len(keys) > 40
    for path, info in keys:
        assert f"`{path}`" in rows, path
        if info.description:
            assert " ".join(info.description.split()) in rows[f"`{path}`"].replace("\\|", "|"), path
    for section in ("backend", "scenario", "scenario.input_shapes", "scenario.generate_kwargs", "metrics", "reporter"):
        assert f"## `{section}`" in text
    assert rows["`scenario.num_samples`"].startswith("| `scenario.num_samples` | integer | `10` |")
    assert rows["`backend.model`"].startswith("| `backend.model` | string | **required** |")
    assert rows["`backend.type`"].startswith("| `backend.type` | string | `pytorch` |")
    assert "`pytorch`" in rows["`backend.type`"] and "`vllm`" in rows["`backend.type`"]
    for backend_type in ("pytorch", "vllm"):
        assert f"## `backend` with `type: {backend_type}`" in text
    assert rows["`backend.no_weights`"].startswith("| `backend.no_weights` | boolean | `false` |")
    assert rows["`backend.concurrency`"].startswith("| `backend.concurrency` | integer | `1` |")
    assert rows["`backend.device_ids`"].startswith("| `backend.device_ids` | list of integers | `[0]` |")


def test_reference_module_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ai_energy_benchmarks.config.docs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert proc.stdout == render_markdown()


def test_null_strings_unset_only_optional_keys() -> None:
    """'None' from a command line unsets an optional key, but is kept as text where a string is required."""
    config = BenchmarkConfig(name="none", backend={"model": "m", "device_map": "None"})
    assert config.name == "none"
    assert config.backend.device_map is None


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"type": "pytorch", "model": "m", "concurrency": 4}, "concurrency applies to backend type 'vllm' only"),
        (
            {"type": "vllm", "model": "m", "endpoint": "http://h:8000/v1", "no_weights": True},
            "no_weights applies to backend type 'pytorch' only",
        ),
    ],
)
def test_options_of_the_other_backend_are_rejected(backend: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BackendConfig(**backend)
