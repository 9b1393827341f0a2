"""Apply a scorer to every answer of the measured generate passes, after the run (outside every measured window).

The scorer reads the answer after its reasoning (the text after the last ``</think>``, where a local model's
decoded text holds one). A local model's answers arrive as token ids and are decoded here, with the backend's
``decode_answers``, so that no decoding is done inside a measured window. Each record gets ``correct``:
True/False, or None where the answer cannot be scored (the request failed, the backend kept no text, the prompt has
no reference, or the scorer said None or raised). A batch record (PyTorch backend, ``batch_size`` > 1) gets one
verdict per prompt, as a list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ai_energy_benchmarks.config.scorer import ScorerConfig
from ai_energy_benchmarks.exceptions import one_line
from ai_energy_benchmarks.records import RequestRecord
from ai_energy_benchmarks.scoring.scorers import create_scorer

logger = logging.getLogger(__name__)


@dataclass
class ScoringOutcome:
    """What scoring met besides verdicts: what the scorer raised (the first three) and, when answers came back
    without text, how many (both as warnings in ``errors``)."""

    errors: list[str] = field(default_factory=list)
    missing_text: int = 0


#: Where a reasoning model's thinking ends in a local model's decoded text (servers return the answer apart).
THINK_END = "</think>"


def final_part(answer: str) -> str:
    """The part of ``answer`` after its last ``</think>`` (the reasoning), or all of it."""
    cut = answer.rfind(THINK_END)
    return answer if cut < 0 else answer[cut + len(THINK_END) :]


#: Turns rows of new token ids into answer texts (the backend's ``decode_answers``).
Decoder = Callable[[list[list[int]]], list[str]]


def _answers(record: RequestRecord, decode: Decoder | None, outcome: ScoringOutcome) -> list[str | None]:
    texts = record.output_texts
    if record.output_ids is not None:  # decoded now, after the measured windows; the ids are dropped
        ids, record.output_ids = record.output_ids, None
        try:
            texts = None if decode is None else decode(ids)
        except Exception as exc:  # these answers are unscored (counted without text), the run's figures stand
            if len(outcome.errors) < 3:
                outcome.errors.append(f"cannot decode the answers of request {record.index}: {one_line(exc)}")
    if texts is not None:
        return list(texts) + [None] * (record.num_prompts - len(texts))
    return [record.output_text] + [None] * (record.num_prompts - 1)


def score_records(
    config: ScorerConfig,
    references: Sequence[Any] | None,
    records: Sequence[RequestRecord],
    decode: Decoder | None = None,
) -> ScoringOutcome:
    """Set ``correct`` on every generate-phase record (others keep None); see the module docstring. Answers a
    record kept as token ids (``output_ids``) are decoded here with ``decode`` (then dropped), so that decoding
    happens after every measured window has closed."""
    scorer = create_scorer(config)
    outcome = ScoringOutcome()
    table = list(references or [])
    count = len(table)
    for record in records:
        if record.phase != "generate":
            record.output_ids = None
            continue
        verdicts: list[bool | None] = []
        first = record.prompt_index if record.prompt_index is not None else record.index
        for offset, answer in enumerate(_answers(record, decode, outcome)):
            verdict: bool | None = None
            reference = table[(first + offset) % count] if count else None
            if not record.ok:
                pass
            elif answer is None:
                outcome.missing_text += 1
            elif reference is not None:
                try:
                    result = scorer(final_part(answer), reference)
                except Exception as exc:  # a user's scorer: its failure is one unscored answer, reported once
                    if len(outcome.errors) < 3:
                        outcome.errors.append(f"the scorer raised on prompt {first + offset}: {one_line(exc)}")
                    result = None
                verdict = None if result is None else bool(result)
            verdicts.append(verdict)
        record.correct = verdicts[0] if record.num_prompts == 1 else verdicts
    if outcome.missing_text:
        outcome.errors.append(
            f"{outcome.missing_text} answers came back without their text (the backend does not return it): not scored"
        )
    for message in outcome.errors:
        logger.warning(message)
    return outcome


def verdicts_of(records: Sequence[RequestRecord]) -> list[bool | None]:
    """Every verdict of the generate-phase records, one per prompt sent (None: not scored)."""
    found: list[bool | None] = []
    for record in records:
        if record.phase != "generate":
            continue
        if isinstance(record.correct, list):
            found.extend(record.correct)
        else:
            found.extend([record.correct] if record.num_prompts == 1 else [None] * record.num_prompts)
    return found


__all__ = ["ScoringOutcome", "score_records", "verdicts_of"]
