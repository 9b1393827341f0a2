"""Prompt sources: packaged prompt sets, local files and folders, and hub datasets."""

from ai_energy_benchmarks.datasets.loader import PromptSet, load_prompts, packaged_prompt_sets

__all__ = ["PromptSet", "load_prompts", "packaged_prompt_sets"]
