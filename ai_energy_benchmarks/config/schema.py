"""Typed configuration models: the whole benchmark and its shared sections.

Every section forbids unknown keys. Values may arrive as strings from a command line ('False', '0', '0, 1, 2',
'10') or as OmegaConf containers; they are coerced to the declared type or rejected with a message that names the
key path, what was expected and what was found (coercion: :mod:`ai_energy_benchmarks.config.coerce`; messages:
:mod:`ai_energy_benchmarks.config.errors`). The ``backend`` section is the model of its ``type``
(:mod:`ai_energy_benchmarks.config.backend`): each backend, built-in or plugin, owns its config model.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializeAsAny,
    field_validator,
    model_validator,
)

from ai_energy_benchmarks.config.backend import BackendConfig, validate_backend
from ai_energy_benchmarks.config.coerce import Section as _Section
from ai_energy_benchmarks.config.coerce import parse_scalar_string, to_plain
from ai_energy_benchmarks.config.gpu_control import GpuControlConfig
from ai_energy_benchmarks.config.metrics import (
    AmdSmiSettings,
    CodeCarbonSettings,
    DcgmConfig,
    MetricsConfig,
    NvmlSettings,
    RaplSettings,
)
from ai_energy_benchmarks.config.scorer import ScorerConfig
from ai_energy_benchmarks.config.sessions import MultiTurnConfig, TraceConfig
from ai_energy_benchmarks.config.steady import SteadyHardwareConfig
from ai_energy_benchmarks.config.synthetic import SyntheticConfig

logger = logging.getLogger(__name__)


class InputShapes(_Section):
    """Shapes of the inputs sent to the model."""

    batch_size: int = Field(1, ge=1, description="Prompts per forward pass (PyTorch backend); left padding.")


class GenerateKwargs(_Section, Mapping[str, Any]):
    """Generation parameters. Known keys are typed; any other key is passed to the backend unchanged
    (a near miss of a known key, such as `max_new_token`, is an error).

    Also a read-only Mapping of the keys that are set (``["max_new_tokens"]``, ``.get()``, ``dict(...)``), as 0.0.4's
    plain dict was read by callers such as AIEnergyScore.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    max_new_tokens: int = Field(10, ge=1, description="Tokens generated per prompt (upper bound).")
    min_new_tokens: int | None = Field(
        10,
        ge=0,
        description="Lower bound on generated tokens; equal to max_new_tokens for a fixed, comparable output length.",
    )
    do_sample: bool = Field(False, description="Sample instead of greedy decoding.")
    temperature: float | None = Field(None, gt=0, description="Sampling temperature (with do_sample).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass (with do_sample).")
    top_k: int | None = Field(None, ge=0, description="Top-k sampling (with do_sample).")
    num_beams: int | None = Field(None, ge=1, description="Beam search width.")

    @model_validator(mode="before")
    @classmethod
    def _type_extra_strings(cls, data: Any) -> Any:
        data = to_plain(data)
        if isinstance(data, dict):
            known = set(cls.model_fields)
            for key in data:
                close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.85)
                if key not in known and close:
                    # Other keys pass through to the backend, but a near miss of a known key is a typo.
                    raise ValueError(f"unknown key '{key}' (did you mean '{close[0]}'?)")
            return {
                k: (parse_scalar_string(v) if isinstance(v, str) and k not in known else v) for k, v in data.items()
            }
        return data

    @model_validator(mode="after")
    def _check_lengths(self) -> GenerateKwargs:
        if self.min_new_tokens is not None and self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens ({self.min_new_tokens}) must not exceed max_new_tokens ({self.max_new_tokens})"
            )
        return self

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments to pass to the backend (unset optional keys left out)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}

    # -- read-only Mapping over as_kwargs() ------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.as_kwargs()[key]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # BaseModel iterates (name, value) pairs
        return iter(self.as_kwargs())

    def __len__(self) -> int:
        return len(self.as_kwargs())


#: Keys of ``scenario.reasoning_params`` that switch reasoning on or off (the same meaning as ``scenario.reasoning``).
_REASONING_SWITCH_KEYS = ("enable_thinking", "reasoning")


#: ``scenario.dataset_name`` of synthetic prompts (``scenario.synthetic``).
SYNTHETIC_DATASET = "synthetic"


