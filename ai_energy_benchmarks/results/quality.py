"""The ``quality`` block: accuracy of the scored answers and the energy per correct answer.

Definitions (docs/workloads.md, "Energy per verified answer"):

- ``answers``: prompts sent in the measured generate windows (all repetitions); ``scored``: those the scorer gave
  a verdict (True/False); ``unscored``: the rest (failed requests, no reference, no text, the scorer said None).
- ``accuracy = correct / scored`` with its Wilson 95% interval ``[p_low, p_high]``.
- ``joules_per_correct_answer = E / correct``, ``E`` the energy of the measured generate windows
  (``energy.total_energy_j``: every device class reported; ``gpu_joules_per_correct_answer`` from
  ``energy.gpu_energy_j``). Its 95% interval carries the accuracy's: ``[E / (p_high * scored), E / (p_low *
  scored)]`` (the upper end null when ``p_low`` is 0: with so few correct answers no finite bound holds); the
  energy is taken as exact here (its own bounds are ``energy.energy_bounds_wh``).
- ``wh_per_1000_correct_answers = E / 3600 / correct * 1000``, its interval likewise.
- With no correct answer, or no energy figure, these are null and ``null_reason`` says why; never infinite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ai_energy_benchmarks.config.scorer import ScorerConfig
from ai_energy_benchmarks.results.stats import wilson_interval

METHOD = (
    "energy of the measured generate windows / correct answers; interval: that energy / (Wilson 95% bounds of "
    "the accuracy x scored answers), the energy taken as exact"
)


def _per_correct(energy_j: float | None, correct: int) -> float | None:
    return None if energy_j is None or correct == 0 else energy_j / correct


def _interval(energy_j: float | None, bounds: tuple[float, float] | None, scored: int) -> list[float | None] | None:
    """``[E / (p_high n), E / (p_low n)]``; the upper end None when ``p_low`` is 0."""
    if energy_j is None or bounds is None:
        return None
    low_p, high_p = bounds
    low = energy_j / (high_p * scored) if high_p > 0 else None
    high = energy_j / (low_p * scored) if low_p > 0 else None
    return [low, high]


def _wh_interval(interval: list[float | None] | None) -> list[float | None] | None:
    if interval is None:
        return None
    return [None if v is None else v / 3600.0 * 1000.0 for v in interval]


def quality_block(
    config: ScorerConfig,
    scorer_name: str,
    verdicts: Sequence[bool | None],
    energy: dict[str, Any],
    errors: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``quality`` block from every answer's verdict (one per prompt sent in the generate windows) and the
    ``energy`` block built for the same windows."""
    answers = len(verdicts)
    correct = sum(1 for v in verdicts if v is True)
    scored = sum(1 for v in verdicts if v is not None)
    bounds = wilson_interval(correct, scored)
    total_j = energy.get("total_energy_j")
    gpu_j = energy.get("gpu_energy_j")
    total_j = float(total_j) if isinstance(total_j, (int, float)) else None
    gpu_j = float(gpu_j) if isinstance(gpu_j, (int, float)) else None
    if not energy.get("enabled"):
        total_j = gpu_j = None
    reason: str | None = None
    if scored == 0:
        reason = "no answer was scored"
    elif correct == 0:
        reason = "no correct answer: energy per correct answer is undefined (not infinite)"
    elif not energy.get("enabled"):
        reason = "energy was not measured (metrics.enabled=false)"
    elif total_j is None:
        reason = "the energy of the measured windows is unknown (see energy.flags)"
    per_correct = _per_correct(total_j, correct)
    interval = _interval(total_j, bounds, scored) if correct else None
    return {
        "scorer": scorer_name,
        "answer_column": config.answer_column,
        "answers": answers,
        "scored": scored,
        "unscored": answers - scored,
        "correct": correct,
        "accuracy": None if scored == 0 else correct / scored,
        "accuracy_ci95": None if bounds is None else [bounds[0], bounds[1]],
        "accuracy_interval": "wilson",
        "energy_j": total_j,
        "energy_all_measured": bool(energy.get("all_measured")),
        "joules_per_correct_answer": per_correct,
        "joules_per_correct_answer_ci95": interval,
        "wh_per_1000_correct_answers": None if per_correct is None else per_correct / 3600.0 * 1000.0,
        "wh_per_1000_correct_answers_ci95": _wh_interval(interval),
        "gpu_joules_per_correct_answer": _per_correct(gpu_j, correct),
        "null_reason": reason,
        "method": METHOD,
        "errors": list(errors),
    }


__all__ = ["METHOD", "quality_block"]
