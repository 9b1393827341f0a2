"""What running a sweep's points on Ray costs per point, against running the same points locally.

The points are trivial on purpose, so that what is left is the executor's own cost: the HTTP backend against the
package's test server (``ai_energy_benchmarks.testing.sse_server``), a few prompts of a few tokens, energy metering
off. The same ``--points`` points (``scenario.num_samples`` = 1, 2, ...) run

- with the local executor (in this process, one after another), then
- with the Ray executor on a local Ray instance started here with ``--ray-cpus`` CPUs and no GPU (1: one point at a
  time, so the difference per point is Ray's overhead, not parallelism; more: points run side by side).

Printed: the Ray instance's start time (once per sweep, not per point), each executor's wall time for the sweep, and
the overhead per point, ``(ray sweep - local sweep) / points``, over ``--rounds`` rounds (median). The first Ray round
includes starting the worker processes and importing the package in them (cold); later rounds reuse them (warm).

    python benchmarks/sweep_executor_overhead.py                   # 6 points, 3 rounds, 1 Ray CPU
    python benchmarks/sweep_executor_overhead.py --points 12 --ray-cpus 2

Needs Ray: pip install 'ai-energy-benchmarks[ray]'.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ai_energy_benchmarks.sweeps import Sweep, parse_param  # noqa: E402
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer  # noqa: E402


def write_config(directory: Path, url: str) -> Path:
    prompts = directory / "prompts.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(64)), encoding="utf-8")
    config = directory / "trivial.yaml"
    config.write_text(
        "name: trivial\n"
        f"backend: {{type: vllm, model: fake-model, endpoint: '{url}/v1', device: cpu, concurrency: 1}}\n"
        f"scenario: {{dataset_name: '{prompts}', num_samples: 1, warmup_runs: 0, measure_prefill: false,\n"
        "  generate_kwargs: {max_new_tokens: 4, min_new_tokens: 4}}\n"
        "metrics: {enabled: false}\n",
        encoding="utf-8",
    )
    return config


def one_sweep(config: Path, out: Path, points: int, executor: object | None) -> float:
    """Wall time (s) of a sweep of ``points`` points, every one of which must complete."""
    values = ",".join(str(n) for n in range(1, points + 1))
    sweep = Sweep([parse_param(f"scenario.num_samples={values}")], config_path=config, output_dir=out, plot=False)
    if executor is not None:
        sweep.executor = executor  # type: ignore[assignment]
    start = time.perf_counter()
    outcome = sweep.run()
    wall_s = time.perf_counter() - start
    if not outcome.all_completed:
        raise SystemExit(f"a point did not complete: {[p.message for p in outcome.points if p.status != 'completed']}")
    return wall_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray-cpus", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    try:
        import ray
    except ImportError:
        raise SystemExit("needs Ray: pip install 'ai-energy-benchmarks[ray]'") from None
    from ai_energy_benchmarks.sweeps.ray_executor import RayExecutor

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(models=["fake-model"]) as server:
        work = Path(tmp)
        config = write_config(work, server.url)
        started = time.perf_counter()
        ray.init(num_cpus=args.ray_cpus, num_gpus=0, include_dashboard=False, log_to_driver=False)
        ray_start_s = time.perf_counter() - started
        local_s, ray_s = [], []
        try:
            for round_ in range(args.rounds):
                local_s.append(one_sweep(config, work / f"local-{round_}", args.points, None))
                ray_s.append(one_sweep(config, work / f"ray-{round_}", args.points, RayExecutor()))
                print(
                    f"round {round_ + 1}: local {local_s[-1]:.2f} s, ray {ray_s[-1]:.2f} s for {args.points} points"
                    f" ({'cold' if round_ == 0 else 'warm'} Ray workers)"
                )
        finally:
            ray.shutdown()
    per_point = [(r - lo) / args.points for r, lo in zip(ray_s, local_s, strict=True)]
    print(f"python {platform.python_version()}, ray {ray.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"Ray instance start (once per sweep): {ray_start_s:.2f} s")
    print(
        f"per point: local {statistics.median(local_s) / args.points * 1000:.0f} ms,"
        f" ray {statistics.median(ray_s) / args.points * 1000:.0f} ms (medians of {args.rounds} rounds)"
    )
    print(
        f"Ray overhead per point: cold {per_point[0] * 1000:.0f} ms (round 1), "
        f"warm {statistics.median(per_point[1:] or per_point) * 1000:.0f} ms (median of later rounds)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
