"""Session workloads: what a run sends when it is not one independent request per prompt.

``multi_turn`` (conversations sent turn by turn, :mod:`.conversations`) and ``trace`` (a request trace replayed at its
arrival times, :mod:`.traces`). A backend that runs them lists their kinds in ``Backend.workloads`` and runs them in
``Backend.run_workload``; the runner measures them in the generate window only (no prefill pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.datasets.conversations import ConversationSet, conversations_path, load_conversations
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.datasets.traces import PromptSynthesizer, Trace, load_trace, trace_path


@dataclass(frozen=True)
class Workload:
    """A session workload: conversations (``multi_turn``) or a trace (``trace``)."""

    kind: Literal["multi_turn", "trace"]
    conversations: ConversationSet | None = None
    #: ``model`` or ``dataset``: whose answers are sent as history (multi_turn).
    history: str = "model"
    trace: Trace | None = None

    def prompt_set(self, num_requested: int) -> PromptSet:
        """The prompts as the rest of the run sees them (``prompts.jsonl``, the warm-up): every user turn in order,
        or the trace's synthesised prompts."""
        if self.conversations is not None:
            turns = [text for c in self.conversations.conversations for text in c.user_turns]
            c = self.conversations
            return PromptSet(turns, c.source, num_requested, c.num_available, list(c.warnings))
        assert self.trace is not None
        t = self.trace
        return PromptSet(list(t.prompts), t.source, num_requested, t.num_available, list(t.warnings))

    def prompt_rows(self) -> list[dict[str, Any]]:
        """``prompts.jsonl``'s rows: each user turn with its conversation and turn (the history is added when it
        is sent), or each trace request's prompt with its arrival offset (s), lengths and session."""
        if self.conversations is not None:
            turns = [
                (c.id, turn, text) for c in self.conversations.conversations for turn, text in enumerate(c.user_turns)
            ]
            return [
                {"index": i, "prompt": text, "conversation_id": ident, "turn": turn}
                for i, (ident, turn, text) in enumerate(turns)
            ]
        assert self.trace is not None
        return [
            {
                "index": i,
                "prompt": prompt,
                "offset_s": entry.offset_s,
                "input_length": entry.input_length,
                "output_length": entry.output_length,
                "session_id": entry.session_id,
            }
            for i, (prompt, entry) in enumerate(zip(self.trace.prompts, self.trace.entries, strict=True))
        ]


def workload_kind(scenario: ScenarioConfig) -> str | None:
    """``multi_turn``, ``trace`` or None (single prompts), checking that the file named exists."""
    if scenario.multi_turn.enabled:
        conversations_path(scenario.multi_turn.dataset)
        return "multi_turn"
    if scenario.trace.enabled:
        trace_path(scenario.trace.path)
        return "trace"
    return None


def load_workload(scenario: ScenarioConfig, synthesizer: PromptSynthesizer | None = None) -> Workload | None:
    """The session workload ``scenario`` asks for, loaded, or None for single prompts. ``synthesizer`` makes a trace's
    prompts (default: :func:`~.traces.synthesize_words`, tokenizer-free)."""
    if scenario.multi_turn.enabled:
        conversations = load_conversations(scenario.multi_turn, scenario.num_samples)
        return Workload("multi_turn", conversations=conversations, history=scenario.multi_turn.history)
    if scenario.trace.enabled:
        trace = load_trace(scenario.trace) if synthesizer is None else load_trace(scenario.trace, synthesizer)
        return Workload("trace", trace=trace)
    return None


__all__ = ["Workload", "load_workload", "workload_kind"]
