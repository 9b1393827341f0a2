"""The prompts a run sends, beside the runner: synthetic prompts made with the loaded backend's tokenizer, the
generation options drawn per prompt, and each prompt with exactly what the backend sends for it (``prompts.jsonl``).
"""

from __future__ import annotations

import logging
from typing import Any

from ai_energy_benchmarks.backends.base import Backend
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet
from ai_energy_benchmarks.datasets.synthetic import make_synthetic_prompts
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError

logger = logging.getLogger("ai_energy_benchmarks.runner")  # the runner's messages, logged under its name


def drawn_options(prompt_set: PromptSet) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The generation options drawn per prompt, as options shared by every prompt when they are all equal (any
    backend takes those), else per prompt (``Backend.set_prompt_kwargs``)."""
    per_prompt = prompt_set.per_prompt_kwargs
    if not per_prompt:
        return {}, None
    if all(options == per_prompt[0] for options in per_prompt):
        return dict(per_prompt[0]), None
    return {}, per_prompt


def synthetic_prompts(backend: Backend, config: BenchmarkConfig) -> PromptSet:
    """Synthetic prompts of exact lengths in the loaded backend's tokens (``scenario.synthetic``)."""
    counter = backend.token_counter()
    if counter is None:
        raise ConfigError(
            f"scenario.dataset_name: synthetic prompts need the model's tokenizer, and backend type "
            f"'{config.backend.type}' gives none"
        )
    prompt_set = make_synthetic_prompts(config.scenario, counter)
    logger.info("made %d synthetic prompts with %s", len(prompt_set.prompts), counter.name)
    return prompt_set


def sent_prompts(backend: Backend, prompt_set: PromptSet) -> list[dict[str, Any]]:
    """Each prompt and exactly what the backend sends for it (when the backend can say): the rows of
    ``prompts.jsonl``."""
    rows = []
    for index, prompt in enumerate(prompt_set.prompts):
        row: dict[str, Any] = {"index": index, "prompt": prompt}
        if prompt_set.references is not None:
            row["reference"] = prompt_set.references[index]
        if prompt_set.lengths is not None:
            row.update(prompt_set.lengths[index])
        try:
            sent = backend.render(prompt)
        except BenchmarkError as exc:
            row["sent_error"] = str(exc)
        else:
            if sent is not None:
                row["sent"] = sent
        rows.append(row)
    return rows


__all__ = ["drawn_options", "sent_prompts", "synthetic_prompts"]
