"""The command line as a user meets it: real subprocesses of the installed entry point."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "ai_energy_benchmarks"]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_help_is_fast_and_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ai_energy_benchmarks.cli import main\n"
        "for args in (['--help'], ['--version'], ['run', '--help'], ['presets']):\n"
        "    result = CliRunner().invoke(main, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'datasets', 'codecarbon') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_help_describes_usage() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "--config-name quickstart" in result.stdout
    for command in ("run", "validate", "presets"):
        assert command in result.stdout
    run_help = run_cli("run", "--help").stdout
    for option in ("--config", "--config-name", "--verbose", "--quiet", "KEY=VALUE"):
        assert option in run_help


def test_version_matches_version_file() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    expected = (ROOT / "VERSION.txt").read_text(encoding="utf-8").strip()
    assert result.stdout.strip() == f"ai-energy-benchmark {expected}"


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run_cli("--config", str(missing))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {missing}: config file not found"
    assert "Traceback" not in result.stderr


def test_no_config_at_all_says_what_to_pass() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "--config PATH or --config-name NAME" in result.stderr


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    """The README's first command: the packaged default, offline, real model and real CodeCarbon."""
    out = tmp_path / "quick"
    result = run_cli("--config-name", "quickstart", env={"AIEB_OUTPUT_DIR": str(out)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "benchmark_report.json").read_text(encoding="utf-8"))
    summary, energy = report["summary"], report["energy"]
    assert summary["successful_prompts"] == 100
    assert summary["total_completion_tokens"] == 100 * 32
    assert energy["total_energy_wh"] > 0
    # The console summary shows the same figures, each with its source.
    assert f"{summary['successful_prompts']}/{summary['total_prompts']} ok" in result.stdout
    assert "SYNTHETIC" in result.stdout
    assert "ESTIMATE (codecarbon-ram)" in result.stdout
    assert "g/kWh (ESTIMATE: grid intensity x energy)" in result.stdout
    assert str(out / "benchmark_report.json") in result.stdout
    with (out / "benchmark_results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["status"] == "completed"
    # stderr is not a terminal here: no progress bar, and CodeCarbon's chatter is silenced.
    assert "prompt/s" not in result.stderr
    assert "codecarbon" not in result.stderr.lower()


def test_overrides_and_quiet(tmp_path: Path) -> None:
    result = run_cli(
        "-q",
        "--config-name",
        "quickstart",
        f"output_dir={tmp_path / 'o'}",
        f"reporter.output_file={tmp_path / 'r.csv'}",
        "scenario.num_samples=3",
        "scenario.generate_kwargs.max_new_tokens=5",
        "scenario.generate_kwargs.min_new_tokens=5",
        "metrics.enabled=False",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads((tmp_path / "o" / "benchmark_report.json").read_text(encoding="utf-8"))
    assert report["summary"]["total_completion_tokens"] == 15
    assert report["energy"]["enabled"] is False
    assert "not measured" in result.stdout


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, a progress bar is drawn there (and never on stdout)."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            *CLI,
            "--config-name",
            "quickstart",
            f"output_dir={tmp_path}",
            f"reporter.output_file={tmp_path / 'r.csv'}",
            "scenario.num_samples=20",
            "metrics.enabled=false",
        ],
        stdout=subprocess.PIPE,
        stderr=secondary,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
    stdout = proc.stdout.read() if proc.stdout else ""
    proc.wait(timeout=300)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    # 20 prompts, each measured twice: a prefill pass and a generate pass.
    assert "measure" in terminal and "40/40" in terminal
    assert "measure:" not in stdout


@pytest.mark.parametrize("verbose", [False, True])
def test_failed_run_exit_code_and_traceback_only_when_verbose(tmp_path: Path, verbose: bool) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text(" ".join(["long"] * 900) + "\n", encoding="utf-8")
    args = [
        "--config-name",
        "quickstart",
        f"output_dir={tmp_path / 'o'}",
        f"reporter.output_file={tmp_path / 'r.csv'}",
        f"scenario.dataset_name={prompts}",
        "scenario.warmup_runs=0",
    ]
    result = run_cli(*(["-v", *args] if verbose else args))
    assert result.returncode == 2
    assert "exceeds the model's context of 512 tokens" in result.stderr
    assert ("Traceback" in result.stderr) is verbose
    # What was measured before the failure is kept.
    assert json.loads((tmp_path / "o" / "benchmark_report.json").read_text())["status"] == "failed"


def test_hub_dataset_from_the_local_cache_offline(tmp_path: Path) -> None:
    """A hub id runs offline from a datasets cache (HF_DATASETS_CACHE); the report names the commit used."""
    from hub_cache import COMMIT, build_hub_cache

    cache = tmp_path / "hf_datasets"
    rows = {"hard": {"train": [{"question": "unused"}], "test": [{"question": f"cached {i}"} for i in range(3)]}}
    build_hub_cache(cache, "aieb-test/tiny_prompts", rows)
    out = tmp_path / "o"
    result = run_cli(
        "--config-name",
        "quickstart",
        f"output_dir={out}",
        f"reporter.output_file={tmp_path / 'r.csv'}",
        "scenario.dataset_name=aieb-test/tiny_prompts",
        "scenario.dataset_config=hard",
        "scenario.split=test",
        "scenario.text_column_name=question",
        "scenario.num_samples=3",
        "scenario.generate_kwargs.max_new_tokens=4",
        "scenario.generate_kwargs.min_new_tokens=4",
        "metrics.enabled=False",
        env={"HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    sent = [json.loads(line)["prompt"] for line in (out / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sent == ["cached 0", "cached 1", "cached 2"]
    dataset = json.loads((out / "benchmark_report.json").read_text(encoding="utf-8"))["dataset"]
    assert dataset["source"] == "hub:aieb-test/tiny_prompts" and dataset["num_used"] == 3
    assert dataset["hub"]["commit"] == COMMIT and dataset["hub"]["offline"] is True
    assert dataset["hub"]["config"] == "hard" and dataset["hub"]["split"] == "test"
    shown = f"dataset hub:aieb-test/tiny_prompts (config hard, split test, commit {COMMIT[:12]}, from the local cache)"
    assert shown in result.stdout
    # datasets' messages reach the console once, through the CLI's logging; no progress bar of its own.
    assert result.stderr.count("Using the latest cached version") == 1
    assert "Generating test split" not in result.stderr


def test_pytorch_run_without_torch_names_the_install_and_exits_2(tmp_path: Path) -> None:
    """A missing optional dependency is a usage problem: one line naming the install command, exit code 2."""
    code = (
        "import sys; sys.modules['torch'] = None  # as if torch were not installed\n"
        "from ai_energy_benchmarks.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--config-name", "quickstart", f"output_dir={tmp_path / 'o'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [
        "error: backend.type pytorch needs torch and transformers (torch is not installed): pip install torch first, "
        "then pip install 'ai-energy-benchmarks[pytorch]'"
    ]


def test_a_mistyped_command_is_named_not_run() -> None:
    result = run_cli("reprot", "runs/x")
    assert result.returncode == 2
    assert "No such command 'reprot'" in result.stderr and "report" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scenario.reasoning_format=bogus"], "scenario.reasoning_format: unknown family 'bogus'"),
        (["scenario.dataset_name=packaged:nope"], "no packaged prompt set 'nope'"),
        (["scenario.dataset_name=./missing.jsonl"], "file or folder './missing.jsonl' not found"),
        (["backend.model=packaged:nope"], "backend.model: no packaged architecture 'nope'"),
        (["metrics.type=dcgm"], "metrics.dcgm: set prometheus_url (or exporter_urls) for metrics.type dcgm"),
    ],
)
def test_validate_refuses_what_run_would_refuse(tmp_path: Path, overrides: list[str], message: str) -> None:
    """`validate` runs every check that needs nothing loaded: the same one-line errors as `run`, before any work."""
    result = run_cli("validate", "--config-name", "quickstart", *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
