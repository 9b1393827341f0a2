"""The test server's (:mod:`.sse_server`) simulated prefix cache and tokenizer.

The fake tokenizer splits on whitespace: one token per word, no special tokens, as ``usage.prompt_tokens`` counts a
prompt. The prefix cache counts words (block size one word) into the ``/metrics`` counters: a completion prompt's
hits are its longest common word prefix with an earlier prompt; a chat request's, the words of the longest
earlier-seen list of messages its own starts with.
"""

from __future__ import annotations

from typing import Any

from ai_energy_benchmarks.testing.server_profiles import Counters

__all__ = ["PrefixCache", "token_ids"]


def token_ids(prompt: str) -> list[int]:
    """The fake tokenizer's ids of ``prompt``: one per word."""
    return [sum(map(ord, word)) % 50000 for word in prompt.split()]


class PrefixCache:
    """The prompts and message lists seen so far, and the look-ups that count queried and hit tokens."""

    def __init__(self) -> None:
        #: Message lists (chat) already seen.
        self._seen_prefixes: set[str] = set()
        #: Every completion prompt's words seen.
        self._cached_prompts: list[list[str]] = []

    def look_up_prompt(self, prompt: str, counters: Counters) -> None:
        """Count the prompt's words as queried, and those of its longest common prefix with an earlier one as hit."""
        words = prompt.split()
        hit = 0
        for earlier in self._cached_prompts:
            common = 0
            for mine, theirs in zip(words, earlier, strict=False):
                if mine != theirs:
                    break
                common += 1
            hit = max(hit, common)
        self._cached_prompts.append(words)
        counters.prefix_cache_queries += len(words)
        counters.prefix_cache_hits += hit

    def look_up_messages(self, messages: list[Any], counters: Counters) -> int:
        """Count a chat request in the simulated prefix cache; return the words of all its messages."""
        words = [len(str(m.get("content", "")).split()) if isinstance(m, dict) else 0 for m in messages]
        hits = 0
        for end in range(len(messages), 0, -1):
            if repr(messages[:end]) in self._seen_prefixes:
                hits = sum(words[:end])
                break
        for end in range(1, len(messages) + 1):
            self._seen_prefixes.add(repr(messages[:end]))
        counters.prefix_cache_queries += sum(words)
        counters.prefix_cache_hits += hits
        return sum(words)
