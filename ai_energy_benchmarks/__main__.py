"""`python -m ai_energy_benchmarks` is the same as the `ai-energy-benchmark` command."""

from ai_energy_benchmarks.cli import main

main()
