"""Synthetic prompts of an exact length in the model's own tokens (``scenario.dataset_name: synthetic``).

Lengths are drawn first, from ``scenario.synthetic`` with its seed, independently of the tokenizer: the same seed
gives the same requested lengths on every backend. Then each prompt is built from words drawn (with the same seed)
from a fixed list of common English words, and fitted to its length with the tokenizer:

1. the longest run of the drawn words whose text has at most the requested number of tokens (a search over the
   number of words, interpolating on the token count and bisecting in turn, each candidate tokenised);
2. the remaining tokens (usually 0 to 2) filled with short pieces (`` a``, `` I``, ``.``, ...), the first piece
   that makes the text longer without passing the requested count kept each time; a dead end drops one word and
   fills again (then another draw of words);
3. the final text tokenised once more: it must have exactly the requested count (special tokens excluded), or the
   run stops with a :class:`DatasetError` naming the prompt.

Token counts come from a :class:`TokenCounter`: the loaded tokenizer (PyTorch), a named local tokenizer, or the
server's ``/tokenize`` (HTTP). A count never includes special tokens (BOS) or a chat template's text: those are the
backend's, and the request's own ``prompt_tokens`` (``requests.jsonl``) shows them.
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ai_energy_benchmarks.config.schema import ScenarioConfig
from ai_energy_benchmarks.config.synthetic import LengthDistribution, SyntheticConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.exceptions import DatasetError

logger = logging.getLogger(__name__)

#: How a prompt's length is made, for the report.
METHOD = (
    "seeded words from a fixed list, fitted to the requested count with the tokenizer (longest run of words not "
    "over it, then single-token fillers), and checked by tokenising the final text again; counts exclude special "
    "tokens and chat-template text"
)

_WORD_TEXT = (
    "time year people way day man thing woman life child world school state family student group country problem "
    "hand part place case week company system program question work government number night point home water room "
    "mother area money story fact month lot right study book eye job word business issue side kind head house "
    "service friend father power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war history party result "
    "change morning reason research girl guy moment air teacher force education river garden light music table "
    "window paper energy market field voice color green blue small large early young important public bad same able"
)
_WORDS = tuple(_WORD_TEXT.split())
#: Pieces that add about one token each, tried in order to fill the last tokens.
_FILLERS = (" a", " I", " the", ".", ",", " of", " and", " to", " in", "!", "?", " 1", " x")


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of texts as the model's tokenizer does, special tokens excluded.

    ``name`` says which tokenizer (``pytorch:<model>``, ``local:<path or id>``, ``server:<url>/tokenize``) and is
    written to the report; ``count`` takes a list of texts and returns their token counts.
    """

    name: str
    count: Callable[[list[str]], list[int]]
    #: The model's context in tokens, where known: prompts and output lengths drawn beyond it are refused up front.
    context_tokens: int | None = None

    def one(self, text: str) -> int:
        """The token count of ``text``."""
        return self.count([text])[0]


def draw_lengths(dist: LengthDistribution, n: int, rng: random.Random) -> list[int]:
    """``n`` lengths in tokens from ``dist`` (each at least 1)."""
    if dist.dist == "fixed":
        assert dist.value is not None
        return [dist.value] * n
    if dist.dist == "uniform":
        assert dist.min is not None and dist.max is not None
        return [rng.randint(dist.min, dist.max) for _ in range(n)]
    if dist.dist == "normal":
        assert dist.mean is not None and dist.std is not None
        low = dist.min if dist.min is not None else 1
        high = dist.max
        drawn = [round(rng.gauss(dist.mean, dist.std)) for _ in range(n)]
        return [max(low, v) if high is None else min(high, max(low, v)) for v in drawn]
    bins = dist.bins or []
    return rng.choices([length for length, _ in bins], weights=[weight for _, weight in bins], k=n)


class _Fitter:
    """Builds texts of an exact token count with one :class:`TokenCounter`."""

    def __init__(self, counter: TokenCounter, rng: random.Random) -> None:
        self._counter = counter
        self._rng = rng
        #: Tokens per word seen so far (a guess until the first count), for the first draw of words.
        self._tokens_per_word = 1.3

    def _words(self, count: int) -> list[str]:
        return [self._rng.choice(_WORDS) for _ in range(count)]

    def fit(self, target: int) -> str | None:
        """A text of exactly ``target`` tokens, or None when this draw of words cannot make one."""
        count = self._counter.one
        words = self._words(int(target / self._tokens_per_word * 1.1) + 4)
        while (high_count := count(" ".join(words))) <= target:  # enough words to pass the target
            words += self._words(len(words))
        self._tokens_per_word = high_count / len(words)
        # count(words[:low]) <= target < count(words[:high]): interpolation steps (tokens grow almost linearly with
        # words), every other step a bisection so that the search never takes more than twice a binary search's.
        low, low_count, high = 0, 0, len(words)
        step = 0
        while high - low > 1:
            if step % 2 == 0 and high_count > low_count:
                guess = low + round((target - low_count) * (high - low) / (high_count - low_count))
                middle = min(high - 1, max(low + 1, guess))
            else:
                middle = (low + high) // 2
            step += 1
            tokens = count(" ".join(words[:middle]))
            if tokens <= target:
                low, low_count = middle, tokens
            else:
                high, high_count = middle, tokens
        for keep in range(low, max(-1, low - 8), -1):  # a dead end drops a word and fills again
            text = self._fill(" ".join(words[:keep]), target)
            if text is not None:
                return text
        return None

    def _fill(self, text: str, target: int) -> str | None:
        have = self._counter.one(text) if text else 0
        while have < target:
            for filler in _FILLERS:
                candidate = text + (filler if text else filler.lstrip())
                tokens = self._counter.one(candidate)
                if have < tokens <= target:
                    text, have = candidate, tokens
                    break
            else:
                return None
        return text if have == target else None


