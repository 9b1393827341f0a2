"""HTTP client capacity: how many streamed responses per second, and how much client CPU per response, the vLLM
backend's load generator manages, against a bare aiohttp reference client (the practical limit).

The script starts its own zero-work streaming server (a raw asyncio HTTP/1.1 server in a subprocess, pinned to the
last CPU) that answers every ``/v1/completions`` request with ``--tokens`` server-sent events shaped like vLLM's,
one write per token, then a usage chunk and ``[DONE]``. The client (this process) is pinned to CPU 0. For each
concurrency it runs, alternating, our backend (``OpenAIHTTPBackend.run``) and the reference client over the same
number of requests, ``--rounds`` times, and reports medians of:

- completed requests per second (wall clock of the run),
- client CPU seconds per 1,000 responses (``time.process_time`` of this process: every thread),
- time to first token p50 (ms).

Then it offers 100 requests/s with seeded Poisson arrivals through our backend and reports the schedule drift
(send time minus scheduled time) p50 and p99.

    python benchmarks/client_capacity.py                            # concurrency 1, 16, 64, 256; 2,000 requests
    python benchmarks/client_capacity.py --concurrency 1 16 --requests 500 --rounds 1 --json out.json

Goals (issue 6): our CPU per response within 1.3x of the reference; schedule drift p99 <= 2 ms at 100 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL = "zero-work"

# -- the zero-work server ------------------------------------------------------------------------------------------


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def serve(port: int, tokens: int, interval_s: float) -> None:
    """Run the zero-work streaming server on 127.0.0.1:port (0: any) and print the port on stdout.

    Each token is one write, ``interval_s`` seconds after the previous one (0: just yield to the event loop)."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    )
    token = _chunked(
        b'data: {"id":"cmpl-0","object":"text_completion","created":0,"model":"zero-work","choices":[{"index":0,'
        b'"text":" tok","logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
    )
    last = _chunked(
        b'data: {"id":"cmpl-0","object":"text_completion","created":0,"model":"zero-work","choices":[{"index":0,'
        b'"text":" end","logprobs":null,"finish_reason":"length","stop_reason":null}]}\n\n'
    )
    usage = _chunked(
        b'data: {"id":"cmpl-0","object":"text_completion","created":0,"model":"zero-work","choices":[],'
        b'"usage":{"prompt_tokens":8,"total_tokens":%d,"completion_tokens":%d}}\n\n' % (8 + tokens, tokens)
    )
    tail = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "max_model_len": 4096}]})
    models_response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(models),
        models.encode(),
    )
    ok_response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    class Stream(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = b""
            self.transport: asyncio.Transport | None = None
            self.queue: list[bytes] = []
            self.busy = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                header = self.buffer[:end].decode("latin-1")
                length = 0
                for line in header.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                path = header.split(" ", 2)[1]
                self.queue.append(path.encode())
                if not self.busy:
                    self.busy = True
                    asyncio.get_running_loop().create_task(self.answer())

        async def answer(self) -> None:
            transport = self.transport
            assert transport is not None
            while self.queue:
                path = self.queue.pop(0)
                if path.endswith(b"/completions"):
                    transport.write(head)
                    for _ in range(tokens - 1):
                        await asyncio.sleep(interval_s)
                        if transport.is_closing():
                            return
                        transport.write(token)
                    await asyncio.sleep(interval_s)
                    transport.write(last + usage + tail)
                elif path in (b"/health", b"/v1/models"):
                    transport.write(ok_response if path == b"/health" else models_response)
                else:
                    transport.write(missing)
            self.busy = False

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Stream, "127.0.0.1", port, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


# -- the clients ---------------------------------------------------------------------------------------------------


#: Socket reads per response seen by the reference client (how much the stream was coalesced).
READS: list[int] = []


async def reference_client(url: str, prompts: list[str], concurrency: int, tokens: int) -> list[float | None]:
    """A bare aiohttp streaming client: one session, a semaphore, SSE lines parsed, usage read; TTFTs (s)."""
    import aiohttp

    ttfts: list[float | None] = []
    reads: list[int] = []
    slots = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency + 2, limit_per_host=0)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(prompt: str) -> None:
            body = {"model": MODEL, "prompt": prompt, "max_tokens": tokens, "stream": True}
            body["stream_options"] = {"include_usage": True}
            async with slots:
                start = time.perf_counter()
                first = None
                usage = None
                count = 0
                async with session.post(url, data=json.dumps(body).encode()) as response:
                    buffer = b""
                    async for data in response.content.iter_any():
                        now = time.perf_counter()
                        count += 1
                        lines = (buffer + data).split(b"\n")
                        buffer = lines.pop()
                        for line in lines:
                            if line.startswith(b"data: ") and line != b"data: [DONE]":
                                event = json.loads(line[6:])
                                if event["choices"] and first is None:
                                    first = now
                                usage = event.get("usage") or usage
                assert usage is not None and usage["completion_tokens"] == tokens
                ttfts.append(None if first is None else first - start)
                reads.append(count)

        await asyncio.gather(*(one(p) for p in prompts))
    READS[:] = reads
    return ttfts


