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
    """Maps model ids to formatters (``FormatterRegistry().get_formatter("openai/gpt-oss-20b")``)."""

    def __init__(self, rules_path: str | Path | None = None) -> None:
        path = Path(rules_path) if rules_path else _rules_file()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        self.rules: list[dict[str, Any]] = list(data.get("formats", []))
        for rule in self.rules:
            if rule.get("family") not in FAMILIES:
                raise ConfigError(f"{path}: unknown formatter family {rule.get('family')!r}")

    def rule_for(self, model_id: str) -> dict[str, Any]:
        """The first rule whose ``match`` is found in ``model_id`` (case-insensitive)."""
        for rule in self.rules:
            if re.search(str(rule["match"]), model_id, flags=re.IGNORECASE):
                return rule
        return {"match": ".*", "family": "plain"}

    def get_formatter(self, model_id: str, family: str | None = None) -> Formatter:
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
