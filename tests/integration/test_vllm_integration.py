"""The HTTP backend against a real vLLM server (CPU build) serving the packaged tiny Llama with random weights.

The server runs from its own virtual environment, whose python is named by ``AIEB_VLLM_PYTHON`` (make one with
``tools/setup_vllm_cpu.sh VENV``); without it these tests are skipped. The fixture saves random weights for the
packaged architecture, starts ``vllm.entrypoints.openai.api_server`` on a free loopback port and stops it with
SIGTERM at the end of the module. Extra server arguments can be given in ``AIEB_VLLM_ARGS``.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.backends import openai_http
from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.http_client import HTTP_4XX, arrival_schedule
from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend
from ai_energy_benchmarks.backends.pytorch import packaged_models_dir
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import BackendError
from ai_energy_benchmarks.runner import BenchmarkRunner

VLLM_PYTHON = os.environ.get("AIEB_VLLM_PYTHON")
SERVED_NAME = "tiny-llama"
#: The same model served under reasoning models' hub ids too (vLLM answers to every --served-model-name), so that
#: AIEnergyScore's rows choose their reasoning format from the name as they do for the real models.
AIENERGYSCORE_ROWS = {
    "Qwen/Qwen3-0.6B": {"enable_thinking": True},
    "HuggingFaceTB/SmolLM3-3B": {"enable_thinking": True},
    "openai/gpt-oss-20b": {"reasoning_effort": "high"},
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": {"enable_thinking": True},
}
START_TIMEOUT_S = float(os.environ.get("AIEB_VLLM_START_TIMEOUT_S", "300"))

pytestmark = pytest.mark.skipif(
    not VLLM_PYTHON,
    reason="real-vLLM integration tests: set AIEB_VLLM_PYTHON to the python of a venv with vLLM "
    "(create one with tools/setup_vllm_cpu.sh VENV)",
)

_SAVE_WEIGHTS = """
import json, shutil, sys
from pathlib import Path
import torch, transformers
source, target = Path(sys.argv[1]), Path(sys.argv[2])
torch.manual_seed(0)
config = transformers.AutoConfig.from_pretrained(source)
model = transformers.AutoModelForCausalLM.from_config(config)
model.save_pretrained(target)
for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(source / name, target / name)
# A chat template that reads enable_thinking, as reasoning models' templates do: the thinking switch adds text to
# the prompt, so the server's own prompt-token count shows whether the switch reached the template.
config_path = target / "tokenizer_config.json"
tokenizer_config = json.loads(config_path.read_text())
tokenizer_config["chat_template"] = tokenizer_config["chat_template"].replace(
    "{% if add_generation_prompt %}Assistant:{% endif %}",
    "{% if add_generation_prompt %}Assistant:{% if enable_thinking is defined and enable_thinking %}"
    " <think> Let me think it through step by step.{% endif %}{% endif %}",
)
config_path.write_text(json.dumps(tokenizer_config))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no /v1) of a vLLM server serving the packaged tiny Llama with random weights."""
    yield from _serve_vllm(tmp_path_factory.mktemp("vllm"))


def _serve_vllm(workdir: Path, extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """Start vLLM (the packaged tiny Llama, random weights, ``extra_args`` added), yield its base URL, stop it."""
    assert VLLM_PYTHON is not None
    weights = workdir / "tiny-llama"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    subprocess.run(
        [VLLM_PYTHON, "-c", _SAVE_WEIGHTS, str(packaged_models_dir() / "tiny-llama"), str(weights)],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    port = _free_port()
    log_path = workdir / "vllm.log"
    command = [
        VLLM_PYTHON,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(weights),
        "--served-model-name",
        SERVED_NAME,
        *AIENERGYSCORE_ROWS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "512",
        "--max-num-seqs",
        "16",
        *shlex.split(os.environ.get("AIEB_VLLM_ARGS", "--optimization-level 0")),
        *extra_args,
    ]
    server_env = dict(env, VLLM_CPU_KVCACHE_SPACE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0")
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"vLLM exited with {process.returncode} while starting:\n{_tail(log_path)}")
            try:
                if _get(base + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM did not become healthy in {START_TIMEOUT_S:g} s:\n{_tail(log_path)}")
            time.sleep(1.0)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def make_config(base: str, tokens: int = 16, tmp: Path | None = None, **backend: Any) -> BenchmarkConfig:
    data: dict[str, Any] = {
        "name": "vllm-integration",
        "backend": {"type": "vllm", "model": SERVED_NAME, "endpoint": base + "/v1", **backend},
        "scenario": {
            "generate_kwargs": {"max_new_tokens": tokens, "min_new_tokens": tokens},
            "warmup_runs": 0,
            "measure_prefill": False,
        },
        "metrics": {"enabled": False},
    }
    if tmp is not None:
        data["output_dir"] = str(tmp / "out")
        data["reporter"] = {"output_file": str(tmp / "results.csv")}
    return BenchmarkConfig.model_validate(data)


def run_prompts(config: BenchmarkConfig, prompts: list[str]) -> tuple[list[RequestRecord], dict[str, Any]]:
    backend = OpenAIHTTPBackend(config)
    backend.load()
    try:
        records = sorted(backend.run(prompts, config.scenario.generate_kwargs.as_kwargs()), key=lambda r: r.index)
        return records, backend.describe()
    finally:
        backend.close()


def non_streaming_usage(base: str, api: str, prompt: str, tokens: int) -> dict[str, int]:
    body: dict[str, Any] = {"model": SERVED_NAME, "max_tokens": tokens, "min_tokens": tokens, "ignore_eos": True}
    body["temperature"] = 0.0
    if api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    path = "/v1/chat/completions" if api == "chat" else "/v1/completions"
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read())["usage"])


PROMPTS = [f"Prompt {i}: tell me something about the number {i * 7} and the sea." for i in range(12)]


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_streaming_token_counts_equal_the_servers_usage(
    vllm_server: str, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai_http, "SCRAPE_INTERVAL_S", 0.2)
    config = make_config(vllm_server, tokens=24, api=api, concurrency=4)
    records, info = run_prompts(config, PROMPTS)
    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert [r.completion_tokens for r in records] == [24] * len(PROMPTS)
    for record in records:
        assert record.ttft_s is not None and 0 < record.ttft_s <= record.latency_s
        assert record.chunk_times_s and 1 <= len(record.chunk_times_s) <= 24
    reference = non_streaming_usage(vllm_server, api, PROMPTS[3], 24)
    assert records[3].prompt_tokens == reference["prompt_tokens"]
    assert reference["completion_tokens"] == 24
    check = info["http"]["runs"][0]["prometheus"]["cross_check"]
    assert check["agrees"], check
    assert check["server_output_tokens"] == check["client_output_tokens"] == 24 * len(PROMPTS)
    assert check["server_prompt_tokens"] == check["client_prompt_tokens"]


def test_concurrency_reaches_the_limit_and_the_server_sees_it(
    vllm_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai_http, "SCRAPE_INTERVAL_S", 0.1)
    config = make_config(vllm_server, tokens=64, concurrency=8)
    records, info = run_prompts(config, PROMPTS * 3)
    run = info["http"]["runs"][0]
    assert all(r.ok for r in records)
    assert run["concurrency"]["max_in_flight"] == 8
    steady = run["steady_state"]
    assert steady["reached"] and steady["duration_s"] > 0 and steady["output_tokens"] > 0
    prometheus = run["prometheus"]
    assert len(prometheus["samples"]) >= 2
    assert prometheus["num_requests_running"]["max"] >= 2  # the server ran several of our requests at once
    assert prometheus["deltas"]["vllm:request_success_total"] == len(records)
    assert prometheus["server_mean_latency_s"]["ttft_s"] is not None


def test_poisson_arrivals_follow_the_seeded_schedule(vllm_server: str) -> None:
    config = make_config(vllm_server, tokens=8, concurrency=16, request_rate=20.0, seed=3)
    records, info = run_prompts(config, PROMPTS * 2)
    run = info["http"]["runs"][0]
    schedule = arrival_schedule(len(records), 20.0, "poisson", 1.0, seed=3)
    offsets = [r.start_s - run["start_s"] for r in records]
    assert all(r.ok for r in records)
    assert max(abs(o - s) for o, s in zip(offsets, schedule, strict=True)) < 0.05
    assert run["schedule_drift"]["p99"] < 50.0


def test_an_overlong_prompt_fails_alone_with_http_4xx(vllm_server: str) -> None:
    config = make_config(vllm_server, tokens=8, concurrency=2)
    long_prompt = " ".join(["word"] * 2000)
    records, info = run_prompts(config, [PROMPTS[0], long_prompt, PROMPTS[1]])
    assert [r.ok for r in records] == [True, False, True]
    assert records[1].error_class == HTTP_4XX and "HTTP 400" in (records[1].error or "")
    assert info["http"]["errors_by_class"] == {HTTP_4XX: 1}


def test_a_model_the_server_does_not_serve_is_named_with_the_served_ones(vllm_server: str) -> None:
    config = make_config(vllm_server).model_copy(deep=True)
    config.backend.model = "not-this-one"
    with pytest.raises(BackendError, match=r"served models: .*tiny-llama"):  # the aliases are listed too
        OpenAIHTTPBackend(config).load()


def test_benchmark_runner_end_to_end_with_energy(vllm_server: str, tmp_path: Path) -> None:
    data = make_config(vllm_server, tokens=32, tmp=tmp_path, concurrency=8).model_dump(mode="json")
    data["scenario"].update({"num_samples": 40, "warmup_runs": 1, "measure_prefill": True})
    data["metrics"] = {"enabled": True, "type": "codecarbon", "measure_power_secs": 1.0}
    result = BenchmarkRunner(BenchmarkConfig.model_validate(data)).run()
    json.dumps(result)
    summary, http = result["summary"], result["model"]["http"]
    assert result["status"] == "completed"
    assert summary["successful_prompts"] == 40 and summary["failed_prompts"] == 0
    assert summary["total_completion_tokens"] == 40 * 32
    assert summary["throughput_tokens_per_second"] > 0
    assert result["energy"]["total_energy_wh"] is not None and result["energy"]["total_energy_wh"] > 0
    assert [run["label"] for run in http["runs"]] == ["warmup", "prefill-0", "generate-0"]
    assert http["measured"]["output_tokens"] == 40 * 32
    generate = http["runs"][2]
    assert generate["prometheus"]["cross_check"]["agrees"]
    assert result["model"]["endpoint_on_this_host"] is True
    # backend.server unset: a real vLLM is recognised by its own series, and nothing it reads is left out
    profile = result["model"]["server_profile"]
    assert profile["name"] == "vllm" and profile["chosen_by"] == "detected: /metrics has 'vllm:' series"
    assert profile["not_sent"] == [] and result["model"]["server"]["version"]
    lines = (tmp_path / "out" / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 80  # prefill + generate
    steady = http["steady_state"][0]
    assert steady["label"] == "generate-0" and steady["reached"] and 0 < steady["output_tokens"] <= 40 * 32


def test_reasoning_switch_reaches_the_servers_chat_template(vllm_server: str) -> None:
    """`scenario.reasoning` becomes `chat_template_kwargs.enable_thinking` at the top level of the request, and the
    server's template applies it: the thinking text lengthens the prompt the server counts."""
    prompt = "Why is the sea salty?"
    prompt_tokens: dict[bool, int] = {}
    for reasoning in (False, True):
        config = make_config(vllm_server, tokens=4, api="chat")
        config.scenario.reasoning = reasoning
        config.scenario.reasoning_format = "template_param"
        backend = OpenAIHTTPBackend(config)
        backend.load()
        try:
            sent = backend.render(prompt)
            (record,) = list(backend.run([prompt], config.scenario.generate_kwargs.as_kwargs()))
        finally:
            backend.close()
        assert isinstance(sent, dict)
        assert sent["chat_template_kwargs"] == {"enable_thinking": reasoning}
        assert "extra_body" not in sent
        assert record.ok and record.completion_tokens == 4
        prompt_tokens[reasoning] = record.prompt_tokens
    assert prompt_tokens[True] > prompt_tokens[False] + 5


