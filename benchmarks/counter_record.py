"""Memory and speed of the counter record that past intervals are read back from (energy/record.py).

A meter adds one sample per poll and window edge: NVML every 50 ms by default, RAPL every 100 ms, per device. This
script fills a record as a long run would, then prints its memory per sample, the cost of adding a sample, and the
cost of reading an interval back (copy under the meter's lock, then the lookup), e.g.::

    python benchmarks/counter_record.py --hours 24 --poll-s 0.05
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc

from ai_energy_benchmarks.energy.record import DEFAULT_MAX_SAMPLES, CumulativeRecord


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0, help="run length to simulate (h)")
    parser.add_argument("--poll-s", type=float, default=0.05, help="seconds between samples (NVML default: 0.05)")
    parser.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES, help="record size before thinning")
    parser.add_argument("--reads", type=int, default=20, help="interval read-backs to time")
    args = parser.parse_args(argv)
    if args.hours <= 0 or args.poll_s <= 0 or args.reads < 1:
        parser.error("--hours and --poll-s must be > 0 and --reads >= 1")

    samples = int(args.hours * 3600 / args.poll_s)
    tracemalloc.start()
    record = CumulativeRecord(args.max_samples)
    power_w = 300.0
    started = time.perf_counter()
    for i in range(samples):
        record.add(i * args.poll_s, i * args.poll_s * power_w)
    add_s = time.perf_counter() - started
    current_bytes, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    end_s = (samples - 1) * args.poll_s
    length_s = min(60.0, end_s / (2 * (args.reads + 1)))  # a steady state of up to a minute, spread over the run
    read_times: list[float] = []
    for k in range(args.reads):
        start = end_s * (k + 0.25) / (args.reads + 1)
        begun = time.perf_counter()
        estimate = record.copy().interval(start, start + length_s)
        read_times.append(time.perf_counter() - begun)
        if estimate is None:
            print(f"error: no reading for {start:.1f}-{start + length_s:.1f} s", file=sys.stderr)
            return 1
    spacing_s = record.times_s[1] - record.times_s[0]
    read_times.sort()
    every = f"one sample every {args.poll_s * 1000:g} ms"
    print(f"simulated run          {args.hours:g} h at {every} = {samples:,} samples")
    print(f"record kept            {len(record):,} samples (oldest spacing {spacing_s * 1000:g} ms; newest as polled)")
    print(f"memory                 {current_bytes / 2**20:.1f} MiB held, {peak_bytes / 2**20:.1f} MiB peak")
    print(f"                       = {current_bytes / len(record):.1f} bytes per kept sample")
    print(f"add                    {add_s / samples * 1e9:.0f} ns per sample (thinning included)")
    print(f"interval read-back     median {read_times[len(read_times) // 2] * 1000:.2f} ms (copy + lookup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
