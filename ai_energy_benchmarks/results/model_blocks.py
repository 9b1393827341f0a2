"""The blocks of the typed result (``summary``, ``energy``, ``phases``, ...): the nested models of
:class:`~ai_energy_benchmarks.results.model.BenchmarkResult`, which re-exports them all.

Units are in the names: ``_wh`` watt-hours, ``_j`` joules, ``_s`` seconds, ``_w`` watts. Every block keeps keys it does
not know (``extra="allow"``) and writes back only the keys it was given (see ``results/model.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

#: A JSON number: kept as the int or float it was given (pydantic's ``float`` would turn ``2`` into ``2.0``).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


class ResultBlock(BaseModel):
    """A result block: unknown keys are kept; only the keys that were given are written back."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        """The block as the plain dict it was built from (keys in schema order, unset keys left out)."""
        return self.model_dump(exclude_unset=True, by_alias=True)


class ZeroFilledBlock(ResultBlock):
    """A block with 0.0.4 keys (and a ``zero_filled`` list of those that hold 0.0 for an unknown value)."""

    def known(self, key: str) -> Any:
        """The value of ``key``; None where it is a 0.0.4 key filled with 0.0 (see ``results/contract.py``)."""
        return None if key in getattr(self, "zero_filled", ()) else getattr(self, key)


class RunConfig(ResultBlock):
    """What was run (``config``: one of 0.0.4's blocks)."""

    name: str | None = None
    backend: str | None = None
    model: str | None = None
    dataset: str | None = None
    num_samples: int | None = None
    device_ids: list[int] = Field(default_factory=list)
    batch_size: int | None = None
    repetitions: int | None = None
    generate_kwargs: dict[str, Any] = Field(default_factory=dict)


class Summary(ZeroFilledBlock):
    """Speed over the measured generate windows (``summary``). Durations in s, rates per s."""

    total_prompts: int = 0
    successful_prompts: int = 0
    failed_prompts: int = 0
    total_duration_seconds: Number = 0.0
    avg_latency_seconds: Number | None = Field(None, description="0.0.4 key: never null in run()'s dict")
    avg_time_to_first_token: Number | None = Field(None, description="0.0.4 key: never null in run()'s dict")
    total_tokens: int = 0
    total_prompt_tokens: int = 0
    total_completion_tokens: int = 0
    throughput_tokens_per_second: Number | None = Field(None, description="prompt + output tokens per second (0.0.4)")
    throughput_total_tokens_per_second: Number | None = None
    throughput_output_tokens_per_second: Number | None = None
    mean_latency_s: Number | None = None
    mean_ttft_s: Number | None = None
    total_reasoning_tokens: int | None = None
    total_answer_tokens: int | None = None
    reasoning_tokens_from: str | None = None
    requests_per_second: Number | None = None
    zero_filled: list[str] = Field(default_factory=list, description="0.0.4 keys holding 0.0 for an unknown value")


class Statistics(ResultBlock):
    """A sample described (``results.stats.describe``): 95% CI from Student's t; null where n is too small."""

    count: int = 0
    mean: Number | None = None
    std: Number | None = None
    ci95_half_width: Number | None = None
    ci95_low: Number | None = None
    ci95_high: Number | None = None
    cv: Number | None = None
    min: Number | None = None
    p50: Number | None = None
    p90: Number | None = None
    p99: Number | None = None
    max: Number | None = None


class IdleBaseline(ResultBlock):
    """Idle power (W) and the workload's energy above it (Wh), per device class."""

    duration_s: Number = 0.0
    power_w: dict[str, Number | None] = Field(default_factory=dict)
    power_bounds_w: dict[str, list[Number] | None] = Field(default_factory=dict)
    idle_energy_wh_over_measured_duration: dict[str, Number | None] = Field(default_factory=dict)
    active_energy_wh: dict[str, Number | None] = Field(default_factory=dict)
    total_active_energy_wh: Number | None = None
    idle_share: Number | None = None
    method: str | None = None


class CrossCheck(ResultBlock):
    """Two or more meters' figures for one device class over the windows all of them read (by meter)."""

    device: str
    energy_wh: dict[str, Number] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)
    bounds_wh: dict[str, list[Number] | None] = Field(default_factory=dict)
    relative_difference: Number = 0.0
    tolerance: Number = 0.0
    flagged: bool = False


class SteadyDevice(ResultBlock):
    """One device class's energy (Wh) over a steady-state interval, and where it came from."""

    energy_wh: Number | None = None
    lower_wh: Number | None = None
    upper_wh: Number | None = None
    source: str | None = None
    method: str | None = None


class SteadyWindow(ResultBlock):
    """A generate window's steady-state interval (all load slots busy); only three keys when it was not reached."""

    label: str | None = None
    reached: bool = False
    duration_s: Number | None = None
    share_of_window: Number | None = None
    output_tokens: Number | None = None
    energy_wh: Number | None = None
    joules_per_output_token: Number | None = None
    devices: dict[str, SteadyDevice] = Field(default_factory=dict)
    incomplete: list[str] = Field(default_factory=list)


