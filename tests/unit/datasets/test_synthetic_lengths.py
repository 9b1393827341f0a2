"""Synthetic prompts of controlled lengths (``scenario.dataset_name: synthetic``) on both backends, offline: every
prompt re-tokenised with the model's tokenizer has the requested length, every request generates the drawn output
length, and everything is recorded in prompts.jsonl."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import transformers
from http_support import MODEL, runner_config

from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.pytorch import packaged_models_dir
from ai_energy_benchmarks.backends.registry import _SPECS, register_backend
from ai_energy_benchmarks.config.loader import build_config
from ai_energy_benchmarks.config.schema import BackendConfig, BenchmarkConfig, ScenarioConfig
from ai_energy_benchmarks.config.synthetic import LengthDistribution
from ai_energy_benchmarks.datasets.synthetic import TokenCounter, draw_lengths, make_synthetic_prompts
from ai_energy_benchmarks.exceptions import ConfigError, DatasetError
from ai_energy_benchmarks.runner import BenchmarkRunner
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

TINY = packaged_models_dir() / "tiny-llama"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return transformers.AutoTokenizer.from_pretrained(str(TINY))


def token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(models=[MODEL]) as fake:
        yield fake


def rows(path: Path, phase: str | None = None) -> list[dict[str, Any]]:
    data = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [row for row in data if phase is None or row["phase"] == phase]


def pytorch_config(tmp_path: Path, synthetic: dict[str, Any], **scenario: Any) -> BenchmarkConfig:
    return BenchmarkConfig.model_validate(
        {
            "output_dir": str(tmp_path / "out"),
            "backend": {"type": "pytorch", "model": "packaged:tiny-llama", "no_weights": True, "device": "cpu"},
            "scenario": {"dataset_name": "synthetic", "synthetic": synthetic, "num_samples": 6, **scenario},
            "metrics": {"enabled": False},
            "reporter": {"output_file": str(tmp_path / "r.csv")},
        }
    )


# -- lengths drawn ---------------------------------------------------------------------------------------------------
def test_each_distribution_draws_within_its_bounds_and_is_reproducible() -> None:
    def draw(spec: Any, n: int = 2000, seed: int = 1) -> list[int]:
        return draw_lengths(LengthDistribution.model_validate(spec), n, random.Random(seed))

    assert draw(64, n=3) == [64, 64, 64]
    uniform = draw({"dist": "uniform", "min": 10, "max": 20})
    assert min(uniform) == 10 and max(uniform) == 20 and uniform == draw({"dist": "uniform", "min": 10, "max": 20})
    assert uniform != draw({"dist": "uniform", "min": 10, "max": 20}, seed=2)
    normal = draw({"dist": "normal", "mean": 100, "std": 50, "min": 60, "max": 130})
    assert min(normal) == 60 and max(normal) == 130  # clipped at both ends
    assert 90 < sum(normal) / len(normal) < 110
    histogram = Counter(draw({"dist": "histogram", "bins": [[8, 3], [512, 1]]}))
    assert set(histogram) == {8, 512}
    assert 0.70 < histogram[8] / 2000 < 0.80  # weight 3 of 4


@pytest.mark.parametrize(
    ("synthetic", "message"),
    [
        ({"input_tokens": {"dist": "uniform", "min": 5}}, "scenario.synthetic.input_tokens: dist uniform needs max"),
        (
            {"input_tokens": {"dist": "fixed", "value": 5, "std": 2}},
            "scenario.synthetic.input_tokens: dist fixed takes no std (it takes value)",
        ),
        ({"input_tokens": {"dist": "uniform", "min": 9, "max": 5}}, "min (9) must not exceed max (5)"),
        ({"input_tokens": {"dist": "histogram", "bins": [[4, 0]]}}, "bins[0]: weight 0.0 must be positive"),
        ({"input_tokens": {"dist": "gauss"}}, "expected 'fixed', 'uniform', 'normal' or 'histogram', got 'gauss'"),
        ({"input_tokens": 0}, "scenario.synthetic.input_tokens.value"),
    ],
)
def test_bad_lengths_are_one_line_errors_naming_the_key(synthetic: dict[str, Any], message: str) -> None:
    data = {
        "backend": {"type": "pytorch", "model": "m"},
        "scenario": {"dataset_name": "synthetic", "synthetic": synthetic},
    }
    with pytest.raises(ConfigError) as error:
        build_config(data, "my.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_synthetic_section_and_dataset_name_go_together() -> None:
    backend = {"type": "pytorch", "model": "m"}
    with pytest.raises(ConfigError, match=r"dataset_name is synthetic: set synthetic\.input_tokens"):
        build_config({"backend": backend, "scenario": {"dataset_name": "synthetic"}}, "x")
    with pytest.raises(ConfigError, match="synthetic is set but dataset_name is 'packaged:quickstart'"):
        build_config({"backend": backend, "scenario": {"synthetic": {"input_tokens": 8}}}, "x")
    both = {"dataset_name": "synthetic", "synthetic": {"input_tokens": 8, "output_tokens": 4}}
    with pytest.raises(ConfigError, match=r"remove generate_kwargs\.max_new_tokens"):
        build_config({"backend": backend, "scenario": both | {"generate_kwargs": {"max_new_tokens": 20}}}, "x")
    # Sent as plain text unless the chat template is asked for: the length is what the model reads.
    assert (
        ScenarioConfig.model_validate({"dataset_name": "synthetic", "synthetic": both["synthetic"]}).chat_template
        is False
    )


def test_prompts_have_exactly_the_requested_tokens_even_for_tiny_and_long_lengths(tokenizer: Any) -> None:
    counter = TokenCounter("tiny", lambda texts: [token_count(tokenizer, t) for t in texts])
    scenario = ScenarioConfig(
        dataset_name="synthetic",
        num_samples=30,
        synthetic={"input_tokens": {"dist": "histogram", "bins": [[1, 1], [2, 1], [3, 1], [17, 1], [700, 1]]}},
    )
    made = make_synthetic_prompts(scenario, counter)
    assert len(set(made.prompts)) == 30  # distinct: no request is a prefix-cache copy of another
    for prompt, lengths in zip(made.prompts, made.lengths or [], strict=True):
        assert token_count(tokenizer, prompt) == lengths["input_tokens_requested"] == lengths["input_tokens"]
    assert made.prompts == make_synthetic_prompts(scenario, counter).prompts  # seeded


def test_a_tokenizer_that_cannot_make_the_length_is_a_clear_error() -> None:
    counter = TokenCounter("pairs", lambda texts: [2 * len(t.split()) for t in texts])  # only even counts exist
    scenario = ScenarioConfig(dataset_name="synthetic", num_samples=1, synthetic={"input_tokens": 7})
    with pytest.raises(DatasetError, match="cannot make prompt 0 of exactly 7 tokens with the tokenizer pairs"):
        make_synthetic_prompts(scenario, counter)


# -- PyTorch -------------------------------------------------------------------------------------------------------
def test_pytorch_run_sends_the_requested_input_and_output_lengths(tmp_path: Path, tokenizer: Any) -> None:
    synthetic = {
        "input_tokens": {"dist": "uniform", "min": 4, "max": 40},
        "output_tokens": {"dist": "uniform", "min": 2, "max": 9},
        "seed": 3,
    }
    result = BenchmarkRunner(pytorch_config(tmp_path, synthetic)).run()
    prompts = rows(tmp_path / "out" / "prompts.jsonl")
    special = len(tokenizer("x")["input_ids"]) - token_count(tokenizer, "x")  # BOS the backend adds to plain text
    generate = {row["index"]: row for row in rows(tmp_path / "out" / "requests.jsonl", "generate")}
    prefill = rows(tmp_path / "out" / "requests.jsonl", "prefill")
    for row in prompts:
        assert token_count(tokenizer, row["prompt"]) == row["input_tokens"] == row["input_tokens_requested"]
        assert generate[row["index"]]["prompt_tokens"] == row["input_tokens"] + special
        assert generate[row["index"]]["completion_tokens"] == row["output_tokens_requested"]  # exact: EOS ignored
    assert {row["completion_tokens"] for row in prefill} == {1}
    assert len({row["output_tokens_requested"] for row in prompts}) > 1
    drawn = result["dataset"]["synthetic"]
    assert drawn["tokenizer"] == "pytorch:packaged:tiny-llama"
    assert drawn["input_tokens"]["drawn"]["total"] == sum(row["input_tokens"] for row in prompts)
    assert result["summary"]["total_completion_tokens"] == sum(row["output_tokens_requested"] for row in prompts)
    assert result["phases"]["decode"]["output_tokens"] == sum(row["output_tokens_requested"] - 1 for row in prompts)
    assert result["phases"]["server"] is None  # a local model: no server times


def test_pytorch_batches_need_one_output_length(tmp_path: Path) -> None:
    varying = {"input_tokens": 8, "output_tokens": {"dist": "uniform", "min": 2, "max": 9}}
    with pytest.raises(ConfigError, match="batch_size: a batch generates one output length"):
        BenchmarkRunner(pytorch_config(tmp_path / "a", varying, input_shapes={"batch_size": 3})).run()
    fixed = {"input_tokens": {"dist": "uniform", "min": 3, "max": 12}, "output_tokens": 5}
    result = BenchmarkRunner(pytorch_config(tmp_path / "b", fixed, input_shapes={"batch_size": 3})).run()
    assert result["summary"]["total_completion_tokens"] == 6 * 5


# -- HTTP ----------------------------------------------------------------------------------------------------------
def http_synthetic(tmp_path: Path, fake: FakeOpenAIServer, synthetic: dict[str, Any], **backend: Any) -> Any:
    config = runner_config(
        tmp_path,
        fake.url,
        backend={"concurrency": 2, **backend},
        scenario={"dataset_name": "synthetic", "num_samples": 6, "warmup_runs": 0, "synthetic": synthetic},
    )
    return BenchmarkRunner(config).run()


def test_http_run_counts_with_the_servers_tokenize_and_sends_each_output_length(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    synthetic = {
        "input_tokens": {"dist": "normal", "mean": 30, "std": 10, "min": 5},
        "output_tokens": {"dist": "histogram", "bins": [[3, 1], [11, 1]]},
        "seed": 3,
    }
    result = http_synthetic(tmp_path, server, synthetic)
    assert result["dataset"]["synthetic"]["tokenizer"] == f"server:{server.url}/tokenize"
    assert server.tokenized  # the fake server's tokenizer: one token per word
    prompts = {row["prompt"]: row for row in rows(tmp_path / "out" / "prompts.jsonl")}
    generate = [body for body in server.bodies if body["max_tokens"] > 1]
    assert len(generate) == 6 and {body["max_tokens"] for body in generate} == {3, 11}
    for body in generate:
        row = prompts[body["prompt"]]
        assert len(body["prompt"].split()) == row["input_tokens"] == row["input_tokens_requested"]
        assert body["max_tokens"] == body["min_tokens"] == row["output_tokens_requested"] and body["ignore_eos"]
    for row in rows(tmp_path / "out" / "requests.jsonl", "generate"):
        assert row["completion_tokens"] in (3, 11)
    assert result["summary"]["total_completion_tokens"] == sum(r["output_tokens_requested"] for r in prompts.values())
    assert result["phases"]["prefill"]["output_tokens"] == 6  # the prefill pass: one token each


def test_http_with_output_lengths_as_upper_bounds_lets_the_model_stop(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], eos_after_tokens=4) as server:
        synthetic = {
            "input_tokens": 12,
            "output_tokens": {"dist": "uniform", "min": 6, "max": 20},
            "exact_output": False,
        }
        result = http_synthetic(tmp_path, server, synthetic)
    generate = [body for body in server.bodies if body["max_tokens"] > 1]
    assert all("min_tokens" not in body and "ignore_eos" not in body for body in generate)
    assert result["summary"]["total_completion_tokens"] == 6 * 4  # the model's own length


def test_http_with_a_named_local_tokenizer(tmp_path: Path, server: FakeOpenAIServer, tokenizer: Any) -> None:
    result = http_synthetic(
        tmp_path, server, {"input_tokens": {"dist": "uniform", "min": 3, "max": 50}}, tokenizer=str(TINY)
    )
    assert result["dataset"]["synthetic"]["tokenizer"] == f"local:{TINY}"
    assert not server.tokenized
    for row in rows(tmp_path / "out" / "prompts.jsonl"):
        assert token_count(tokenizer, row["prompt"]) == row["input_tokens_requested"]


def test_http_without_a_tokenizer_says_what_to_set(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], tokenize=False) as server, pytest.raises(ConfigError) as error:
        http_synthetic(tmp_path, server, {"input_tokens": 8}, server="openai")
    assert "synthetic prompts need the model's tokenizer: set backend.tokenizer" in str(error.value)


def test_the_same_seed_draws_the_same_lengths_on_both_backends(tmp_path: Path, server: FakeOpenAIServer) -> None:
    synthetic = {
        "input_tokens": {"dist": "uniform", "min": 2, "max": 60},
        "output_tokens": {"dist": "uniform", "min": 1, "max": 5},
    }
    http_synthetic(tmp_path / "http", server, synthetic)
    BenchmarkRunner(pytorch_config(tmp_path / "torch", synthetic)).run()

    def lengths(folder: Path) -> list[tuple[int, int]]:
        prompts = rows(folder / "out" / "prompts.jsonl")
        return [(row["input_tokens_requested"], row["output_tokens_requested"]) for row in prompts]

    assert lengths(tmp_path / "http") == lengths(tmp_path / "torch")


def test_http_when_the_profile_promises_tokenize_but_the_server_has_none(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=[MODEL], tokenize=False) as fake, pytest.raises(ConfigError) as error:
        http_synthetic(tmp_path, fake, {"input_tokens": 8})
    assert "/tokenize answered HTTP 404" in str(error.value) and "set backend.tokenizer" in str(error.value)


def test_lengths_beyond_the_models_context_are_refused_before_measuring(tmp_path: Path) -> None:
    # The packaged tiny Llama has a 512-token context (max_position_embeddings); so has the test server (max_model_len).
    too_long = {"input_tokens": {"dist": "uniform", "min": 400, "max": 500}, "output_tokens": 100}
    with pytest.raises(
        DatasetError, match=r"draws \d+ input \+ 100 output tokens, more than the model's context of 512"
    ):
        BenchmarkRunner(pytorch_config(tmp_path / "torch", too_long)).run()
    assert not (tmp_path / "torch" / "out" / "benchmark_report.json").exists()  # nothing was measured
    with (
        FakeOpenAIServer(models=[MODEL], max_model_len=512) as fake,
        pytest.raises(DatasetError, match="context of 512"),
    ):
        http_synthetic(tmp_path / "http", fake, too_long)
    assert not fake.bodies[1:]  # only the backend's one-token check request was sent


class _PluginConfig(BackendConfig):
    type: Literal["wordy"] = "wordy"
    counts_tokens: bool = True


class _PluginBackend(Backend):
    """A plugin backend: counts one token per word (when configured), generates what it is asked, and keeps the
    base class's per-prompt hook (which refuses per-prompt options)."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self.settings = _PluginConfig.of(config.backend)

    def token_counter(self) -> TokenCounter | None:
        if not self.settings.counts_tokens:
            return None
        return TokenCounter("words", lambda texts: [len(t.split()) for t in texts])

    def set_phase(self, label: str) -> None:
        pass

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        for index, prompt in enumerate(prompts):
            yield RequestRecord(index, 1, 1.0, 2.0, len(prompt.split()), int(generate_kwargs["max_new_tokens"]))

    def describe(self) -> dict[str, Any]:
        return {"model": "m"}

    def close(self) -> None:
        pass


