"""Outputs leak nothing, inputs fail clearly (issue 15).

The leak tests run the real command line (subprocesses) against the package's streaming test server, which checks
the API key and records every Authorization header it receives: the run must send the real key or URL credentials,
and no file written and nothing printed may hold them. The input tests feed damaged or impossible inputs and expect
one line naming the file or key, and exit code 2.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from ai_energy_benchmarks.config.redact import REDACTED, redact_override, redact_text, redact_url
from ai_energy_benchmarks.config.schema import BackendConfig, MetricsConfig, ScenarioConfig
from ai_energy_benchmarks.datasets.loader import MAX_CSV_FIELD_CHARS, load_prompts
from ai_energy_benchmarks.exceptions import DatasetError
from ai_energy_benchmarks.results.aggregate import SCHEMA_VERSION
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

CLI = [sys.executable, "-m", "ai_energy_benchmarks"]
API_KEY = "sk-test-Zq7uV2pLx9Kd"
URL_PASSWORD = "pw-Hh3kR8nT5wQ"
ENV_KEY = "sk-env-Yt6cB1mN4"
MODEL = "fake-model"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, **(env or {})},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2 and stderr exactly one line "error: ..." holding every fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def write_config(path: Path, endpoint: str, out: Path) -> Path:
    path.write_text(
        "name: secrets\n"
        "backend:\n"
        "  type: vllm\n"
        f"  model: {MODEL}\n"
        f"  endpoint: '{endpoint}'\n"
        "scenario:\n"
        "  num_samples: 3\n"
        "  measure_prefill: false\n"
        "  warmup_runs: 0\n"
        "  generate_kwargs: {max_new_tokens: 4, min_new_tokens: 4}\n"
        "metrics:\n"
        "  enabled: false\n"
        f"output_dir: {out / 'run'}\n"
        f"reporter:\n  output_file: {out / 'results.csv'}\n",
        encoding="utf-8",
    )
    return path


def leaks(root: Path, secrets: tuple[str, ...], skip: tuple[Path, ...]) -> list[str]:
    """Every file under ``root`` (but ``skip``) holding one of ``secrets``, as ``path: secret``."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip:
            data = path.read_bytes()
            found += [f"{path}: {secret}" for secret in secrets if secret.encode() in data]
    return found


def exercise_every_command(tmp_path: Path, config: Path, overrides: list[str], env: dict[str, str]) -> list[str]:
    """validate, run, report, compare and sweep on ``config``; return everything they printed."""
    out = tmp_path / "out"
    printed: list[str] = []

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(*args, cwd=tmp_path, env=env)
        printed.extend([result.stdout, result.stderr])
        return result

    validated = call("validate", "--config", str(config), *overrides)
    assert validated.returncode == 0, validated.stderr
    assert "endpoint:" in validated.stdout
    ran = call("run", "--config", str(config), *overrides)
    assert ran.returncode == 0, ran.stderr
    swept = call(
        "sweep",
        "--config",
        str(config),
        "--param",
        "backend.concurrency=1,2",
        "--no-plot",
        "--output-dir",
        str(out / "sweep"),
        *overrides,
    )
    assert swept.returncode == 0, swept.stderr
    assert (out / "sweep" / "sweep.json").is_file() and (out / "sweep" / "summary.md").is_file()
    compared = call("compare", str(out / "run"), str(out / "sweep" / "concurrency-1"))
    assert compared.returncode == 0, compared.stderr
    if _has_matplotlib():
        reported = call("report", str(out / "run"))
        assert reported.returncode == 0, reported.stderr
        assert (out / "run" / "report" / "report.html").is_file()
    for name in ("resolved_config.yaml", "benchmark_report.json", "requests.jsonl"):
        assert (out / "run" / name).is_file(), name
    rows = (out / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2, rows  # the header and the run's row
    return printed


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# -- secrets ---------------------------------------------------------------------------------------------------------


def test_an_api_key_override_is_sent_to_the_server_and_written_nowhere(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], api_key=API_KEY) as server:
        config = write_config(tmp_path / "config.yaml", server.url + "/v1", tmp_path / "out")
        printed = exercise_every_command(tmp_path, config, [f"backend.api_key={API_KEY}"], {})
        sent = set(server.auth_headers)
    assert sent == {f"Bearer {API_KEY}"}  # every request carried the real key
    assert [text for text in printed if API_KEY in text] == []
    assert leaks(tmp_path, (API_KEY,), skip=(config,)) == []
    manifest = json.loads((tmp_path / "out" / "sweep" / "sweep.json").read_text(encoding="utf-8"))
    assert manifest["overrides"] == [f"backend.api_key={REDACTED}"]
    assert f"backend.api_key={REDACTED}" in (tmp_path / "out" / "sweep" / "summary.md").read_text(encoding="utf-8")