class SteadyState(ResultBlock):
    """Energy of the backend's steady-state intervals, summed over the windows that reached one."""

    source: str | None = None
    is_measured: bool = False
    windows: list[SteadyWindow] = Field(default_factory=list)
    energy_wh: Number | None = None
    output_tokens: Number = 0.0
    joules_per_output_token: Number | None = None
    output_tokens_per_joule: Number | None = None


class MeteredGpu(ResultBlock):
    """One GPU whose energy is in ``energy.gpu_energy_wh``: its identity and how it was matched to the model's or
    server's devices."""

    device: str = Field(..., description="the reading's device label, `gpu:<library index>`")
    index: int | None = Field(None, description="the vendor library's index (NVML, AMD SMI), not the runtime ordinal")
    uuid: str | None = None
    name: str | None = None
    bus_id: str | None = Field(None, description="PCI bus id")
    matched_by: str | None = Field(
        None,
        description="how the GPU was chosen: a device ordinal through CUDA_VISIBLE_DEVICES (ROCR_/HIP_VISIBLE_DEVICES) "
        "by index or UUID, the library index, the server's process, or every visible GPU (with the reason)",
    )
    meter: str | None = None
    source: str | None = None


class Energy(ZeroFilledBlock):
    """Energy over the measured generate windows (``energy``): one meter per device class, each figure's source."""

    gpu_energy_wh: Number | None = Field(None, description="0.0.4 key: never null in run()'s dict")
    cpu_energy_wh: Number | None = Field(None, description="0.0.4 key: never null in run()'s dict")
    ram_energy_wh: Number | None = Field(None, description="0.0.4 key: never null in run()'s dict")
    total_energy_wh: Number | None = Field(None, description="0.0.4 key: never null in run()'s dict")
    energy_wh: Number | None = Field(None, description="the GPU energy (0.0.4's meaning)")
    emissions_g_co2eq: Number | None = None
    emissions_kg_co2eq: Number | None = None
    carbon_intensity_g_per_kwh: Number | None = None
    emissions_source: str | None = None
    gpu_energy_j: Number | None = None
    cpu_energy_j: Number | None = None
    ram_energy_j: Number | None = None
    total_energy_j: Number | None = None
    energy_bounds_wh: dict[str, list[Number] | None] = Field(default_factory=dict)
    sources: dict[str, str | None] = Field(default_factory=dict)
    meters_used: dict[str, str] = Field(default_factory=dict)
    gpus: list[MeteredGpu] = Field(
        default_factory=list,
        description="the GPUs the GPU figure covers, as the meter reported for it identified them (absent when "
        "none was identified)",
    )
    measured_energy_wh: Number | None = None
    estimated_energy_wh: Number | None = None
    all_measured: bool = False
    total_wh_per_1000_queries: Number | None = None
    gpu_wh_per_1000_queries: Number | None = None
    total_wh_per_request: Number | None = None
    joules_per_output_token: Number | None = None
    joules_per_total_token: Number | None = Field(
        None, description="total energy (J) / (prompt + output tokens) of the successful generate requests"
    )
    joules_per_request: Number | None = Field(None, description="total energy (J) / successful generate requests")
    output_tokens_per_joule: Number | None = None
    tokens_per_joule: Number | None = None
    gpu_tokens_per_joule: Number | None = None
    idle_baseline: IdleBaseline | None = None
    cross_checks: list[CrossCheck] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    readings: list[dict[str, Any]] = Field(default_factory=list, description="every meter's reading, per window")
    notes: list[str] = Field(default_factory=list)
    steady_state: SteadyState | None = Field(None, description="only when energy was measured")
    enabled: bool = False
    emissions_estimated_g_co2eq: Number | None = None
    zero_filled: list[str] = Field(default_factory=list, description="0.0.4 keys holding 0.0 for an unknown value")
    request_attribution: dict[str, Any] | None = Field(
        None, description="schema 1.2: how each window's energy was shared among its requests (energy_j)"
    )


class PhaseBlock(ResultBlock):
    """One phase's windows (``prefill``, ``generate``) or their difference (``decode``)."""

    duration_s: Number = 0.0
    energy_wh: Number | None = None
    gpu_energy_wh: Number | None = None
    cpu_energy_wh: Number | None = None
    ram_energy_wh: Number | None = None
    prompts: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int = 0
    samples_per_kwh: Number | None = None
    samples_per_second: Number | None = None
    tokens_per_kwh: Number | None = None
    tokens_per_second: Number | None = None


class Phases(ResultBlock):
    """Prefill, generate and decode (= generate - prefill), for local models and servers alike."""

    method: str | None = None
    prefill: PhaseBlock = Field(default_factory=PhaseBlock)
    generate: PhaseBlock = Field(default_factory=PhaseBlock)
    decode: PhaseBlock = Field(default_factory=PhaseBlock)
    server: dict[str, Any] | None = Field(
        None,
        description="HTTP runs: the server's own mean prefill and decode time per request in each pass (its "
        "Prometheus histograms) and their cross-check with the client's passes; null for local models",
    )


