"""One short check for a machine with an NVIDIA GPU (no downloads; under 5 minutes on one H100).

Runs a packaged architecture with random weights (``no_weights``) in bfloat16 with ``device_map=auto`` on GPU 0,
with the prefill/generate phases, metered by CodeCarbon and by our NVML meter at once, and prints:

- speed (tokens/s, TTFT, latency), energy per phase, J per output token, Wh per 1,000 queries;
- our NVML energy-counter reading next to CodeCarbon's on the same windows (cross-check, flagged over 2%);
- the GPU, driver and package versions the figures came from.

    pip install nvidia-ml-py            # NVML bindings for the nvml meter
    python benchmarks/gpu_check.py                      # packaged:llama-3.1-8b, 40 prompts, batch 4
    python benchmarks/gpu_check.py --model packaged:qwen2.5-0.5b --num-prompts 100

Exit code 0 when the run completed and the GPU energy was measured; 1 otherwise; 2 without a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="packaged:llama-3.1-8b")
    parser.add_argument("--num-prompts", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--output-dir", default=None, help="keep the run's files here (default: a temp dir)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible to torch; run this on a machine with an NVIDIA GPU", file=sys.stderr)
        return 2

    from ai_energy_benchmarks.config.schema import BenchmarkConfig
    from ai_energy_benchmarks.runner import BenchmarkRunner

    out = Path(args.output_dir or tempfile.mkdtemp(prefix="gpu_check-"))
    config = BenchmarkConfig.model_validate(
        {
            "name": "gpu_check",
            "output_dir": str(out),
            "backend": {
                "type": "pytorch",
                "model": args.model,
                "no_weights": True,
                "device": "cuda",
                "device_ids": [0],
                "device_map": "auto",
                "torch_dtype": "bfloat16",
            },
            "scenario": {
                "num_samples": args.num_prompts,
                "input_shapes": {"batch_size": args.batch_size},
                "generate_kwargs": {"max_new_tokens": args.max_new_tokens, "min_new_tokens": args.max_new_tokens},
                "warmup_runs": 2,
                "repetitions": args.repetitions,
                "measure_prefill": True,
            },
            "metrics": {"type": ["codecarbon", "nvml"], "idle_seconds": 5, "codecarbon": {"measure_power_secs": 0.5}},
            "reporter": {"output_file": str(out / "results.csv")},
        }
    )
    result = BenchmarkRunner(config).run()
    summary, energy, phases = result["summary"], result["energy"], result["phases"]
    gpus = result["environment"]["gpus"]
    print(f"GPU: {', '.join(g['name'] for g in gpus)}; torch {result['environment']['packages']['torch']}")
    print(
        f"model {args.model}: {result['model'].get('num_parameters', 0) / 1e9:.2f} B parameters, "
        f"{result['model'].get('dtype')}, placed {result['model'].get('device_map')}"
    )
    print(
        f"speed: {summary['throughput_tokens_per_second']:.1f} output tokens/s, "
        f"TTFT {summary['avg_time_to_first_token']:.4f} s, latency {summary['avg_latency_seconds']:.3f} s per request"
    )
    print(
        f"energy (generate windows): GPU {energy['gpu_energy_wh']:.4f} Wh [{energy['sources']['gpu']}], "
        f"CPU {energy['cpu_energy_wh']:.4f} Wh [{energy['sources']['cpu']}], "
        f"RAM {energy['ram_energy_wh']:.4f} Wh [{energy['sources']['ram']}]"
    )
    print(
        f"  {energy['joules_per_output_token']:.4f} J/output token; "
        f"GPU {energy['gpu_wh_per_1000_queries']:.3f} Wh per 1,000 queries"
    )
    if phases:
        for name in ("prefill", "decode", "generate"):
            phase = phases[name]
            print(
                f"  {name:8s} {phase['duration_s']:8.2f} s  GPU {phase['gpu_energy_wh']:.4f} Wh  "
                f"total {phase['energy_wh']:.4f} Wh"
            )
    baseline = energy.get("idle_baseline")
    if baseline:
        print(f"idle power: {json.dumps(baseline['power_w'])} W; idle share {baseline['idle_share']:.1%}")
    for check in energy["cross_checks"]:
        print(
            f"cross-check {check['device']}: {json.dumps(check['energy_wh'])} Wh, "
            f"difference {check['relative_difference']:.2%} {'FLAGGED' if check['flagged'] else 'ok'}"
        )
    stats = result.get("repetition_statistics") or {}
    if stats.get("gpu_energy_wh"):
        gpu = stats["gpu_energy_wh"]
        print(f"GPU energy per repetition: mean {gpu['mean']:.4f} Wh, CV {gpu['cv']:.2%}")
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    print(f"report: {out / 'benchmark_report.json'}")
    measured = (energy["sources"]["gpu"] or "").startswith("measured:")
    return 0 if result["status"] == "completed" and measured else 1


if __name__ == "__main__":
    sys.exit(main())