def measure(kind: str, run: Any, count: int) -> dict[str, float]:
    """Wall time, process CPU time and TTFT p50 of ``run()``, which returns the TTFTs of ``count`` requests."""
    cpu = time.process_time()
    wall = time.perf_counter()
    ttfts = run()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    values = [t for t in ttfts if t is not None]
    if len(values) != count:
        raise RuntimeError(f"{kind}: {count - len(values)} of {count} requests failed")
    return {
        "requests_per_s": count / wall,
        "cpu_s_per_1000": cpu / count * 1000,
        "ttft_p50_ms": statistics.median(values) * 1000,
    }


def backend_config(url: str, concurrency: int, tokens: int, **backend: Any) -> Any:
    from ai_energy_benchmarks.config.schema import BenchmarkConfig

    return BenchmarkConfig.model_validate(
        {
            "backend": {
                "type": "vllm",
                "model": MODEL,
                "endpoint": url + "/v1",
                "api": "completions",  # the bare client it is compared with sends completions requests
                "concurrency": concurrency,
                "scrape_metrics": False,
                "max_retries": 0,
                **backend,
            },
            "scenario": {"generate_kwargs": {"max_new_tokens": tokens, "min_new_tokens": tokens}},
            "metrics": {"enabled": False},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--tokens", type=int, default=64, help="streamed tokens per response")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument(
        "--token-interval-ms", type=float, default=0.0, help="server pause between tokens (0: zero-work server)"
    )
    parser.add_argument("--drift-rate", type=float, default=100.0, help="requests/s for the schedule-drift run")
    parser.add_argument("--drift-requests", type=int, default=1000)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.serve:
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[-1]})
        serve(args.port, args.tokens, args.token_interval_ms / 1000)
        return
    logging.basicConfig(level=logging.WARNING)
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[0]})  # before any thread starts, so that every client thread inherits it
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--tokens",
            str(args.tokens),
            "--token-interval-ms",
            str(args.token_interval_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}"
        results = run_all(args, url)
    finally:
        server.terminate()
        server.wait(timeout=10)
    results["machine"] = {
        "cpu": _cpu_model(),
        "cpus": len(cpus),
        "client_cpu": cpus[0],
        "server_cpu": cpus[-1] if len(cpus) > 1 else None,
        "python": platform.python_version(),
        "aiohttp": _version("aiohttp"),
    }
    print_table(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


def compare(url: str, prompts: list[str], concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    """Alternate our backend and the reference client ``args.rounds`` times at ``concurrency``; medians."""
    from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend

    config = backend_config(url, concurrency, args.tokens)
    kwargs = config.scenario.generate_kwargs.as_kwargs()
    backend = OpenAIHTTPBackend(config)
    backend.load()

    def ours() -> list[float | None]:
        return [r.ttft_s if r.ok else None for r in backend.run(prompts, kwargs)]

    def reference() -> list[float | None]:
        return asyncio.run(reference_client(url + "/v1/completions", prompts, concurrency, args.tokens))

    samples: dict[str, list[dict[str, float]]] = {"backend": [], "reference": []}
    try:
        list(backend.run(prompts[: max(concurrency, 50)], kwargs))  # warm-up: fill the pool
        reference()
        for _ in range(args.rounds):
            samples["backend"].append(measure("backend", ours, len(prompts)))
            samples["reference"].append(measure("reference", reference, len(prompts)))
    finally:
        backend.close()
    row: dict[str, Any] = {"concurrency": concurrency}
    for kind, values in samples.items():
        row[kind] = {key: statistics.median(v[key] for v in values) for key in values[0]}
        row[kind]["rounds"] = values
    row["cpu_ratio"] = row["backend"]["cpu_s_per_1000"] / row["reference"]["cpu_s_per_1000"]
    row["socket_reads_per_response"] = statistics.mean(READS) if READS else None
    logging.getLogger("client_capacity").info("concurrency %d: %s", concurrency, row)
    return row


def run_all(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Every concurrency, then the schedule-drift run."""
    prompts = [f"prompt {i}" for i in range(args.requests)]
    rows = [compare(url, prompts, concurrency, args) for concurrency in args.concurrency]
    drift = schedule_drift(url, args)
    return {
        "tokens_per_response": args.tokens,
        "token_interval_ms": args.token_interval_ms,
        "requests": args.requests,
        "rounds": args.rounds,
        "rows": rows,
        "drift": drift,
    }


def schedule_drift(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Offer ``--drift-rate`` requests/s (seeded Poisson) through our backend; the drift figures it reports."""
    from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend

    config = backend_config(url, 256, args.tokens, request_rate=args.drift_rate, arrival="poisson", seed=1)
    backend = OpenAIHTTPBackend(config)
    backend.load()
    try:
        prompts = [f"prompt {i}" for i in range(args.drift_requests)]
        backend.set_phase("generate-0")
        records = list(backend.run(prompts, config.scenario.generate_kwargs.as_kwargs()))
        run = backend.describe()["http"]["runs"][-1]
    finally:
        backend.close()
    drift = dict(run["schedule_drift"])
    drift["rate_per_s"] = args.drift_rate
    drift["ok"] = sum(1 for r in records if r.ok)
    drift["achieved_rate_per_s"] = run["request_throughput_per_s"]
    return drift


def print_table(results: dict[str, Any]) -> None:
    print(
        f"{results['requests']} requests x {results['tokens_per_response']} streamed tokens "
        f"({results['token_interval_ms']:g} ms apart); median of {results['rounds']} rounds; "
        f"machine: {results['machine']}"
    )
    print()
    print("| concurrency | client | requests/s | client CPU-s per 1,000 | TTFT p50 (ms) |")
    print("|---:|---|---:|---:|---:|")
    for row in results["rows"]:
        for kind, label in (("backend", "ai_energy_benchmarks"), ("reference", "bare aiohttp")):
            figures = row[kind]
            print(
                f"| {row['concurrency']} | {label} | {figures['requests_per_s']:.0f} | "
                f"{figures['cpu_s_per_1000']:.2f} | {figures['ttft_p50_ms']:.2f} |"
            )
    print()
    print("| concurrency | CPU per response, ours / reference | socket reads per response |")
    print("|---:|---:|---:|")
    for row in results["rows"]:
        print(f"| {row['concurrency']} | {row['cpu_ratio']:.2f}x | {row['socket_reads_per_response']:.1f} |")
    drift = results["drift"]
    print()
    print(
        f"schedule drift at {drift['rate_per_s']:g} requests/s Poisson: p50 {drift['p50']:.3f} ms, "
        f"p99 {drift['p99']:.3f} ms, max {drift['max']:.3f} ms ({drift['count']} requests, "
        f"{drift['held_for_a_slot']} held for a slot, achieved {drift['achieved_rate_per_s']:.1f} requests/s)"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
