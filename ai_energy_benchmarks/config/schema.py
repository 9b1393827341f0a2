"""Typed configuration models.

Every section forbids unknown keys. Values may arrive as strings from a command line ('False', '0', '0, 1, 2',
'10') or as OmegaConf containers; they are coerced to the declared type or rejected with a message that names the
key path, what was expected and what was found (see :mod:`ai_energy_benchmarks.config.errors`).
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

_NULL_STRINGS = frozenset({"null", "none", "~"})


def to_plain(value: Any) -> Any:
    """Recursively turn mappings and sequences (e.g. OmegaConf DictConfig/ListConfig) into dict and list."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Sequence):
        return [to_plain(v) for v in value]
    return value


def parse_scalar_string(text: str) -> Any:
    """Type a command-line scalar the way YAML would ('10' -> 10, 'False' -> False, 'null' -> None)."""
    if text.strip().lower() in _NULL_STRINGS:
        return None
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(parsed, (bool, int, float)) or parsed is None:
        return parsed if text.strip() else text
    return text


def _number_kind(annotation: Any) -> str | None:
    """'int' or 'float' when ``annotation`` is a number type (optionally ``| None`` or a list of them)."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = {_number_kind(arg) for arg in get_args(annotation) if arg is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if get_origin(annotation) is list:
        args = get_args(annotation)
        return _number_kind(args[0]) if args else None
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    return None


class _Section(BaseModel):
    """Common behaviour of every config section."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_containers(cls, data: Any) -> Any:
        data = to_plain(data)
        if isinstance(data, dict):
            # 'null' / 'None' given on a command line means "not set", for keys that may be unset.
            return {
                k: (None if isinstance(v, str) and v.strip().lower() in _NULL_STRINGS and cls._optional(k) else v)
                for k, v in data.items()
            }
        return data

    @classmethod
    def _optional(cls, key: str) -> bool:
        field = cls.model_fields.get(key)
        return field is not None and type(None) in get_args(field.annotation)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would read true as 1: a count or index given as true/false is a mistake, not a number.
        field = cls.model_fields.get(info.field_name or "")
        kind = _number_kind(field.annotation) if field is not None else None
        items = value if isinstance(value, list) else [value]
        if kind is not None and any(isinstance(item, bool) for item in items):
            if kind == "int":
                raise PydanticCustomError("int_type", "Input should be a valid integer")
            raise PydanticCustomError("float_type", "Input should be a valid number")
        return value


def _int_list(value: Any) -> Any:
    """Accept 0, '0', '0, 1, 2', '[0,1]' and lists of int-like values for a list of ints."""
    if isinstance(value, bool):
        return value  # rejected by the int validator with a clear message
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        if not text:
            return []
        return [part.strip() for part in text.split(",")]
    return to_plain(value)


_HOST_NAME = re.compile(r"[A-Za-z0-9_~%-]+(\.[A-Za-z0-9_~%-]+)*\.?")


