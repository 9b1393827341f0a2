"""Scorers: is an answer correct, given its prompt's reference?

A scorer is a callable ``(answer: str, reference) -> bool | None``; None means the pair cannot be scored (no
reference, or a reference the scorer cannot read), which is counted apart from a wrong answer. Built-in ones:

- ``numeric``: the answer's final number equals the reference's. The reference's number is the one after its last
  ``####`` (GSM8K's format: ``... #### 72``), else its last number; the answer's is the number after its last
  ``####`` if it writes one, else its last number. Commas between digits are removed (``1,234`` is 1234), a
  trailing full stop is not part of the number, ``$`` and ``%`` are ignored; two numbers are equal when they differ
  by at most 1e-9 (relative or absolute).
- ``choice``: the answer's option letter equals the reference's (a letter, or an index 0, 1, ... into
  ``choices``). The answer's letter: the whole answer when it is one letter (``B``, ``(B)``, ``B.``), else the last
  ``answer is (B)`` / ``answer: B``, else the first ``(B)`` or line starting ``B)`` / ``B.`` / ``B:``.
- ``regex``: ``pattern`` (with ``{reference}`` replaced by the escaped reference) is found in the answer.
- ``callable``: a user function named ``module:function``.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from typing import Any, cast

from ai_energy_benchmarks.config.scorer import ScorerConfig
from ai_energy_benchmarks.exceptions import ConfigError, one_line

Scorer = Callable[[str, Any], "bool | None"]

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")
_TOLERANCE = 1e-9


def final_number(text: str) -> float | None:
    """The number an answer (or a GSM8K reference) ends on: the one after its last ``####``, else its last number;
    None when it holds none."""
    marker = text.rfind("####")
    tail = text[marker + 4 :] if marker >= 0 else text
    numbers = _NUMBER.findall(tail.replace("$", "").replace("%", ""))
    if not numbers and marker >= 0:  # '####' with nothing after it: fall back to the whole text
        numbers = _NUMBER.findall(text[:marker].replace("$", ""))
    if not numbers:
        return None
    found = numbers[0] if marker >= 0 and tail.strip() else numbers[-1]
    try:
        return float(found.replace(",", ""))
    except ValueError:  # pragma: no cover - the pattern only matches numbers
        return None


def _reference_number(reference: Any) -> float | None:
    if isinstance(reference, bool) or reference is None:
        return None
    if isinstance(reference, (int, float)):
        return float(reference)
    return final_number(str(reference))


def score_numeric(answer: str, reference: Any) -> bool | None:
    """``numeric``: the answer's final number equals the reference's (None: the reference holds no number)."""
    expected = _reference_number(reference)
    if expected is None:
        return None
    got = final_number(answer)
    return got is not None and math.isclose(got, expected, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE)


def _choice_scorer(choices: str, ignore_case: bool) -> Scorer:
    letters = choices.upper() if ignore_case else choices
    flags = re.IGNORECASE if ignore_case else 0
    cls = "[" + re.escape(choices) + "]"
    alone = re.compile(rf"^\W*({cls})\W*$", flags)
    stated = re.compile(rf"answer\s*(?:is|:)?\s*(?:option\s*)?\(?({cls})\b", flags)
    bracketed = re.compile(rf"\(({cls})\)", flags)
    line_start = re.compile(rf"^\s*({cls})\s*[).:]", flags | re.MULTILINE)

    def letter_of(answer: str) -> str | None:
        for pattern, last in ((alone, False), (stated, True), (bracketed, False), (line_start, False)):
            found = pattern.findall(answer)
            if found:
                letter = found[-1] if last else found[0]
                return letter.upper() if ignore_case else letter
        return None

    def reference_letter(reference: Any) -> str | None:
        if isinstance(reference, bool) or reference is None:
            return None
        if isinstance(reference, int) or (isinstance(reference, str) and reference.strip().isdigit()):
            index = int(reference)
            return letters[index] if 0 <= index < len(letters) else None
        return letter_of(str(reference))

    def score(answer: str, reference: Any) -> bool | None:
        expected = reference_letter(reference)
        if expected is None:
            return None
        return letter_of(answer) == expected

    return score


def _regex_scorer(pattern: str, ignore_case: bool) -> Scorer:
    flags = re.IGNORECASE if ignore_case else 0
    uses_reference = "{reference}" in pattern
    fixed = None if uses_reference else re.compile(pattern, flags)

    def score(answer: str, reference: Any) -> bool | None:
        if fixed is not None:
            return fixed.search(answer) is not None
        if reference is None:
            return None
        compiled = re.compile(pattern.replace("{reference}", re.escape(str(reference).strip())), flags)
        return compiled.search(answer) is not None

    return score


def load_callable(dotted: str, where: str = "scenario.scorer.function") -> Scorer:
    """The function ``module:function`` names; a one-line :class:`ConfigError` when it cannot be imported."""
    module_name, _, name = dotted.partition(":")
    if not module_name or not name:
        raise ConfigError(f"{where}: '{dotted}' is not 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises while importing
        raise ConfigError(f"{where}: cannot import module '{module_name}' ({one_line(exc)})") from None
    function: Any = module
    for part in name.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise ConfigError(f"{where}: module '{module_name}' has no '{name}'")
    if not callable(function):
        raise ConfigError(f"{where}: '{dotted}' is not callable")
    return cast(Scorer, function)


def create_scorer(config: ScorerConfig) -> Scorer:
    """The scorer ``config`` describes (raises :class:`ConfigError` for a callable that cannot be imported)."""
    if config.type == "numeric":
        return score_numeric
    if config.type == "choice":
        return _choice_scorer(config.choices, config.ignore_case)
    if config.type == "regex":
        return _regex_scorer(str(config.pattern), config.ignore_case)
    return load_callable(str(config.function))


def describe_scorer(config: ScorerConfig) -> str:
    """A short name for reports: ``numeric``, ``choice``, ``regex:<pattern>``, ``callable:<module:function>``."""
    if config.type == "regex":
        return f"regex:{config.pattern}"
    if config.type == "callable":
        return f"callable:{config.function}"
    return config.type


__all__ = ["Scorer", "create_scorer", "describe_scorer", "final_number", "load_callable", "score_numeric"]