class ScenarioConfig(_Section):
    """The workload: which prompts, how many, and how they are generated."""

    dataset_name: str = Field(
        "packaged:quickstart",
        min_length=1,
        description="`packaged:NAME` (prompts shipped with the package), a local file (csv, jsonl, json, "
        "parquet, txt) or folder, or a hub dataset id (offline: read from the local `datasets` cache).",
    )
    dataset_config: str | None = Field(None, description="Hub dataset configuration (subset) name.")
    split: str = Field("train", description="Dataset split to read.")
    revision: str | None = Field(
        None,
        description="Hub dataset revision (branch, tag or commit). Offline, a commit must match the most "
        "recently cached copy; a branch or tag cannot be resolved and is reported in the warnings.",
    )
    text_column_name: str = Field("text", min_length=1, description="Column holding the prompt text.")
    num_samples: int = Field(10, ge=1, description="Number of prompts measured per repetition.")
    allow_fewer_samples: bool = Field(
        True,
        description="When the dataset holds fewer prompts than `num_samples`: use them all and say so (true), or "
        "refuse to run (false). Prompts are never repeated to make up the count.",
    )
    shuffle: bool = Field(False, description="Shuffle the dataset (with `seed`) before taking `num_samples`.")
    seed: int = Field(42, ge=0, description="Seed for shuffling.")
    truncation: bool = Field(
        False,
        description="Truncate prompts longer than the model's context (dropping their start) instead of rejecting "
        "them.",
    )
    input_shapes: InputShapes = Field(default_factory=InputShapes, description="Input shapes (batch size).")
    generate_kwargs: GenerateKwargs = Field(
        default_factory=GenerateKwargs, description="Generation parameters passed to the backend."
    )
    chat_template: bool | Literal["auto"] = Field(
        "auto",
        description="Send prompts as chat messages through the model's chat template (local tokenizer, or the "
        "server's chat endpoint): `auto` when the tokenizer has one, `true` (required), `false` (plain text). "
        "Synthetic prompts (`dataset_name: synthetic`) are sent as plain text unless this is set.",
    )
    reasoning: bool = Field(False, description="Drive the model in its reasoning (thinking) mode.")
    reasoning_format: str | None = Field(
        None,
        description="Reasoning family, overriding the choice made from the model name: `plain`, `harmony`, "
        "`system_flag`, `template_param`, `think_prefix` (see data/reasoning_formats.yaml).",
    )
    reasoning_params: dict[str, Any] | None = Field(
        None,
        description="Reasoning options: `reasoning_effort` (harmony: low/medium/high), `thinking_budget` (families "
        "with a budget parameter), `system_prompt` (system_flag); `enable_thinking` or `reasoning` (true/false) "
        "set `scenario.reasoning`.",
    )
    measure_prefill: bool = Field(
        True,
        description="Before each generate pass, measure a prefill pass (one new token per prompt); "
        "decode = generate - prefill, as AIEnergyScore reports.",
    )
    warmup_runs: int = Field(
        1, ge=0, description="Batches (or requests) run before measuring, outside every measured window."
    )
    repetitions: int = Field(1, ge=1, description="Times the measured workload is repeated.")
    scorer: ScorerConfig | None = Field(
        None,
        description="Check each answer against the dataset's reference after the run (energy per correct answer); "
        "unset: answers are not scored.",
    )
    multi_turn: MultiTurnConfig = Field(
        default_factory=MultiTurnConfig, description="Multi-turn conversations (docs/workloads.md)."
    )
    trace: TraceConfig = Field(default_factory=TraceConfig, description="Trace replay (docs/workloads.md).")
    synthetic: SyntheticConfig | None = Field(
        None,
        description="With `dataset_name: synthetic`: prompts of controlled input length and requests of controlled "
        "output length in the model's tokens (`input_tokens`, `output_tokens`, `exact_output`, `seed`; see "
        "docs/workloads.md).",
    )

    @field_validator("reasoning_params", mode="before")
    @classmethod
    def _type_reasoning_strings(cls, value: Any) -> Any:
        value = to_plain(value)
        if isinstance(value, dict):
            return {k: parse_scalar_string(v) if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_session_workload(self) -> ScenarioConfig:
        if self.multi_turn.enabled and self.trace.enabled:
            raise ValueError("multi_turn.enabled and trace.enabled are both true; choose one workload")
        return self

    @model_validator(mode="after")
    def _synthetic_section(self) -> ScenarioConfig:
        """``dataset_name: synthetic`` and ``synthetic`` go together; drawn output lengths replace the fixed ones."""
        if self.dataset_name == SYNTHETIC_DATASET and self.synthetic is None:
            raise ValueError("dataset_name is synthetic: set synthetic.input_tokens (e.g. synthetic.input_tokens=256)")
        if self.synthetic is not None and self.dataset_name != SYNTHETIC_DATASET:
            raise ValueError(f"synthetic is set but dataset_name is '{self.dataset_name}'; set dataset_name=synthetic")
        if self.synthetic is not None and "chat_template" not in self.model_fields_set:
            # The prompt's length is the length sent: plain text (completions), no chat template's text around it.
            self.__dict__["chat_template"] = False
        if self.synthetic is not None and self.synthetic.output_tokens is not None:
            both = sorted({"max_new_tokens", "min_new_tokens"} & self.generate_kwargs.model_fields_set)
            if both:
                raise ValueError(
                    f"synthetic.output_tokens sets max_new_tokens and min_new_tokens per prompt; remove "
                    f"generate_kwargs.{both[0]}"
                )
        return self

    @model_validator(mode="after")
    def _reasoning_switch_in_params(self) -> ScenarioConfig:
        """``reasoning_params.enable_thinking`` (or ``.reasoning``), as AIEnergyScore passes it, sets the switch."""
        for key in _REASONING_SWITCH_KEYS:
            value = (self.reasoning_params or {}).get(key)
            if value is None:
                continue
            if not isinstance(value, bool):
                raise ValueError(f"reasoning_params.{key} must be true or false, got {value!r}")
            if self.reasoning and not value:
                raise ValueError(f"reasoning_params.{key} is false but reasoning is true; set one of them")
            if value and not self.reasoning:
                if "reasoning" in self.model_fields_set:
                    raise ValueError(f"reasoning_params.{key} is true but reasoning is false; set one of them")
                self.__dict__["reasoning"] = True  # no re-validation: the switch is consistent by construction
        return self


class ReporterConfig(_Section):
    """Where the summary row of each run is appended."""

    type: Literal["csv"] = Field("csv", description="Reporter type.")
    output_file: str = Field(
        "benchmark_results.csv",
        min_length=1,
        description="CSV file one row per run is appended to (relative to the current directory).",
    )


class BenchmarkConfig(_Section):
    """A whole benchmark: what to run, on what, how to measure it and where to write the results."""

    name: str = Field("benchmark", min_length=1, description="Name of the benchmark, recorded in the results.")
    output_dir: str = Field(
        "./benchmark_output", min_length=1, description="Directory the run's report and files are written to."
    )
    backend: SerializeAsAny[BackendConfig] = Field(
        ..., description="Model and backend: the keys of the backend `type` chosen."
    )
    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig, description="Workload.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Energy measurement.")
    reporter: ReporterConfig = Field(default_factory=ReporterConfig, description="Results file.")
    gpu: GpuControlConfig | None = Field(None, description="Power limit and SM clock lock, set and restored.")
    steady_hardware: SteadyHardwareConfig = Field(default_factory=SteadyHardwareConfig, description="Steady GPUs.")

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_of_its_type(cls, value: Any) -> Any:
        return validate_backend(value)

    def to_public_dict(self) -> dict[str, Any]:
        """The resolved config as plain data with secrets redacted (safe to save and to print): the API key and any
        other secret-named key, and the credentials in URLs (``http://user:KEY@host``, ``?api_key=``)."""
        from ai_energy_benchmarks.config.redact import redact_data

        return redact_data(self.model_dump(mode="json", exclude={"gpu"} if self.gpu is None else None))


__all__ = [
    "AmdSmiSettings",
    "BackendConfig",
    "BenchmarkConfig",
    "CodeCarbonSettings",
    "DcgmConfig",
    "GenerateKwargs",
    "InputShapes",
    "MetricsConfig",
    "NvmlSettings",
    "RaplSettings",
    "ReporterConfig",
    "ScenarioConfig",
    "parse_scalar_string",
    "to_plain",
]
