"""Reasoning formats and chat templates: exact messages and fields, and what a local model is really sent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.backends.pytorch import packaged_models_dir
from ai_energy_benchmarks.config.loader import build_config
from ai_energy_benchmarks.config.parser import BackendConfig, BenchmarkConfig, MetricsConfig, ReporterConfig
from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter
from ai_energy_benchmarks.formatters.registry import FormatterRegistry
from ai_energy_benchmarks.runner import BenchmarkRunner

# A chat template that shows every reasoning switch it receives, like real reasoning-model templates do.
TEMPLATE = (
    "{% if reasoning_effort is defined %}Reasoning: {{ reasoning_effort }}\n{% endif %}"
    "{% if enable_thinking is defined %}Thinking: {{ 'on' if enable_thinking else 'off' }}\n{% endif %}"
    "{% if thinking_budget is defined %}Budget: {{ thinking_budget }}\n{% endif %}"
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def test_aienergyscore_import_names() -> None:
    from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter as Imported
    from ai_energy_benchmarks.formatters.registry import FormatterRegistry as Registry

    formatter = Registry().get_formatter("openai/gpt-oss-20b")
    assert isinstance(formatter, Imported)
    text = formatter.format_prompt("Why is the sky blue?", {"reasoning_effort": "high"})
    assert "Reasoning: high" in text and "<|start|>user<|message|>Why is the sky blue?<|end|>" in text
    assert formatter.get_generation_params({"reasoning_effort": "low"}) == {}


@pytest.mark.parametrize(
    ("model", "has_formatter"),
    [
        ("openai/gpt-oss-20b", True),
        ("HuggingFaceTB/SmolLM3-3B", True),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", True),
        ("deepseek-ai/DeepSeek-V3", True),  # 0.0.4 matched every "deepseek"
        ("tencent/Hunyuan-A13B-Instruct", True),
        ("nvidia/NVIDIA-Nemotron-Nano-9B-v2", True),
        ("microsoft/Phi-4-reasoning", True),
        ("google/gemma-3-27b-it", True),
        ("LGAI-EXAONE/EXAONE-4.0-32B", True),
        ("Qwen/Qwen3-8B", False),  # 0.0.4 knew Qwen but left the switch to the chat template: None
        ("meta-llama/Llama-3.1-8B-Instruct", False),
        ("gpt2", False),
        ("ByteDance-Seed/Seed-OSS-36B-Instruct", False),
    ],
)
def test_get_formatter_returns_none_where_0_0_4_did(model: str, has_formatter: bool) -> None:
    """AIEnergyScore branches on ``get_formatter(model) is None`` (and ``_find_model_config``), as 0.0.4 taught it."""
    registry = FormatterRegistry()
    formatter = registry.get_formatter(model)
    assert (formatter is not None) is has_formatter
    assert registry.get_formatter(model) is formatter  # cached per model, as 0.0.4 did
    known = registry._find_model_config(model) is not None
    assert known is (has_formatter or "qwen" in model.lower())
    # Our own backends always get a formatter, whatever 0.0.4 returned.
    assert registry.formatter_for(model) is not None


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("openai/gpt-oss-20b", "harmony"),
        ("openai/gpt-oss-120b", "harmony"),
        ("Qwen/Qwen3-8B", "template_param"),
        ("HuggingFaceTB/SmolLM3-3B", "system_flag"),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "think_prefix"),
        ("ByteDance-Seed/Seed-OSS-36B-Instruct", "template_param"),
        ("gpt2", "plain"),
        ("packaged:tiny-llama", "plain"),
    ],
)
def test_family_chosen_from_the_model_name(model: str, family: str) -> None:
    assert FormatterRegistry().formatter_for(model).family == family


def test_explicit_family_overrides_and_unknown_family_is_rejected() -> None:
    assert FormatterRegistry().formatter_for("gpt2", "harmony").family == "harmony"
    with pytest.raises(ConfigError, match=r"scenario\.reasoning_format: unknown family 'harmonica'"):
        FormatterRegistry().formatter_for("gpt2", "harmonica")


def test_harmony_effort_fields() -> None:
    formatted = HarmonyFormatter().format("Q", True, {"reasoning_effort": "high"})
    assert formatted.messages == [{"role": "user", "content": "Q"}]
    assert formatted.chat_template_kwargs == {"reasoning_effort": "high"}
    assert formatted.server_fields() == {
        "reasoning_effort": "high",
        "chat_template_kwargs": {"reasoning_effort": "high"},
    }
    assert "extra_body" not in formatted.server_fields()
    assert HarmonyFormatter({"default_effort": "medium"}).format("Q", True).request_fields == {
        "reasoning_effort": "medium"
    }
    assert HarmonyFormatter().format("Q", False).request_fields == {"reasoning_effort": "low"}
    with pytest.raises(ConfigError, match="expected one of low, medium, high, got 'extreme'"):
        HarmonyFormatter().format("Q", True, {"reasoning_effort": "extreme"})


def test_system_flag_goes_in_the_system_message_not_the_user_text() -> None:
    formatter = FormatterRegistry().formatter_for("HuggingFaceTB/SmolLM3-3B")
    on = formatter.format("Q", True, {"system_prompt": "Be brief."})
    assert on.messages == [{"role": "system", "content": "/think\nBe brief."}, {"role": "user", "content": "Q"}]
    off = formatter.format("Q", False)
    assert off.messages == [{"role": "system", "content": "/no_think"}, {"role": "user", "content": "Q"}]
    assert off.server_fields() == {}


def test_template_parameter_and_budget() -> None:
    qwen = FormatterRegistry().formatter_for("Qwen/Qwen3-8B")
    assert qwen.format("Q", True).server_fields() == {"chat_template_kwargs": {"enable_thinking": True}}
    assert qwen.format("Q", False).chat_template_kwargs == {"enable_thinking": False}
    with pytest.raises(ConfigError, match="no thinking budget parameter"):
        qwen.format("Q", True, {"thinking_budget": 512})
    seed = FormatterRegistry().formatter_for("ByteDance-Seed/Seed-OSS-36B-Instruct")
    assert seed.format("Q", True, {"thinking_budget": "512"}).chat_template_kwargs == {
        "enable_thinking": True,
        "thinking_budget": 512,
    }
    for bad in (1.7, True, "abc", 0):
        with pytest.raises(ConfigError, match="thinking_budget: expected a positive whole number of tokens"):
            seed.format("Q", True, {"thinking_budget": bad})


@pytest.mark.parametrize(
    "model", ["openai/gpt-oss-20b", "HuggingFaceTB/SmolLM3-3B", "deepseek-ai/DeepSeek-R1", "gpt2", "Qwen/Qwen3-8B"]
)
def test_a_thinking_budget_no_family_parameter_can_carry_is_refused(model: str) -> None:
    formatter = FormatterRegistry().formatter_for(model)
    with pytest.raises(ConfigError, match=rf"thinking_budget: the {formatter.family} reasoning family has no thinking"):
        formatter.format("Q", True, {"thinking_budget": 100})


@pytest.mark.parametrize(
    ("scenario", "reasoning"),
    [
        ({"reasoning_params": {"enable_thinking": True}}, True),
        ({"reasoning_params": {"enable_thinking": "true"}}, True),  # a command-line override is a string
        ({"reasoning_params": {"reasoning": True}}, True),
        ({"reasoning_params": {"enable_thinking": False}}, False),
        ({"reasoning": True, "reasoning_params": {"enable_thinking": True}}, True),
        ({"reasoning": True}, True),
        ({}, False),
    ],
)
def test_the_reasoning_switch_may_come_as_a_reasoning_parameter(scenario: dict[str, Any], reasoning: bool) -> None:
    """AIEnergyScore passes `reasoning_params: {enable_thinking: true}` (or `{reasoning: true}`)."""
    assert ScenarioConfig.model_validate(scenario).reasoning is reasoning


def test_contradicting_reasoning_switches_are_refused() -> None:
    message = r"scenario: reasoning_params\.enable_thinking is false but reasoning is true"
    with pytest.raises(ConfigError, match=message):
        build_config({"scenario": {"reasoning": True, "reasoning_params": {"enable_thinking": False}}}, "test")
    message = r"scenario: reasoning_params\.enable_thinking is true but reasoning is false"
    with pytest.raises(ConfigError, match=message):
        build_config({"scenario": {"reasoning": False, "reasoning_params": {"enable_thinking": True}}}, "test")
    with pytest.raises(ConfigError, match=r"reasoning_params\.reasoning must be true or false, got 'maybe'"):
        build_config({"scenario": {"reasoning_params": {"reasoning": "maybe"}}}, "test")


def test_think_prefix_only_when_reasoning() -> None:
    formatter = FormatterRegistry().formatter_for("deepseek-ai/DeepSeek-R1-Distill-Llama-8B")
    assert formatter.format("Q", True).assistant_prefix == "<think>\n"
    assert formatter.format("Q", False).assistant_prefix == ""


def sent_prompts(tmp_path: Path, model_name: str, template: str | None, **scenario: Any) -> list[dict[str, Any]]:
    """Run a 2-prompt benchmark on the tiny model under ``model_name`` and return prompts.jsonl."""
    model_dir = tmp_path / model_name
    shutil.copytree(packaged_models_dir() / "tiny-llama", model_dir)
    tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    if template is None:
        tokenizer_config.pop("chat_template", None)
    else:
        tokenizer_config["chat_template"] = template
    (model_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    config = BenchmarkConfig(
        output_dir=str(tmp_path / "out"),
        backend=BackendConfig(model=str(model_dir), no_weights=True, device="cpu"),
        scenario={"num_samples": 2, "generate_kwargs": {"max_new_tokens": 2, "min_new_tokens": 2}, **scenario},
        metrics=MetricsConfig(enabled=False),
        reporter=ReporterConfig(output_file=str(tmp_path / "r.csv")),
    )
    result = BenchmarkRunner(config).run()
    assert result["status"] == "completed"
    lines = (tmp_path / "out" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_local_model_gets_enable_thinking_through_its_template(tmp_path: Path) -> None:
    rows = sent_prompts(tmp_path, "Qwen3-tiny", TEMPLATE, reasoning=True)
    assert rows[0]["sent"] == f"Thinking: on\nuser: {rows[0]['prompt']}\nassistant:"


def test_local_model_gets_reasoning_effort_through_its_template(tmp_path: Path) -> None:
    rows = sent_prompts(
        tmp_path, "gpt-oss-tiny", TEMPLATE, reasoning=True, reasoning_params={"reasoning_effort": "high"}
    )
    assert rows[0]["sent"] == f"Reasoning: high\nuser: {rows[0]['prompt']}\nassistant:"


def test_local_model_gets_system_flag_and_think_prefix(tmp_path: Path) -> None:
    rows = sent_prompts(tmp_path / "a", "SmolLM3-tiny", TEMPLATE, reasoning=False)
    assert rows[1]["sent"] == f"system: /no_think\nuser: {rows[1]['prompt']}\nassistant:"
    rows = sent_prompts(tmp_path / "b", "DeepSeek-R1-tiny", TEMPLATE, reasoning=True)
    assert rows[0]["sent"] == f"user: {rows[0]['prompt']}\nassistant:<think>\n"


def test_think_prefix_is_not_doubled_when_the_template_already_opens_with_it(tmp_path: Path) -> None:
    """DeepSeek-R1's own templates end the generation prompt with `<think>`; the prefix is then not added again."""
    template = TEMPLATE.replace("assistant:{% endif %}", "assistant:<think>\n{% endif %}")
    rows = sent_prompts(tmp_path, "DeepSeek-R1-tiny", template, reasoning=True)
    assert rows[0]["sent"] == f"user: {rows[0]['prompt']}\nassistant:<think>\n"


