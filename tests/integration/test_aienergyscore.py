"""AIEnergyScore's use of this package, replayed against the real code (docs/aienergyscore.md).

AIEnergyScore builds our config classes by keyword, with values as its command line gives them (strings), calls
``BenchmarkRunner(cfg).validate()`` then ``.run()``, writes the returned dict to ``benchmark_report.json``, and its
aggregator reads that file. Here the model is the packaged synthetic tiny Llama on the CPU, so the run is offline;
on the CPU the GPU energy is 0 by absence, and the same formulas are also checked on the total energy, which is not.

No Docker engine runs here: the Dockerfile's install step is checked below with a stand-in for pip (what the shell
hands pip), and for real by `.ci/run`, which runs that very RUN instruction in a fresh venv.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from contract import SUMMARY_KEYS
from repo_paths import REPO_ROOT

from ai_energy_benchmarks import create_benchmark
from ai_energy_benchmarks.backends.pytorch import PyTorchBackend
from ai_energy_benchmarks.config.parser import (
    BackendConfig,
    BenchmarkConfig,
    MetricsConfig,
    ReporterConfig,
    ScenarioConfig,
)
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError
from ai_energy_benchmarks.runner import BenchmarkRunner

ROOT = REPO_ROOT
DOCKERFILE = ROOT / "examples" / "aienergyscore" / "Dockerfile"
NUM_SAMPLES = 6
NEW_TOKENS = 4


def aienergyscore_figures(report_path: Path, energy_key: str = "gpu_energy_wh") -> dict[str, Any]:
    """What AIEnergyScore's aggregator derives from a benchmark_report.json (it scores GPU energy only).

    ``energy_key`` lets the same arithmetic run on ``total_energy_wh`` too, where a CPU run has non-zero energy.
    """
    report = json.loads(report_path.read_text(encoding="utf-8"))
    summary, energy = report["summary"], report["energy"]
    energy_wh = energy[energy_key]  # its summary step fails when energy.gpu_energy_wh is missing
    successful = summary["successful_prompts"]
    joules = energy_wh * 3600.0
    figures: dict[str, Any] = {key: summary[key] for key in SUMMARY_KEYS}
    figures["gpu_energy_wh"] = energy_wh
    figures["emissions_g_co2eq"] = energy["emissions_g_co2eq"]
    figures["wh_per_1000_queries"] = energy_wh / successful * 1000
    figures["tokens_per_joule"] = summary["total_tokens"] / joules if joules > 0 else 0.0
    figures["avg_energy_per_prompt_wh"] = energy_wh / successful
    return figures


def aienergyscore_config(results: Path) -> BenchmarkConfig:
    """The config as AIEnergyScore builds it: by keyword, with command-line strings ('0', 'False', '6', ...)."""
    return BenchmarkConfig(
        name="text_generation",
        backend=BackendConfig(
            type="pytorch",
            model="packaged:tiny-llama",
            device="cpu",
            device_ids="0",
            no_weights="True",
        ),
        scenario=ScenarioConfig(
            dataset_name="packaged:quickstart",
            text_column_name="text",
            num_samples=str(NUM_SAMPLES),
            reasoning="False",
            reasoning_params=None,
            generate_kwargs={"max_new_tokens": str(NEW_TOKENS), "min_new_tokens": str(NEW_TOKENS)},
        ),
        metrics=MetricsConfig(
            enabled="True",
            type="codecarbon",
            project_name="text_generation",
            output_dir=str(results),
            country_iso_code="USA",
            region="california",
        ),
        reporter=ReporterConfig(type="csv", output_file=str(results / "benchmark_results.csv")),
        output_dir=str(results),
    )


@pytest.fixture(scope="module")
def aienergyscore_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    base = tmp_path_factory.mktemp("aienergyscore")
    cfg = aienergyscore_config(base / "results")
    runner = BenchmarkRunner(cfg)
    # batch_runner.py probes runner.backend when validate() fails: it exists (0.0.4's adapter), nothing loaded yet
    assert runner.backend is not None and runner.backend.model is None
    assert runner.validate() is True
    result = runner.run()
    # batch_runner.py's clean-up after a run: drop the backend's model and tokenizer, then the backend.
    backend = runner.backend
    assert isinstance(backend, PyTorchBackend)
    assert backend._model is None  # closed by run(): the model is already released
    for name in ("model", "tokenizer"):
        if hasattr(runner.backend, name):
            delattr(runner.backend, name)
    del runner.backend
    # AIEnergyScore writes the returned dict itself (as /results/benchmark_report.json); strict JSON, no NaN.
    report_path = base / "benchmark_report.json"
    report_path.write_text(json.dumps(result, indent=2, allow_nan=False), encoding="utf-8")
    return result, report_path


def test_command_line_strings_are_typed_not_misread(tmp_path: Path) -> None:
    cfg = aienergyscore_config(tmp_path)
    assert cfg.backend.device_ids == [0]
    assert cfg.backend.no_weights is True
    assert cfg.scenario.num_samples == NUM_SAMPLES
    assert cfg.scenario.reasoning is False
    assert cfg.scenario.generate_kwargs.max_new_tokens == NEW_TOKENS
    assert cfg.scenario.generate_kwargs.min_new_tokens == NEW_TOKENS
    assert cfg.metrics.enabled is True
    assert BackendConfig(type="pytorch", model="m", device_ids="0, 1").device_ids == [0, 1]


def test_call_sequence_returns_the_contract_keys(aienergyscore_run: tuple[dict[str, Any], Path]) -> None:
    result, _ = aienergyscore_run
    assert result["status"] == "completed"
    config = result["config"]
    assert {"name", "backend", "model", "dataset", "num_samples", "device_ids"} <= set(config)
    assert (config["name"], config["backend"], config["model"]) == ("text_generation", "pytorch", "packaged:tiny-llama")
    assert config["num_samples"] == NUM_SAMPLES
    assert set(SUMMARY_KEYS) <= set(result["summary"])
    energy_keys = {"gpu_energy_wh", "cpu_energy_wh", "ram_energy_wh", "total_energy_wh", "energy_wh"}
    assert energy_keys | {"emissions_g_co2eq", "emissions_kg_co2eq"} <= set(result["energy"])
    assert result["energy"]["energy_wh"] == result["energy"]["gpu_energy_wh"]


def test_aggregator_figures_from_the_written_report(aienergyscore_run: tuple[dict[str, Any], Path]) -> None:
    result, report_path = aienergyscore_run
    figures = aienergyscore_figures(report_path)
    assert figures["total_prompts"] == NUM_SAMPLES
    assert figures["successful_prompts"] == NUM_SAMPLES
    assert figures["failed_prompts"] == 0
    assert figures["total_completion_tokens"] == NUM_SAMPLES * NEW_TOKENS
    assert figures["total_tokens"] == figures["total_prompt_tokens"] + figures["total_completion_tokens"]
    assert figures["total_duration_seconds"] > 0
    # 0.0.4's meaning, which AIEnergyScore's column keeps: prompt + output tokens per second.
    assert figures["throughput_tokens_per_second"] == pytest.approx(
        figures["total_tokens"] / figures["total_duration_seconds"]
    )
    assert result["summary"]["throughput_output_tokens_per_second"] == pytest.approx(
        figures["total_completion_tokens"] / figures["total_duration_seconds"]
    )
    for key, value in figures.items():
        assert isinstance(value, (int, float)) and math.isfinite(value), f"{key} = {value!r}"
    # A CPU run meters no GPU: 0 Wh by absence, labelled so, and every GPU-based figure follows from it.
    assert result["energy"]["sources"]["gpu"].startswith("none:")
    assert figures["gpu_energy_wh"] == 0.0
    assert figures["wh_per_1000_queries"] == 0.0 == result["energy"]["gpu_wh_per_1000_queries"]
    assert figures["avg_energy_per_prompt_wh"] == 0.0
    assert figures["emissions_g_co2eq"] > 0  # CodeCarbon's CPU and RAM estimates for the measured window
    assert figures["emissions_g_co2eq"] == pytest.approx(result["energy"]["emissions_kg_co2eq"] * 1000)


def test_aggregator_formulas_agree_with_our_normalised_figures(aienergyscore_run: tuple[dict[str, Any], Path]) -> None:
    result, report_path = aienergyscore_run
    energy = result["energy"]
    figures = aienergyscore_figures(report_path, energy_key="total_energy_wh")
    assert figures["gpu_energy_wh"] > 0
    assert figures["wh_per_1000_queries"] == pytest.approx(energy["total_wh_per_1000_queries"])
    assert figures["avg_energy_per_prompt_wh"] == pytest.approx(energy["total_wh_per_request"])
    assert figures["tokens_per_joule"] == pytest.approx(energy["tokens_per_joule"])
    assert figures["wh_per_1000_queries"] == pytest.approx(
        energy["total_energy_wh"] / result["summary"]["successful_prompts"] * 1000
    )


def test_report_written_by_the_runner_matches_the_returned_dict(aienergyscore_run: tuple[dict[str, Any], Path]) -> None:
    result, report_path = aienergyscore_run
    ours = json.loads(Path(result["files"]["report"]).read_text(encoding="utf-8"))
    theirs = json.loads(report_path.read_text(encoding="utf-8"))
    assert ours["summary"] == theirs["summary"]
    assert ours["energy"]["gpu_energy_wh"] == theirs["energy"]["gpu_energy_wh"]


# -- the packaged text_generation preset with BENCHMARK_BACKEND / VLLM_ENDPOINT ---------------------------------
AIENERGYSCORE_OVERRIDES = [
    "backend.model=openai/gpt-oss-20b",
    "scenario.num_samples=10",
    "scenario.reasoning=True",
    "scenario.reasoning_params.reasoning_effort=high",
    "scenario.generate_kwargs.max_new_tokens=8192",
]


def test_text_generation_preset_defaults_to_pytorch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BENCHMARK_BACKEND", "VLLM_ENDPOINT", "BENCHMARK_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    cfg = create_benchmark(config_name="text_generation", overrides=AIENERGYSCORE_OVERRIDES).config
    assert cfg.backend.type == "pytorch"
    assert cfg.backend.model == "openai/gpt-oss-20b"
    assert cfg.backend.device == "auto"
    assert cfg.output_dir == str(tmp_path)
    assert cfg.scenario.dataset_name == "EnergyStarAI/text_generation"
    assert cfg.scenario.num_samples == 10
    assert cfg.scenario.reasoning is True
    assert cfg.scenario.reasoning_params == {"reasoning_effort": "high"}
    assert cfg.scenario.generate_kwargs.max_new_tokens == 8192
    assert cfg.scenario.input_shapes.batch_size == 1


def test_text_generation_preset_with_vllm_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BENCHMARK_BACKEND", "vllm")
    monkeypatch.setenv("VLLM_ENDPOINT", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    overrides = [*AIENERGYSCORE_OVERRIDES, "scenario.dataset_name=packaged:quickstart", "backend.ready_timeout_s=1"]
    runner = create_benchmark(config_name="text_generation", overrides=overrides)
    assert runner.config.backend.type == "vllm"
    assert runner.config.backend.endpoint == "http://127.0.0.1:9/v1"
    # No server listens there: the run fails with our one-line error (naming the backend or the endpoint), not a hang.
    with pytest.raises(BenchmarkError, match=r"vllm|127\.0\.0\.1:9") as failure:
        runner.run()
    assert "\n" not in str(failure.value)


def test_text_generation_preset_rejects_the_optimum_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHMARK_BACKEND", "optimum")
    with pytest.raises(ConfigError, match=r"backend\.type.*optimum"):
        create_benchmark(config_name="text_generation", overrides=["backend.model=gpt2"])


def test_text_generation_preset_runs_from_the_command_line(tmp_path: Path) -> None:
    """The image's entry point: `ai-energy-benchmark --config-name text_generation key=value ...`."""
    results = tmp_path / "results"
    env = {**os.environ, "BENCHMARK_BACKEND": "pytorch", "RESULTS_DIR": str(results)}
    command = [
        sys.executable,
        "-m",
        "ai_energy_benchmarks",
        "-q",
        "--config-name",
        "text_generation",
        "backend.model=packaged:tiny-llama",
        "backend.no_weights=True",
        "backend.device=cpu",
        "scenario.dataset_name=packaged:quickstart",
        "scenario.num_samples=3",
        "scenario.warmup_runs=0",
        "scenario.reasoning=False",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = aienergyscore_figures(results / "benchmark_report.json")
    assert figures["successful_prompts"] == 3
    assert figures["total_completion_tokens"] == 3 * 10  # the preset's fixed 10-token outputs


# -- the Dockerfile's install step ------------------------------------------------------------------------------
def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, comments dropped and continuation lines joined."""
    if not DOCKERFILE.exists():
        if (ROOT / ".git").exists():
            pytest.fail("examples/aienergyscore/Dockerfile is missing")
        pytest.skip("examples/ is not shipped in the sdist")
    instructions, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        instructions.append((current + line).strip())
        current = ""
    return instructions


def test_dockerfile_copies_the_wheel_from_where_build_wheel_puts_it() -> None:
    instructions = dockerfile_instructions()
    assert "COPY ai_energy_benchmarks/dist/ai_energy_benchmarks-*.whl /tmp/" in instructions
    assert instructions[0].startswith("ARG BASE_IMAGE=") and instructions[1] == "FROM ${BASE_IMAGE}"


def _run_install_step(tmp_path: Path, wheels: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the Dockerfile's RUN install step under sh, /tmp/ mapped to a folder and pip standing in as a recorder."""
    run = [i for i in dockerfile_instructions() if i.startswith("RUN ") and "pip install" in i]
    assert len(run) == 1, run
    copied = tmp_path / "tmp"
    copied.mkdir()
    for name in wheels:
        (copied / name).write_bytes(b"")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "pip-args"
    for tool, body in (("pip", f'printf "%s\\n" "$@" > "{log}"'), ("ai-energy-benchmark", "exit 0")):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    command = run[0][len("RUN ") :].replace("/tmp/", f"{copied}/")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=60)
    args = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return done, args