def test_credentials_in_the_endpoint_url_are_sent_and_written_nowhere(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL]) as server:
        endpoint = server.url.replace("http://", f"http://alice:{URL_PASSWORD}@") + "/v1"
        config = write_config(tmp_path / "config.yaml", endpoint, tmp_path / "out")
        # A key in the environment is not combined with the URL's credentials (both are an Authorization header).
        printed = exercise_every_command(tmp_path, config, [], {"OPENAI_API_KEY": ENV_KEY})
        sent = set(server.auth_headers)
    basic = base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode()
    assert sent == {f"Basic {basic}"}  # the URL's credentials reached the server
    assert [text for text in printed if URL_PASSWORD in text or ENV_KEY in text] == []
    assert leaks(tmp_path, (URL_PASSWORD, ENV_KEY, basic), skip=(config,)) == []
    resolved = (tmp_path / "out" / "run" / "resolved_config.yaml").read_text(encoding="utf-8")
    assert f"http://{REDACTED}@127.0.0.1:" in resolved  # it says credentials were given, not which


def test_an_api_key_and_url_credentials_together_are_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", f"http://alice:{URL_PASSWORD}@127.0.0.1:9/v1", tmp_path / "out")
    for command in ("validate", "run"):
        result = run_cli(command, "--config", str(config), f"backend.api_key={API_KEY}", cwd=tmp_path)
        line = assert_one_line_error(result, "backend.endpoint carries credentials", "backend.api_key")
        assert URL_PASSWORD not in line and API_KEY not in line


@pytest.mark.parametrize(
    "endpoint",
    [
        f"ftp://alice:{URL_PASSWORD}@host/v1",
        f"http://alice:{URL_PASSWORD}@host/v1/completions",
        f"http://host:8000/v1?api_key={URL_PASSWORD}",
        f"http://host:8000/v1?token={URL_PASSWORD}",
        f"alice:{URL_PASSWORD}@host:8000/v1",
    ],
)
def test_a_refused_endpoint_is_named_without_its_credentials(tmp_path: Path, endpoint: str) -> None:
    config = write_config(tmp_path / "config.yaml", endpoint, tmp_path / "out")
    for command in ("validate", "run"):
        result = run_cli(command, "--config", str(config), cwd=tmp_path)
        assert_one_line_error(result, "backend.endpoint")
        assert URL_PASSWORD not in result.stdout + result.stderr


def test_the_redaction_helpers() -> None:
    assert redact_url("http://host:8000/v1") == "http://host:8000/v1"
    assert (
        redact_url(f"https://u:{URL_PASSWORD}@h/v1?api_key=k&x=1")
        == f"https://{REDACTED}@h/v1?api_key={REDACTED}&x={REDACTED}"
    )
    assert redact_override(f"backend.api_key={API_KEY}") == f"backend.api_key={REDACTED}"
    assert (
        redact_override(f"backend.endpoint=http://u:{URL_PASSWORD}@h/v1") == f"backend.endpoint=http://{REDACTED}@h/v1"
    )
    assert redact_override("scenario.generate_kwargs.max_new_tokens=8") == "scenario.generate_kwargs.max_new_tokens=8"
    text = redact_text(f"failed: token={API_KEY} at http://u:{URL_PASSWORD}@h:1/v1 (pad_token=x)")
    assert API_KEY not in text and URL_PASSWORD not in text and "pad_token=x" in text


