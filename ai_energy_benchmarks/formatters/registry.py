"""Choose a formatter from the model id, by the rules kept as data in ``data/reasoning_formats.yaml``."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.formatters.base import (
    Formatter,
    SystemFlagFormatter,
    TemplateParamFormatter,
    ThinkPrefixFormatter,
)
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter

FAMILIES: dict[str, type[Formatter]] = {
    "plain": Formatter,
    "harmony": HarmonyFormatter,
    "system_flag": SystemFlagFormatter,
    "template_param": TemplateParamFormatter,
    "think_prefix": ThinkPrefixFormatter,
}


def _rules_file() -> Path:
    return Path(str(resources.files("ai_energy_benchmarks") / "data" / "reasoning_formats.yaml"))


class FormatterRegistry:
    """Maps model ids to formatters.

    Our backends call :meth:`formatter_for`, which always returns a formatter (the plain one when the model has no
    reasoning format). :meth:`get_formatter` keeps ai_energy_benchmarks 0.0.4's contract for callers that branch on
    it (AIEnergyScore): it returns None for a model 0.0.4 had no formatter for, and caches per model id.
    """

    def __init__(self, rules_path: str | Path | None = None) -> None:
        path = Path(rules_path) if rules_path else _rules_file()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        self.rules: list[dict[str, Any]] = list(data.get("formats", []))
        self.compat_rules: list[dict[str, Any]] = list(data.get("compat_0_0_4", []))
        for rule in self.rules:
            if rule.get("family") not in FAMILIES:
                raise ConfigError(f"{path}: unknown formatter family {rule.get('family')!r}")
        self._formatters: dict[str, Formatter | None] = {}

    def rule_for(self, model_id: str) -> dict[str, Any]:
        """The first rule whose ``match`` is found in ``model_id`` (case-insensitive)."""
        for rule in self.rules:
            if re.search(str(rule["match"]), model_id, flags=re.IGNORECASE):
                return rule
        return {"match": ".*", "family": "plain"}

    def formatter_for(self, model_id: str, family: str | None = None) -> Formatter:
        """The formatter for ``model_id``; ``family`` (``scenario.reasoning_format``) overrides the rules."""
        if family is not None:
            if family not in FAMILIES:
                raise ConfigError(
                    f"scenario.reasoning_format: unknown family '{family}' (one of {', '.join(sorted(FAMILIES))})"
                )
            options = next((r for r in self.rules if r.get("family") == family), {})
            return FAMILIES[family]({k: v for k, v in options.items() if k not in ("match", "family")})
        rule = self.rule_for(model_id)
        options = {k: v for k, v in rule.items() if k not in ("match", "family")}
        return FAMILIES[rule["family"]](options)

    def _find_model_config(self, model_id: str) -> dict[str, Any] | None:
        """0.0.4's entry for ``model_id`` (``{"match": ..., "type": ...}``; type None: known, no formatter), or None
        when 0.0.4 did not know the model (AIEnergyScore calls this to tell the two apart)."""
        lowered = model_id.lower()
        for rule in self.compat_rules:
            if re.search(str(rule["match"]), lowered):
                return dict(rule)
        return None

    def get_formatter(self, model_id: str) -> Formatter | None:
        """0.0.4's contract: a formatter for a model 0.0.4 had one for, None otherwise (cached per model id).

        The formatter returned is ours for that model (:meth:`formatter_for`).
        """
        if model_id not in self._formatters:
            rule = self._find_model_config(model_id)
            known = rule is not None and rule.get("type") is not None
            self._formatters[model_id] = self.formatter_for(model_id) if known else None
        return self._formatters[model_id]
