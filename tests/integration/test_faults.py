"""Fault injection through the real CLI in subprocesses: signals, concurrent CSV appends, an old CSV header,
a meter that fails mid-run, a model that fails to load, an unwritable output directory."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "ai_energy_benchmarks"]
#: A guard against a hung process only, never a verdict on speed: eight runs at once on a 2-core machine whose cores
#: other work keeps busy take minutes (each imports torch and loads a model). Runs use one torch thread (conftest).
HANG_TIMEOUT_S = 1800


def base_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--config-name",
        "quickstart",
        f"output_dir={tmp_path / 'out'}",
        f"reporter.output_file={tmp_path / 'results.csv'}",
        *extra,
    ]


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "-v", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )


def signal_when(proc: subprocess.Popen[str], marker: str, signum: int) -> tuple[str, str]:
    """Send ``signum`` as soon as ``marker`` appears on the process's stderr (its log), then collect the output."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            proc.send_signal(signum)
            break
    else:
        pytest.fail(f"the run ended before {marker!r}:\n{''.join(seen)}")
    stdout, rest = proc.communicate(timeout=HANG_TIMEOUT_S)
    return stdout, "".join(seen) + rest


def report(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "out" / "benchmark_report.json").read_text(encoding="utf-8"))


def csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_measurement_keeps_what_was_measured(tmp_path: Path, signum: int, exit_code: int) -> None:
    proc = start(base_args(tmp_path, "scenario.num_samples=100"))
    _, stderr = signal_when(proc, "measuring window 'generate-0'", signum)
    assert proc.returncode == exit_code, stderr
    name = signal.Signals(signum).name
    assert f"interrupted by {name}; partial report: {tmp_path / 'out' / 'benchmark_report.json'}" in stderr
    partial = report(tmp_path)
    assert partial["status"] == "interrupted"
    assert partial["summary"]["total_prompts"] < 100
    assert partial["phases"]["prefill"]["prompts"] == 100  # the prefill pass had completed
    assert partial["energy"]["cpu_energy_wh"] > 0  # the meters were stopped and read
    header, rows = csv_rows(tmp_path / "results.csv")
    assert len(rows) == 1 and rows[0][header.index("status")] == "interrupted"
    assert "Traceback" not in stderr


def test_signal_before_measurement_writes_nothing(tmp_path: Path) -> None:
    proc = start(base_args(tmp_path, "scenario.warmup_runs=50"))  # seconds of warm-up: the signal lands in it
    _, stderr = signal_when(proc, "warm-up:", signal.SIGINT)
    assert proc.returncode == 130
    assert "interrupted by SIGINT; nothing had been measured yet" in stderr
    assert not (tmp_path / "out" / "benchmark_report.json").exists()
    assert not (tmp_path / "results.csv").exists()


def test_eight_concurrent_runs_append_aligned_rows(tmp_path: Path) -> None:
    target = tmp_path / "shared.csv"
    procs = [
        subprocess.Popen(
            [
                *CLI,
                "-q",
                "--config-name",
                "quickstart",
                f"name=run-{i}",
                f"output_dir={tmp_path / f'out-{i}'}",
                f"reporter.output_file={target}",
                "scenario.num_samples=2",
                "scenario.generate_kwargs.max_new_tokens=2",
                "scenario.generate_kwargs.min_new_tokens=2",
                "metrics.enabled=false",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=HANG_TIMEOUT_S)
        assert proc.returncode == 0, err
    header, rows = csv_rows(target)
    assert len(rows) == 8
    assert all(len(row) == len(header) for row in rows)
    assert sorted(row[header.index("name")] for row in rows) == [f"run-{i}" for i in range(8)]


def test_csv_with_an_old_header_is_migrated_not_torn(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("timestamp,name,legacy_column\n2025-01-01T00:00:00,old-run,kept\n", encoding="utf-8")
    result = subprocess.run(
        [*CLI, "-q", *base_args(tmp_path, "scenario.num_samples=2", "metrics.enabled=false")],
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    header, rows = csv_rows(target)
    assert header[:3] == ["timestamp", "name", "legacy_column"]
    assert "total_energy_wh" in header
    assert rows[0][:3] == ["2025-01-01T00:00:00", "old-run", "kept"]
    assert rows[1][header.index("name")] == "quickstart"
    assert all(len(row) == len(header) for row in rows)


FAULTY_METER = textwrap.dedent(
    """
    from ai_energy_benchmarks.energy.base import EnergyReading


    class FaultyMeter:
        \"\"\"Works for the prefill window, then disappears (like an NVML device lost mid-run).\"\"\"

        name = "faulty"

        def __init__(self, config, output_dir, gpu_ids):
            self.windows = 0

        def prepare(self):
            pass

        def start_window(self, name):
            self.windows += 1
            if name.startswith("generate"):
                raise RuntimeError("device lost")

        def stop_window(self, name):
            return [EnergyReading(device="gpu:0", energy_j=1.0, source="measured:faulty", meter="faulty")], None

        def describe(self):
            return {"windows": self.windows}

        def close(self):
            pass


    def create(config, output_dir, gpu_ids):
        return FaultyMeter(config, output_dir, gpu_ids)
    """
)


def test_meter_failing_mid_run_does_not_end_it(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    (plugins / "faulty_meter-1.0.dist-info").mkdir(parents=True)
    (plugins / "faulty_meter.py").write_text(FAULTY_METER, encoding="utf-8")
    (plugins / "faulty_meter-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: faulty-meter\nVersion: 1.0\n", encoding="utf-8"
    )
    (plugins / "faulty_meter-1.0.dist-info" / "entry_points.txt").write_text(
        "[ai_energy_benchmarks.meters]\nfaulty = faulty_meter:create\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [*CLI, *base_args(tmp_path, "scenario.num_samples=4", "metrics.type=[codecarbon, faulty]")],
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    assert data["status"] == "completed"
    assert "meter-error" in data["energy"]["flags"]
    assert any("meter 'faulty' failed to start window 'generate-0': device lost" in w for w in data["warnings"])
    assert data["energy"]["cpu_energy_wh"] > 0  # CodeCarbon went on measuring
    assert "meter 'faulty' failed to start window 'generate-0'" in result.stdout


def test_model_that_cannot_load(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, *base_args(tmp_path, f"backend.model={tmp_path / 'missing-model'}", "backend.no_weights=false")],
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
    )
    assert result.returncode == 1
    # Besides the progress line of the stage that failed (stderr is not a terminal), one line: the error.
    errors = [line for line in result.stderr.splitlines() if "progress: " not in line]
    assert len(errors) == 1 and errors[0].startswith("error: backend.model: cannot load"), result.stderr
    assert not (tmp_path / "out" / "benchmark_report.json").exists()
    assert not (tmp_path / "results.csv").exists()


def test_unwritable_output_directory_is_refused_before_anything_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    result = subprocess.run(
        [
            *CLI,
            "--config-name",
            "quickstart",
            f"output_dir={blocker / 'out'}",
            f"reporter.output_file={tmp_path / 'r.csv'}",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
    )
    assert result.returncode == 2
    assert f"output_dir: directory '{blocker / 'out'}' cannot be written" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
