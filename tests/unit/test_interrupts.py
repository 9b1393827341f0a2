"""Runs are never lost: signals at random points, signals Python drops, runs sharing an output_dir, a pass whose
requests all fail. Every run here is the real CLI in a subprocess against this file's own small OpenAI-compatible
server (aiohttp, loopback only); the test synchronises on the server's events and the run's files, never on sleeps.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

CLI = [sys.executable, "-m", "ai_energy_benchmarks"]
MODEL = "tiny-test-model"
CHECK_PROMPT = "Hello"  # the backend's own first request while it connects (not measured)


class TinyServer:
    """A minimal streaming OpenAI-compatible server of this test's own, on 127.0.0.1 from a background thread.

    ``answered`` counts measured requests answered in full (the backend's connection check is not counted).
    ``fail_generate`` answers HTTP 500 to every request asking for more than one token. ``hold_until`` keeps
    measured requests waiting until that many are in flight at once (then lets all through).
    """

    def __init__(self, tokens: int = 4, fail_generate: bool = False, hold_until: int = 0) -> None:
        self.tokens = tokens
        self.fail_generate = fail_generate
        self.hold_until = hold_until
        self.answered = 0
        self.in_flight = 0
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.port = 0

    def __enter__(self) -> TinyServer:
        self._thread.start()
        assert self._ready.wait(30), "the test server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_answered(self, count: int, timeout_s: float = 120) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.answered >= count, timeout_s), f"{self.answered} answered"

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._gate = asyncio.Event()
        self._ready.set()
        self._loop.run_forever()

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model", "root": MODEL}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        measured = body.get("prompt") != CHECK_PROMPT
        if self.fail_generate and int(body.get("max_tokens") or 0) > 1:
            return web.json_response({"error": {"message": "injected", "code": 500}}, status=500)
        if measured and self.hold_until:
            self.in_flight += 1
            if self.in_flight >= self.hold_until:
                self._gate.set()
            await asyncio.wait_for(self._gate.wait(), 120)
        tokens = 1 if int(body.get("max_tokens") or 0) == 1 else self.tokens
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index in range(tokens):
            chunk = {"object": "text_completion", "model": MODEL, "choices": [{"index": 0, "text": f" w{index}"}]}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        usage = {"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": 3 + tokens}
        last = {"object": "text_completion", "model": MODEL, "choices": [], "usage": usage}
        await response.write(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        if measured:
            with self._changed:
                self.answered += 1
                self._changed.notify_all()
        return response


@pytest.fixture
def server() -> Iterator[TinyServer]:
    with TinyServer() as fake:
        yield fake


def write_config(tmp_path: Path, endpoint: str, prompts: int, **scenario: Any) -> Path:
    config = {
        "name": "signals",
        "output_dir": str(tmp_path / "out"),
        "backend": {"type": "vllm", "model": MODEL, "endpoint": endpoint, "api": "completions", "concurrency": 2},
        "scenario": {
            "dataset_name": "packaged:quickstart",
            "num_samples": prompts,
            "warmup_runs": 0,
            "measure_prefill": False,
            "generate_kwargs": {"max_new_tokens": 4, "min_new_tokens": 4},
            **scenario,
        },
        "metrics": {"enabled": False},
        "reporter": {"output_file": str(tmp_path / "results.csv")},
    }
    path = tmp_path / "config.json"  # JSON is YAML
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def start(config: Path, *prefix: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, *prefix] if prefix else CLI
    return subprocess.Popen(
        [*command, "-v", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )


def csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_consistent(tmp_path: Path, returncode: int, stderr: str, signum: int) -> dict[str, Any] | None:
    """The written results and the exit code agree; return the report (None when nothing was written)."""
    report_path = tmp_path / "out" / "benchmark_report.json"
    rows = csv_rows(tmp_path / "results.csv")
    assert "Traceback" not in stderr or "Exception ignored" in stderr, stderr  # only Python's note of a dropped one
    assert returncode in (0, 128 + signum), stderr
    if not report_path.exists():
        assert returncode == 128 + signum and not rows, stderr
        assert "nothing had been measured yet" in stderr, stderr
        return None
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["status"] == ("completed" if returncode == 0 else "interrupted"), (returncode, stderr)
    assert len(rows) == 1, rows
    assert rows[0]["status"] == report["status"]
    assert rows[0]["report"] == str(report_path)
    requests = (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(requests) == report["summary"]["total_prompts"]
    if returncode:
        assert f"partial report: {report_path}" in stderr, stderr
    return report


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_a_random_point_after_the_last_measured_request(tmp_path: Path, signum: int) -> None:
    """Everything was measured; the signal lands while the windows close and the results are written, or after.
    Whatever the point, the run is kept: interrupted (130/143) with every answered request, or completed (exit 0)."""
    rng = random.Random(1500 + signum)
    prompts = 8
    with TinyServer() as server:
        for trial in range(8):
            work = tmp_path / f"trial-{trial}"
            work.mkdir()
            proc = start(write_config(work, server.endpoint, prompts))
            server.wait_answered((trial + 1) * prompts)
            delay_s = rng.uniform(0.0, 0.1)
            threading.Event().wait(delay_s)  # the random point: any outcome must be consistent
            proc.send_signal(signum)
            _, stderr = proc.communicate(timeout=120)
            report = assert_consistent(work, proc.returncode, stderr, signum)
            assert report is not None, f"run thrown away (signal {delay_s:.3f} s after the last request):\n{stderr}"
            assert report["summary"]["total_prompts"] >= prompts - 2  # at most the requests still being read


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_the_results_are_written(tmp_path: Path, server: TinyServer, signum: int) -> None:
    """The signal is sent as soon as the run's requests.jsonl appears: the report and CSV row are being written."""
    proc = start(write_config(tmp_path, server.endpoint, 8))
    requests = tmp_path / "out" / "requests.jsonl"
    for _ in range(100_000):  # bounded: the run writes the file within seconds
        if requests.exists() or proc.poll() is not None:
            break
        threading.Event().wait(0.0005)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    report = assert_consistent(tmp_path, proc.returncode, stderr, signum)
    assert report is not None and report["summary"]["successful_prompts"] == 8
    if proc.returncode == 0:
        assert f"note: {signal.Signals(signum).name} arrived after the results were written" in stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_a_random_point_of_the_whole_run(tmp_path: Path, server: TinyServer, signum: int) -> None:
    """From start-up (imports, config, connecting) to the end: never a half-written or contradictory result."""
    rng = random.Random(2600 + signum)
    for trial in range(5):
        work = tmp_path / f"trial-{trial}"
        work.mkdir()
        proc = start(write_config(work, server.endpoint, 6))
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the process is up (its log has started); then a random point of the run
        threading.Event().wait(rng.uniform(0.0, 1.5))
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=120)
        assert_consistent(work, proc.returncode, line + rest, signum)


