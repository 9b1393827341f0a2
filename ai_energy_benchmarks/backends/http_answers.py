"""Checks of a streamed answer against its request and its own stream: the output token count to believe and the
contradictions (``usage`` above ``max_tokens``, fewer tokens than asked for, another model's name, ...)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ai_energy_benchmarks.backends.http_stream import Attempt

# -- contradictions in an answer that succeeded (the request stays ok; flagged and counted) -------------------------
#: ``usage.completion_tokens`` above the request's ``max_tokens``: impossible, the stream-derived count is used.
USAGE_OVER_MAX_TOKENS = "usage_over_max_tokens"
#: ``usage.completion_tokens`` below the number of content chunks (each carries a token): the stream's count is used.
USAGE_BELOW_CHUNKS = "usage_below_chunks"
#: Fewer output tokens than the request's ``min_tokens`` (or ``max_tokens`` with ``ignore_eos``): not fixed length.
BELOW_MIN_TOKENS = "below_min_tokens"
#: More content chunks than ``max_tokens``: the stream itself contradicts the request.
CHUNKS_OVER_MAX_TOKENS = "chunks_over_max_tokens"
#: The response names another model than the one requested.
WRONG_MODEL = "wrong_model"

#: Content chunks that may carry no token: some servers end a stream with an empty-text chunk holding only the
#: ``finish_reason``. The chunk checks allow this many.
CHUNK_SLACK = 1

CONTRADICTIONS = (USAGE_OVER_MAX_TOKENS, USAGE_BELOW_CHUNKS, BELOW_MIN_TOKENS, CHUNKS_OVER_MAX_TOKENS, WRONG_MODEL)


def reasoning_token_count(usage: dict[str, Any] | None, result: Attempt) -> tuple[int | None, str | None]:
    """Reasoning tokens from ``usage.completion_tokens_details`` when the server reports them, else the number of
    reasoning chunks (a lower bound: a chunk may carry several tokens); None when the server marked none."""
    details = usage.get("completion_tokens_details") if usage else None
    if isinstance(details, dict) and as_int(details.get("reasoning_tokens")) is not None:
        return as_int(details.get("reasoning_tokens")), "usage"
    if result.reasoning_chunks:
        return result.reasoning_chunks, "chunks"
    return None, None


def _limits(body: dict[str, Any]) -> tuple[int | None, int | None]:
    """(least, most) output tokens the request asked for: ``min_tokens`` (``max_tokens`` with ``ignore_eos``) and
    ``max_tokens``; None where it set none."""
    most = as_int(body.get("max_tokens"))
    if most is None:
        most = as_int(body.get("max_completion_tokens"))
    least = most if body.get("ignore_eos") is True else as_int(body.get("min_tokens"))
    return least, most


def check_answer(
    claimed: int | None, chunks: int, models: set[str], body: dict[str, Any], model: str | Collection[str]
) -> tuple[int, list[str]]:
    """The output token count to believe and what in the answer contradicts the request or the stream.

    ``claimed`` is ``usage.completion_tokens`` (None when absent), ``chunks`` the number of streamed content chunks
    (each carries at least one token, but for :data:`CHUNK_SLACK`), ``models`` the ``model`` names in the response,
    ``body`` the request. A claim above ``max_tokens`` or below ``chunks - CHUNK_SLACK`` is not believed: the count
    is then ``chunks`` (a lower bound).
    """
    least, most = _limits(body)
    flags: list[str] = []
    count = chunks if claimed is None else claimed
    if claimed is not None and most is not None and claimed > most:
        flags.append(USAGE_OVER_MAX_TOKENS)
        count = chunks
    if claimed is not None and claimed < chunks - CHUNK_SLACK:
        flags.append(USAGE_BELOW_CHUNKS)
        count = chunks
    if most is not None and chunks > most + CHUNK_SLACK:
        flags.append(CHUNKS_OVER_MAX_TOKENS)
    if least is not None and 0 < count < least:
        flags.append(BELOW_MIN_TOKENS)
    expected = {model} if isinstance(model, str) else set(model)
    if any(name not in expected for name in models):
        flags.append(WRONG_MODEL)
    return count, flags


def as_int(value: Any) -> int | None:
    """``value`` as an int when it is a JSON number (never a bool), else None."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
