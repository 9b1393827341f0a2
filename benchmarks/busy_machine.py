"""The quickstart on a quiet machine and on a busy one: wall time, measured time and the torch threads it used.

"Busy" means one background ``python -c 'while True: pass'`` per usable core (started before the run, killed after
it), the situation of a shared 2-core machine where other work keeps both cores busy. Each threads setting runs
quiet then busy; the ratio busy / quiet is printed for each. ``auto`` leaves ``backend.num_threads`` unset (the
run chooses from the cores actually free); a number sets it (``--threads <cores>`` reproduces torch's default of
one thread per core, i.e. the behaviour before ``backend.num_threads`` existed).

    python benchmarks/busy_machine.py                    # auto vs one thread per core, quiet and busy
    python benchmarks/busy_machine.py --threads auto --runs 3
    python benchmarks/busy_machine.py scenario.num_samples=20   # trailing KEY=VALUE overrides go to every run

OMP_NUM_THREADS and MKL_NUM_THREADS are removed from the runs' environment (a user's shell rarely sets them).
Goal (issue 20): on a busy machine the quickstart finishes within 2x its quiet wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def quickstart(work: Path, threads: str, overrides: list[str]) -> dict[str, Any]:
    """One quickstart run in a subprocess: wall time (s) and figures from its report."""
    out = work / f"run-{time.monotonic_ns()}"
    args = [sys.executable, "-m", "ai_energy_benchmarks", "-q", "--config-name", "quickstart"]
    args += [f"output_dir={out}", f"reporter.output_file={out / 'results.csv'}", *overrides]
    if threads != "auto":
        args.append(f"backend.num_threads={threads}")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
    wall_s = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"quickstart failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads((out / "benchmark_report.json").read_text(encoding="utf-8"))
    return {
        "wall_s": wall_s,
        "measured_s": report["summary"]["total_duration_seconds"],
        "num_threads": report["model"].get("num_threads"),
        "chosen": report["model"].get("num_threads_chosen"),
    }


class BusyLoops:
    """``count`` background processes each spinning one core; killed on exit."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BusyLoops:
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)  # let them start spinning
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default=f"auto,{usable_cores()}", help="comma-separated: auto and/or numbers")
    parser.add_argument("--busy", type=int, default=usable_cores(), help="background busy loops [usable cores]")
    parser.add_argument("--runs", type=int, default=1, help="runs per condition (the median is shown)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    options = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{usable_cores()} usable cores; 1-minute load before: {load:.2f}; busy = {options.busy} busy loops")
    print(f"{'threads':>8} {'condition':>9} {'wall s':>7} {'measured s':>10}  torch threads used")
    with tempfile.TemporaryDirectory(prefix="busy_machine_") as tmp:
        work = Path(tmp)
        for threads in options.threads.split(","):
            walls: dict[str, float] = {}
            for condition in ("quiet", "busy"):
                runs = []
                for _ in range(options.runs):
                    if condition == "busy":
                        with BusyLoops(options.busy):
                            runs.append(quickstart(work, threads, options.overrides))
                    else:
                        runs.append(quickstart(work, threads, options.overrides))
                walls[condition] = statistics.median(r["wall_s"] for r in runs)
                measured = statistics.median(r["measured_s"] for r in runs)
                last = runs[-1]
                print(
                    f"{threads:>8} {condition:>9} {walls[condition]:7.1f} {measured:10.2f}  "
                    f"{last['num_threads']} ({last['chosen']})",
                    flush=True,
                )
            print(f"{threads:>8} busy / quiet wall time: {walls['busy'] / walls['quiet']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
