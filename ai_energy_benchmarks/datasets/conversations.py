"""Conversations for the multi-turn workload (``scenario.multi_turn``): ShareGPT-style JSON Lines.

Each line is one conversation, either ShareGPT's ``{"conversations": [{"from": "human" | "gpt" | "system", "value":
...}, ...]}`` or the OpenAI shape ``{"messages": [{"role": "user" | "assistant" | "system", "content": ...}, ...]}``,
with an optional ``id``. A conversation is a system message (optional) and user turns, each followed by the dataset's
answer (the last user turn may have none). Leading assistant messages are dropped; a conversation whose user and
assistant messages do not alternate is skipped and counted in the warnings (real ShareGPT dumps hold some).
``packaged:NAME`` reads ``ai_energy_benchmarks/data/conversations/NAME.jsonl``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.config.sessions import MultiTurnConfig
from ai_energy_benchmarks.datasets.packaged import PACKAGED_PREFIX, packaged_names, packaged_or_local_file
from ai_energy_benchmarks.exceptions import DatasetError

logger = logging.getLogger(__name__)

_USER = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bard", "bing", "model"}


@dataclass(frozen=True)
class Conversation:
    """One conversation: its id, optional system message, and its user turns with the dataset's answers."""

    id: str
    user_turns: list[str]
    #: The dataset's answer after each user turn (None where the dataset has none).
    dataset_answers: list[str | None]
    system: str | None = None


@dataclass(frozen=True)
class ConversationSet:
    """The conversations a run sends, where they came from, and what was skipped."""

    conversations: list[Conversation]
    source: str
    num_available: int
    warnings: list[str] = field(default_factory=list)

    @property
    def num_turns(self) -> int:
        """User turns sent in one pass."""
        return sum(len(c.user_turns) for c in self.conversations)


def packaged_conversation_sets() -> list[str]:
    """Names usable as ``scenario.multi_turn.dataset: packaged:NAME``."""
    return packaged_names("conversations")


def conversations_path(dataset: str) -> Path:
    """The file ``scenario.multi_turn.dataset`` names (checked to exist)."""
    return packaged_or_local_file(dataset, "conversations", "scenario.multi_turn.dataset", "conversation set")


def _messages(row: Any, where: str) -> list[tuple[str, str]]:
    """(role, text) pairs of one record, roles normalised to system / user / assistant."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected an object per line, got {type(row).__name__}")
    if isinstance(row.get("conversations"), list):
        items, role_key, text_key = row["conversations"], "from", "value"
    elif isinstance(row.get("messages"), list):
        items, role_key, text_key = row["messages"], "role", "content"
    else:
        raise DatasetError(f"{where}: no 'conversations' or 'messages' list (keys: {', '.join(map(str, row))})")
    pairs: list[tuple[str, str]] = []
    for number, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(text_key), str):
            raise DatasetError(f"{where}: message {number} has no '{text_key}' text")
        raw = str(item.get(role_key, "")).lower()
        role = "user" if raw in _USER else "assistant" if raw in _ASSISTANT else "system" if raw == "system" else None
        if role is None:
            raise DatasetError(f"{where}: message {number} has an unknown {role_key} '{item.get(role_key)}'")
        pairs.append((role, item[text_key]))
    return pairs


def _conversation(pairs: list[tuple[str, str]], ident: str) -> Conversation | None:
    """The conversation of ``pairs``, or None when its turns do not alternate (or it has no user turn)."""
    system = None
    if pairs and pairs[0][0] == "system":
        system = pairs[0][1]
        pairs = pairs[1:]
    while pairs and pairs[0][0] == "assistant":
        pairs = pairs[1:]
    users: list[str] = []
    answers: list[str | None] = []
    for position, (role, text) in enumerate(pairs):
        expected = "user" if position % 2 == 0 else "assistant"
        if role != expected:
            return None
        if role == "user":
            users.append(text)
            answers.append(None)
        else:
            answers[-1] = text
    if not users or not all(u.strip() for u in users):
        return None
    return Conversation(id=ident, user_turns=users, dataset_answers=answers, system=system)


def load_conversations(config: MultiTurnConfig, num_conversations: int) -> ConversationSet:
    """The first ``num_conversations`` usable conversations of ``config.dataset``, cut to ``config.max_turns``.

    Raises:
        DatasetError: a missing file, a line that is not JSON or not a conversation, or no usable conversation.
    """
    path = conversations_path(config.dataset)
    source = config.dataset if config.dataset.startswith(PACKAGED_PREFIX) else str(path.resolve())
    usable: list[Conversation] = []
    skipped = 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: invalid JSON ({exc.msg})") from None
        ident = str(row.get("id", number)) if isinstance(row, dict) else str(number)
        conversation = _conversation(_messages(row, where), ident)
        if conversation is None:
            skipped += 1
            continue
        if config.max_turns is not None:
            conversation = Conversation(
                conversation.id,
                conversation.user_turns[: config.max_turns],
                conversation.dataset_answers[: config.max_turns],
                conversation.system,
            )
        usable.append(conversation)
    if not usable:
        raise DatasetError(f"scenario.multi_turn.dataset: {source} holds no usable conversation")
    warnings: list[str] = []
    if skipped:
        warnings.append(f"{source}: {skipped} conversation(s) skipped (user and assistant turns do not alternate)")
    if num_conversations > len(usable):
        warnings.append(
            f"scenario.num_samples is {num_conversations} but {source} holds {len(usable)} usable conversations; "
            f"using all {len(usable)}"
        )
    for message in warnings:
        logger.warning(message)
    return ConversationSet(usable[:num_conversations], source, len(usable), warnings)


def history_messages(
    conversation: Conversation, turn: int, answers: list[str | None], history: str
) -> list[dict[str, str]]:
    """The chat messages sent for user turn ``turn`` (0-based): system, then every earlier user turn with its answer
    (``answers[i]``, the model's own, for ``history: model``; the dataset's for ``history: dataset``), then the turn.

    An earlier turn without an answer (the model's failed, or the dataset has none) is sent without one.
    """
    messages: list[dict[str, str]] = []
    if conversation.system is not None:
        messages.append({"role": "system", "content": conversation.system})
    for earlier in range(turn):
        messages.append({"role": "user", "content": conversation.user_turns[earlier]})
        answer = answers[earlier] if history == "model" else conversation.dataset_answers[earlier]
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": conversation.user_turns[turn]})
    return messages


def with_history(formatted: list[dict[str, Any]], history: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The messages of one turn: ``formatted`` (the turn's own messages as the reasoning format makes them: its system
    messages, the user message, perhaps an assistant prefix) with ``history`` (the conversation's earlier messages,
    its own system message first) put after the format's system messages and before the rest."""
    system = [m for m in formatted if m.get("role") == "system"]
    return system + list(history) + [m for m in formatted if m.get("role") != "system"]


__all__ = [
    "Conversation",
    "ConversationSet",
    "conversations_path",
    "history_messages",
    "load_conversations",
    "packaged_conversation_sets",
    "with_history",
]