# -- inputs that fail clearly -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("name: caf\u00e9\n".encode("latin-1"), "not a UTF-8 text file (byte 0xe9"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a UTF-8 text file (byte 0x89"),
        (b"name: a\x00b\n", "a binary file (NUL byte"),
    ],
)
def test_a_binary_or_non_utf8_config_is_one_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    for command in ("validate", "run"):
        assert_one_line_error(run_cli(command, "--config", str(config), cwd=tmp_path), str(config), fragment)


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("not a url", "a URL holds no spaces"),
        ("localhost:8000/v1", "no scheme"),
        ("ftp://host/v1", "scheme 'ftp' is not http or https"),
        ("http://", "no host"),
        ("http://host:99999/v1", "out of range"),
        ("http://bad_host!/v1", "is not a host name"),
    ],
)
def test_an_endpoint_that_is_not_a_url_is_refused(tmp_path: Path, endpoint: str, reason: str) -> None:
    config = write_config(tmp_path / "config.yaml", endpoint, tmp_path / "out")
    result = run_cli("validate", "--config", str(config), cwd=tmp_path)
    assert_one_line_error(result, "backend.endpoint: expected an http:// or https:// URL with a host", reason)
    with pytest.raises(ValidationError):
        BackendConfig(type="vllm", model="m", endpoint=endpoint)


@pytest.mark.parametrize("endpoint", ["http://host:8000/v1", "https://gateway.example/llm/v1", "http://[::1]:8000"])
def test_real_endpoints_are_accepted(endpoint: str) -> None:
    assert BackendConfig(type="vllm", model="m", endpoint=endpoint).endpoint == endpoint


def test_an_unknown_country_code_is_refused(tmp_path: Path) -> None:
    result = run_cli("validate", "--config-name", "quickstart", "metrics.country_iso_code=ZZZ", cwd=tmp_path)
    assert_one_line_error(result, "metrics.country_iso_code", "not an ISO 3166-1 alpha-3 country code", "'ZZZ'")
    result = run_cli("validate", "--config-name", "quickstart", "metrics.country_iso_code=US", cwd=tmp_path)
    assert_one_line_error(result, "metrics.country_iso_code", "did you mean 'USA'?")
    # Real codes, also of countries without their own energy-mix figures, are accepted (any case).
    for code in ("USA", "fra", "MCO", "LIE", "IND"):
        assert MetricsConfig(country_iso_code=code).country_iso_code == code.upper()


