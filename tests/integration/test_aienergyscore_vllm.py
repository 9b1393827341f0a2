"""AIEnergyScore's vLLM path replayed: its config classes, its call sequence and its post-processing.

AIEnergyScore (commit a5b9a04) measures every large model through a vLLM server. Its ``batch_runner.py`` and
``run_ai_energy_benchmark.py`` build ``BackendConfig(type="vllm", model=..., endpoint=...)`` (no device, no API),
a ``ScenarioConfig`` whose reasoning switch and token budget come from its reasoning helpers (reasoning on: at most
8192 new tokens, at least 1; off: exactly 10), CodeCarbon metrics and a CSV reporter; then
``BenchmarkRunner(cfg).validate()`` and ``.run()``, and write the returned dict to ``benchmark_report.json``. Its
``summarize_gpu_wh.py`` reads that file (``float()`` of ``energy.gpu_energy_wh``, formatted ``:,.2f``) and its
``results_aggregator.py`` formats the summary and energy keys (``:.2f``, ``:.4f``) and tests them (``> 0``).

Here the server is the package's streaming test server serving the models under their hub ids (so the reasoning
format is chosen from the name, as for the real rows), answering in its own length when ``ignore_eos`` is not sent.
tests/integration/test_vllm_integration.py replays the same rows against a real vLLM server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from contract import ENERGY_KEYS, SUMMARY_KEYS

from ai_energy_benchmarks.config.parser import (
    BackendConfig,
    BenchmarkConfig,
    MetricsConfig,
    ReporterConfig,
    ScenarioConfig,
)
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.fake_nvml import write_fake_nvidia_smi
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

#: Tokens the test server's "model" writes before its end-of-sequence token when the request lets it stop.
ANSWER_TOKENS = 37
NUM_PROMPTS = 4
ROWS = {
    "qwen3-on": ("Qwen/Qwen3-8B", {"enable_thinking": True}),
    "qwen3-off": ("Qwen/Qwen3-8B", {"enable_thinking": False}),
    "smollm3-on": ("HuggingFaceTB/SmolLM3-3B", {"enable_thinking": True}),
    "gpt-oss-high": ("openai/gpt-oss-20b", {"reasoning_effort": "high"}),
    "gpt-oss-low": ("openai/gpt-oss-20b", {"reasoning_effort": "low"}),
    "deepseek-r1-on": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", {"enable_thinking": True}),
}


# -- AIEnergyScore's side, re-enacted ---------------------------------------------------------------------------------
def reasoning_enabled(params: Mapping[str, Any] | None) -> bool:
    """AIEnergyScore's rule: any reasoning parameter switches reasoning on unless it says off."""
    if not params:
        return False
    off = params.get("enable_thinking") is False or params.get("reasoning") is False
    return not (off or params.get("reasoning_effort") == "off")


def aienergyscore_config(endpoint: str, model: str, params: dict[str, Any] | None, run_dir: Path) -> BenchmarkConfig:
    """``batch_runner._build_benchmark_config`` for ``BENCHMARK_BACKEND=vllm``, on a local prompts file."""
    reasoning = reasoning_enabled(params)
    budget = (
        {"max_new_tokens": 8192, "min_new_tokens": 1} if reasoning else {"max_new_tokens": 10, "min_new_tokens": 10}
    )
    prompts = run_dir / "prompts.csv"
    prompts.parent.mkdir(parents=True, exist_ok=True)
    prompts.write_text("text\n" + "".join(f"Question {i}: why is the sea salty?\n" for i in range(NUM_PROMPTS)))
    return BenchmarkConfig(
        name=f"ai_energy_score_{model}",
        backend=BackendConfig(type="vllm", model=model, endpoint=endpoint),
        scenario=ScenarioConfig(
            dataset_name=str(prompts),
            text_column_name="text",
            num_samples=NUM_PROMPTS,
            reasoning=reasoning,
            reasoning_params=params if reasoning else None,
            generate_kwargs=budget,
        ),
        metrics=MetricsConfig(
            enabled=True,
            type="codecarbon",
            project_name=f"ai_energy_score_{model.replace('/', '_')}",
            output_dir=str(run_dir / "emissions"),
            country_iso_code="USA",
            region="california",
        ),
        reporter=ReporterConfig(type="csv", output_file=str(run_dir / "benchmark_results.csv")),
        output_dir=str(run_dir),
    )


