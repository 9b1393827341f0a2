"""The typed result: ``BenchmarkResult`` and its blocks (defined in ``results/model_blocks.py``, importable from
here), and the JSON Schema published from them.

``aggregate()`` returns a :class:`BenchmarkResult`; ``BenchmarkRunner.run()`` returns :meth:`BenchmarkResult.to_dict`,
which is exactly the dict of schema 1.3 (keys, key order and values): a field is written when it was given, so a
block that has a key only sometimes (``energy.steady_state`` only when energy was measured, an unreached
steady-state window with three keys) keeps that shape. Reports read from disk parse into the same model
(:func:`parse_report`, after :func:`~ai_energy_benchmarks.results.contract.reader_view`); keys this version does not
know are kept (``extra="allow"``) and written back unchanged.

Units are in the names: ``_wh`` watt-hours, ``_j`` joules, ``_s`` seconds, ``_w`` watts. 0.0.4's keys (see
``results/contract.py``) are numbers, never null, in what ``run()`` returns; a reader's view has them null again where
they were filled with 0.0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field

from ai_energy_benchmarks.results.model_blocks import (
    CrossCheck,
    DatasetInfo,
    Energy,
    Files,
    IdleBaseline,
    Latency,
    MeteredGpu,
    Number,
    PhaseBlock,
    Phases,
    Quality,
    Repetition,
    RepetitionStatistics,
    ResultBlock,
    RunConfig,
    Statistics,
    SteadyDevice,
    SteadyState,
    SteadyWindow,
    Summary,
    Timestamps,
    WorkloadResult,
)
from ai_energy_benchmarks.results.model_gpu import ControlledGpu, GpuControl
from ai_energy_benchmarks.results.model_hardware import Hardware, HardwareWait, HardwareWindow, ThrottleSummary

#: 1.1: 0.0.4's keys are never null (``zero_filled``), ``summary.throughput_tokens_per_second`` is prompt + output
#: tokens per second again (``throughput_output_tokens_per_second``: output only), repetitions'
#: ``output_tokens_per_second`` (was ``throughput_tokens_per_second``), ``mean_latency_s``, ``mean_ttft_s``.
#: 1.2: ``quality`` (scored answers, accuracy, energy per correct answer) and its CSV columns; ``requests.jsonl``
#: records carry ``correct``, ``prompt_index`` and ``energy_j``; ``energy.request_attribution``.
#: 1.3: ``gpu_control`` (power limit and SM clock lock set by ``gpu:``: original, requested, enforced), only then;
#: ``hardware`` (steady-hardware waits, per-window GPU temperature and throttling; with a GPU meter only).
SCHEMA_VERSION = "1.3"


class BenchmarkResult(ResultBlock):
    """One benchmark run's result (``benchmark_report.json``; ``run()`` returns :meth:`to_dict`)."""

    model_config = ConfigDict(extra="allow", title="BenchmarkResult")

    schema_version: str | None = Field(None, description="'1.3' today; '1.0' reports are upgraded when read")
    status: str | None = Field(None, description="completed | failed | interrupted")
    config: RunConfig = Field(default_factory=RunConfig)
    summary: Summary = Field(default_factory=Summary)
    energy: Energy = Field(default_factory=Energy)
    phases: Phases | None = None
    latency: Latency | None = None
    repetitions: list[Repetition] = Field(default_factory=list)
    repetition_statistics: RepetitionStatistics | None = None
    model: dict[str, Any] = Field(default_factory=dict, description="the backend's description of what it ran")
    dataset: DatasetInfo = Field(default_factory=DatasetInfo)
    quality: Quality | None = Field(None, description="with scenario.scorer: accuracy and energy per correct answer")
    meters: dict[str, Any] = Field(default_factory=dict, description="each meter's description, by name")
    environment: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    timestamps: Timestamps = Field(default_factory=Timestamps)
    warnings: list[str] = Field(default_factory=list)
    energy_notes: list[str] = Field(default_factory=list)
    files: Files | None = None
    workload: WorkloadResult | None = Field(None, description="multi-turn or trace workloads only")
    gpu_control: GpuControl | None = Field(None, description="with gpu: in the config: the GPU settings it set")
    hardware: Hardware | None = Field(None, description="with a GPU meter: steady-hardware waits, throttled windows")

    @property
    def synthetic_model(self) -> bool:
        """Whether the model had random weights (the backend says so in ``model.synthetic``)."""
        return bool(self.model.get("synthetic"))


def as_result(result: BenchmarkResult | Mapping[str, Any]) -> BenchmarkResult:
    """``result`` as a :class:`BenchmarkResult` (a dict such as ``run()`` returns is parsed, not upgraded)."""
    return result if isinstance(result, BenchmarkResult) else BenchmarkResult.model_validate(dict(result))


def parse_report(report: Mapping[str, Any]) -> BenchmarkResult:
    """A report read from disk as our readers see it: 0.0.4's zero-filled keys null again and a schema 1.0 report's
    keys renamed to today's (:func:`~ai_energy_benchmarks.results.contract.reader_view`), then typed."""
    from ai_energy_benchmarks.results.contract import reader_view

    return BenchmarkResult.model_validate(reader_view(report))


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``benchmark_report.json`` and of ``run()``'s dict."""
    schema = BenchmarkResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text() -> str:
    """:func:`json_schema` as indented JSON text (what ``ai-energy-benchmark schema`` prints)."""
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


__all__ = [
    "SCHEMA_VERSION",
    "BenchmarkResult",
    "ControlledGpu",
    "CrossCheck",
    "DatasetInfo",
    "Energy",
    "Files",
    "GpuControl",
    "Hardware",
    "HardwareWait",
    "HardwareWindow",
    "IdleBaseline",
    "Latency",
    "MeteredGpu",
    "Number",
    "PhaseBlock",
    "Phases",
    "Quality",
    "Repetition",
    "RepetitionStatistics",
    "RunConfig",
    "Statistics",
    "SteadyDevice",
    "SteadyState",
    "SteadyWindow",
    "Summary",
    "ThrottleSummary",
    "Timestamps",
    "WorkloadResult",
    "as_result",
    "json_schema",
    "json_schema_text",
    "parse_report",
]
