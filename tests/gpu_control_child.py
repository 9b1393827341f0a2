"""A benchmark process on simulated GPUs whose power limits can be set (for tests that start, signal or kill it).

    python tests/gpu_control_child.py VENDOR STATE_FILE ALLOWED DEMAND_W [CLI ARGS...]

VENDOR ``nvml`` or ``amdsmi``: one simulated GPU drawing DEMAND_W W (held under its power limit), with its settings
kept in STATE_FILE across processes, settable when ALLOWED is ``1``. A streaming OpenAI-compatible test server runs
in this process; ``{ENDPOINT}`` in an argument becomes its URL. Then the real CLI runs with the arguments.
"""

from __future__ import annotations

import sys

from ai_energy_benchmarks.testing.fake_gpu_control import attach_amdsmi_control, attach_nvml_control
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer


def main() -> None:
    vendor, state_file, allowed, demand_w, *args = sys.argv[1:]
    fake: object
    if vendor == "nvml":
        from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

        fake = FakeNvml([FakeGpu(power=float(demand_w))])
        attach_nvml_control(fake, state_file=state_file, allowed=allowed == "1")
    else:
        from ai_energy_benchmarks.testing.fake_amdsmi import FakeAmdGpu, FakeAmdSmi

        fake = FakeAmdSmi([FakeAmdGpu(power=float(demand_w))])
        attach_amdsmi_control(fake, state_file=state_file, allowed=allowed == "1")
    fake.install()  # type: ignore[attr-defined]
    with FakeOpenAIServer(models=["fake-model"], token_delay_s=0.004) as server:
        sys.argv = ["ai-energy-benchmark", *(a.replace("{ENDPOINT}", server.url + "/v1") for a in args)]
        from ai_energy_benchmarks.cli import main as cli

        cli()


if __name__ == "__main__":
    main()