@pytest.mark.parametrize("model", sorted(AIENERGYSCORE_ROWS))
def test_aienergyscore_reasoning_rows_on_the_real_server(vllm_server: str, tmp_path: Path, model: str) -> None:
    """AIEnergyScore's vLLM path against real vLLM: its classes with `api` unset, `validate()` then `run()`, its
    post-processing on the written report. The reasoning budget is scaled to this model's 512-token context (at most
    64 new tokens, at least 1): no `ignore_eos`, and vLLM accepts every family's request fields."""
    from test_aienergyscore_vllm import NUM_PROMPTS, aienergyscore_config, assert_0_0_4_types, post_process, run_row

    config = aienergyscore_config(vllm_server + "/v1", model, AIENERGYSCORE_ROWS[model], tmp_path)
    config.scenario.generate_kwargs = {"max_new_tokens": 64, "min_new_tokens": 1}  # type: ignore[assignment]
    results = run_row(config)
    summary = results["summary"]
    assert results["status"] == "completed", results["warnings"]
    assert summary["successful_prompts"] == NUM_PROMPTS and summary["failed_prompts"] == 0
    assert NUM_PROMPTS <= summary["total_completion_tokens"] <= NUM_PROMPTS * 64
    assert results["model"]["api"] == "chat" and results["model"]["load"]["ignore_eos"] is False
    # vLLM answers with its first served name for every alias: that is this model, not a wrong one.
    assert results["model"]["http"]["measured"]["answer_checks"]["contradicted"] == 0
    assert results["model"]["http"]["runs"][-1]["prometheus"]["cross_check"]["agrees"]
    assert_0_0_4_types(results)
    figures = post_process(tmp_path / "benchmark_report.json")
    assert float(figures["GPU_ENERGY_WH.txt"]) == pytest.approx(results["energy"]["gpu_energy_wh"], abs=0.005)