def endpoint_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a server endpoint (an http/https URL with a host), or None when it is fine.

    The message never repeats the URL (it may carry credentials).
    """
    import ipaddress
    import urllib.parse

    usage = "expected an http:// or https:// URL with a host (e.g. http://localhost:8000/v1)"
    text = url.strip()
    if not text or any(ch.isspace() for ch in text):
        return usage + ("" if not text else "; a URL holds no spaces")
    try:
        parts = urllib.parse.urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"{usage}; {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return usage + (f"; scheme '{parts.scheme}' is not http or https" if "://" in text else "; no scheme")
    if not host:
        return usage + "; no host"
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{usage}; '{host}' is not an IPv6 address"
    elif not _HOST_NAME.fullmatch(host):
        return f"{usage}; '{host}' is not a host name"
    if port == 0:
        return f"{usage}; port 0"
    return None


class BackendConfig(_Section):
    """How the model is run: in-process with PyTorch, or over HTTP against a vLLM / OpenAI-compatible server."""

    type: Literal["pytorch", "vllm"] = Field(
        "pytorch",
        description="Backend: `pytorch` (local transformers model) or `vllm` (OpenAI-compatible server).",
    )
    model: str = Field(
        ...,
        min_length=1,
        description="Hub id, local path, or `packaged:NAME` for an architecture shipped with the package "
        "(e.g. `packaged:tiny-llama`). For `vllm`, the model name the server serves.",
    )
    device: str = Field("auto", description="`auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`.")
    device_ids: list[int] = Field(
        default_factory=lambda: [0],
        description="GPU indices to place the model on and to meter when the device is CUDA "
        "(accepts `[0, 1]` or the string `'0, 1'`).",
    )
    torch_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="Weights dtype for `pytorch`; `auto` is float32 on CPU and the model's own on GPU.",
    )
    no_weights: bool = Field(
        False,
        description="Initialise random weights from the model's config (fixed seed) instead of loading them.",
    )
    seed: int = Field(42, ge=0, description="Seed for random weight initialisation and sampling.")
    device_map: str | dict[str, Any] | None = Field(
        None,
        description="transformers/accelerate device map: `auto`, `balanced`, `sequential` or an explicit map.",
    )
    max_memory: dict[str, str] | None = Field(
        None, description="Per-device memory cap for `device_map`, e.g. `{0: 20GiB, cpu: 60GiB}`."
    )
    load_in_8bit: bool = Field(False, description="Quantise weights to 8 bits with bitsandbytes (GPU only).")
    load_in_4bit: bool = Field(False, description="Quantise weights to 4 bits with bitsandbytes (GPU only).")
    attn_implementation: str | None = Field(
        None, description="Attention kernel passed to transformers (`eager`, `sdpa`, `flash_attention_2`)."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub to run. Off unless asked.")
    num_threads: int | None = Field(
        None,
        ge=1,
        description="`pytorch`: torch intra-op CPU threads for the run (set before loading, restored afterwards). "
        "Unset: on a CPU run, the cores actually free: usable cores (affinity, cgroup quota) minus busy ones (the "
        "1-minute load average or the tasks runnable now, whichever is higher), at least 1, at most torch's own "
        "default (which OMP_NUM_THREADS sets); on a GPU run, torch's default. Recorded as `model.num_threads`.",
    )
    endpoint: str | None = Field(
        None,
        description="Server base URL for `vllm`, with or without `/v1` (e.g. `http://localhost:8000/v1`).",
    )
    api_key: SecretStr | None = Field(
        None,
        description="API key for the server (`vllm`); when unset, the `OPENAI_API_KEY` environment variable. "
        "Never written to results or logs.",
    )
    api: Literal["auto", "completions", "chat"] = Field(
        "auto",
        description="`vllm`: `/v1/chat/completions` (`chat`: messages through the server's chat template), "
        "`/v1/completions` (`completions`: plain prompts), or `auto`: chat, as 0.0.4 always sent, unless "
        "`scenario.chat_template` is false.",
    )
    concurrency: int = Field(1, ge=1, description="`vllm`: most requests in flight at once.")
    request_rate: float | None = Field(
        None, gt=0, description="`vllm`: requests per second offered; unset: as fast as `concurrency` allows."
    )
    arrival: Literal["constant", "poisson"] = Field(
        "poisson", description="`vllm`: arrival process with `request_rate`: evenly spaced or Poisson (seeded)."
    )
    burstiness: float = Field(
        1.0, gt=0, description="`vllm`: gamma shape of inter-arrival times (1: Poisson; < 1 burstier; > 1 smoother)."
    )
    duration_s: float | None = Field(
        None,
        gt=0,
        description="`vllm`: keep sending (cycling through the prompts) for this many seconds instead of once each.",
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="`vllm`: TCP connect timeout (s).")
    read_timeout_s: float = Field(300.0, gt=0, description="`vllm`: longest wait between two response chunks (s).")
    ready_timeout_s: float = Field(
        60.0, ge=0, description="`vllm`: wait this long for the server to answer `/health` or `/v1/models` (s)."
    )
    max_retries: int = Field(3, ge=0, description="`vllm`: retries of a request answered 429 or 503.")
    retry_backoff_s: float = Field(
        0.5,
        ge=0,
        description="`vllm`: retry backoff (s): retry n waits a random draw from [d/2, d], d = this * 2^(n-1).",
    )
    max_consecutive_failures: int = Field(
        50, ge=0, description="`vllm`: stop the run after this many failures in a row (0: never)."
    )
    ignore_eos: bool | None = Field(
        None,
        description="`vllm`: send `ignore_eos` (every request generates exactly `max_new_tokens` tokens). Unset: only "
        "for a fixed length (`min_new_tokens == max_new_tokens`); otherwise `min_tokens` is sent and the model stops "
        "at its end-of-sequence token.",
    )
    server_on_this_host: bool | None = Field(
        None,
        description="`vllm`: whether the server runs on this host, so that this host's GPUs are its GPUs. Unset: "
        "detected from the endpoint's address (loopback or an address of this host). Set false for a tunnel or "
        "port-forward to a remote server (`ssh -L`, `kubectl port-forward`), whose loopback address is not its host.",
    )
    scrape_metrics: bool = Field(
        True, description="`vllm`: scrape the server's Prometheus `/metrics` every second during the run."
    )
    slo_ttft_s: float | None = Field(None, gt=0, description="`vllm`: time-to-first-token objective for goodput (s).")
    slo_tpot_s: float | None = Field(None, gt=0, description="`vllm`: time-per-output-token objective for goodput (s).")
    slo_e2e_s: float | None = Field(None, gt=0, description="`vllm`: end-to-end latency objective for goodput (s).")

    @field_validator("device_ids", mode="before")
    @classmethod
    def _coerce_device_ids(cls, value: Any) -> Any:
        return _int_list(value)

    @field_validator("device_ids")
    @classmethod
    def _check_device_ids(cls, value: list[int]) -> list[int]:
        if any(i < 0 for i in value):
            raise ValueError("GPU indices must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("GPU indices must not repeat")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("must be one of auto, cpu, cuda, cuda:N, mps")
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = endpoint_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()

    @model_validator(mode="after")
    def _check_combinations(self) -> BackendConfig:
        if self.type == "vllm" and not self.endpoint:
            raise ValueError("endpoint is required when type is 'vllm'")
        if self.load_in_8bit and self.load_in_4bit:
            raise ValueError("load_in_8bit and load_in_4bit cannot both be true")
        foreign = _HTTP_ONLY if self.type == "pytorch" else _PYTORCH_ONLY
        for key in sorted(foreign & self.model_fields_set):
            if getattr(self, key) != type(self).model_fields[key].default:
                raise ValueError(
                    f"{key} applies to backend type '{'vllm' if self.type == 'pytorch' else 'pytorch'}' "
                    f"only, not '{self.type}'"
                )
        return self


_HTTP_ONLY = frozenset(
    {
        "api",
        "concurrency",
        "request_rate",
        "arrival",
        "burstiness",
        "duration_s",
        "connect_timeout_s",
        "read_timeout_s",
        "ready_timeout_s",
        "max_retries",
        "retry_backoff_s",
        "max_consecutive_failures",
        "ignore_eos",
        "server_on_this_host",
        "scrape_metrics",
        "slo_ttft_s",
        "slo_tpot_s",
        "slo_e2e_s",
    }
)
_PYTORCH_ONLY = frozenset(
    {
        "no_weights",
        "torch_dtype",
        "device_map",
        "max_memory",
        "load_in_8bit",
        "load_in_4bit",
        "attn_implementation",
        "trust_remote_code",
        "num_threads",
    }
)


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
        "server's chat endpoint): `auto` when the tokenizer has one, `true` (required), `false` (plain text).",
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

    @field_validator("reasoning_params", mode="before")
    @classmethod
    def _type_reasoning_strings(cls, value: Any) -> Any:
        value = to_plain(value)
        if isinstance(value, dict):
            return {k: parse_scalar_string(v) if isinstance(v, str) else v for k, v in value.items()}
        return value

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


class MetricsConfig(_Section):
    """Energy and emissions measurement."""

    enabled: bool = Field(True, description="Measure energy. When false, only speed is reported.")
    type: str | list[str] = Field(
        "codecarbon",
        description="Energy meter, or several run together: `codecarbon` (default), `nvml` (NVIDIA GPUs), "
        "`rapl` (CPU package and DRAM counters), e.g. `[codecarbon, nvml]`.",
    )
    project_name: str = Field("ai_energy_benchmarks", description="Project name recorded by CodeCarbon.")
    output_dir: str | None = Field(
        None, description="Where CodeCarbon writes its own files; defaults to the run's output_dir."
    )
    country_iso_code: str = Field(
        "USA", description="ISO 3166-1 alpha-3 country code of the machine, for the carbon intensity."
    )
    region: str | None = Field(None, description="Region within the country (e.g. `california`), if known.")
    measure_power_secs: float = Field(1.0, gt=0, description="CodeCarbon's measurement interval in seconds.")
    tracking_mode: Literal["machine", "process"] = Field(
        "machine", description="CodeCarbon scope: the whole machine or this process."
    )
    online: bool = Field(
        False, description="Use CodeCarbon's online tracker (geolocates over the network); off: offline tracker."
    )
    idle_seconds: float = Field(
        0.0, ge=0, description="Seconds of idle baseline measured after loading, before warm-up (0: none)."
    )
    nvml_poll_interval_s: float = Field(
        0.05,
        gt=0,
        le=0.1,
        description="NVML power/clock/temperature polling interval (s); at least 10 Hz.",
    )
    rapl_root: str = Field("/sys/class/powercap", description="Where the RAPL powercap tree is read from.")
    rapl_poll_interval_s: float = Field(
        0.1,
        gt=0,
        le=60.0,
        description="RAPL background read interval (s): tracks counter wraparounds and records the counters so a "
        "past interval (the HTTP steady state) can be read back.",
    )
    cross_check_tolerance: float = Field(
        0.02, gt=0, description="Relative disagreement between two meters of one device that is flagged."
    )

    @field_validator("type", mode="before")
    @classmethod
    def _split_meter_names(cls, value: Any) -> Any:
        value = to_plain(value)
        if isinstance(value, str) and "," in value:
            return [part.strip() for part in value.strip("[]").split(",")]
        return value

    @field_validator("type")
    @classmethod
    def _check_meter_names(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not n.strip() for n in names):
            raise ValueError("name at least one meter")
        if len(set(names)) != len(names):
            raise ValueError("meter names must not repeat")
        return value

    @property
    def meter_types(self) -> list[str]:
        """The configured meters as a list."""
        return [self.type] if isinstance(self.type, str) else list(self.type)

    @field_validator("country_iso_code")
    @classmethod
    def _check_country(cls, value: str) -> str:
        value = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", value):
            hint = _alpha2_hint(value)
            raise ValueError(f"must be a three-letter ISO 3166-1 alpha-3 code such as USA or FRA{hint}")
        if not _is_iso3166_alpha3(value):
            raise ValueError("is not an ISO 3166-1 alpha-3 country code (e.g. USA, FRA, DEU, IND)")
        return value


def _is_iso3166_alpha3(code: str) -> bool:
    """Whether ``code`` is an ISO 3166-1 alpha-3 country code (pycountry's list, which CodeCarbon also uses)."""
    try:
        import pycountry
    except ImportError:  # pragma: no cover - pycountry comes with codecarbon, a base dependency
        return True
    return pycountry.countries.get(alpha_3=code) is not None


def _alpha2_hint(code: str) -> str:
    """`` (did you mean 'USA'?)`` for a two-letter code such as ``US``, else an empty string."""
    if not re.fullmatch(r"[A-Z]{2}", code):
        return ""
    try:
        import pycountry
    except ImportError:  # pragma: no cover
        return ""
    country = pycountry.countries.get(alpha_2=code)
    return f" (did you mean '{country.alpha_3}'?)" if country is not None else ""


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
    backend: BackendConfig = Field(..., description="Model and backend.")
    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig, description="Workload.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Energy measurement.")
    reporter: ReporterConfig = Field(default_factory=ReporterConfig, description="Results file.")

    def to_public_dict(self) -> dict[str, Any]:
        """The resolved config as plain data with secrets redacted (safe to save and to print): the API key and any
        other secret-named key, and the credentials in URLs (``http://user:KEY@host``, ``?api_key=``)."""
        from ai_energy_benchmarks.config.redact import redact_data

        return redact_data(self.model_dump(mode="json"))
