"""Energy per verified answer: scorers that check each answer against its prompt's reference after the run.

:mod:`.scorers` holds the checks (numeric, multiple-choice letter, regular expression, a user's callable);
:mod:`.apply` applies one to every answer of a run's records. The figures built from the verdicts (accuracy with its
Wilson interval, joules per correct answer) are the result's ``quality`` block (``results/quality.py``).
"""

from ai_energy_benchmarks.scoring.apply import ScoringOutcome, score_records, verdicts_of
from ai_energy_benchmarks.scoring.scorers import Scorer, create_scorer, describe_scorer, final_number

__all__ = [
    "Scorer",
    "ScoringOutcome",
    "create_scorer",
    "describe_scorer",
    "final_number",
    "score_records",
    "verdicts_of",
]
