"""Unknown keys, and bad configs through the real CLI: exit code 2, one line naming the file and the key path.

Everything here drives the real config code (no mocks): values are checked as a user would see them, either as
resolved config values or as the one-line message and exit code of the `ai-energy-benchmark` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from config_helpers import (
    MINIMAL,
    _isolated,  # noqa: F401  # the autouse fixture: an empty working directory
    assert_one_line_error,
    cli,
    config_error,
    write,
)

from ai_energy_benchmarks.config import load_config

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
        _m("metrics:\n  codecarbon:\n    measure_power_secs: fast\n"),
        ("metrics.codecarbon.measure_power_secs: expected a number",),
    ),
    # an earlier release's flat key is read into its meter's section, and checked there
    BadConfig(
        "flat-measure-power-word",
        _m("metrics:\n  measure_power_secs: fast\n"),
        ("metrics.codecarbon.measure_power_secs: expected a number",),
    ),
    BadConfig(
        "flat-and-section-disagree",
        _m("metrics:\n  nvml_poll_interval_s: 0.02\n  nvml:\n    poll_interval_s: 0.05\n"),
        (
            "nvml_poll_interval_s (0.02) and nvml.poll_interval_s (0.05) are the same setting with different "
            "values: give only nvml.poll_interval_s",
        ),
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
