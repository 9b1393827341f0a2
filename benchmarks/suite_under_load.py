"""The test suite on a busy machine: the README's test command run N times in a row with every core kept busy.

"Busy" is the same background load as ``benchmarks/busy_machine.py``: one ``python -c 'while True: pass'`` per
usable core, each in a session of its own (other users' or jobs' work), started before the first run and killed
after the last. Each run's exit status, duration, counts and failing tests are printed; the script exits 0 only
when every run passed.

    python benchmarks/suite_under_load.py                 # 3 runs of `python -m pytest -q`, cores busy
    python benchmarks/suite_under_load.py --runs 1 --busy 0 tests/unit    # one quiet run of the unit tests

Goal (issue 20): the full suite passes three times in a row under that load. A test whose verdict depends on how
busy the machine is shows up here as a failure in some runs and not others.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from busy_machine import BusyLoops, usable_cores

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"^=* ?(\d+ (?:passed|failed|errors?)\b.*?) in [\d.]+s", re.M)
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def run_suite(pytest_args: list[str], log: Path) -> tuple[int, float, str, list[str]]:
    """One pytest run: exit status, wall time (s), pytest's summary line and the failing test ids."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    wall_s = time.perf_counter() - start
    text = log.read_text(encoding="utf-8", errors="replace")
    summary = SUMMARY.findall(text)
    return done.returncode, wall_s, summary[-1] if summary else "no summary", FAILED.findall(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="suite runs in a row [3]")
    parser.add_argument("--busy", type=int, default=usable_cores(), help="background busy loops [usable cores]")
    parser.add_argument(
        "--logs", type=Path, default=Path("suite_under_load_logs"), help="one log per run [%(default)s]"
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (default: the whole suite)")
    options = parser.parse_args()
    options.logs.mkdir(parents=True, exist_ok=True)
    print(f"{usable_cores()} usable cores; {options.busy} busy loops; {options.runs} runs", flush=True)
    passed = 0
    with BusyLoops(options.busy, own_session=True):
        for index in range(1, options.runs + 1):
            log = options.logs / f"run-{index}.log"
            load = os.getloadavg()[0]
            status, wall_s, summary, failed = run_suite(options.pytest_args, log)
            passed += status == 0
            print(f"run {index}: exit {status} in {wall_s:.0f} s (load before {load:.1f}): {summary}", flush=True)
            for test in failed:
                print(f"  failed: {test}", flush=True)
    print(f"{passed}/{options.runs} runs passed", flush=True)
    sys.exit(0 if passed == options.runs else 1)


if __name__ == "__main__":
    main()
