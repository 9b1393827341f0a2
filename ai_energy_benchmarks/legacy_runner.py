"""The parts of ai_energy_benchmarks 0.0.4's ``BenchmarkRunner`` that callers reach after construction.

0.0.4's runner built its backend, dataset loader, metrics collector and reporter in its constructor and callers read
them as ``runner.backend``, ``runner.dataset``, ``runner.reporter`` (AIEnergyScore's batch runner probes
``runner.backend`` when validation fails and deletes it after a run). :class:`LegacyRunnerParts` gives
:class:`~ai_energy_benchmarks.runner.BenchmarkRunner` the same attributes, built on first use: constructing the
runner loads no model and opens no connection; the backend is the 0.0.4 adapter (backends/legacy.py) over ours,
unloaded until someone loads it. :meth:`BenchmarkRunner.run` builds, loads and closes the backend it measures, and
``runner.backend`` is that backend afterwards.
"""

from __future__ import annotations

import logging
from typing import Any

from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import BenchmarkError

logger = logging.getLogger(__name__)


class LegacyDataset:
    """0.0.4's ``HuggingFaceDataset`` over our prompt loader: ``load(config) -> list[str]`` and ``validate()``."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self._config = config
        #: The prompts of the latest :meth:`load` (0.0.4 kept its loaded dataset here).
        self.dataset: list[str] | None = None

    def load(self, config: dict[str, Any] | None = None) -> list[str]:
        """The prompts, as 0.0.4 loaded them: ``config`` keys ``name`` (or ``dataset_name``), ``text_column`` (or
        ``text_column_name``), ``num_samples``, ``split``; unset keys come from the runner's scenario."""
        from ai_energy_benchmarks.datasets.loader import load_prompts

        given = config or {}
        changes: dict[str, Any] = {}
        for ours, keys in (
            ("dataset_name", ("name", "dataset_name")),
            ("text_column_name", ("text_column", "text_column_name")),
            ("num_samples", ("num_samples",)),
            ("split", ("split",)),
        ):
            for key in keys:
                if given.get(key) is not None:
                    changes[ours] = given[key]
                    break
        scenario = self._config.scenario
        if changes:
            scenario = type(scenario).model_validate(scenario.model_dump(exclude_unset=True) | changes)
        self.dataset = load_prompts(scenario).prompts
        return self.dataset

    def validate(self) -> bool:
        """Whether the prompt source can be found (checked without reading it)."""
        from ai_energy_benchmarks.datasets.loader import prompt_source

        try:
            prompt_source(self._config.scenario)
        except BenchmarkError as exc:
            logger.error("dataset validation failed: %s", exc)
            return False
        return True


def legacy_backend(config: BenchmarkConfig) -> Any:
    """The 0.0.4 adapter for ``config``'s backend (not loaded); our own backend for types 0.0.4 did not have."""
    if config.backend.type == "pytorch":
        from ai_energy_benchmarks.backends.legacy import LegacyPyTorchBackend

        return LegacyPyTorchBackend(config)
    if config.backend.type == "vllm":
        from ai_energy_benchmarks.backends.vllm import VLLMBackend

        return VLLMBackend(config)
    from ai_energy_benchmarks.backends.registry import create_backend

    return create_backend(config)


class LegacyRunnerParts:
    """``backend``, ``dataset``, ``reporter`` and ``metrics_collector`` as 0.0.4's runner had them (built lazily)."""

    config: BenchmarkConfig

    @property
    def backend(self) -> Any:
        """The backend: 0.0.4's adapter over ours before :meth:`run` (unloaded), the measured one after it."""
        if self.__dict__.get("_legacy_backend") is None:
            self.__dict__["_legacy_backend"] = legacy_backend(self.config)
        return self.__dict__["_legacy_backend"]

    @backend.setter
    def backend(self, value: Any) -> None:
        self.__dict__["_legacy_backend"] = value

    @backend.deleter
    def backend(self) -> None:
        self.__dict__["_legacy_backend"] = None

    @property
    def dataset(self) -> LegacyDataset:
        """0.0.4's dataset loader over ours (``load(config) -> list[str]``, ``validate()``)."""
        if self.__dict__.get("_legacy_dataset") is None:
            self.__dict__["_legacy_dataset"] = LegacyDataset(self.config)
        dataset: LegacyDataset = self.__dict__["_legacy_dataset"]
        return dataset

    @dataset.setter
    def dataset(self, value: Any) -> None:
        self.__dict__["_legacy_dataset"] = value

    @property
    def reporter(self) -> Any:
        """0.0.4's CSV reporter on ``reporter.output_file`` (the run itself appends our own row there)."""
        if self.__dict__.get("_legacy_reporter") is None:
            from ai_energy_benchmarks.reporters.csv_reporter import CSVReporter

            self.__dict__["_legacy_reporter"] = CSVReporter(output_file=self.config.reporter.output_file)
        return self.__dict__["_legacy_reporter"]

    @reporter.setter
    def reporter(self, value: Any) -> None:
        self.__dict__["_legacy_reporter"] = value

    @property
    def metrics_collector(self) -> None:
        """0.0.4's CodeCarbon collector: None here; our meters are built for each run (``metrics`` in the config)."""
        return None
