"""YAML loading: `defaults:` composition, environment variables, overrides.

Everything here drives the real config code (no mocks): values are checked as a user would see them, either as
resolved config values or as the one-line message and exit code of the `ai-energy-benchmark` command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from config_helpers import (
    MINIMAL,
    FakeDictConfig,
    FakeListConfig,
    _isolated,  # noqa: F401  # the autouse fixture: an empty working directory
    cli,
    write,
)

from ai_energy_benchmarks.config import load_config
from ai_energy_benchmarks.config.loader import interpolate_env, load_config_data
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.runner import create_benchmark

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
