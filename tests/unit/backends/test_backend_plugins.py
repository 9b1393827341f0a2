"""A backend installed from outside the package, through the ``ai_energy_benchmarks.backends`` entry point.

The plugin below is a real distribution (a pyproject with an entry point, its own config model, a backend with
deterministic outputs), built and installed offline with pip into a scratch directory that a fresh
`ai-energy-benchmark` process finds on its path. Nothing of it is registered in this test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from repo_paths import REPO_ROOT

ROOT = REPO_ROOT

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "aieb-echo-backend"
version = "0.1.0"

[project.entry-points."ai_energy_benchmarks.backends"]
echo = "aieb_echo_backend:spec"
broken = "aieb_echo_backend:no_such_spec"

[tool.setuptools]
packages = ["aieb_echo_backend"]
"""

PLUGIN = '''\
"""A backend that answers every prompt with a fixed number of tokens, instantly."""

import time
from typing import Any, Literal

from pydantic import Field

from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.registry import BackendSpec
from ai_energy_benchmarks.config.schema import BackendConfig


class EchoConfig(BackendConfig):
    """`type: echo`: answers each prompt with `tokens_per_prompt` tokens."""

    type: Literal["echo"] = "echo"
    tokens_per_prompt: int = Field(4, ge=1, description="Output tokens per prompt.")
    label: str = Field("echo", description="Shown in the report.")


class EchoBackend(Backend):
    def __init__(self, config: Any) -> None:
        self._settings = EchoConfig.of(config.backend)
        self._phases: list[str] = []

    def set_phase(self, label: str) -> None:
        self._phases.append(label)

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]):
        tokens = min(self._settings.tokens_per_prompt, int(generate_kwargs.get("max_new_tokens", 10**9)))
        for index, prompt in enumerate(prompts):
            start = time.perf_counter()
            yield RequestRecord(
                index=index,
                num_prompts=1,
                start_s=start,
                end_s=start + 0.001,
                first_token_s=start + 0.0005,
                prompt_tokens=len(prompt.split()),
                completion_tokens=tokens,
            )

    def render(self, prompt: str) -> str:
        return f"[{self._settings.label}] {prompt}"

    def describe(self) -> dict[str, Any]:
        return {"model": self._settings.model, "label": self._settings.label, "phases": list(self._phases)}

    def metered_gpu_ids(self) -> list[int]:
        return []

    def close(self) -> None:
        pass


spec = BackendSpec(config_model=EchoConfig, factory=EchoBackend, description="deterministic echo")
'''

#: Offline, into a directory, with the setuptools already installed here (no download, no build environment).
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-cache-dir", "--no-deps"]
PIP_INSTALL += ["--no-build-isolation"]

PROMPTS = ["one two three", "four five", "six", "seven eight nine ten"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin distribution, built from its pyproject and installed (with its .dist-info) into a directory."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    (source / "aieb_echo_backend").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (source / "aieb_echo_backend" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    site = root / "site"
    proc = subprocess.run(
        [*PIP_INSTALL, "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (site / "aieb_echo_backend-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


def _cli(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "ai_energy_benchmarks.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _config(directory: Path) -> Path:
    prompts = directory / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    path = directory / "echo.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: plugin-run
            output_dir: {directory / "out"}
            backend:
              type: echo
              model: echo-model
              tokens_per_prompt: 3
              label: hello
            scenario:
              dataset_name: {prompts}
              num_samples: {len(PROMPTS)}
              warmup_runs: 1
              generate_kwargs:
                max_new_tokens: 8
                min_new_tokens: 1
            metrics:
              enabled: false
            reporter:
              output_file: {directory / "out" / "results.csv"}
            """
        ),
        encoding="utf-8",
    )
    return path


def test_plugin_backend_runs_end_to_end(plugin_site: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    proc = _cli(plugin_site, tmp_path, "run", "--config", str(config))
    assert proc.returncode == 0, proc.stderr

    report = json.loads((tmp_path / "out" / "benchmark_report.json").read_text(encoding="utf-8"))
    assert report["status"] == "completed"
    assert report["config"]["backend"] == "echo"
    assert report["config"]["model"] == "echo-model"
    summary = report["summary"]
    assert summary["total_prompts"] == len(PROMPTS)
    assert summary["successful_prompts"] == len(PROMPTS)
    assert summary["total_completion_tokens"] == 3 * len(PROMPTS)
    assert summary["total_prompt_tokens"] == sum(len(p.split()) for p in PROMPTS)
    # The plugin's own settings are validated and saved like ours; the runner named every pass it ran.
    assert report["model"]["label"] == "hello"
    assert report["model"]["phases"] == ["warmup", "prefill-0", "generate-0"]
    resolved = yaml.safe_load((tmp_path / "out" / "resolved_config.yaml").read_text(encoding="utf-8"))
    assert resolved["backend"]["tokens_per_prompt"] == 3
    assert resolved["backend"]["type"] == "echo"
    sent = [json.loads(line) for line in (tmp_path / "out" / "prompts.jsonl").read_text().splitlines()]
    assert [row["sent"] for row in sent] == [f"[hello] {p}" for p in PROMPTS]
    rows = (tmp_path / "out" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and ",echo,echo-model," in rows[1]


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (
            "backend.tokens_per_prompt=0",
            "backend.tokens_per_prompt: input should be greater than or equal to 1, got '0'",
        ),
        ("backend.tokens_per_prompt=many", "backend.tokens_per_prompt: expected an integer, got 'many'"),
        ("backend.tokens_per_promt=2", "backend.tokens_per_promt: unknown key (did you mean 'tokens_per_prompt'?)"),
        ("backend.no_weights=true", "backend: no_weights applies to backend type 'pytorch' only, not 'echo'"),
        ("backend.type=ecko", "backend.type: expected 'broken', 'echo', 'pytorch' or 'vllm', got 'ecko'"),
        (
            "backend.type=broken",
            "backend.type: cannot load backend 'broken' (entry point 'aieb_echo_backend:no_such_spec' in group "
            "ai_energy_benchmarks.backends): AttributeError",
        ),
    ],
)
def test_plugin_config_errors_read_like_ours(plugin_site: Path, tmp_path: Path, override: str, fragment: str) -> None:
    config = _config(tmp_path)
    proc = _cli(plugin_site, tmp_path, "run", "--config", str(config), override)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {config} (with overrides "), lines[0]
    assert fragment in lines[0]
    assert not (tmp_path / "out" / "benchmark_report.json").exists()


def test_validate_prints_the_plugin_settings(plugin_site: Path, tmp_path: Path) -> None:
    proc = _cli(plugin_site, tmp_path, "validate", "--config", str(_config(tmp_path)), "backend.label=x")
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert resolved["backend"] == {
        "type": "echo",
        "model": "echo-model",
        "device": "auto",
        "device_ids": [0],
        "seed": 42,
        "tokens_per_prompt": 3,
        "label": "x",
    }


def test_unknown_type_without_the_plugin_lists_the_builtin_backends(tmp_path: Path) -> None:
    proc = _cli(tmp_path / "empty", tmp_path, "validate", "--config", str(_config(tmp_path)))
    assert proc.returncode == 2
    assert "backend.type: expected 'pytorch' or 'vllm', got 'echo'" in proc.stderr
