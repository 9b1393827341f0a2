"""A real Prometheus server on loopback for tests: its own config, storage and port, stopped on exit.

    with LocalPrometheus(["127.0.0.1:9400"], tmp_path, scrape_interval_s=0.1) as prometheus:
        url = prometheus.url

The binary is ``prometheus`` on PATH or ``/usr/bin/prometheus`` (Debian: ``apt-get install prometheus``);
:func:`prometheus_binary` says whether one is there.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"


def prometheus_binary() -> str | None:
    """The Prometheus executable, or None when it is not installed."""
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class LocalPrometheus:
    """Prometheus scraping ``targets`` (``host:port``) every ``scrape_interval_s``, honouring their timestamps."""

    def __init__(self, targets: Sequence[str], workdir: Path, scrape_interval_s: float = 0.1) -> None:
        self.targets = list(targets)
        self.workdir = Path(workdir)
        self.scrape_interval_s = scrape_interval_s
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, ready_timeout_s: float = 30.0) -> LocalPrometheus:
        """Write the config, start the server and wait until ``/-/ready`` answers 200."""
        import requests

        binary = prometheus_binary()
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        interval_ms = max(1, round(self.scrape_interval_s * 1000))
        targets = ", ".join(f"'{t}'" for t in self.targets)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {interval_ms}ms\n"
            f"  scrape_timeout: {interval_ms}ms\n"
            "scrape_configs:\n"
            "  - job_name: dcgm\n"
            "    honor_timestamps: true\n"
            "    static_configs:\n"
            f"      - targets: [{targets}]\n",
            encoding="utf-8",
        )
        self.port = _free_port()
        log = (self.workdir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self._process.returncode}); see {self.workdir}/prometheus.log")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        else:
            self.stop()
            raise TimeoutError(f"prometheus not ready after {ready_timeout_s} s; see {self.workdir}/prometheus.log")
        self.wait_until_scraped(max(1.0, deadline - time.monotonic()))
        return self

    def wait_until_scraped(self, timeout_s: float) -> None:
        """Wait until every target has been scraped successfully (Prometheus applies a new target list after a
        few seconds)."""
        import requests

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                answer = requests.get(f"{self.url}/api/v1/query", params={"query": "up == 1"}, timeout=1.0).json()
                if len(answer["data"]["result"]) >= len(self.targets):
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"prometheus did not scrape all of {self.targets} within {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 10 s)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
