"""Harness overhead: tokens/s through the full runner (meters on) against a bare ``model.generate`` loop.

Both sides use the same model (same architecture, same seeded random weights), the same prompts, batch size and
generation options, and time only the generation loop (the runner's measured window; the bare loop's own timer).
Rounds alternate bare / runner so that drift in machine load hits both alike. Two ratios are printed: of the
best rounds (the least disturbed by other work on the machine, the fairest on a shared or noisy host) and of the
medians.

    python benchmarks/harness_overhead.py                      # packaged tiny-llama, 100 prompts, batch 1
    python benchmarks/harness_overhead.py --model packaged:qwen2.5-0.5b --num-prompts 20 --max-new-tokens 16

Goal (issue 4): runner / bare >= 0.99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def bare_tokens_per_second(model: Any, tokenizer: Any, prompts: list[str], batch_size: int, new_tokens: int) -> float:
    """Generated tokens per second of a plain loop: tokenise a batch, generate, count."""
    import torch

    generated = 0
    start = time.perf_counter()
    for first in range(0, len(prompts), batch_size):
        encoded = tokenizer(prompts[first : first + batch_size], return_tensors="pt", padding=True)
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        generated += (output.shape[1] - encoded["input_ids"].shape[1]) * output.shape[0]
    return generated / (time.perf_counter() - start)


def runner_tokens_per_second(args: argparse.Namespace, out: Path, meters: bool) -> float:
    """Generated tokens per second inside the runner's measured window."""
    from ai_energy_benchmarks.config.schema import BenchmarkConfig
    from ai_energy_benchmarks.runner import BenchmarkRunner

    config = BenchmarkConfig.model_validate(
        {
            "name": "harness-overhead",
            "output_dir": str(out),
            "backend": {"model": args.model, "no_weights": True, "device": "cpu", "seed": 42},
            "scenario": {
                "num_samples": args.num_prompts,
                "input_shapes": {"batch_size": args.batch_size},
                "generate_kwargs": {"max_new_tokens": args.max_new_tokens, "min_new_tokens": args.max_new_tokens},
                "warmup_runs": 2,
                "measure_prefill": False,
                "chat_template": False,  # the bare loop sends the plain prompts: so does the runner here
            },
            "metrics": {"enabled": meters, "codecarbon": {"measure_power_secs": 1.0}},
            "reporter": {"output_file": str(out / "results.csv")},
        }
    )
    result = BenchmarkRunner(config).run()
    return float(result["summary"]["throughput_tokens_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="packaged:tiny-llama")
    parser.add_argument("--num-prompts", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import torch
    import transformers

    from ai_energy_benchmarks.backends.pytorch import DEFAULT_TOKENIZER, packaged_models_dir, resolve_model_source
    from ai_energy_benchmarks.config.schema import ScenarioConfig
    from ai_energy_benchmarks.datasets.loader import load_prompts

    source, packaged = resolve_model_source(args.model)
    tokenizer_dir = source
    if packaged and not (Path(source) / "tokenizer_config.json").is_file():
        tokenizer_dir = str(packaged_models_dir() / DEFAULT_TOKENIZER)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(42)
    model = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.from_pretrained(source), dtype=torch.float32
    ).eval()
    prompts = load_prompts(ScenarioConfig(num_samples=args.num_prompts)).prompts
    bare_tokens_per_second(model, tokenizer, prompts[: 2 * args.batch_size], args.batch_size, args.max_new_tokens)

    bare, runner, runner_no_meters = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_number in range(args.rounds):
            bare.append(bare_tokens_per_second(model, tokenizer, prompts, args.batch_size, args.max_new_tokens))
            runner.append(runner_tokens_per_second(args, Path(tmp) / f"on-{round_number}", meters=True))
            runner_no_meters.append(runner_tokens_per_second(args, Path(tmp) / f"off-{round_number}", meters=False))
            print(
                f"round {round_number + 1}/{args.rounds}: bare {bare[-1]:8.1f} tok/s   runner+meters "
                f"{runner[-1]:8.1f} tok/s   runner, no meters {runner_no_meters[-1]:8.1f} tok/s",
                flush=True,
            )
    bare_median = statistics.median(bare)
    bare_best = max(bare)
    print(
        f"\nmodel {args.model}, {args.num_prompts} prompts, batch {args.batch_size}, {args.max_new_tokens} new tokens"
    )
    print(f"torch threads {torch.get_num_threads()}, {args.rounds} alternating rounds (best / median):")
    print(f"  bare model.generate loop   {bare_best:8.1f} / {bare_median:8.1f} tokens/s")
    print(f"  runner, meters on          {max(runner):8.1f} / {statistics.median(runner):8.1f} tokens/s")
    print(
        f"  runner, meters off         {max(runner_no_meters):8.1f} / "
        f"{statistics.median(runner_no_meters):8.1f} tokens/s"
    )
    print(
        f"  ratio runner(meters on) / bare  = {max(runner) / bare_best:.3f} best, "
        f"{statistics.median(runner) / bare_median:.3f} median   (goal >= 0.99)"
    )
    print(
        f"  ratio runner(meters off) / bare = {max(runner_no_meters) / bare_best:.3f} best, "
        f"{statistics.median(runner_no_meters) / bare_median:.3f} median"
    )


if __name__ == "__main__":
    main()
