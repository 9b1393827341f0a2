"""ai_energy_benchmarks 0.0.4's public names keep 0.0.4's behaviour (docs/compat-0.0.4.md).

Each test states one 0.0.4 behaviour, taken from 0.0.4's source (its wheel on PyPI), and checks it against our
package: the config classes, ConfigParser, the backend classes (the vLLM one against the package's SSE test server,
the PyTorch one with the packaged tiny architecture saved with random weights), CSVReporter, the formatter classes,
and the runner's attributes.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from repo_paths import REPO_ROOT

from ai_energy_benchmarks.exceptions import BackendError, ConfigError
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer, refused_port

TINY = REPO_ROOT / "ai_energy_benchmarks" / "data" / "models" / "tiny-llama"
HEAVY = ("torch", "transformers", "datasets")

#: 0.0.4's run_inference result keys and their types (success).
INFERENCE_KEYS = {
    "text": str,
    "prompt_tokens": int,
    "completion_tokens": int,
    "total_tokens": int,
    "latency_seconds": float,
    "time_to_first_token": float,
    "model": str,
    "success": bool,
    "error": type(None),
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged tiny architecture saved with real (random, seeded) weights, as a local model directory."""
    import torch
    import transformers

    target = tmp_path_factory.mktemp("saved") / "tiny"
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.from_pretrained(str(TINY)))
    model.save_pretrained(str(target))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TINY / name, target / name)
    return target