def _tokenize_messages(base: str, messages: list[dict[str, str]]) -> int:
    """The server's own prompt-token count of ``messages`` through its chat template (vLLM's ``/tokenize``)."""
    body = {"model": SERVED_NAME, "messages": messages, "add_generation_prompt": True}
    request = urllib.request.Request(
        base + "/tokenize", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(json.loads(response.read())["count"])


def test_multi_turn_history_is_the_models_own_answers_on_the_real_server(vllm_server: str, tmp_path: Path) -> None:
    """Each turn's prompt, as the server counted it, is exactly the chat template over the conversation so far with
    the model's own earlier answers; turns stay in order under concurrency; the prefix cache serves the history."""
    from ai_energy_benchmarks.datasets.workload import load_workload

    long_opening = "Tell me about the sea. " + " ".join(f"The river number {i} flows into it." for i in range(24))
    script = [long_opening, "-", "And then?", "-", "Say it shorter."]
    rows = [
        {
            "id": f"c{n}",
            "messages": [
                {"role": ("user", "assistant")[i % 2], "content": f"{n}: {text}" if i == 0 else text}
                for i, text in enumerate(script)
            ],
        }
        for n in range(3)
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = make_config(vllm_server, tokens=8, api="chat", concurrency=2)
    config.scenario.num_samples = 3
    config.scenario.multi_turn.enabled = True
    config.scenario.multi_turn.dataset = str(path)
    workload = load_workload(config.scenario)
    assert workload is not None and workload.conversations is not None
    backend = OpenAIHTTPBackend(config)
    backend.keep_text = True
    backend.load()
    try:
        backend.set_phase("generate-0")
        records = list(backend.run_workload(workload, config.scenario.generate_kwargs.as_kwargs()))
        info = backend.describe()
    finally:
        backend.close()
    assert len(records) == 9 and all(r.ok and r.completion_tokens == 8 for r in records)
    for conversation in workload.conversations.conversations:
        turns = sorted((r for r in records if r.conversation_id == conversation.id), key=lambda r: r.start_s)
        assert [r.turn for r in turns] == [0, 1, 2]
        assert turns[0].end_s <= turns[1].start_s and turns[1].end_s <= turns[2].start_s
        messages: list[dict[str, str]] = []
        for record, text in zip(turns, conversation.user_turns, strict=True):
            messages.append({"role": "user", "content": text})
            assert record.prompt_tokens == _tokenize_messages(vllm_server, messages), (conversation.id, record.turn)
            messages.append({"role": "assistant", "content": str(record.output_text)})
    cache = info["http"]["runs"][-1]["prefix_cache"]
    assert cache is not None and cache["queries_tokens"] >= sum(r.prompt_tokens for r in records) * 0.9
    assert cache["hits_tokens"] >= 128 * 6  # turns 1 and 2 of each conversation find the opening's first block


def test_trace_replay_on_the_real_server(vllm_server: str, tmp_path: Path) -> None:
    """The packaged trace at twice its speed: sent on time, every output the trace's length, the server's prompt
    counts near the trace's (the tokenizer-free prompts and the chat template's own tokens)."""
    config = make_config(vllm_server, tokens=8, tmp=tmp_path, api="chat", concurrency=16)
    config.scenario.trace.enabled = True
    config.scenario.trace.scale = 0.5
    result = BenchmarkRunner(config).run()
    assert result["status"] == "completed"
    workload = result["workload"]
    (drift,) = workload["schedule_drift"]
    assert drift["count"] + drift["held_for_a_slot"] == 26 and drift["p99"] < 50.0
    outputs = workload["output_tokens"]
    assert outputs["requests_off_length"] == 0 and outputs["served_total"] == outputs["trace_total"]
    inputs = workload["input_tokens"]
    assert inputs["served_total"] > 0 and abs(inputs["mean_relative_error"]) < 0.6, inputs


def test_synthetic_lengths_counted_by_the_servers_tokenize(vllm_server: str, tmp_path: Path) -> None:
    import transformers

    data = make_config(vllm_server, tmp=tmp_path, concurrency=4).model_dump(mode="json")
    data["scenario"] = {
        "dataset_name": "synthetic",
        "num_samples": 8,
        "warmup_runs": 0,
        "synthetic": {
            "input_tokens": {"dist": "normal", "mean": 60, "std": 30, "min": 1, "max": 200},
            "output_tokens": {"dist": "uniform", "min": 2, "max": 24},
            "seed": 5,
        },
    }
    result = BenchmarkRunner(BenchmarkConfig.model_validate(data)).run()
    assert result["dataset"]["synthetic"]["tokenizer"] == f"server:{vllm_server}/tokenize"
    assert result["model"]["api"] == "completions"  # plain text: the length is what the model reads
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(packaged_models_dir() / "tiny-llama"))
    special = len(tokenizer("x")["input_ids"]) - len(tokenizer("x", add_special_tokens=False)["input_ids"])
    prompts = [json.loads(line) for line in (tmp_path / "out" / "prompts.jsonl").read_text().splitlines()]
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    generate = {row["index"]: row for row in rows if row["phase"] == "generate"}
    for row in prompts:
        # the served model's tokenizer, read here too: the server's count is the tokenizer's
        assert len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]) == row["input_tokens_requested"]
        assert row["input_tokens"] == row["input_tokens_requested"]
        assert generate[row["index"]]["prompt_tokens"] == row["input_tokens"] + special  # the server's usage
        assert generate[row["index"]]["completion_tokens"] == row["output_tokens_requested"]
    assert len({row["output_tokens_requested"] for row in prompts}) > 1
    assert result["energy"]["joules_per_total_token"] is None  # energy off: null, never a made-up figure