def post_process(report_path: Path) -> dict[str, str]:
    """What AIEnergyScore does with the written report: its wrapper's log line, summarize_gpu_wh.py and the
    aggregator's row. Any None among the keys it reads raises here, as it crashed there."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    summary, energy = report.get("summary", {}), report.get("energy", {})
    wrapper_log = f"GPU Energy: {energy.get('gpu_energy_wh', 0):.2f} Wh"
    total_wh = float(energy.get("gpu_energy_wh", 0.0))
    gpu_wh = energy.get("gpu_energy_wh", 0)
    total_tokens = summary.get("total_tokens", 0)
    successful = summary.get("successful_prompts", 0)
    tokens_per_joule = total_tokens / (gpu_wh * 3600) if gpu_wh > 0 and total_tokens > 0 else 0
    per_prompt = gpu_wh / successful if successful > 0 and gpu_wh > 0 else 0
    wh_per_1000 = gpu_wh / successful * 1000 if successful > 0 and gpu_wh > 0 else 0
    return {
        "wrapper_log": wrapper_log,
        "GPU_ENERGY_WH.txt": f"{total_wh:.2f}",
        "summary_line": f"GPU Energy (Wh): {total_wh:,.2f}",
        "total_duration_seconds": f"{summary.get('total_duration_seconds', 0):.2f}",
        "avg_total_time": f"{summary.get('avg_latency_seconds', 0):.4f}",
        "avg_time_to_first_token": f"{summary.get('avg_time_to_first_token', 0):.4f}",
        "throughput_tokens_per_second": f"{summary.get('throughput_tokens_per_second', 0):.2f}",
        "gpu_energy_wh": f"{gpu_wh:.4f}",
        "wh_per_1000_queries": f"{wh_per_1000:.4f}",
        "co2_emissions_g": f"{energy.get('emissions_g_co2eq', 0):.4f}",
        "tokens_per_joule": f"{tokens_per_joule:.4f}",
        "avg_energy_per_prompt_wh": f"{per_prompt:.4f}",
    }


def run_row(config: BenchmarkConfig) -> dict[str, Any]:
    """validate() then run(), and the dict written to benchmark_report.json, as AIEnergyScore does."""
    runner = BenchmarkRunner(config)
    assert runner.validate() is True
    results = runner.run()
    with open(Path(config.output_dir) / "benchmark_report.json", "w") as f:
        json.dump(results, f, indent=2)
    return results


def assert_0_0_4_types(report: Mapping[str, Any]) -> None:
    """Every key AIEnergyScore reads is a number, as 0.0.4 always returned."""
    for key in SUMMARY_KEYS:
        value = report["summary"][key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"summary.{key} = {value!r}"
    for key in ENERGY_KEYS:
        value = report["energy"][key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"energy.{key} = {value!r}"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    models = sorted({model for model, _ in ROWS.values()})
    with FakeOpenAIServer(models=models, max_model_len=16384, eos_after_tokens=ANSWER_TOKENS) as fake:
        yield fake


def bodies_of(server: FakeOpenAIServer, model: str, first: int) -> list[dict[str, Any]]:
    return [b for b in server.bodies[first:] if b.get("model") == model]


# -- the rows ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", sorted(ROWS))
def test_a_row_runs_on_the_vllm_path_with_the_api_unset(server: FakeOpenAIServer, tmp_path: Path, row: str) -> None:
    """Reasoning-On rows (SmolLM3, Qwen3, DeepSeek-R1, gpt-oss) validate and run with `api` unset: chat messages with
    the family's switch; a reasoning budget lets the model stop at EOS (no `ignore_eos`), a 10-token row is fixed."""
    model, params = ROWS[row]
    first = len(server.bodies)
    results = run_row(aienergyscore_config(server.url + "/v1", model, params, tmp_path))
    reasoning = reasoning_enabled(params)
    assert results["status"] == "completed"
    assert results["model"]["api"] == "chat"
    measured = [b for b in bodies_of(server, model, first) if b.get("max_tokens") != 1]  # not the prefill pass
    assert measured, "no request reached the server"
    body = measured[-1]
    user = {"role": "user", "content": "Question 3: why is the sea salty?"}
    if reasoning:
        assert (body["max_tokens"], body["min_tokens"]) == (8192, 1) and "ignore_eos" not in body
        assert results["summary"]["total_completion_tokens"] == NUM_PROMPTS * ANSWER_TOKENS  # not 8192 each
    else:
        assert (body["max_tokens"], body["min_tokens"], body["ignore_eos"]) == (10, 10, True)
        assert results["summary"]["total_completion_tokens"] == NUM_PROMPTS * 10
    if model.startswith("Qwen/"):
        assert body["messages"] == [user] and body["chat_template_kwargs"] == {"enable_thinking": reasoning}
    elif "SmolLM3" in model:
        assert body["messages"] == [{"role": "system", "content": "/think"}, user]
    elif "gpt-oss" in model:
        effort = params["reasoning_effort"]
        assert body["messages"] == [user] and body["reasoning_effort"] == effort
        assert body["chat_template_kwargs"] == {"reasoning_effort": effort}
    else:  # DeepSeek-R1: the <think> prefix opens the assistant turn the server's template writes
        assert body["messages"] == [user, {"role": "assistant", "content": "<think>\n"}]
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    report = json.loads((tmp_path / "benchmark_report.json").read_text())
    assert_0_0_4_types(report)
    summary = report["summary"]
    # 0.0.4's meaning of the throughput key (AIEnergyScore's column): prompt + output tokens per second.
    assert summary["throughput_tokens_per_second"] == pytest.approx(
        summary["total_tokens"] / summary["total_duration_seconds"]
    )
    figures = post_process(tmp_path / "benchmark_report.json")
    assert figures["throughput_tokens_per_second"] == f"{summary['throughput_tokens_per_second']:.2f}"


