"""Request traces for trace replay (``scenario.trace``): JSON Lines as in the public Mooncake traces.

Each line is one request: ``timestamp`` (its arrival, in ``scenario.trace.timestamp_unit``: milliseconds by default,
as Mooncake's traces are written), ``input_length`` and ``output_length`` (tokens), and optionally ``session_id`` and
``hash_ids`` (Mooncake's prefix blocks: requests whose lists start with the same ids share that prompt prefix, one
id per ``block_tokens`` tokens). Arrivals are replayed relative to the first request, times ``scale``.

Prompts are synthesised to the trace's input lengths by :data:`synthesize_words`, a tokenizer-free method: words
from a list of short, common English words, chosen to be one token each in large BPE vocabularies, so a prompt of N
words is about N tokens. That is an approximation, not checked against those vocabularies here (none is available
offline); the packaged tiny-llama tokenizer, whose vocabulary is small, makes them 1.29 tokens per word on the
packaged trace. The server's ``usage`` gives the real count, and the result reports the difference. A prompt's
first ``len(hash_ids) * block_tokens`` words come block by block from each hash id (seeded
by it), so shared ids give the same prefix text and exercise the server's prefix cache as the trace did. A
tokenizer-exact synthesiser can replace it: :func:`synthesize_prompts` takes any :data:`PromptSynthesizer`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.config.sessions import TraceConfig
from ai_energy_benchmarks.datasets.packaged import PACKAGED_PREFIX, packaged_names, packaged_or_local_file
from ai_energy_benchmarks.exceptions import DatasetError

#: How prompts are made (the result's ``workload.prompt_method``).
WORDS_METHOD = "words: one common English word per token (approximate; tokenizer-free)"

#: Short, common English words, chosen to be one token each (with their leading space) in large BPE vocabularies.
_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "that",
    "it",
    "are",
    "be",
    "or",
    "an",
    "which",
    "one",
    "all",
    "were",
    "we",
    "can",
    "has",
    "more",
    "time",
    "new",
    "year",
    "will",
    "day",
    "work",
    "water",
    "city",
    "house",
    "light",
    "river",
    "world",
    "people",
    "life",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "point",
    "number",
    "group",
    "home",
    "game",
    "line",
    "end",
    "state",
    "school",
    "family",
    "story",
    "book",
    "room",
    "music",
    "food",
    "land",
    "road",
    "tree",
]


@dataclass(frozen=True)
class TraceEntry:
    """One request of a trace: arrival offset (s, after the first request, scaled), token lengths, session, blocks."""

    offset_s: float
    input_length: int
    output_length: int
    session_id: str | None = None
    hash_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Trace:
    """The requests a replay sends, their synthesised prompts and where they came from."""

    entries: list[TraceEntry]
    prompts: list[str]
    source: str
    num_available: int
    timestamp_unit: str
    scale: float
    prompt_method: str = WORDS_METHOD
    warnings: list[str] = field(default_factory=list)


#: ``(input_length, hash_ids, block_tokens, index) -> prompt text``: makes one request's prompt.
PromptSynthesizer = Callable[[int, Sequence[int], int, int], str]


def synthesize_words(input_length: int, hash_ids: Sequence[int], block_tokens: int, index: int) -> str:
    """A prompt of ``input_length`` words: the hash ids' blocks (each ``block_tokens`` words seeded by its id),
    then words unique to request ``index``; cut to ``input_length`` words."""
    words: list[str] = []
    for block in hash_ids:
        if len(words) >= input_length:
            break
        rng = random.Random(f"block-{block}")
        words.extend(rng.choice(_WORDS) for _ in range(block_tokens))
    if len(words) < input_length:
        rng = random.Random(f"request-{index}")
        words.extend(rng.choice(_WORDS) for _ in range(input_length - len(words)))
    return " ".join(words[:input_length])


def synthesize_prompts(
    entries: Sequence[TraceEntry], block_tokens: int, synthesizer: PromptSynthesizer = synthesize_words
) -> list[str]:
    """Each entry's prompt from ``synthesizer``."""
    return [synthesizer(e.input_length, e.hash_ids, block_tokens, i) for i, e in enumerate(entries)]


def packaged_traces() -> list[str]:
    """Names usable as ``scenario.trace.path: packaged:NAME``."""
    return packaged_names("traces")