def test_phases_and_server_features_on_the_real_server(vllm_server: str, tmp_path: Path) -> None:
    data = make_config(vllm_server, tmp=tmp_path, concurrency=4).model_dump(mode="json")
    # Prompts longer than the server's KV-cache block, so that its prefix cache (full blocks only) can hit them.
    synthetic = {"input_tokens": 400, "output_tokens": 32}
    data["scenario"] = {"dataset_name": "synthetic", "synthetic": synthetic, "num_samples": 8, "warmup_runs": 0}
    result = BenchmarkRunner(BenchmarkConfig.model_validate(data)).run()
    phases = result["phases"]
    assert phases["prefill"]["output_tokens"] == 8 and phases["decode"]["output_tokens"] == 8 * 31
    server = phases["server"]
    assert server["available"] is True, server["note"]
    pre, gen = server["prefill_pass"], server["generate_pass"]
    assert pre["server_mean_prefill_s"] > 0 and gen["server_mean_prefill_s"] > 0
    assert gen["server_mean_decode_s"] > pre["server_mean_decode_s"]  # 31 more tokens than one
    check = server["cross_check"]
    assert check["decode"]["server_s"] == gen["server_mean_decode_s"] and check["decode"]["client_s"] > 0
    assert check["prefill"]["relative_difference"] is not None
    features = result["model"]["server_features"]
    prefix = features["prefix_cache"]
    assert prefix is not None, features["prefix_cache_note"]  # vLLM V1 counts prefix-cache queries and hits
    assert prefix["queried_tokens"] == result["summary"]["total_prompt_tokens"]
    # The prefill pass sent the same prompts first, but each pass salts its lookups (cache_salt): the generate pass
    # redoes every prefill, as a request the server had not seen would.
    assert result["model"]["server_profile"]["prefix_cache_isolation"] == "per pass: cache_salt of this run and pass"
    assert prefix["hit_rate"] < 0.1
    assert not any("prefix cache" in warning for warning in result["warnings"])
    # no speculative config on this server: no such series, and the result says so instead of a number
    assert features["speculative_decoding"] is None
    assert "no speculative-decoding counters" in features["speculative_decoding_note"]

    # Without the salt the generate pass finds the prefill pass's prompts cached, and the result says so.
    data["backend"]["isolate_prefix_cache"] = False
    data["output_dir"] = str(tmp_path / "shared-cache")
    shared = BenchmarkRunner(BenchmarkConfig.model_validate(data)).run()
    prefix = shared["model"]["server_features"]["prefix_cache"]
    assert 0.1 < prefix["hit_rate"] <= 1 and prefix["hit_tokens"] % 16 == 0  # whole blocks
    assert shared["phases"]["server"]["generate_pass_prefix_cache_hit_rate"] == prefix["hit_rate"]
    assert any("prefix cache" in warning and "biased low" in warning for warning in shared["warnings"])


