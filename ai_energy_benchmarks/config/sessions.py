"""The ``scenario.multi_turn`` and ``scenario.trace`` sections: conversations sent turn by turn, and a request trace
replayed at its arrival times (see docs/workloads.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ai_energy_benchmarks.config.coerce import Section as _Section


class MultiTurnConfig(_Section):
    """Conversations (ShareGPT-style JSONL), each user turn sent with the conversation's history so far.

    ``scenario.num_samples`` is the number of conversations; turns within one conversation are sent one after
    another, conversations run side by side up to the backend's concurrency (the PyTorch backend runs one at a time).
    """

    enabled: bool = Field(False, description="Run conversations turn by turn instead of single prompts.")
    dataset: str = Field(
        "packaged:tiny_chat",
        min_length=1,
        description="`packaged:NAME` (conversations shipped with the package) or a local JSONL file with "
        "`conversations` (`from`: human/gpt) or `messages` (`role`: user/assistant) per line.",
    )
    history: Literal["model", "dataset"] = Field(
        "model",
        description="The assistant turns sent as history: the model's own earlier answers (`model`) or the "
        "dataset's (`dataset`).",
    )
    max_turns: int | None = Field(None, ge=1, description="Send at most this many user turns per conversation.")


class TraceConfig(_Section):
    """A request trace (JSONL: `timestamp`, `input_length`, `output_length`, optional `session_id`, `hash_ids`)
    replayed at its arrival times, each request's output length fixed to the trace's."""

    enabled: bool = Field(False, description="Replay the trace instead of sending prompts as fast as allowed.")
    path: str = Field(
        "packaged:tiny_trace",
        min_length=1,
        description="`packaged:NAME` (traces shipped with the package) or a local JSONL file.",
    )
    timestamp_unit: Literal["ms", "s"] = Field(
        "ms", description="Unit of `timestamp` (Mooncake's public traces use milliseconds)."
    )
    scale: float = Field(
        1.0, gt=0, description="Time scale of the arrivals: 0.5 replays twice as fast, 2 half as fast."
    )
    max_requests: int | None = Field(
        None, ge=1, description="Replay only the first N requests of the trace (unset: all of it)."
    )
    block_tokens: int = Field(
        512, ge=1, description="Tokens per `hash_ids` block (Mooncake: 512): equal ids give equal prompt text."
    )