def test_a_plugin_backend_gets_synthetic_prompts_through_the_hooks(tmp_path: Path) -> None:
    register_backend("wordy", _PluginConfig, _PluginBackend)
    try:

        def config(name: str, synthetic: dict[str, Any], **backend: Any) -> BenchmarkConfig:
            return BenchmarkConfig.model_validate(
                {
                    "output_dir": str(tmp_path / name),
                    "backend": {"type": "wordy", "model": "m", **backend},
                    "scenario": {"dataset_name": "synthetic", "synthetic": synthetic, "num_samples": 4},
                    "metrics": {"enabled": False},
                    "reporter": {"output_file": str(tmp_path / "r.csv")},
                }
            )

        fixed = {"input_tokens": {"dist": "uniform", "min": 3, "max": 30}, "output_tokens": 7}
        result = BenchmarkRunner(config("fixed", fixed)).run()
        assert result["dataset"]["synthetic"]["tokenizer"] == "words"
        assert (
            result["summary"]["total_prompt_tokens"] == result["dataset"]["synthetic"]["input_tokens"]["drawn"]["total"]
        )
        varying = fixed | {"output_tokens": {"dist": "uniform", "min": 2, "max": 9}}
        with pytest.raises(ConfigError, match="cannot vary generation options per prompt"):
            BenchmarkRunner(config("varying", varying)).run()
        with pytest.raises(ConfigError, match="backend type 'wordy' gives none"):
            BenchmarkRunner(config("none", fixed, counts_tokens=False)).run()
    finally:
        del _SPECS["wordy"]
