"""Simulated NVIDIA DCGM exporters: small HTTP servers whose GPUs follow known power traces.

Each :class:`FakeDcgmExporter` is one "node": it serves ``/metrics`` on a free loopback port in the DCGM exporter's
format (``DCGM_FI_DEV_POWER_USAGE`` in W, ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` in mJ since "boot", labels
``gpu``, ``UUID``, ``device``, ``modelName``, ``Hostname`` and optionally ``namespace``/``pod``). Power is a smooth
function of Unix time (:class:`SineTrace`), so the exact energy of any interval is known in closed form.

Every value is computed at the request's time rounded to the millisecond and, by default, exposed with that explicit
timestamp: Prometheus (``honor_timestamps``) then stores each sample at the very instant it describes, so a test's
ground truth does not depend on how fast the machine answered. ``explicit_timestamps=False`` serves values without
timestamps, as the real exporter does.

Faults: :meth:`FakeGpuSim.reset_at` restarts a GPU's energy counter from 0 at a given time (driver reload);
:meth:`FakeDcgmExporter.go_down` makes the exporter refuse every scrape from then on (exporter or node down).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


@dataclass(frozen=True)
class SineTrace:
    """Power (W) ``base_w + amplitude_w * sin(2 pi (t - origin_s) / period_s + phase)`` over Unix time ``t``."""

    base_w: float
    amplitude_w: float
    period_s: float
    phase: float = 0.0
    origin_s: float = 0.0

    def power_w(self, time_s: float) -> float:
        """Power (W) at ``time_s``."""
        return self.base_w + self.amplitude_w * math.sin(self._angle(time_s))

    def _angle(self, time_s: float) -> float:
        return 2.0 * math.pi * (time_s - self.origin_s) / self.period_s + self.phase

    def energy_j(self, start_s: float, end_s: float) -> float:
        """The exact energy (J) between two Unix times."""
        scale = self.amplitude_w * self.period_s / (2.0 * math.pi)
        return self.base_w * (end_s - start_s) - scale * (math.cos(self._angle(end_s)) - math.cos(self._angle(start_s)))


@dataclass
class FakeGpuSim:
    """One simulated GPU: identity, power trace, energy counter (mJ since ``boot_s``, from ``initial_mj``)."""

    index: int
    uuid: str
    trace: SineTrace
    model: str = "NVIDIA H100 80GB HBM3"
    has_counter: bool = True
    boot_s: float = 0.0
    initial_mj: float = 5.0e9
    resets_s: list[float] = field(default_factory=list)

    def reset_at(self, time_s: float) -> None:
        """Restart the energy counter from 0 at ``time_s`` (a driver reload)."""
        self.resets_s.append(time_s)

    def counter_mj(self, time_s: float) -> int:
        """The energy counter (integer mJ) at ``time_s``."""
        past = [r for r in self.resets_s if r <= time_s]
        if past:
            return int(self.trace.energy_j(max(past), time_s) * 1000.0)
        return int(self.initial_mj + self.trace.energy_j(self.boot_s, time_s) * 1000.0)

    def energy_j(self, start_s: float, end_s: float) -> float:
        """The GPU's exact energy (J) between two Unix times (what a perfect meter reads)."""
        return self.trace.energy_j(start_s, end_s)


class FakeDcgmExporter:
    """A simulated DCGM exporter for one node, on a free port of 127.0.0.1 (use as a context manager)."""

    def __init__(
        self,
        hostname: str,
        gpus: Sequence[FakeGpuSim],
        *,
        explicit_timestamps: bool = True,
        namespace: str | None = None,
        pod: str | None = None,
    ) -> None:
        self.hostname = hostname
        self.gpus = list(gpus)
        self.explicit_timestamps = explicit_timestamps
        self.extra_labels = {k: v for k, v in (("namespace", namespace), ("pod", pod)) if v}
        self.down_from_s: float | None = None
        self.scrapes = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "exporter not started"
        return int(self._server.server_address[1])

    @property
    def target(self) -> str:
        """``host:port`` for a Prometheus scrape config."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The ``/metrics`` URL."""
        return f"http://{self.target}/metrics"

    def go_down(self, at_s: float | None = None) -> None:
        """Refuse every scrape from ``at_s`` (Unix s; now when None) on."""
        self.down_from_s = time.time() if at_s is None else at_s

    def render(self, time_s: float) -> str:
        """The exposition text at ``time_s`` (Unix s, used as given: round it to ms first)."""
        stamp = f" {round(time_s * 1000)}" if self.explicit_timestamps else ""
        lines = [
            "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).",
            "# TYPE DCGM_FI_DEV_POWER_USAGE gauge",
        ]
        labels = {gpu.index: self._labels(gpu) for gpu in self.gpus}
        for gpu in self.gpus:
            lines.append(f"DCGM_FI_DEV_POWER_USAGE{{{labels[gpu.index]}}} {gpu.trace.power_w(time_s):.6f}{stamp}")
        lines += [
            "# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).",
            "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter",
        ]
        for gpu in self.gpus:
            if gpu.has_counter:
                lines.append(
                    f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{labels[gpu.index]}}} {gpu.counter_mj(time_s)}{stamp}"
                )
        return "\n".join(lines) + "\n"

    def _labels(self, gpu: FakeGpuSim) -> str:
        labels = {
            "gpu": str(gpu.index),
            "UUID": gpu.uuid,
            "device": f"nvidia{gpu.index}",
            "modelName": gpu.model,
            "Hostname": self.hostname,
            **self.extra_labels,
        }
        return ",".join(f'{k}="{v}"' for k, v in labels.items())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                now_s = round(time.time(), 3)
                if exporter.down_from_s is not None and now_s >= exporter.down_from_s:
                    self.send_error(503, "exporter down")
                    return
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render(now_s).encode("utf-8")
                exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler

    def start(self) -> FakeDcgmExporter:
        """Serve on a free port from a daemon thread."""
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fake-dcgm-{self.hostname}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeDcgmExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fleet(nodes: int = 2, gpus_per_node: int = 4, origin_s: float | None = None) -> list[FakeDcgmExporter]:
    """``nodes`` simulated nodes (``node-1``, ...) of ``gpus_per_node`` GPUs, each GPU a different sine trace
    (150-400 W, periods 0.7-2.9 s) so no two are alike; not started."""
    origin = time.time() if origin_s is None else origin_s
    exporters = []
    for n in range(nodes):
        gpus = [
            FakeGpuSim(
                index=g,
                uuid=f"GPU-{n + 1:02d}{g:02d}0000-fake-dcgm-{n * gpus_per_node + g:04d}",
                trace=SineTrace(
                    base_w=250.0 + 20.0 * g - 15.0 * n,
                    amplitude_w=80.0 + 10.0 * g,
                    period_s=0.7 + 0.3 * g + 0.9 * n,
                    phase=0.5 * (g + n),
                    origin_s=origin,
                ),
                boot_s=origin - 3600.0,
            )
            for g in range(gpus_per_node)
        ]
        exporters.append(FakeDcgmExporter(f"node-{n + 1}", gpus, namespace="llm", pod=f"vllm-{n}"))
    return exporters
