"""``scenario.scorer``: how each answer is checked against its prompt's reference after the run.

The checks themselves live in :mod:`ai_energy_benchmarks.scoring`; this is only their configuration, so that the
config package stays below everything that reads it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from ai_energy_benchmarks.config.coerce import Section

ScorerType = Literal["numeric", "choice", "regex", "callable"]


class ScorerConfig(Section):
    """Check each answer against its prompt's reference (the `answer_column` of the dataset), after the run and
    outside every measured window; the result gains a `quality` block (accuracy, correct answers, joules per
    correct answer)."""

    type: ScorerType = Field(
        "numeric",
        description="`numeric` (the answer's final number equals the reference's; a GSM8K-style reference "
        "`... #### 72` gives 72), `choice` (a multiple-choice letter; a reference given as an index 0, 1, ... "
        "means A, B, ...), `regex` (`pattern` found in the answer) or `callable` (`function`).",
    )
    answer_column: str = Field(
        "answer", min_length=1, description="Dataset column holding each prompt's reference answer."
    )
    pattern: str | None = Field(
        None,
        description="`regex`: a Python regular expression searched in the answer; `{reference}` in it stands for "
        "the reference, escaped (e.g. `answer is {reference}\\b`).",
    )
    function: str | None = Field(
        None,
        description="`callable`: `module:function`, called as `function(answer: str, reference) -> bool | None` "
        "(None: not scorable); the module must be importable (e.g. on PYTHONPATH).",
    )
    choices: str = Field("ABCD", min_length=2, description="`choice`: the option letters, in order.")
    ignore_case: bool = Field(True, description="`regex` and `choice`: compare without regard to case.")

    @model_validator(mode="after")
    def _needs(self) -> ScorerConfig:
        if self.type == "regex":
            if not self.pattern:
                raise ValueError("type 'regex' needs `pattern`")
            try:
                re.compile(self.pattern.replace("{reference}", "x"))
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
        if self.type == "callable" and (not self.function or ":" not in self.function):
            raise ValueError("type 'callable' needs `function` as 'module:function'")
        return self


__all__ = ["ScorerConfig", "ScorerType"]