INJECT = textwrap.dedent(
    """
    # Fault injection around the real CLI: python inject.py MODE -v --config ...
    import asyncio
    import signal
    import sys
    import threading

    from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend
    from ai_energy_benchmarks.cli import main

    MODE = sys.argv.pop(1)
    MAIN = threading.main_thread()


    def main_thread_waits_on_a_future():
        frame = sys._current_frames().get(MAIN.ident)
        while frame is not None:
            if frame.f_code.co_name == "result" and "concurrent" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
        return False


    if MODE == "signal-at-generator-end":
        original_drive = OpenAIHTTPBackend._drive

        async def drive(self, plan, handoff):
            state = await original_drive(self, plan, handoff)  # every record handed over; the end mark too
            if plan.label.startswith("generate"):
                for _ in range(20000):  # until the runner waits for the load generator's own end
                    if main_thread_waits_on_a_future():
                        break
                    await asyncio.sleep(0.001)
                signal.pthread_kill(MAIN.ident, signal.SIGTERM)
            return state

        OpenAIHTTPBackend._drive = drive

    if MODE == "signal-dropped-in-load":
        original_load = OpenAIHTTPBackend.load

        class Finaliser:
            # Like the finalisers that run during `import torch`: a signal handled while one runs has its exception
            # printed as "ignored" and dropped by Python.
            def __del__(self):
                signal.pthread_kill(MAIN.ident, signal.SIGTERM)
                for _ in range(1000):
                    len(())

        def load(self):
            original_load(self)
            Finaliser()

        OpenAIHTTPBackend.load = load

    main(prog_name="ai-energy-benchmark")
    """
)