def test_local_model_gets_the_thinking_budget_through_its_template(tmp_path: Path) -> None:
    rows = sent_prompts(tmp_path, "Seed-OSS-tiny", TEMPLATE, reasoning=True, reasoning_params={"thinking_budget": 256})
    assert rows[0]["sent"] == f"Thinking: on\nBudget: 256\nuser: {rows[0]['prompt']}\nassistant:"


def test_local_gpt_oss_without_a_chat_template_gets_the_harmony_text(tmp_path: Path) -> None:
    rows = sent_prompts(tmp_path, "gpt-oss-tiny", None, reasoning=True, reasoning_params={"reasoning_effort": "low"})
    assert rows[0]["sent"] == (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Reasoning: low\n\n# Valid channels: analysis, commentary, final. Channel must be included for every "
        f"message.<|end|><|start|>user<|message|>{rows[0]['prompt']}<|end|><|start|>assistant"
    )


def test_local_model_refuses_server_request_fields(tmp_path: Path) -> None:
    generate_kwargs = {"max_new_tokens": 2, "min_new_tokens": 2, "extra_body": {"top_k": 5}}
    with pytest.raises(ConfigError, match=r"^scenario\.generate_kwargs\.extra_body: request fields for a server"):
        sent_prompts(tmp_path, "plain-tiny", TEMPLATE, generate_kwargs=generate_kwargs)


def test_plain_text_when_chat_template_is_off_or_absent(tmp_path: Path) -> None:
    rows = sent_prompts(tmp_path / "a", "plain-tiny", TEMPLATE, chat_template=False)
    assert rows[0]["sent"] == rows[0]["prompt"]
    rows = sent_prompts(tmp_path / "b", "none-tiny", None)
    assert rows[0]["sent"] == rows[0]["prompt"]


def test_chat_template_required_but_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scenario\.chat_template is true but the tokenizer .* has no chat template"):
        sent_prompts(tmp_path, "none-tiny", None, chat_template=True)