# -- top-level exports --------------------------------------------------------------------------------------------
def test_top_level_names_import_without_heavy_modules() -> None:
    code = (
        "import sys\n"
        "import ai_energy_benchmarks\n"
        f"assert not [m for m in {HEAVY!r} if m in sys.modules]\n"
        "from ai_energy_benchmarks import BenchmarkRunner, BenchmarkConfig, ConfigParser\n"
        "from ai_energy_benchmarks import runner, config\n"
        "assert BenchmarkRunner is runner.BenchmarkRunner\n"
        "assert BenchmarkConfig is config.parser.BenchmarkConfig and ConfigParser is config.parser.ConfigParser\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_cli_help_imports_no_heavy_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ai_energy_benchmarks", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_unknown_top_level_name_is_an_attribute_error() -> None:
    import ai_energy_benchmarks

    with pytest.raises(AttributeError, match="NoSuchName"):
        ai_energy_benchmarks.NoSuchName  # noqa: B018


# -- BenchmarkConfig and its sections -----------------------------------------------------------------------------
def test_empty_config_reads_0_0_4_defaults() -> None:
    from ai_energy_benchmarks import BenchmarkConfig

    config = BenchmarkConfig()
    assert (config.name, config.output_dir) == ("benchmark", "./benchmark_output")
    assert (config.backend.type, config.backend.model, config.backend.device) == ("vllm", "openai/gpt-oss-120b", "cuda")
    assert config.backend.endpoint == "http://localhost:8000/v1" and config.backend.device_ids == [0]
    assert config.scenario.dataset_name == "AIEnergyScore/text_generation"
    assert config.scenario.generate_kwargs == {"max_new_tokens": 100, "min_new_tokens": 50}
    assert config.scenario.num_samples == 10 and config.scenario.truncation is True
    metrics = config.metrics
    assert (metrics.type, metrics.output_dir, metrics.region) == ("codecarbon", "./emissions", None)
    assert config.reporter.output_file == "./results/benchmark_results.csv"
    assert config.set_fields() == {}  # reading a default sets nothing


def test_fields_set_in_any_order_are_validated_when_the_runner_is_built(tmp_path: Path) -> None:
    from ai_energy_benchmarks import BenchmarkConfig, BenchmarkRunner

    config = BenchmarkConfig()
    config.backend.type = "vllm"  # no endpoint yet: nothing is checked on assignment
    config.backend.model = "served-model"
    config.scenario.num_samples = 0  # invalid, refused only when validated
    with pytest.raises(ConfigError, match=r"^python: backend: endpoint is required when type is 'vllm'; scenario\."):
        BenchmarkRunner(config)
    config.backend.endpoint = "http://127.0.0.1:8000/v1"
    with pytest.raises(ConfigError, match=r"^python: scenario.num_samples: "):
        config.validate()
    config.scenario.num_samples = "3"
    config.output_dir = str(tmp_path)
    runner = BenchmarkRunner(config)
    assert runner.config.backend.endpoint == "http://127.0.0.1:8000/v1"
    assert runner.config.scenario.num_samples == 3
    # Fields never set take our defaults in the run, though they read as 0.0.4's.
    assert config.scenario.dataset_name == "AIEnergyScore/text_generation"
    assert runner.config.scenario.dataset_name == "packaged:quickstart"


def test_keyword_sections_read_typed_values_and_keep_what_cannot_be_typed() -> None:
    from ai_energy_benchmarks.config.parser import BackendConfig, BenchmarkConfig, ScenarioConfig

    backend = BackendConfig(type="pytorch", model="m", device_ids="0, 1", no_weights="True")
    scenario = ScenarioConfig(reasoning="maybe", generate_kwargs={"max_new_tokens": "4", "min_new_tokens": "4"})
    assert backend.device_ids == [0, 1] and backend.no_weights is True
    assert scenario.generate_kwargs.max_new_tokens == 4 and scenario.generate_kwargs["max_new_tokens"] == "4"
    assert scenario.reasoning == "maybe"  # read as given; refused when validated
    config = BenchmarkConfig(backend=backend, scenario=scenario)
    with pytest.raises(ConfigError, match=r"scenario\.reasoning"):
        config.validate()
    scenario.reasoning = False
    assert config.validate() is True


def test_sections_accept_mappings_and_typed_sections_and_changes_in_place() -> None:
    from ai_energy_benchmarks.config import schema
    from ai_energy_benchmarks.config.parser import BenchmarkConfig

    config = BenchmarkConfig(backend={"type": "pytorch", "model": "m"}, metrics=schema.MetricsConfig(enabled=False))
    config.scenario.generate_kwargs["max_new_tokens"] = 60  # 0.0.4's default dict, changed in place
    assert config.set_fields() == {
        "backend": {"type": "pytorch", "model": "m"},
        "metrics": {"enabled": False},
        "scenario": {"generate_kwargs": {"max_new_tokens": 60, "min_new_tokens": 50}},
    }
    typed = config.to_typed_config()
    assert typed.scenario.generate_kwargs.max_new_tokens == 60 and typed.metrics.enabled is False


def test_an_endpoint_without_a_type_is_vllm_as_in_0_0_4() -> None:
    from ai_energy_benchmarks.config.parser import BackendConfig, BenchmarkConfig

    config = BenchmarkConfig(backend=BackendConfig(model="m", endpoint="http://127.0.0.1:8000/v1"))
    assert config.backend.type == "vllm" and config.to_typed_config().backend.type == "vllm"
    assert BenchmarkConfig(backend=BackendConfig(model="m")).to_typed_config().backend.type == "pytorch"


def test_a_list_read_back_is_the_one_stored() -> None:
    from ai_energy_benchmarks.config.parser import BackendConfig

    backend = BackendConfig(type="pytorch", model="m", device_ids=[0])
    backend.device_ids.append(1)  # changed in place, as 0.0.4's dataclass field was
    assert backend.device_ids == [0, 1] and backend.set_fields()["device_ids"] == [0, 1]


def test_configs_copy_and_pickle() -> None:
    import copy
    import pickle

    from ai_energy_benchmarks.config.parser import BenchmarkConfig

    config = BenchmarkConfig(
        backend={"type": "pytorch", "model": "m"}, scenario={"generate_kwargs": {"max_new_tokens": 3}}
    )
    for clone in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert clone == config and clone.scenario.generate_kwargs.max_new_tokens == 3
        clone.backend.model = "other"
        assert config.backend.model == "m"


def test_task_text_generation_is_accepted_as_in_0_0_4() -> None:
    from ai_energy_benchmarks.config.parser import BackendConfig, BenchmarkConfig

    config = BenchmarkConfig(backend=BackendConfig(type="pytorch", model="m", task="text-generation"))
    assert config.backend.task == "text-generation"
    assert config.validate() is True


# -- ConfigParser ---------------------------------------------------------------------------------------------------
YAML = """\
name: from_yaml
backend:
  type: pytorch
  model: m
  task: text-generation
scenario:
  num_samples: 5
"""


def test_config_parser_static_methods(tmp_path: Path) -> None:
    from ai_energy_benchmarks import ConfigParser

    path = tmp_path / "c.yaml"
    path.write_text(YAML)
    for load in (ConfigParser.load_config, ConfigParser().load_config):
        config = load(str(path))
        assert (config.name, config.backend.model, config.scenario.num_samples) == ("from_yaml", "m", 5)
    overridden = ConfigParser.load_config_with_overrides(str(path), {"scenario": {"num_samples": 20}})
    assert overridden.scenario.num_samples == 20 and overridden.backend.model == "m"
    overridden.backend.type = "vllm"  # still 0.0.4's mutable class
    assert ConfigParser().load_config_with_overrides(path, ["scenario.num_samples=7"]).scenario.num_samples == 7


def test_invalid_config_file_is_refused_at_load(tmp_path: Path) -> None:
    from ai_energy_benchmarks import ConfigParser

    path = tmp_path / "bad.yaml"
    path.write_text(YAML.replace("num_samples: 5", "num_samples: five"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: scenario\.num_samples"):
        ConfigParser.load_config(str(path))


def test_missing_config_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    from ai_energy_benchmarks import ConfigParser

    for call in (ConfigParser.load_config, ConfigParser.load_config_with_overrides):
        with pytest.raises(FileNotFoundError, match="Config file not found") as info:
            call(str(tmp_path / "absent.yaml"))
        assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend.type": "tensorrt"}, "Invalid backend type: tensorrt"),
        ({"backend.type": "vllm", "backend.endpoint": None}, "vLLM backend requires endpoint configuration"),
        ({"scenario.num_samples": 0}, "num_samples must be >= 1"),
        ({"metrics.type": "wattmeter"}, "Invalid metrics type: wattmeter"),
        ({"reporter.type": "json"}, "Invalid reporter type: json"),
    ],
)
def test_validate_config_raises_0_0_4_messages(change: dict[str, Any], message: str) -> None:
    from ai_energy_benchmarks import BenchmarkConfig, ConfigParser

    config = BenchmarkConfig()
    config.backend.type, config.backend.model = "pytorch", "m"
    assert ConfigParser.validate_config(config) is True
    for key, value in change.items():
        section, name = key.split(".")
        setattr(getattr(config, section), name, value)
    with pytest.raises(ValueError, match=f"^{message}$") as info:
        ConfigParser.validate_config(config)
    assert isinstance(info.value, ConfigError)


def test_validate_config_reports_our_other_checks_as_value_errors() -> None:
    from ai_energy_benchmarks import BenchmarkConfig, ConfigParser

    config = BenchmarkConfig(backend={"type": "pytorch", "model": "m", "device_ids": "0, x"})
    with pytest.raises(ValueError, match=r"backend\.device_ids"):
        ConfigParser.validate_config(config)


# -- backends.vllm.VLLMBackend ----------------------------------------------------------------------------------------
def test_vllm_backend_against_a_server() -> None:
    from ai_energy_benchmarks.backends.vllm import VLLMBackend

    with FakeOpenAIServer(models=("served/model",)) as server:
        backend = VLLMBackend(endpoint=f"{server.url}/v1", model="served/model")
        assert backend.endpoint == server.url and backend.model == "served/model" and backend.timeout == 300
        assert backend.formatter is None  # 0.0.4's registry knows no format for this model
        assert backend.validate_environment() is True
        assert backend.health_check() is True
        result = backend.run_inference("Why is the sea salty?", max_tokens=7)
        info = backend.get_endpoint_info()
        backend.cleanup()
    assert {key: type(value) for key, value in result.items()} == INFERENCE_KEYS
    assert result["success"] is True and result["completion_tokens"] == 7
    assert result["text"] == "".join(f" t{i}" for i in range(7))  # the streamed content, as 0.0.4 returned it
    assert result["total_tokens"] == result["prompt_tokens"] + 7
    assert 0 < result["time_to_first_token"] <= result["latency_seconds"]
    body = server.bodies[-1]
    assert body["max_tokens"] == 7 and body["temperature"] == 0.7  # 0.0.4's defaults: sampling at 0.7
    assert info == {
        "backend": "vllm",
        "endpoint": server.url,
        "model": "served/model",
        "healthy": True,
        "validated": True,
    }


def test_vllm_backend_model_not_served_and_server_down() -> None:
    from ai_energy_benchmarks.backends.vllm import VLLMBackend

    with FakeOpenAIServer(models=("other",)) as server:
        assert VLLMBackend(endpoint=server.url, model="served/model").validate_environment() is False
    down = VLLMBackend(endpoint=f"http://127.0.0.1:{refused_port()}/v1", model="m")
    result = down.run_inference("hi")
    assert result["success"] is False and result["text"] == "" and result["time_to_first_token"] is None
    assert set(result) == {"text", "success", "error", "latency_seconds", "time_to_first_token"}


# -- backends.pytorch.PyTorchBackend ----------------------------------------------------------------------------------
def test_pytorch_backend_with_0_0_4_arguments(saved_model: Path) -> None:
    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend

    backend = PyTorchBackend(model=str(saved_model), device="cpu", device_ids=[0], torch_dtype="float32")
    assert isinstance(backend, PyTorchBackend)
    assert (backend.model_name, backend.device, backend.device_ids) == (str(saved_model), "cpu", [0])
    assert backend.model is None and backend.formatter is None
    assert backend.validate_environment() is True
    result = backend.run_inference("The sea is salty because", max_tokens=5, temperature=0.0)  # loads the model
    assert backend.model is not None
    assert {key: type(value) for key, value in result.items() if key != "full_text"} == INFERENCE_KEYS
    assert result["success"] is True and 1 <= result["completion_tokens"] <= 5
    assert result["total_tokens"] == result["prompt_tokens"] + result["completion_tokens"]
    assert 0 < result["time_to_first_token"] <= result["latency_seconds"]
    assert result["full_text"].endswith(result["text"])
    info = backend.get_endpoint_info()
    assert info["backend"] == "pytorch" and info["initialized"] is True and info["healthy"] is True
    backend.cleanup()
    assert backend.model is None and backend.tokenizer is None


def test_pytorch_backend_asked_for_cuda_without_a_gpu(saved_model: Path) -> None:
    import torch

    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    backend = PyTorchBackend(model=str(saved_model))  # 0.0.4's default device: cuda
    assert backend.device == "cuda" and backend.validate_environment() is False
    assert backend.health_check() is False
    with pytest.raises(BackendError, match="no CUDA GPU is available"):
        backend.load_model()


# -- reporters.csv_reporter.CSVReporter -------------------------------------------------------------------------------
def test_csv_reporter_writes_0_0_4_layout(tmp_path: Path) -> None:
    from ai_energy_benchmarks.reporters.csv_reporter import CSVReporter

    reporter = CSVReporter(output_file=str(tmp_path / "new" / "results.csv"))
    assert (tmp_path / "new").is_dir() and reporter.validate() is True
    results = {"config": {"name": "n", "device_ids": [0, 1]}, "summary": {"total_prompts": 3}, "energy": {}}
    reporter.report(results)
    reporter.report(results)
    with open(tmp_path / "new" / "results.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["config_name", "config_device_ids", "summary_total_prompts", "timestamp"]
    assert [row[:3] for row in rows[1:]] == [["n", "0,1", "3"], ["n", "0,1", "3"]]


# -- formatters -------------------------------------------------------------------------------------------------------
def test_formatter_classes() -> None:
    from ai_energy_benchmarks.formatters.base import ReasoningFormatter
    from ai_energy_benchmarks.formatters.parameter import ParameterFormatter
    from ai_energy_benchmarks.formatters.prefix import PrefixFormatter
    from ai_energy_benchmarks.formatters.registry import FormatterRegistry
    from ai_energy_benchmarks.formatters.system_prompt import SystemPromptFormatter

    with pytest.raises(TypeError):
        ReasoningFormatter()  # type: ignore[abstract]
    params = {"enable_thinking": True, "thinking_budget": 64, "reasoning_effort": "high"}
    parameter = ParameterFormatter()
    assert parameter.format_prompt("q", params) == "q"
    assert parameter.get_generation_params(params) == {"enable_thinking": True, "thinking_budget": 64}
    prefix = PrefixFormatter(prefix="<think>", suffix="!")
    assert prefix.format_prompt("q") == "<think>q!" and prefix.format_prompt("q", {"enable_thinking": False}) == "q"
    flags = SystemPromptFormatter()
    assert (flags.enable_flag, flags.disable_flag, flags.default_enabled) == ("/think", "/no_think", False)
    assert flags.format_prompt("q", {"enable_thinking": True}) == "/think\nq"
    assert flags.format_prompt("q", {"reasoning_effort": "low"}) == "q"
    nemotron = SystemPromptFormatter(enable_flag=None, default_enabled=True)
    assert nemotron.format_prompt("q", {"enable_thinking": False}) == "/no_think\nq"
    assert nemotron.format_prompt("q") == "q" and nemotron.get_generation_params({"x": 1}) == {}
    for formatter in (parameter, prefix, flags):
        assert isinstance(formatter, ReasoningFormatter) and formatter.supports_backend("vllm")
    registry = FormatterRegistry()
    harmony = registry.get_formatter("openai/gpt-oss-20b")
    assert isinstance(harmony, ReasoningFormatter) and registry.get_formatter("openai/gpt-oss-20b") is harmony
    assert registry.get_formatter("gpt2") is None


# -- the runner's attributes ------------------------------------------------------------------------------------------
def test_runner_exposes_backend_dataset_reporter_without_loading(tmp_path: Path) -> None:
    from ai_energy_benchmarks import BenchmarkConfig, BenchmarkRunner
    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend
    from ai_energy_benchmarks.backends.vllm import VLLMBackend
    from ai_energy_benchmarks.reporters.csv_reporter import CSVReporter

    config = BenchmarkConfig(
        backend={"type": "pytorch", "model": "packaged:tiny-llama", "no_weights": True, "device": "cpu"},
        reporter={"output_file": str(tmp_path / "r.csv")},
    )
    runner = BenchmarkRunner(config)
    assert isinstance(runner.backend, PyTorchBackend) and runner.backend.model is None
    assert runner.backend.get_endpoint_info.__self__ is runner.backend  # 0.0.4's methods are there
    assert runner.dataset.validate() is True
    prompts = runner.dataset.load({"name": "packaged:quickstart", "text_column": "text", "num_samples": 3})
    assert len(prompts) == 3 and all(isinstance(p, str) and p for p in prompts)
    assert isinstance(runner.reporter, CSVReporter) and runner.reporter.output_file == str(tmp_path / "r.csv")
    del runner.backend  # as AIEnergyScore's batch runner does after a run
    config.backend = {"type": "vllm", "model": "m", "endpoint": f"http://127.0.0.1:{refused_port()}/v1"}
    assert isinstance(BenchmarkRunner(config).backend, VLLMBackend)  # built, not connected


# -- packaging ------------------------------------------------------------------------------------------------------
def test_wheel_ships_the_0_0_4_modules(tmp_path: Path) -> None:
    """A wheel built from a copy of the source tree holds every 0.0.4 module (the build never touches the tree)."""
    import zipfile

    root = REPO_ROOT
    source = tmp_path / "src"
    shutil.copytree(
        root / "ai_energy_benchmarks", source / "ai_energy_benchmarks", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "setup.py", "VERSION.txt", "README.md", "LICENSE", "MANIFEST.in"):
        if (root / name).exists():
            shutil.copy(root / name, source / name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "config/parser.py",
        "backends/vllm.py",
        "backends/legacy.py",
        "legacy_runner.py",
        "reporters/__init__.py",
        "reporters/base.py",
        "reporters/csv_reporter.py",
        "formatters/parameter.py",
        "formatters/prefix.py",
        "formatters/system_prompt.py",
    ):
        assert f"ai_energy_benchmarks/{module}" in names, module