def test_a_large_csv_prompt_is_read_and_a_runaway_field_is_one_line(tmp_path: Path) -> None:
    long_prompt = "word " * (200 * 1024 // 5)  # 200 KiB: past the csv module's default limit of 128 KiB
    dataset = tmp_path / "prompts.csv"
    dataset.write_text(f'text\nshort\n"{long_prompt}"\n', encoding="utf-8")
    prompts = load_prompts(ScenarioConfig(dataset_name=str(dataset), num_samples=2)).prompts
    assert prompts == ["short", long_prompt]

    runaway = tmp_path / "runaway.csv"
    runaway.write_text('text\nshort\n"' + "x" * (MAX_CSV_FIELD_CHARS + 1) + '"\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"runaway.csv:3: a CSV field is longer than"):
        load_prompts(ScenarioConfig(dataset_name=str(runaway), num_samples=2))
    result = run_cli(
        "run",
        "--config-name",
        "quickstart",
        f"scenario.dataset_name={runaway}",
        f"output_dir={tmp_path / 'out'}",
        f"reporter.output_file={tmp_path / 'results.csv'}",
        cwd=tmp_path,
    )
    assert_one_line_error(result, f"{runaway}:3", "16 MiB")


# -- report and compare on damaged or foreign run directories ---------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real run against the test server (energy off): a run directory to copy and damage."""
    root = tmp_path_factory.mktemp("run")
    with FakeOpenAIServer(models=[MODEL]) as server:
        config = write_config(root / "config.yaml", server.url + "/v1", root)
        result = run_cli("run", "--config", str(config), cwd=root)
    assert result.returncode == 0, result.stderr
    yield root / "run"


def copy_run(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("report"))
    return target


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda data: b"\x00\x01\x02\xff" + data, "a binary file (NUL byte at offset 0)"),
        (lambda data: data.replace(b"\n", b"\n\xe9\xff\n", 1), ":2: not UTF-8 text (byte 0xe9)"),
    ],
)
def test_report_on_a_binary_requests_file_is_one_line(
    tmp_path: Path, run_dir: Path, damage: Callable[[bytes], bytes], fragment: str
) -> None:
    pytest.importorskip("matplotlib")
    run = copy_run(run_dir, tmp_path / "run")
    requests = run / "requests.jsonl"
    requests.write_bytes(damage(requests.read_bytes()))
    assert_one_line_error(run_cli("report", str(run), cwd=tmp_path), str(requests), fragment)


def test_report_skips_a_last_line_cut_inside_a_character(tmp_path: Path, run_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    run = copy_run(run_dir, tmp_path / "run")
    requests = run / "requests.jsonl"
    requests.write_bytes(requests.read_bytes() + '{"prompt": "caf\u00e9'.encode()[:-1])  # an interrupted write
    result = run_cli("report", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cut-short last line, skipped" in result.stderr


@pytest.mark.parametrize("version", ["2.0", "0.9", "one", None])
def test_report_and_compare_refuse_an_unknown_schema_version(
    tmp_path: Path, run_dir: Path, version: str | None
) -> None:
    pytest.importorskip("matplotlib")
    run = copy_run(run_dir, tmp_path / "foreign")
    report_path = run / "benchmark_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    if version is None:
        del report["schema_version"]
    else:
        report["schema_version"] = version
    report_path.write_text(json.dumps(report), encoding="utf-8")
    found = "no schema_version" if version is None else f"schema_version '{version}'"
    major = SCHEMA_VERSION.split(".")[0]
    assert_one_line_error(run_cli("report", str(run), cwd=tmp_path), str(report_path), found, f"schema {major}.x")
    assert_one_line_error(run_cli("compare", str(run_dir), str(run), cwd=tmp_path), str(report_path), found)


def test_a_newer_minor_schema_version_is_read(tmp_path: Path, run_dir: Path) -> None:
    run = copy_run(run_dir, tmp_path / "newer")
    report_path = run / "benchmark_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    major, minor = SCHEMA_VERSION.split(".")
    report["schema_version"] = f"{major}.{int(minor) + 1}"
    report_path.write_text(json.dumps(report), encoding="utf-8")
    result = run_cli("compare", str(run_dir), str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "is newer than" in result.stderr


def test_sweep_points_over_secrets_are_named_without_them() -> None:
    from ai_energy_benchmarks.reporting.sweep import build_grid, parse_param

    endpoints = f"http://u:{URL_PASSWORD}@h1/v1,http://h2/v1"
    grid = build_grid(
        [parse_param(f"backend.api_key={API_KEY},sk-other"), parse_param(f"backend.endpoint={endpoints}")]
    )
    shown = [(point.name, point.label, point.public_settings) for point in grid]
    assert API_KEY not in repr(shown) and URL_PASSWORD not in repr(shown)
    assert len({point.name for point in grid}) == 4  # still one directory per point
    assert grid[0].settings[0] == ("backend.api_key", API_KEY)  # the run itself gets the real value