@pytest.fixture(scope="module")
def vllm_speculative_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same server with n-gram speculative decoding (3 draft tokens per step: no draft model needed)."""
    yield from _serve_vllm(tmp_path_factory.mktemp("vllm-spec"), ("--spec-method", "ngram", "--spec-tokens", "3"))


def test_speculative_decoding_acceptance_from_the_real_servers_counters(
    vllm_speculative_server: str, tmp_path: Path
) -> None:
    data = make_config(vllm_speculative_server, tokens=32, tmp=tmp_path, concurrency=2).model_dump(mode="json")
    data["scenario"].update({"num_samples": 4})
    result = BenchmarkRunner(BenchmarkConfig.model_validate(data)).run()
    spec = result["model"]["server_features"]["speculative_decoding"]
    assert spec is not None, result["model"]["server_features"]["speculative_decoding_note"]
    assert 0 < spec["draft_tokens"] <= 3 * spec["drafts"]  # at most 3 draft tokens a step
    assert 0 <= spec["accepted_tokens"] <= spec["draft_tokens"]
    assert spec["acceptance_rate"] == spec["accepted_tokens"] / spec["draft_tokens"]
    assert spec["mean_accepted_tokens_per_draft"] == spec["accepted_tokens"] / spec["drafts"]
    assert result["summary"]["total_completion_tokens"] == 4 * 32  # the drafts change the speed, not the answer length


def test_answers_scored_from_the_real_servers_text(vllm_server: str, tmp_path: Path) -> None:
    """Energy per verified answer on a real server: every answer's streamed text is kept and scored after the run.
    The tiny random model cannot do arithmetic, so the scorer here is a pattern every non-empty answer matches (each
    answer has 8 forced tokens): all answers correct, and J per correct answer = the generate window's energy / 8."""
    data = make_config(vllm_server, tokens=8, tmp=tmp_path, concurrency=4).model_dump(mode="json")
    data["scenario"].update(
        {
            "dataset_name": "packaged:arithmetic",
            "num_samples": 8,
            "scorer": {"type": "regex", "pattern": "\\S"},
        }
    )
    data["metrics"] = {"enabled": True, "type": "codecarbon"}
    result = BenchmarkRunner(BenchmarkConfig.model_validate(data)).run()
    assert result["status"] == "completed"
    rows = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    generate = [row for row in rows if row["phase"] == "generate"]
    assert len(generate) == 8 and all(row["correct"] is True for row in generate)
    prompts = [json.loads(line) for line in (tmp_path / "out" / "prompts.jsonl").read_text().splitlines()]
    assert all(row["reference"] for row in prompts)  # the packaged task set's answers, read beside each prompt
    quality = result["quality"]
    assert (quality["answers"], quality["scored"], quality["correct"]) == (8, 8, 8)
    assert quality["accuracy"] == 1.0 and quality["null_reason"] is None
    energy_j = result["energy"]["total_energy_j"]
    assert energy_j is not None and energy_j > 0
    assert quality["joules_per_correct_answer"] == pytest.approx(energy_j / 8)
    assert quality["wh_per_1000_correct_answers"] == pytest.approx(energy_j / 8 / 3600 * 1000)


