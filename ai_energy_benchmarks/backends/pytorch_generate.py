"""Pieces of one ``generate()`` call of the PyTorch backend: the assistant turn a prompt opens, the streamer that
times the first new token, the count of new tokens up to each row's end of sequence, the batches' token ids
(tokenised before the measured windows), and the checks before a run: the user's options in a one-token generate, and
the prompts of one batch sharing their per-prompt options."""

from __future__ import annotations

import time
from typing import Any

from ai_energy_benchmarks.exceptions import ConfigError, DatasetError, one_line


def open_assistant_turn(text: str, prefix: str) -> str:
    """``text`` (the chat template's output) followed by the assistant prefix, unless the template already opened
    the turn with it (e.g. DeepSeek-R1's templates end their generation prompt with ``<think>``)."""
    if not prefix or text.rstrip().endswith(prefix.strip()):
        return text
    return text + prefix


class FirstTokenTimer:
    """A generate() streamer that only records when the first new token arrives (no second generate)."""

    def __init__(self, synchronize: Any) -> None:
        self._synchronize = synchronize
        self._calls = 0
        self.first_token_s: float | None = None

    def put(self, value: Any) -> None:
        # generate() first puts the prompt ids, then each new token (or batch of tokens).
        self._calls += 1
        if self._calls == 2:
            self._synchronize()
            self.first_token_s = time.perf_counter()

    def end(self) -> None:
        """Called by generate() when it finishes."""


def count_new_tokens(generated: Any, eos_token_id: int | list[int] | None) -> int:
    """New tokens in ``generated`` (the rows of new token ids: a tensor or lists): each row counts up to and
    including its first end of sequence (``eos_token_id``, one id or several), or all of it."""
    eos = eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
    total = 0
    for row in generated if isinstance(generated, list) else generated.tolist():
        count = len(row)
        for position, token in enumerate(row):
            if token in eos_ids:
                count = position + 1
                break
        total += count
    return total


class BatchEncoder:
    """Each batch's token ids (left padded, ``pt`` tensors on the CPU): tokenised ahead by :meth:`prepare`, outside
    the measured windows, and checked against the model's context (``context_tokens``) when a pass uses them."""

    def __init__(self, tokenizer: Any, add_special_tokens: bool, context_tokens: int | None, truncation: bool) -> None:
        self._tokenizer = tokenizer
        self._options: dict[str, Any] = {
            "return_tensors": "pt",
            "padding": True,
            "add_special_tokens": add_special_tokens,
        }
        self._context_tokens = context_tokens
        self._truncation = truncation
        self._ready: dict[tuple[str, ...], Any] = {}

    def prepare(self, batches: list[list[str]]) -> None:
        """Tokenise these batches of texts now (their :meth:`encode` then does no tokenising)."""
        for texts in batches:
            self._ready[tuple(texts)] = self._tokenizer(texts, **self._options)

    def encode(self, texts: list[str], first_index: int, max_new_tokens: int) -> Any:
        """The token ids of one batch whose first prompt is number ``first_index``, leaving room for
        ``max_new_tokens``: truncated from the start with ``scenario.truncation``, else a prompt too long is refused."""
        limit = None if self._context_tokens is None else self._context_tokens - max_new_tokens
        if limit is not None and limit < 1:
            raise ConfigError(
                f"scenario.generate_kwargs.max_new_tokens: {max_new_tokens} does not fit the model's "
                f"context of {self._context_tokens} tokens"
            )
        encoded = self._ready.get(tuple(texts))
        if encoded is None:  # not prepared (e.g. a trace replay's prompt): tokenised now
            encoded = self._tokenizer(texts, **self._options)
        if limit is None or encoded["input_ids"].shape[1] <= limit:
            return encoded
        if self._truncation:
            return self._tokenizer(texts, truncation=True, max_length=limit, **self._options)
        for offset, length in enumerate(encoded["attention_mask"].sum(dim=1).tolist()):
            if length > limit:
                raise DatasetError(
                    f"prompt {first_index + offset} has {length} tokens; with max_new_tokens={max_new_tokens} "
                    f"it exceeds the model's context of {self._context_tokens} tokens "
                    "(set scenario.truncation=true to truncate)"
                )
        return encoded


def check_batches_share_options(per_prompt: list[dict[str, Any]], batch_size: int) -> None:
    """Refuse per-prompt generation options (drawn output lengths) that differ within one batch of ``batch_size``
    prompts: a batch generates one length."""
    if batch_size <= 1:
        return
    for first in range(0, len(per_prompt), batch_size):
        batch = per_prompt[first : first + batch_size]
        if any(options != batch[0] for options in batch):
            raise ConfigError(
                "scenario.input_shapes.batch_size: a batch generates one output length, and "
                f"scenario.synthetic.output_tokens draws different ones for prompts {first}.."
                f"{first + len(batch) - 1}; use batch_size=1 or a fixed output_tokens"
            )


def check_generate_kwargs(generate_kwargs: dict[str, Any], model: Any, tokenizer: Any, torch: Any, device: str) -> None:
    """Run a one-token generate with the user's options, so a bad option fails before anything is measured."""
    kwargs = generate_kwargs | {"max_new_tokens": 1, "min_new_tokens": 1}
    if "extra_body" in kwargs:
        raise ConfigError(
            "scenario.generate_kwargs.extra_body: request fields for a server (backend.type vllm); a local model "
            "takes reasoning options from scenario.reasoning and scenario.reasoning_params"
        )
    encoded = tokenizer(["ok"], return_tensors="pt").to(device)
    try:
        with torch.inference_mode():
            model.generate(**encoded, **kwargs, pad_token_id=tokenizer.pad_token_id)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"scenario.generate_kwargs: rejected by generate(): {one_line(exc)}") from None
