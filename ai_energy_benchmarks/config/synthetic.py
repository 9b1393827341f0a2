"""``scenario.synthetic``: prompts of controlled input length and requests of controlled output length, in tokens.

Used when ``scenario.dataset_name`` is ``synthetic``. A length is a distribution::

    input_tokens: {dist: normal, mean: 512, std: 64, min: 16, max: 1024}
    output_tokens: {dist: fixed, value: 128}
    input_tokens: {dist: uniform, min: 100, max: 200}
    input_tokens: {dist: histogram, bins: [[128, 3], [1024, 1]]}
    input_tokens: 256                      # short for {dist: fixed, value: 256}

The prompts themselves are made by :mod:`ai_energy_benchmarks.datasets.synthetic` with the model's own tokenizer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ai_energy_benchmarks.config.coerce import Section, to_plain

#: The keys each distribution takes (besides ``dist``); ``min``/``max`` clip a normal distribution.
_DIST_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "fixed": ({"value"}, set()),
    "uniform": ({"min", "max"}, set()),
    "normal": ({"mean", "std"}, {"min", "max"}),
    "histogram": ({"bins"}, set()),
}


class LengthDistribution(Section):
    """A length in tokens, drawn per prompt: `fixed` (`value`), `uniform` (`min`..`max`, both included), `normal`
    (`mean`, `std`, rounded and clipped to `min` (default 1) .. `max`), or `histogram` (`bins`: a list of
    [length, weight] pairs, a length drawn with probability weight / sum of weights). A bare integer means `fixed`."""

    dist: Literal["fixed", "uniform", "normal", "histogram"] = Field(
        "fixed", description="`fixed`, `uniform`, `normal` or `histogram`."
    )
    value: int | None = Field(None, ge=1, description="`fixed`: the length in tokens.")
    min: int | None = Field(None, ge=1, description="`uniform`: smallest length; `normal`: clip below (default 1).")
    max: int | None = Field(None, ge=1, description="`uniform`: largest length; `normal`: clip above (default none).")
    mean: float | None = Field(None, gt=0, description="`normal`: mean length in tokens.")
    std: float | None = Field(None, ge=0, description="`normal`: standard deviation in tokens.")
    bins: list[tuple[int, float]] | None = Field(
        None, description="`histogram`: [length, weight] pairs (length >= 1 token, weight > 0)."
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        data = to_plain(data)
        if isinstance(data, bool):
            return data  # rejected below as not a mapping
        if isinstance(data, int):
            return {"dist": "fixed", "value": data}
        if isinstance(data, str) and data.strip().isdigit():
            return {"dist": "fixed", "value": int(data)}
        return data

    @field_validator("bins")
    @classmethod
    def _check_bins(cls, bins: list[tuple[int, float]] | None) -> list[tuple[int, float]] | None:
        if bins is None:
            return None
        if not bins:
            raise ValueError("bins must hold at least one [length, weight] pair")
        for index, (length, weight) in enumerate(bins):
            if length < 1:
                raise ValueError(f"bins[{index}]: length {length} must be at least 1 token")
            if not weight > 0:
                raise ValueError(f"bins[{index}]: weight {weight} must be positive")
        return bins

    @model_validator(mode="after")
    def _check_keys(self) -> LengthDistribution:
        required, optional = _DIST_KEYS[self.dist]
        given = {k for k in ("value", "min", "max", "mean", "std", "bins") if getattr(self, k) is not None}
        missing = sorted(required - given)
        if missing:
            raise ValueError(f"dist {self.dist} needs {', '.join(missing)}")
        extra = sorted(given - required - optional)
        if extra:
            raise ValueError(
                f"dist {self.dist} takes no {', '.join(extra)} (it takes {', '.join(sorted(required | optional))})"
            )
        low, high = self.min, self.max
        if low is not None and high is not None and low > high:
            raise ValueError(f"min ({low}) must not exceed max ({high})")
        return self

    @property
    def largest(self) -> int | None:
        """The largest length this distribution can draw (None: unbounded, a normal without ``max``)."""
        if self.dist == "fixed":
            return self.value
        if self.dist == "histogram":
            return max(length for length, _ in self.bins or [])
        return self.max

    def describe(self) -> dict[str, Any]:
        """The distribution as configured (JSON-safe, unset keys left out)."""
        return self.model_dump(exclude_none=True)


class SyntheticConfig(Section):
    """Synthetic prompts of controlled length (`scenario.dataset_name: synthetic`)."""

    input_tokens: LengthDistribution = Field(
        ..., description="Prompt length in tokens of the model's tokenizer (special tokens excluded)."
    )
    output_tokens: LengthDistribution | None = Field(
        None,
        description="Output length per request (its max_new_tokens); unset: scenario.generate_kwargs applies to "
        "every prompt.",
    )
    exact_output: bool = Field(
        True,
        description="With output_tokens: also set min_new_tokens to the drawn length, so the model ignores its "
        "end-of-sequence token (servers: `ignore_eos`, where the server profile supports it); false: the drawn "
        "length is an upper bound only.",
    )
    seed: int = Field(0, ge=0, description="Seed of the lengths drawn and of the prompts' words.")


__all__ = ["LengthDistribution", "SyntheticConfig"]