class Latency(ResultBlock):
    """Per-request latency and time to first token (s) over the generate windows."""

    unit: str = "s"
    per: str | None = None
    latency_s: Statistics = Field(default_factory=Statistics)
    ttft_s: Statistics = Field(default_factory=Statistics)


class Repetition(ResultBlock):
    """One measured repetition (one generate window)."""

    repetition: int | None = None
    window: str | None = None
    duration_s: Number = 0.0
    gpu_energy_wh: Number | None = None
    cpu_energy_wh: Number | None = None
    ram_energy_wh: Number | None = None
    total_energy_wh: Number | None = None
    energy_bounds_wh: dict[str, list[Number] | None] = Field(default_factory=dict)
    completion_tokens: int = 0
    output_tokens_per_second: Number | None = None
    joules_per_output_token: Number | None = None
    meter_errors: list[str] = Field(default_factory=list)


class RepetitionStatistics(ResultBlock):
    """Repetitions described, where every repetition had the figure (else that figure is null)."""

    total_energy_wh: Statistics | None = None
    gpu_energy_wh: Statistics | None = None
    joules_per_output_token: Statistics | None = None
    output_tokens_per_second: Statistics | None = None
    duration_s: Statistics | None = None


class Quality(ResultBlock):
    """Answers checked by ``scenario.scorer`` after the run, and the energy per correct answer (J, Wh per 1,000).

    Intervals are ``[low, high]`` (95%); an end is null where no finite bound holds. See ``results/quality.py``.
    """

    scorer: str | None = None
    answer_column: str | None = None
    answers: int = 0
    scored: int = 0
    unscored: int = 0
    correct: int = 0
    accuracy: Number | None = None
    accuracy_ci95: list[Number] | None = None
    accuracy_interval: str | None = None
    energy_j: Number | None = None
    energy_all_measured: bool = False
    joules_per_correct_answer: Number | None = None
    joules_per_correct_answer_ci95: list[Number | None] | None = None
    wh_per_1000_correct_answers: Number | None = None
    wh_per_1000_correct_answers_ci95: list[Number | None] | None = None
    gpu_joules_per_correct_answer: Number | None = None
    null_reason: str | None = None
    method: str | None = None
    errors: list[str] = Field(default_factory=list)


class DatasetInfo(ResultBlock):
    """Where the prompts came from."""

    source: str | None = None
    num_requested: int | None = None
    num_available: int | None = None
    num_used: int | None = None
    prompts_sha256: str | None = None
    hub: dict[str, Any] | None = None
    synthetic: dict[str, Any] | None = Field(
        None,
        description="synthetic prompts (scenario.synthetic): tokenizer, method, seed, the lengths requested and drawn",
    )


class Timestamps(ResultBlock):
    """ISO 8601 UTC instants."""

    started_at: str | None = None
    finished_at: str | None = None


class Files(ResultBlock):
    """The files a run wrote (added by the runner)."""

    report: str | None = None
    requests: str | None = None
    prompts: str | None = None
    resolved_config: str | None = None
    csv: str | None = None


class WorkloadResult(ResultBlock):
    """A session workload's own figures: multi-turn conversations or a trace replay (docs/workloads.md)."""

    kind: Literal["multi_turn", "trace"] | None = Field(None, description="multi_turn | trace")
    energy_method: str | None = Field(None, description="how each request's energy is taken from its window's")
    energy_source: str | None = Field(
        None, description="estimated:request-attribution (the records' energy_j); null when not metered"
    )
    window_energy_j: Number | None = Field(None, description="energy of the generate windows, J")
    unattributed_energy_j: Number | None = Field(
        None, description="of it, what the requests' energy_j do not cover (0 up to rounding), J"
    )
    prefix_cache: dict[str, Any] | None = Field(
        None, description="server's prefix-cache queries_tokens, hits_tokens, hit_rate over the measured runs"
    )
    source: str | None = Field(None, description="the conversation file or trace")
    history: str | None = Field(None, description="multi_turn: model | dataset (whose answers are the history)")
    conversations: int | None = Field(None, description="multi_turn: conversations sent per repetition")
    turns: int | None = Field(None, description="multi_turn: user turns sent per repetition")
    per_turn: list[dict[str, Any]] | None = Field(None, description="multi_turn: means by turn position")
    per_conversation: list[dict[str, Any]] | None = Field(None, description="multi_turn: one row per conversation")
    conversation_latency_s: Statistics | None = None
    conversation_wall_s: Statistics | None = None
    conversation_energy_j: Statistics | None = None
    timestamp_unit: str | None = Field(None, description="trace: ms | s")
    scale: Number | None = Field(None, description="trace: time scale of the arrivals (0.5: twice as fast)")
    requests: int | None = Field(None, description="trace: requests replayed")
    requests_available: int | None = None
    sessions: int | None = None
    span_s: Number | None = Field(None, description="trace: last arrival after the first, scaled, s")
    prompt_method: str | None = None
    schedule_drift: list[dict[str, Any]] | None = Field(None, description="trace: send time minus arrival time")
    input_tokens: dict[str, Any] | None = None
    output_tokens: dict[str, Any] | None = None
    per_session: list[dict[str, Any]] | None = Field(None, description="trace: one row per session")
