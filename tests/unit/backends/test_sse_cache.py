"""The test server's simulated prefix cache: one model for both endpoints, whose block is a word for a completion
prompt and a whole message for a chat request (the hit rates the multi-turn and phase tests assert rest on it)."""

from __future__ import annotations

from ai_energy_benchmarks.testing.server_profiles import Counters
from ai_energy_benchmarks.testing.sse_cache import PrefixCache


def _counted(cache: PrefixCache, prompt: str) -> tuple[int, int]:
    counters = Counters()
    cache.look_up_prompt(prompt, counters)
    return counters.prefix_cache_queries, counters.prefix_cache_hits


def test_a_completion_prompt_hits_its_longest_common_word_prefix_with_any_earlier_one() -> None:
    cache = PrefixCache()
    assert _counted(cache, "the cat sat on the mat") == (6, 0)
    assert _counted(cache, "the dog ran") == (3, 1)
    assert _counted(cache, "the cat sat down") == (4, 3)
    assert _counted(cache, "the dog ran far away") == (5, 3)
    assert _counted(cache, "the cat sat on the mat") == (6, 6)
    assert _counted(cache, "a cat") == (2, 0)


def test_a_chat_request_hits_whole_earlier_seen_messages_only() -> None:
    cache = PrefixCache()
    system = {"role": "system", "content": "be brief"}
    first = {"role": "user", "content": "tell me about cats"}
    answer = {"role": "assistant", "content": "cats purr"}
    counters = Counters()
    assert cache.look_up_messages([system, first], counters) == 6
    # The next turn starts with the messages sent before; the answer (never sent) and the new turn are not hit.
    assert cache.look_up_messages([system, first, answer, {"role": "user", "content": "and dogs"}], counters) == 10
    # A message sharing only its first words with a cached one is not hit (a message is one block).
    assert cache.look_up_messages([system, {"role": "user", "content": "tell me about dogs"}], counters) == 6
    assert (counters.prefix_cache_queries, counters.prefix_cache_hits) == (6 + 10 + 6, 0 + 6 + 2)