def make_synthetic_prompts(scenario: ScenarioConfig, counter: TokenCounter) -> PromptSet:
    """``scenario.num_samples`` prompts of the drawn input lengths (exact, in ``counter``'s tokens), with the drawn
    output lengths as per-prompt generation options.

    Raises:
        DatasetError: a prompt that cannot be made of the requested length with this tokenizer.
    """
    config: SyntheticConfig | None = scenario.synthetic
    if config is None:
        raise DatasetError("scenario.synthetic: not set (dataset_name synthetic needs synthetic.input_tokens)")
    n = scenario.num_samples
    inputs = draw_lengths(config.input_tokens, n, random.Random(f"{config.seed}:input_tokens"))
    outputs = (
        None
        if config.output_tokens is None
        else draw_lengths(config.output_tokens, n, random.Random(f"{config.seed}:output_tokens"))
    )
    _check_context(inputs, outputs, scenario, counter)
    fitter = _Fitter(counter, random.Random(f"{config.seed}:words"))
    prompts: list[str] = []
    seen: set[str] = set()
    for index, target in enumerate(inputs):
        text = None
        for _attempt in range(50):  # another draw of words for a dead end or a prompt made twice
            text = fitter.fit(target)
            if text is not None and text not in seen:
                break
            text = None
        if text is None:
            raise DatasetError(
                f"scenario.synthetic.input_tokens: cannot make prompt {index} of exactly {target} tokens with the "
                f"tokenizer {counter.name} (distinct from the others)"
            )
        seen.add(text)
        prompts.append(text)
    actual = counter.count(prompts)  # the check: every final text tokenised again
    for index, (want, got) in enumerate(zip(inputs, actual, strict=True)):
        if want != got:
            raise DatasetError(
                f"scenario.synthetic.input_tokens: prompt {index} has {got} tokens, not the {want} requested, when "
                f"tokenised again with {counter.name}"
            )
    lengths: list[dict[str, Any]] = [
        {
            "input_tokens_requested": want,
            "input_tokens": got,
            "output_tokens_requested": None if outputs is None else outputs[index],
        }
        for index, (want, got) in enumerate(zip(inputs, actual, strict=True))
    ]
    per_prompt: list[dict[str, Any]] | None = None
    if outputs is not None:
        per_prompt = [
            {"max_new_tokens": length, "min_new_tokens": length if config.exact_output else 0} for length in outputs
        ]
    info: dict[str, Any] = {
        "tokenizer": counter.name,
        "method": METHOD,
        "seed": config.seed,
        "input_tokens": config.input_tokens.describe() | {"drawn": _describe(actual)},
        "output_tokens": None
        if config.output_tokens is None or outputs is None
        else config.output_tokens.describe() | {"drawn": _describe(outputs)},
        "exact_output": config.exact_output if outputs is not None else None,
    }
    logger.info("made %d synthetic prompts with %s: input tokens %s", n, counter.name, info["input_tokens"]["drawn"])
    return PromptSet(
        prompts=prompts,
        source="synthetic",
        num_requested=n,
        num_available=n,
        lengths=lengths,
        per_prompt_kwargs=per_prompt,
        synthetic=info,
    )


def _check_context(
    inputs: Sequence[int], outputs: Sequence[int] | None, scenario: ScenarioConfig, counter: TokenCounter
) -> None:
    """Refuse a drawn prompt whose input and output lengths do not fit the model's context (when it is known):
    every such request would fail, or be truncated, in the measured pass."""
    context = counter.context_tokens
    if context is None:
        return
    for index, want in enumerate(inputs):
        output = outputs[index] if outputs is not None else scenario.generate_kwargs.max_new_tokens
        if want + output > context:
            raise DatasetError(
                f"scenario.synthetic: prompt {index} draws {want} input + {output} output tokens, more than the "
                f"model's context of {context} tokens ({counter.name}); lower the lengths or clip the distribution "
                "with max"
            )


def _describe(values: Sequence[int]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "total": sum(values),
    }


__all__ = ["METHOD", "TokenCounter", "draw_lengths", "make_synthetic_prompts"]