def inject(tmp_path: Path) -> str:
    path = tmp_path / "inject.py"
    path.write_text(INJECT, encoding="utf-8")
    return str(path)


def test_sigterm_while_waiting_for_the_load_generator_is_an_interruption(tmp_path: Path, server: TinyServer) -> None:
    proc = start(write_config(tmp_path, server.endpoint, 12), inject(tmp_path), "signal-at-generator-end")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    report = assert_consistent(tmp_path, proc.returncode, stderr, signal.SIGTERM)
    assert report is not None and report["status"] == "interrupted"
    assert report["summary"]["successful_prompts"] == 12  # what was measured is kept


def test_a_signal_whose_exception_python_drops_still_stops_the_run(tmp_path: Path, server: TinyServer) -> None:
    proc = start(write_config(tmp_path, server.endpoint, 4), inject(tmp_path), "signal-dropped-in-load")
    _, stderr = proc.communicate(timeout=120)
    assert "Exception ignored" in stderr  # Python did drop it
    assert proc.returncode == 143, stderr
    assert "interrupted by SIGTERM; nothing had been measured yet" in stderr
    assert server.answered == 0
    assert not (tmp_path / "out" / "benchmark_report.json").exists()
    assert not (tmp_path / "results.csv").exists()


def test_a_measured_pass_without_one_successful_request_fails_the_run(tmp_path: Path) -> None:
    with TinyServer(fail_generate=True) as server:
        proc = start(write_config(tmp_path, server.endpoint, 6, measure_prefill=True))
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    report = json.loads((tmp_path / "out" / "benchmark_report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert report["phases"]["prefill"]["prompts"] == 6  # the prefill pass succeeded
    assert report["summary"]["successful_prompts"] == 0
    assert "measured pass 'generate-0': none of its 6 requests succeeded" in report["warnings"]
    assert "[failed]" in stdout and "none of its 6 requests succeeded" in stdout
    assert [row["status"] for row in csv_rows(tmp_path / "results.csv")] == ["failed"]


def test_runs_sharing_an_output_dir_keep_their_own_reports(tmp_path: Path) -> None:
    runs = 4
    with TinyServer(hold_until=runs) as server:  # each run's first measured request waits for the others'
        config = write_config(tmp_path, server.endpoint, 3, repetitions=1)
        data = json.loads(config.read_text(encoding="utf-8"))
        data["backend"]["concurrency"] = 1
        procs = []
        for index in range(runs):
            data["name"] = f"run-{index}"
            path = tmp_path / f"config-{index}.json"
            path.write_text(json.dumps(data), encoding="utf-8")
            procs.append(start(path))
        for proc in procs:
            _, stderr = proc.communicate(timeout=180)
            assert proc.returncode == 0, stderr
        rows = csv_rows(tmp_path / "results.csv")
        assert sorted(row["name"] for row in rows) == [f"run-{i}" for i in range(runs)]
        reports = {row["name"]: json.loads(Path(row["report"]).read_text(encoding="utf-8")) for row in rows}
        for row in rows:  # each row points at its own run's report
            assert reports[row["name"]]["config"]["name"] == row["name"]
            assert reports[row["name"]]["timestamps"]["finished_at"] == row["timestamp"]
        out = tmp_path / "out"
        assert len({row["report"] for row in rows}) == runs
        assert sum(row["report"] == str(out / "benchmark_report.json") for row in rows) == 1
        assert len(list((out / "concurrent_runs").iterdir())) == runs - 1

        # A later lone run moves the earlier run's files aside; that run's row follows its report.
        server.hold_until = 0
        data["name"] = "later"
        config.write_text(json.dumps(data), encoding="utf-8")
        result = subprocess.run([*CLI, "-q", "--config", str(config)], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
    rows = csv_rows(tmp_path / "results.csv")
    assert len(rows) == runs + 1
    for row in rows:
        report = json.loads(Path(row["report"]).read_text(encoding="utf-8"))
        assert (report["config"]["name"], report["timestamps"]["finished_at"]) == (row["name"], row["timestamp"])
        assert report["files"]["report"] == row["report"]
    assert json.loads((out / "benchmark_report.json").read_text(encoding="utf-8"))["config"]["name"] == "later"
    assert len(list((out / "previous_runs").iterdir())) == 1
    assert not list(tmp_path.glob("*.lock")) and not list(out.glob(".*lock"))  # no lock file left behind


def metered(config: Path, **metrics: Any) -> Path:
    data = json.loads(config.read_text(encoding="utf-8"))
    data["metrics"] = {"enabled": True, "type": "codecarbon", "country_iso_code": "USA", **metrics}
    config.write_text(json.dumps(data), encoding="utf-8")
    return config


def test_signal_during_the_idle_baseline_keeps_it(tmp_path: Path, server: TinyServer) -> None:
    config = metered(write_config(tmp_path, server.endpoint, 4), idle_seconds=60, measure_power_secs=0.25)
    proc = start(config)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # the meters have started and the idle window is open
        seen.append(line)
        if "s of idle baseline" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, rest = proc.communicate(timeout=120)
    stderr = "".join(seen) + rest
    report = assert_consistent(tmp_path, proc.returncode, stderr, signal.SIGTERM)
    assert proc.returncode == 143
    assert report is not None and report["status"] == "interrupted"
    assert report["summary"]["total_prompts"] == 0 and server.answered == 0


def test_a_failure_in_warm_up_after_the_idle_baseline_keeps_it(tmp_path: Path) -> None:
    with TinyServer(fail_generate=True) as server:
        config = write_config(tmp_path, server.endpoint, 4, warmup_runs=4)
        data = json.loads(config.read_text(encoding="utf-8"))
        data["backend"]["max_consecutive_failures"] = 2
        config.write_text(json.dumps(data), encoding="utf-8")
        proc = start(metered(config, idle_seconds=0.5, measure_power_secs=0.25))
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    report_path = tmp_path / "out" / "benchmark_report.json"
    assert f"partial report (what was measured before the failure): {report_path}" in stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert [row["status"] for row in csv_rows(tmp_path / "results.csv")] == ["failed"]


def test_a_results_csv_that_cannot_take_the_row_gets_one_beside_it(tmp_path: Path, server: TinyServer) -> None:
    damaged = "timestamp,name,note\n2025-01-01,old-run,café\n".encode("latin-1")
    (tmp_path / "results.csv").write_bytes(damaged)
    proc = start(write_config(tmp_path, server.endpoint, 4))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert (tmp_path / "results.csv").read_bytes() == damaged
    beside = tmp_path / "results.1.csv"
    rows = csv_rows(beside)
    assert [row["report"] for row in rows] == [str(tmp_path / "out" / "benchmark_report.json")]
    report = json.loads((tmp_path / "out" / "benchmark_report.json").read_text(encoding="utf-8"))
    assert report["files"]["csv"] == str(beside)
    assert f"this run's row is in {beside}" in stdout  # said on the console, in the summary's warnings


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_sigint_just_after_the_summary_keeps_the_exit_code_of_the_written_results(
    tmp_path: Path, server: TinyServer, command: str
) -> None:
    """Ctrl-C once the summary is on the screen: the results stand (exit 0, as written), with no "Aborted!" from
    click and no traceback from an exit hook. The signal is sent as soon as the summary's last line is read."""
    config = write_config(tmp_path, server.endpoint, 4)
    args = ["sweep", "--param", "backend.concurrency=1", "--no-plot"] if command == "sweep" else []
    proc = subprocess.Popen(
        [*CLI, *args, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    last = "report" if command == "run" else "summary_md:"
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.strip().startswith(last):
            proc.send_signal(signal.SIGINT)
            break
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(seen) + stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr, stderr
