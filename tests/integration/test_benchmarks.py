"""The benchmark scripts run for anyone: a tiny harness-overhead run, and the GPU check's answer on a CPU machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from repo_paths import REPO_ROOT

ROOT = REPO_ROOT


def test_harness_overhead_prints_its_ratio() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "harness_overhead.py"),
            "--rounds",
            "1",
            "--num-prompts",
            "4",
            "--max-new-tokens",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert "ratio runner(meters on) / bare  =" in result.stdout and "best" in result.stdout


def test_gpu_check_refuses_without_a_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: run benchmarks/gpu_check.py by hand")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "no CUDA GPU" in result.stderr


def test_counter_record_benchmark_prints_memory_and_costs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "counter_record.py"), "--hours", "0.2", "--max-samples", "5000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "14,400 samples" in result.stdout  # 0.2 h at 50 ms
    kept = int(result.stdout.split("record kept")[1].split("samples")[0].strip().replace(",", ""))
    assert kept <= 5000
    assert "bytes per kept sample" in result.stdout and "interval read-back" in result.stdout


def test_busy_machine_prints_quiet_busy_and_their_ratio() -> None:
    """benchmarks/busy_machine.py on a tiny quickstart: both conditions, the threads used and their ratio."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "busy_machine.py"),
            "--threads",
            "1",
            "--busy",
            "1",
            "scenario.num_samples=2",
            "scenario.generate_kwargs.max_new_tokens=2",
            "scenario.generate_kwargs.min_new_tokens=2",
            "metrics.enabled=false",
        ],
        capture_output=True,
        text=True,
        timeout=1800,  # a guard against a hang only: four tiny runs, slow on a busy machine
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["1", "quiet"] and "1 (backend.num_threads)" in line for line in lines), lines
    assert any(line.split()[:2] == ["1", "busy"] for line in lines), lines
    assert "busy / quiet wall time:" in result.stdout
