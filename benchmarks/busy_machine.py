"""The quickstart on a quiet machine and on a busy one: wall time, measured time and the torch threads it used.

"Busy" means one background ``python -c 'while True: pass'`` per usable core (started before the run, killed after
it), the situation of a shared 2-core machine where other work keeps both cores busy. Each threads setting runs
rounds of quiet then busy (medians over ``--runs`` rounds); the ratio busy / quiet is printed for each. "Quiet"
means without these loops: whatever else the machine runs stays (the 1-minute load is printed). ``auto`` leaves
``backend.num_threads`` unset (the run chooses from the cores actually free); a number sets it (``--threads
<cores>`` reproduces torch's default of one thread per core, the behaviour before ``backend.num_threads``).

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
import signal
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
    """``count`` background processes each spinning one core; killed on exit.

    ``own_session``: each loop in a session of its own, like other users' or other jobs' work. Linux's scheduler
    (with autogroup, the default on desktop and many server kernels) shares the CPU between sessions first: loops
    started with ``&`` from the shell that runs the benchmark share that shell's session, and so the benchmark's own
    share of the CPU, which no choice of threads can win back.
    """

    def __init__(self, count: int, own_session: bool) -> None:
        self.count = count
        self.own_session = own_session
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BusyLoops:
        for _ in range(self.count):
            command = [sys.executable, "-c", "while True: pass"]
            self.procs.append(subprocess.Popen(command, start_new_session=self.own_session))
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
    parser.add_argument("--runs", type=int, default=1, help="rounds (quiet, busy) per setting; medians are shown")
    parser.add_argument(
        "--same-session",
        action="store_true",
        help="start the busy loops in this script's session (as `&` in the same shell) instead of their own",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # the loops are killed on the way out
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = "this session" if options.same_session else "sessions of their own"
    print(f"{usable_cores()} usable cores; 1-minute load before: {load:.2f}; busy = {options.busy} loops in {where}")
    print(f"{'threads':>8} {'condition':>9} {'wall s':>7} {'measured s':>10}  torch threads used")
    with tempfile.TemporaryDirectory(prefix="busy_machine_") as tmp:
        work = Path(tmp)
        for threads in options.threads.split(","):
            runs: dict[str, list[dict[str, Any]]] = {"quiet": [], "busy": []}
            for _ in range(options.runs):  # rounds alternate quiet / busy, so drift in other load hits both alike
                runs["quiet"].append(quickstart(work, threads, options.overrides))
                with BusyLoops(options.busy, own_session=not options.same_session):
                    runs["busy"].append(quickstart(work, threads, options.overrides))
            walls: dict[str, float] = {}
            for condition, done in runs.items():
                walls[condition] = statistics.median(r["wall_s"] for r in done)
                measured = statistics.median(r["measured_s"] for r in done)
                print(
                    f"{threads:>8} {condition:>9} {walls[condition]:7.1f} {measured:10.2f}  "
                    f"{done[-1]['num_threads']} ({done[-1]['chosen']})",
                    flush=True,
                )
            print(f"{threads:>8} busy / quiet wall time: {walls['busy'] / walls['quiet']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
