"""``packaged:NAME`` or a file: the prompt sets, conversation sets and traces shipped with the package are found by
one lookup, and a wrong name or path gets the same one-line message at its own setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.datasets.conversations import conversations_path, packaged_conversation_sets
from ai_energy_benchmarks.datasets.loader import packaged_prompt_sets, prompt_source
from ai_energy_benchmarks.datasets.traces import packaged_traces, trace_path
from ai_energy_benchmarks.exceptions import DatasetError


def test_each_packaged_folder_lists_its_own_names_and_finds_their_files() -> None:
    assert {"quickstart", "arithmetic"} <= set(packaged_prompt_sets())
    assert "tiny_chat" in packaged_conversation_sets() and "tiny_trace" in packaged_traces()
    assert not set(packaged_prompt_sets()) & set(packaged_conversation_sets())
    chat = conversations_path("packaged:tiny_chat")
    trace = trace_path("packaged:tiny_trace")
    kind, prompts = prompt_source(ScenarioConfig(dataset_name="packaged:quickstart"))
    assert kind == "packaged" and prompts is not None
    assert (prompts.parent.name, prompts.name) == ("prompts", "quickstart.jsonl")
    assert (chat.parent.name, chat.name) == ("conversations", "tiny_chat.jsonl") and chat.is_file()
    assert (trace.parent.name, trace.name) == ("traces", "tiny_trace.jsonl") and trace.is_file()


def test_a_local_file_is_taken_as_it_is_and_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mine.jsonl").write_text("{}\n", encoding="utf-8")
    assert conversations_path("~/mine.jsonl") == tmp_path / "mine.jsonl"
    assert trace_path(str(tmp_path / "mine.jsonl")) == tmp_path / "mine.jsonl"


@pytest.mark.parametrize(
    ("look_up", "value", "message"),
    [
        (
            conversations_path,
            "packaged:nope",
            "scenario.multi_turn.dataset: no packaged conversation set 'nope' (available: tiny_chat)",
        ),
        (conversations_path, "./missing.jsonl", "scenario.multi_turn.dataset: file './missing.jsonl' not found"),
        (trace_path, "packaged:nope", "scenario.trace.path: no packaged trace 'nope' (available: tiny_trace)"),
        (trace_path, "./missing.jsonl", "scenario.trace.path: file './missing.jsonl' not found"),
        (
            lambda value: prompt_source(ScenarioConfig(dataset_name=value)),
            "packaged:nope",
            "scenario.dataset_name: no packaged prompt set 'nope' (available: arithmetic, quickstart)",
        ),
    ],
)
def test_a_wrong_name_or_path_is_one_line_at_its_setting(look_up: object, value: str, message: str) -> None:
    with pytest.raises(DatasetError) as error:
        look_up(value)  # type: ignore[operator]
    assert str(error.value) == message