def test_effort_levels_reach_the_server_as_different_requests(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """High and low effort are different requests; with ignore_eos forced they all produced 8192 tokens."""
    sent: dict[str, dict[str, Any]] = {}
    for row in ("gpt-oss-high", "gpt-oss-low"):
        model, params = ROWS[row]
        first = len(server.bodies)
        run_row(aienergyscore_config(server.url + "/v1", model, params, tmp_path / row))
        sent[row] = bodies_of(server, model, first)[-1]
    assert sent["gpt-oss-high"]["reasoning_effort"] == "high" and sent["gpt-oss-low"]["reasoning_effort"] == "low"
    assert not any("ignore_eos" in body for body in sent.values())


# -- numbers that never crash the caller ---------------------------------------------------------------------------
def test_a_remote_server_gives_numbers_with_the_honesty_beside_them(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """A server on another host: its GPU energy is not measured here. 0.0.4's keys stay numbers (0.0), the source
    says not measured, our own keys are null, and AIEnergyScore's post-processing runs."""
    model, params = ROWS["qwen3-off"]
    config = aienergyscore_config(server.url + "/v1", model, params, tmp_path)
    config.backend.server_on_this_host = False  # as through a tunnel: the loopback address is not the server's host
    results = run_row(config)
    energy = results["energy"]
    assert_0_0_4_types(results)
    assert energy["gpu_energy_wh"] == 0.0 and energy["energy_wh"] == 0.0
    assert energy["sources"]["gpu"] == "not-measured:remote-server"
    assert energy["gpu_energy_j"] is None and {"gpu_energy_wh", "energy_wh"} <= set(energy["zero_filled"])
    assert energy["total_energy_wh"] > 0 and "total_energy_wh" not in energy["zero_filled"]  # this client's CPU+RAM
    assert any("energy.gpu_energy_wh" in w and "not zero" in w for w in results["warnings"])
    figures = post_process(tmp_path / "benchmark_report.json")
    assert figures["GPU_ENERGY_WH.txt"] == "0.00" and figures["tokens_per_joule"] == "0.0000"
    # Emissions: CodeCarbon's grid intensity times this client's CPU and RAM energy (an estimate, and a number).
    assert energy["emissions_g_co2eq"] > 0 and "emissions_g_co2eq" not in energy["zero_filled"]
    assert figures["co2_emissions_g"] == f"{energy['emissions_g_co2eq']:.4f}"


def test_a_run_where_every_request_fails_leaves_numbers_for_the_caller(tmp_path: Path) -> None:
    """Every measured request answered HTTP 500: the report AIEnergyScore's summary step reads has numbers where
    0.0.4 had them (latencies 0.0, listed as zero-filled), null in our own keys, and the failures counted."""
    model, params = ROWS["qwen3-off"]
    with FakeOpenAIServer(models=[model]) as fake:
        config = aienergyscore_config(fake.url + "/v1", model, params, tmp_path)
        prompts = Path(config.scenario.dataset_name)
        prompts.write_text("text\n" + "".join(f"[fault:http_500] question {i}\n" for i in range(NUM_PROMPTS)))
        runner = BenchmarkRunner(config)
        assert runner.validate() is True
        results = runner.run()  # a pass without one successful request fails the run (the CLI exits 1) ...
    report = json.loads((tmp_path / "benchmark_report.json").read_text())  # ... and its report is written all the same
    summary = report["summary"]
    assert results["status"] == report["status"] == "failed"
    assert_0_0_4_types(report)
    assert summary["successful_prompts"] == 0 and summary["failed_prompts"] == NUM_PROMPTS
    assert summary["avg_latency_seconds"] == 0.0 and summary["avg_time_to_first_token"] == 0.0
    assert summary["mean_latency_s"] is None and summary["mean_ttft_s"] is None
    assert {"avg_latency_seconds", "avg_time_to_first_token"} <= set(summary["zero_filled"])
    figures = post_process(tmp_path / "benchmark_report.json")
    assert figures["avg_total_time"] == "0.0000" and figures["wh_per_1000_queries"] == "0.0000"


def test_generate_kwargs_reads_as_the_dict_0_0_4_gave(tmp_path: Path) -> None:
    """AIEnergyScore's tests index `scenario.generate_kwargs["max_new_tokens"]` and call `.get()` on it."""
    config = aienergyscore_config("http://127.0.0.1:1/v1", *ROWS["qwen3-on"], tmp_path)
    generate_kwargs = config.scenario.generate_kwargs
    assert isinstance(generate_kwargs, Mapping)
    assert generate_kwargs["max_new_tokens"] == 8192 and generate_kwargs.get("min_new_tokens") == 1
    assert generate_kwargs.get("absent", "default") == "default" and "max_new_tokens" in generate_kwargs
    assert dict(generate_kwargs)["max_new_tokens"] == 8192
    # A dict, as in 0.0.4: a change made in place is kept, and validated when the runner is built.
    generate_kwargs["max_new_tokens"] = 5  # type: ignore[index]
    assert BenchmarkRunner(config).config.scenario.generate_kwargs["max_new_tokens"] == 5
    off = aienergyscore_config("http://127.0.0.1:1/v1", *ROWS["qwen3-off"], tmp_path).scenario.generate_kwargs
    assert (off["max_new_tokens"], off["min_new_tokens"]) == (10, 10)


# -- a local server's GPU is metered ---------------------------------------------------------------------------------
_LOCAL_GPU_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

    fake = FakeNvml([FakeGpu(power=150.0)])
    fake.install()  # before CodeCarbon is imported: it binds pynvml at import time

    sys.path[:0] = [sys.argv[2], str(Path(sys.argv[2]).parent)]  # this file's folder, and tests/ (its helpers)
    from test_aienergyscore_vllm import ROWS, aienergyscore_config, run_row

    from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

    model, params = ROWS["qwen3-off"]
    run_dir = Path(sys.argv[1])
    with FakeOpenAIServer(models=[model], token_delay_s=0.02) as server:
        config = aienergyscore_config(server.url + "/v1", model, params, run_dir)
        results = run_row(config)
    print(json.dumps({"results": results}))
    """
)


def test_a_local_servers_gpu_is_metered_and_measured_by_default(tmp_path: Path) -> None:
    """AIEnergyScore's vLLM config names no device: a server on this host has this host's GPUs metered as its own,
    from the energy counter (a simulated 150 W GPU read by CodeCarbon through pynvml): > 0 Wh, `measured:`."""
    bin_dir = tmp_path / "bin"
    write_fake_nvidia_smi(bin_dir)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    child = subprocess.run(
        [sys.executable, "-c", _LOCAL_GPU_CHILD, str(tmp_path / "run"), str(Path(__file__).resolve().parent)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    results = out["results"]
    energy = results["energy"]
    assert energy["sources"]["gpu"].startswith("measured:"), energy["sources"]
    assert energy["gpu_energy_wh"] > 0 and "gpu_energy_wh" not in energy["zero_filled"]
    scope = results["model"]["energy_scope"]
    assert scope["server_on_this_host"] is True and "every GPU visible here" in scope["note"]
    # 150 W over the measured generate window(s): CodeCarbon's task edges sit just outside the runner's timer.
    expected_wh = 150.0 * results["summary"]["total_duration_seconds"] / 3600.0
    version = tuple(int(part) for part in results["meters"]["codecarbon"]["version"].split(".")[:3])
    if version < (3, 3, 2) and energy["gpu_energy_wh"] > 1.05 * expected_wh:
        # Seen with 3.0.4 (AIEnergyScore's pin) in .ci/compat-matrix: 0.052 Wh for a 0.744 s window at 150 W
        # (0.031 Wh), +67%. Not yet explained (its task start may not re-read the counter); open, see CHANGELOG.
        pytest.xfail(f"CodeCarbon {version}: GPU energy of a short window over-counted ({energy['gpu_energy_wh']} Wh)")
    assert energy["gpu_energy_wh"] == pytest.approx(expected_wh, rel=0.05)
