"""The test server's (:mod:`.sse_server`) simulated prefix cache and tokenizer.

The fake tokenizer splits on whitespace: one token per word, no special tokens, as ``usage.prompt_tokens`` counts a
prompt. The prefix cache is one model for both endpoints: a tree of the block sequences of the requests seen so far,
where a request's hits are the tokens of its longest block prefix already in the tree (as a server's cache reuses
whole blocks). The block is a word for a completion prompt (so its hits are its longest common word prefix with an
earlier prompt) and a whole message for a chat request (so its hits are the words of the longest earlier-seen list
of messages it starts with); queries and hits go to the ``/metrics`` counters in words. A request with vLLM's
``cache_salt`` looks up a tree of its salt's own, so it hits only what requests with the same salt left.
"""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.testing.server_profiles import Counters

__all__ = ["PrefixCache", "token_ids"]


def token_ids(prompt: str) -> list[int]:
    """The fake tokenizer's ids of ``prompt``: one per word."""
    return [sum(map(ord, word)) % 50000 for word in prompt.split()]


class PrefixCache:
    """The block sequences seen so far (a tree of nested dicts, one level per block) and the look-ups that count
    queried and hit tokens."""

    def __init__(self) -> None:
        self._roots: dict[str | None, dict[str, Any]] = {}

    def _look_up(self, blocks: list[tuple[str, int]], counters: Counters, salt: str | None) -> int:
        """Count ``blocks`` (key, tokens) as queried, those of its longest prefix already seen under ``salt`` as hit,
        and add the sequence to that salt's tree; return its tokens."""
        node, queried, hit = self._roots.setdefault(salt, {}), 0, 0
        for key, tokens in blocks:
            queried += tokens
            child = node.get(key)
            if child is None:  # from here on nothing is cached: every later block is new too
                child = node[key] = {}
            else:
                hit += tokens
            node = child
        counters.prefix_cache_queries += queried
        counters.prefix_cache_hits += hit
        return queried

    def look_up_prompt(self, prompt: str, counters: Counters, salt: str | None = None) -> None:
        """Count a completion prompt, block by block of one word."""
        self._look_up([(word, 1) for word in prompt.split()], counters, salt)

    def look_up_messages(self, messages: list[Any], counters: Counters, salt: str | None = None) -> int:
        """Count a chat request, block by block of one message (its words); return the words of all its messages."""
        return self._look_up(
            [(repr(m), len(str(m.get("content", "")).split()) if isinstance(m, dict) else 0) for m in messages],
            counters,
            salt,
        )