def trace_path(path: str) -> Path:
    """The file ``scenario.trace.path`` names (checked to exist)."""
    return packaged_or_local_file(path, "traces", "scenario.trace.path", "trace")


def _number(row: dict[str, Any], key: str, where: str, minimum: float) -> float:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise DatasetError(f"{where}: '{key}' must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _length(row: dict[str, Any], key: str, where: str) -> int:
    value = _number(row, key, where, 1)
    if value != int(value):
        raise DatasetError(f"{where}: '{key}' must be a whole number of tokens, got {row[key]!r}")
    return int(value)


def read_trace(path: Path, unit: str, scale: float, max_requests: int | None) -> tuple[list[TraceEntry], int]:
    """The entries of a trace file (offsets in s from its first request, times ``scale``) and its total count."""
    factor = (0.001 if unit == "ms" else 1.0) * scale
    rows: list[tuple[float, int, int, str | None, tuple[int, ...]]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text") from None
    previous = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected an object per line, got {type(row).__name__}")
        timestamp = _number(row, "timestamp", where, 0)
        if previous is not None and timestamp < previous:
            raise DatasetError(f"{where}: timestamp {row['timestamp']} is earlier than the line before's")
        previous = timestamp
        hash_ids = row.get("hash_ids") or []
        if not isinstance(hash_ids, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hash_ids):
            raise DatasetError(f"{where}: 'hash_ids' must be a list of integers")
        session = row.get("session_id")
        rows.append(
            (
                timestamp,
                _length(row, "input_length", where),
                _length(row, "output_length", where),
                None if session is None else str(session),
                tuple(hash_ids),
            )
        )
    if not rows:
        raise DatasetError(f"scenario.trace.path: {path} holds no request")
    first = rows[0][0]
    chosen = rows if max_requests is None else rows[:max_requests]
    entries = [TraceEntry((t - first) * factor, i, o, s, h) for t, i, o, s, h in chosen]
    return entries, len(rows)


def load_trace(config: TraceConfig, synthesizer: PromptSynthesizer = synthesize_words) -> Trace:
    """The trace ``config`` names, with a prompt synthesised per request.

    Raises:
        DatasetError: a missing file, a line that is not JSON, a missing or negative field, timestamps out of order.
    """
    path = trace_path(config.path)
    source = config.path if config.path.startswith(PACKAGED_PREFIX) else str(path.resolve())
    entries, available = read_trace(path, config.timestamp_unit, config.scale, config.max_requests)
    prompts = synthesize_prompts(entries, config.block_tokens, synthesizer)
    return Trace(entries, prompts, source, available, config.timestamp_unit, config.scale)


def generate_trace(
    sessions: int = 4, turns: int = 5, singles: int = 6, seed: int = 18, span_ms: int = 3000
) -> list[dict[str, Any]]:
    """A small synthetic trace in Mooncake's shape (the packaged ``tiny_trace`` is this with the defaults).

    ``sessions`` sessions of ``turns`` requests each, whose input grows turn by turn over one shared prefix block
    (``hash_ids: [block]``, the session's own), and ``singles`` requests without a session or block; arrivals spread
    over ``span_ms`` milliseconds, integer timestamps.
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for session in range(sessions):
        start = rng.randint(0, span_ms // 3)
        length = rng.randint(16, 32)
        for turn in range(turns):
            timestamp = start + turn * rng.randint(span_ms // (2 * turns), span_ms // turns)
            row = {
                "timestamp": timestamp,
                "input_length": length,
                "output_length": rng.randint(4, 12),
                "session_id": f"s{session}",
                "hash_ids": [1000 + session],
            }
            rows.append(row)
            length += rng.randint(12, 24)
    for _ in range(singles):
        rows.append(
            {
                "timestamp": rng.randint(0, span_ms),
                "input_length": rng.randint(8, 48),
                "output_length": rng.randint(4, 12),
            }
        )
    rows.sort(key=lambda r: r["timestamp"])
    return rows


__all__ = [
    "WORDS_METHOD",
    "PromptSynthesizer",
    "Trace",
    "TraceEntry",
    "generate_trace",
    "load_trace",
    "packaged_traces",
    "read_trace",
    "synthesize_prompts",
    "synthesize_words",
    "trace_path",
]