def test_dockerfile_install_step_hands_pip_the_wheel_with_the_pytorch_extra(tmp_path: Path) -> None:
    wheel = "ai_energy_benchmarks-1.2.3-py3-none-any.whl"
    done, args = _run_install_step(tmp_path, [wheel])
    assert done.returncode == 0, done.stderr
    assert args == ["install", f"{tmp_path / 'tmp' / wheel}[pytorch]"]
    assert not (tmp_path / "tmp" / wheel).exists(), "the copied wheel is removed from the image layer"


@pytest.mark.parametrize(
    "wheels", [[], ["ai_energy_benchmarks-1.0.0-py3-none-any.whl", "ai_energy_benchmarks-1.0.1-py3-none-any.whl"]]
)
def test_dockerfile_install_step_needs_exactly_one_wheel(tmp_path: Path, wheels: list[str]) -> None:
    done, args = _run_install_step(tmp_path, wheels)
    assert done.returncode != 0
    assert "expected exactly one ai_energy_benchmarks wheel" in done.stderr
    assert args == []


def test_ci_runs_the_dockerfile_install_step_in_a_plain_venv() -> None:
    ci = ROOT / ".ci" / "run"
    if not ci.exists():
        pytest.skip(".ci/run is not shipped in the sdist")
    text = ci.read_text(encoding="utf-8")
    assert 'pathlib.Path("examples/aienergyscore/Dockerfile")' in text
    assert 'sh -c "$DOCKER_RUN"' in text
    before = text.index('sh -c "$DOCKER_RUN"')
    assert text.rfind("install -q torch==2.13.0", 0, before) != -1, "torch (the base image's) comes first"