# -- load profiles and the adaptive sweep (issue 19) -----------------------------------------------------------------


def _slope_s(times: list[float]) -> float:
    n = len(times)
    mean_i, mean_t = (n - 1) / 2, sum(times) / n
    return sum((i - mean_i) * (t - mean_t) for i, t in enumerate(times)) / sum((i - mean_i) ** 2 for i in range(n))


def test_load_profiles_on_the_real_server(vllm_server: str) -> None:
    records, info = run_prompts(make_config(vllm_server, tokens=8, load_profile="synchronous"), PROMPTS[:6])
    assert all(r.ok for r in records) and info["load"]["load_profile"] == "synchronous"
    assert info["http"]["runs"][0]["concurrency"]["max_in_flight"] == 1
    assert all(later.start_s >= earlier.end_s for earlier, later in itertools.pairwise(records))
    rate = 8.0
    config = make_config(vllm_server, tokens=8, load_profile="constant", request_rate=rate, concurrency=16)
    records, info = run_prompts(config, PROMPTS + PROMPTS[:4])
    sent = [r.start_s - records[0].start_s for r in records]
    assert all(r.ok for r in records) and info["load"]["arrival"] == "constant"
    assert all(offset >= i / rate - 0.001 for i, offset in enumerate(sent))  # never early
    assert _slope_s(sent) == pytest.approx(1 / rate, rel=0.03)
    assert sorted(offset - i / rate for i, offset in enumerate(sent))[len(sent) // 2] < 0.005


def _sweep_config(tmp: Path, base: str, **backend: Any) -> Path:
    data = {
        "name": "vllm-adaptive",
        "output_dir": str(tmp / "out"),
        "backend": {"type": "vllm", "model": SERVED_NAME, "endpoint": base + "/v1", "concurrency": 8, **backend},
        "scenario": {
            "num_samples": 12,
            "warmup_runs": 0,
            "measure_prefill": False,
            "generate_kwargs": {"max_new_tokens": 16, "min_new_tokens": 16},
        },
        "metrics": {"enabled": True, "type": "codecarbon", "measure_power_secs": 1.0},
    }
    path = tmp / "vllm.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def test_adaptive_sweep_on_the_real_server(vllm_server: str, tmp_path: Path) -> None:
    from ai_energy_benchmarks.sweeps.adaptive import AdaptiveSweep
    from ai_energy_benchmarks.sweeps.saturation import SATURATION_CRITERIA

    outcome = AdaptiveSweep(config_path=_sweep_config(tmp_path, vllm_server), rates=2, plot=False).run()
    stop = outcome.stop
    assert stop is not None and stop.criterion in ("completed", *SATURATION_CRITERIA), stop
    names = [p.point.name for p in outcome.points]
    assert names[:2] == ["01-synchronous", "02-throughput"] and all(p.status == "completed" for p in outcome.points)
    sync, most = (outcome.loads[n].request_throughput_per_s or 0.0 for n in names[:2])
    assert most > sync and all(sync < rate < most for rate in outcome.rates_per_s)
    # Every rate ran unless one over-saturated the server, and then it was the last.
    assert len(names) == 2 + len(outcome.rates_per_s) or (stop.early and stop.point == names[-1])
    for point in outcome.points:  # each point its own run directory and energy window
        report = json.loads((point.run_dir / "benchmark_report.json").read_text(encoding="utf-8"))
        assert report["energy"]["total_energy_wh"] > 0
        assert report["model"]["load"]["load_profile"] == dict(point.point.settings)["backend.load_profile"]
    rows = (outcome.directory / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + len(names) and "over_saturated" in rows[0] and "pareto_p99" in rows[0]


def test_a_rate_beyond_the_real_servers_capacity_is_over_saturation(vllm_server: str, tmp_path: Path) -> None:
    from ai_energy_benchmarks.results.model import as_result
    from ai_energy_benchmarks.sweeps.saturation import SaturationLimits, point_load, saturation

    def run(name: str, **backend: Any) -> Any:
        data = json.loads(_sweep_config(tmp_path, vllm_server, **backend).read_text(encoding="utf-8"))
        data["output_dir"] = str(tmp_path / name)
        data["reporter"] = {"output_file": str(tmp_path / "results.csv")}
        data["metrics"] = {"enabled": False}
        data["scenario"]["num_samples"] = 32
        result = as_result(BenchmarkRunner(BenchmarkConfig.model_validate(data)).run())
        return point_load(result, tmp_path / name)

    most = run("throughput", load_profile="throughput", concurrency=16)
    assert most.request_throughput_per_s
    # Twice the server's throughput for 3 s: the queue grows for as long as the schedule lasts.
    rate = round(2 * most.request_throughput_per_s, 1)
    flooded = run("flooded", load_profile="constant", request_rate=rate, concurrency=32, duration_s=3.0)
    found = saturation(flooded, most, SaturationLimits())
    assert found is not None and found.criterion in ("queue_growing", "server_queue_growing", "ttft_diverging"), flooded
