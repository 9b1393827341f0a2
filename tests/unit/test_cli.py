"""The command line as a user meets it: real subprocesses of the installed entry point."""

from __future__ import annotations

import csv
import json
import logging
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from repo_paths import REPO_ROOT

ROOT = REPO_ROOT
CLI = [sys.executable, "-m", "ai_energy_benchmarks"]


#: Every run here uses one torch thread: a verdict must not depend on how busy the machine is (threads = cores
#: on a machine whose cores other work keeps busy made a run many times slower).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: A guard against a hung process only, never a verdict on speed: far beyond the slowest run seen on a 2-core
#: machine with both cores busy (the quickstart took 86 s there with one thread).
HANG_TIMEOUT_S = 1800


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **ONE_THREAD, **(env or {})},
        cwd=cwd,
        timeout=HANG_TIMEOUT_S,
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
    # The README shows this very summary: the same lines, in the same order, with the same words (figures differ;
    # a warning about a short window depends on the machine's speed, and the report's path on the folder).
    assert _summary_shape(result.stdout) == _summary_shape(_readme_sample_summary())
    # The torch threads it ran with, and why (one here: OMP_NUM_THREADS=1 caps the choice).
    assert report["model"]["num_threads"] == 1
    assert report["model"]["num_threads_chosen"].startswith("auto: ")


def _readme_sample_summary() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## What the quickstart prints") :]
    return section.split("```", 2)[1]


def _summary_shape(text: str) -> list[str]:
    """The summary's lines with every figure replaced by N, without the machine-dependent lines."""
    lines = [line for line in text.strip().splitlines() if line.split()[0] not in ("warning", "report")]
    return [re.sub(r"\d+(\.\d+)?(e[+-]\d+)?", "N", line) for line in lines]


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """CI logs, nohup, a file: the run still says how far it is, stage by stage, in prompts (not on stdout)."""
    result = run_cli(
        "--config-name",
        "quickstart",
        f"output_dir={tmp_path / 'o'}",
        f"reporter.output_file={tmp_path / 'r.csv'}",
        "scenario.num_samples=3",
        "metrics.enabled=false",
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split(" ", 1)[1] for line in result.stderr.splitlines() if " progress: " in line]
    assert lines[0] == "progress: loading the model"
    assert lines[1].startswith("progress: loading the model: done in ")
    assert "progress: warmup: 0/2 prompts" in lines
    for window in ("prefill-0", "generate-0"):
        assert f"progress: measure {window}: 0/3 prompts" in lines
        assert any(line.startswith(f"progress: measure {window}: 3/3 prompts, done in ") for line in lines), lines
    assert "progress:" not in result.stdout
    quiet = run_cli(
        "-q",
        "--config-name",
        "quickstart",
        f"output_dir={tmp_path / 'q'}",
        f"reporter.output_file={tmp_path / 'q.csv'}",
        "scenario.num_samples=1",
        "metrics.enabled=false",
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_progress_lines_come_at_a_steady_interval(caplog: pytest.LogCaptureFixture) -> None:
    """A long stage logs a line every 10 s (with what is left), not one per prompt and not none at all."""
    from ai_energy_benchmarks.runner import ProgressLog

    now = [0.0]
    progress = ProgressLog(interval_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="ai_energy_benchmarks.progress"):
        for done in range(101):  # 100 prompts, one every 0.5 s
            now[0] = done * 0.5
            progress("measure generate-0", done, 100)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 6  # at 0, 10, 20, 30 and 40 s, and at the end (50 s): nothing else
    assert lines[0] == "measure generate-0: 0/100 prompts"
    assert lines[1] == "measure generate-0: 20/100 prompts, 10 s elapsed, about 40 s left"
    assert lines[-1] == "measure generate-0: 100/100 prompts, done in 50.0 s"


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
    proc.wait(timeout=HANG_TIMEOUT_S)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    # Model loading is a stage; each measured pass counts its own 20 prompts (a prefill pass, a generate pass).
    assert "loading the model" in terminal
    assert "measure prefill-0" in terminal and "measure generate-0" in terminal and "20/20" in terminal
    assert "40/40" not in terminal
    assert "prefill-0" not in stdout
    # On a terminal the bar shows progress; no progress lines are logged beside it.
    assert "progress:" not in terminal


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
        (
            ["backend.model=packaged:gpt2", "backend.no_weights=false"],
            "backend.model: 'packaged:gpt2' is an architecture shipped without weights (no *.safetensors or "
            "pytorch_model*.bin): set backend.no_weights=true to run it with random weights",
        ),
    ],
)
def test_validate_refuses_what_run_would_refuse(tmp_path: Path, overrides: list[str], message: str) -> None:
    """`validate` runs every check that needs nothing loaded: the same one-line errors as `run`, before any work."""
    result = run_cli("validate", "--config-name", "quickstart", *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_validate_and_run_refuse_a_local_model_folder_without_weights(tmp_path: Path) -> None:
    """A folder holding only a config (no weights) is refused in an instant, naming the fix; nothing is loaded."""
    from ai_energy_benchmarks.backends.pytorch import packaged_models_dir

    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_bytes((packaged_models_dir() / "tiny-llama" / "config.json").read_bytes())
    for command in (["validate"], []):
        result = run_cli(
            *command, "--config-name", "quickstart", f"backend.model={folder}", "backend.no_weights=false", cwd=tmp_path
        )
        assert result.returncode == 2, result.stderr
        assert f"has no weights in {folder}" in result.stderr and "set backend.no_weights=true" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "benchmark_output").exists()
    # With no_weights the same folder validates (random weights from its config).
    assert run_cli("validate", "--config-name", "quickstart", f"backend.model={folder}", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("command", [["validate", "--config-name", "quickstart"], ["presets"]])
def test_output_into_a_closed_pipe_ends_quietly_with_141(command: list[str]) -> None:
    """`ai-energy-benchmark validate ... | head -1`: once the reader has gone, no error message, exit 141 (128 +
    SIGPIPE, as a Unix tool stopped by SIGPIPE). The reader is gone before the command writes anything."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen(
            [*CLI, *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **ONE_THREAD},
        )
    finally:
        os.close(write_end)
    _, stderr = proc.communicate(timeout=HANG_TIMEOUT_S)
    assert proc.returncode == 141, stderr
    assert stderr == ""


def test_a_warning_the_summary_shows_is_printed_once(tmp_path: Path) -> None:
    """Fewer prompts than num_samples: the sentence appears once on the console (in the summary), not also as a log
    line on stderr."""
    prompts = tmp_path / "two.txt"
    prompts.write_text("first prompt\nsecond prompt\n", encoding="utf-8")
    result = run_cli(
        "--config-name",
        "quickstart",
        f"output_dir={tmp_path / 'o'}",
        f"reporter.output_file={tmp_path / 'r.csv'}",
        f"scenario.dataset_name={prompts}",
        "scenario.num_samples=5",
        "scenario.allow_fewer_samples=true",
        "scenario.warmup_runs=0",
        "metrics.enabled=false",
    )
    assert result.returncode == 0, result.stderr
    sentence = "scenario.num_samples is 5 but"
    assert (result.stdout + result.stderr).count(sentence) == 1
    assert f"warning       {sentence}" in result.stdout
