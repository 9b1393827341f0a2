"""Local inference with PyTorch + transformers.

torch and transformers are imported when the backend loads, never at package import.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.http_metrics import schedule_drift
from ai_energy_benchmarks.backends.pytorch_config import PyTorchConfig
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.conversations import history_messages, with_history
from ai_energy_benchmarks.datasets.synthetic import TokenCounter
from ai_energy_benchmarks.datasets.traces import Trace
from ai_energy_benchmarks.datasets.workload import Workload
from ai_energy_benchmarks.exceptions import (
    BackendError,
    ConfigError,
    DatasetError,
    MissingDependencyError,
    one_line,
)
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter
from ai_energy_benchmarks.formatters.registry import FormatterRegistry

logger = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
#: The packaged tokenizer used for packaged architectures that ship none.
DEFAULT_TOKENIZER = "tiny-llama"


def packaged_models_dir() -> Path:
    """Directory of the architectures shipped with the package (config.json only, no weights)."""
    return Path(str(resources.files("ai_energy_benchmarks") / "data" / "models"))


def packaged_models() -> list[str]:
    """Names usable as ``backend.model: packaged:NAME``."""
    return sorted(p.name for p in packaged_models_dir().iterdir() if (p / "config.json").is_file())


def resolve_model_source(model: str) -> tuple[str, bool]:
    """The path or hub id to load, and whether it is a packaged architecture."""
    if model.startswith(PACKAGED_PREFIX):
        name = model[len(PACKAGED_PREFIX) :]
        path = packaged_models_dir() / name
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"backend.model: no packaged architecture '{name}' (available: {', '.join(packaged_models())})"
            )
        return str(path), True
    return model, False


#: Files whose presence means a local model folder holds weights transformers can load.
_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json")


def check_weights_present(model: str, source: str, packaged: bool) -> None:
    """Refuse, before anything loads, a local model folder without weights (a file listing; nothing is read).

    Packaged architectures ship a config.json only; a hub id is not checked (its files are fetched or cached)."""
    folder = Path(source)
    if not (packaged or folder.is_dir()):
        return
    if any(next(folder.glob(pattern), None) is not None for pattern in _WEIGHT_PATTERNS):
        return
    what = "is an architecture shipped without weights" if packaged else f"has no weights in {folder}"
    raise ConfigError(
        f"backend.model: '{model}' {what} (no *.safetensors or pytorch_model*.bin): set backend.no_weights=true "
        "to run it with random weights"
    )


def _open_assistant_turn(text: str, prefix: str) -> str:
    """``text`` (the chat template's output) followed by the assistant prefix, unless the template already opened
    the turn with it (e.g. DeepSeek-R1's templates end their generation prompt with ``<think>``)."""
    if not prefix or text.rstrip().endswith(prefix.strip()):
        return text
    return text + prefix


# -- CPU threads (backend.num_threads) -----------------------------------------------------------------------------
def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask, capped by a cgroup CPU quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota_files = (
        ("/sys/fs/cgroup/cpu.max",),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )
    for files in quota_files:  # cgroup v2, v1
        try:
            quota, period = " ".join(Path(f).read_text(encoding="utf-8") for f in files).split()[:2]
            if quota not in ("max", "-1"):
                cores = min(cores, int(quota) // int(period))
        except (OSError, ValueError):
            continue
    return max(1, cores)


def choose_num_threads(requested: int | None, torch_default: int, on_cpu: bool) -> tuple[int, str]:
    """torch intra-op threads for a run, and how they were chosen (a sentence for the report and the log).

    ``requested`` (``backend.num_threads``) wins. Otherwise a CPU run takes the cores actually free: the usable
    cores minus the busy ones (the 1-minute load average or the tasks runnable now, whichever is higher, rounded),
    at least 1 and at most ``torch_default`` (torch's own choice, which ``OMP_NUM_THREADS`` sets). On a machine
    whose other work keeps the cores busy, torch's default of one thread per core makes every thread wait for the
    others; fewer threads then finish sooner. A GPU run keeps the default.
    """
    if requested is not None:
        return requested, "backend.num_threads"
    if not on_cpu:
        return torch_default, "torch default (not a CPU run)"
    cores = usable_cores()
    try:
        load_1min = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load_1min = 0.0
    running = _other_runnable_tasks()
    busy = max(load_1min, running or 0.0)
    free = max(1, cores - int(busy + 0.5))
    threads = min(torch_default, free)
    now = "" if running is None else f", {running:g} other tasks runnable now"
    return threads, (
        f"auto: {cores} usable cores, 1-minute load {load_1min:.2f}{now}, so {free} free; torch default {torch_default}"
    )


def _other_runnable_tasks(samples: int = 5, interval_s: float = 0.01) -> float | None:
    """Tasks runnable besides this one right now (median of a few reads of /proc/stat's procs_running; Linux only).

    The 1-minute load average lags work that started seconds ago; this catches it.
    """
    counts = []
    for _ in range(samples):
        try:
            text = Path("/proc/stat").read_text(encoding="utf-8")
        except OSError:
            return None
        counts += [int(line.split()[1]) - 1 for line in text.splitlines() if line.startswith("procs_running ")]
        time.sleep(interval_s)
    return float(statistics.median(counts)) if counts else None


class _FirstTokenTimer:
    """A generate() streamer that only records when the first new token arrives (no second generate)."""

    def __init__(self, synchronize: Any) -> None:
        self._synchronize = synchronize
        self._calls = 0
        self.first_token_s: float | None = None

    def put(self, value: Any) -> None:
        # generate() first puts the prompt ids, then each new token (or batch of tokens).
        self._calls += 1
        if self._calls == 2:
            self._synchronize()
            self.first_token_s = time.perf_counter()

    def end(self) -> None:
        """Called by generate() when it finishes."""


class PyTorchBackend(Backend):
    """Runs a causal language model in-process, batch by batch, with left padding."""

    #: Keep each answer's decoded text in its record (``RequestRecord.output_text``); off for benchmarks.
    keep_text: bool = False
    workloads = frozenset({"multi_turn", "trace"})

    def __init__(self, config: BenchmarkConfig) -> None:
        self._config = config
        self._backend = PyTorchConfig.of(config.backend)
        self._scenario = config.scenario
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: str = "cpu"
        self._source, self._packaged = resolve_model_source(self._backend.model)
        if not self._backend.no_weights:
            check_weights_present(self._backend.model, self._source, self._packaged)
        self._context_tokens: int | None = None
        self._torch: Any = None
        self._tokenizer_note: str | None = None
        # The reasoning format is chosen (and a bad choice refused) now, before anything loads.
        self._formatter = FormatterRegistry().formatter_for(self._backend.model, self._scenario.reasoning_format)
        self._formatter.format("", self._scenario.reasoning, self._scenario.reasoning_params)
        self._use_chat = False
        self._rendered: dict[str, str] = {}
        self._phase = "unnamed"
        #: Decode each answer's text into its record (``output_texts``): only when a scorer will read it.
        self.keep_text = config.scenario.scorer is not None
        #: Trace replays' schedule drift by pass label (``describe()["schedule_drift"]``).
        self._drift: dict[str, dict[str, Any]] = {}
        self._num_threads: tuple[int, str] | None = None
        self._threads_to_restore: int | None = None
        self._per_prompt: list[dict[str, Any]] | None = None

    # -- loading ---------------------------------------------------------------------------------------------
    def _resolve_device(self, torch: Any) -> str:
        wanted = self._backend.device
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted.startswith("cuda"):
            if not torch.cuda.is_available():
                raise BackendError(f"backend.device is '{self._backend.device}' but no CUDA GPU is available")
            count = torch.cuda.device_count()
            bad = [i for i in self._backend.device_ids if i >= count]
            if bad:
                raise ConfigError(
                    f"backend.device_ids: GPU {bad[0]} does not exist (this machine has {count} CUDA device(s))"
                )
            if wanted == "cuda":
                wanted = f"cuda:{self._backend.device_ids[0]}" if self._backend.device_ids else "cuda:0"
        return wanted

    def _dtype(self, torch: Any) -> Any:
        name = self._backend.torch_dtype
        if name == "auto":
            return torch.float32 if self._device == "cpu" else "auto"
        return getattr(torch, name)

    def _quantization(self) -> Any:
        if not (self._backend.load_in_8bit or self._backend.load_in_4bit):
            return None
        if not self._device.startswith("cuda"):
            raise ConfigError("backend.load_in_8bit/load_in_4bit: bitsandbytes quantisation needs a CUDA GPU")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError(
                "backend.load_in_8bit/load_in_4bit: bitsandbytes is not installed: "
                "pip install 'ai-energy-benchmarks[quantization]'"
            ) from None
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_8bit=self._backend.load_in_8bit, load_in_4bit=self._backend.load_in_4bit)

    def _tokenizer_source(self) -> str:
        """Where the tokenizer comes from: the model itself, or the packaged one for a config-only architecture."""
        if self._packaged and not (Path(self._source) / "tokenizer_config.json").is_file():
            self._tokenizer_note = (
                "this packaged architecture ships no tokenizer: prompts are tokenised with the packaged "
                "tiny-llama byte-level BPE, so prompt token counts differ from the real model's"
            )
            return str(packaged_models_dir() / DEFAULT_TOKENIZER)
        return self._source

    def _placement(self, torch: Any) -> dict[str, Any]:
        """device_map / max_memory arguments that keep the model on ``backend.device_ids`` only."""
        backend = self._backend
        max_memory = {_memory_key(k): v for k, v in (backend.max_memory or {}).items()} or None
        if backend.device_map is None:
            if self._device.startswith("cuda") and len(backend.device_ids) > 1:
                return {"device_map": "auto", "max_memory": max_memory or _gpu_memory(torch, backend.device_ids)}
            return {}
        if isinstance(backend.device_map, dict):
            gpus = {int(v) for v in backend.device_map.values() if isinstance(v, int) or str(v).isdigit()}
            gpus |= {int(str(v).split(":")[1]) for v in backend.device_map.values() if str(v).startswith("cuda:")}
            outside = sorted(gpus - set(backend.device_ids))
            if outside and self._device.startswith("cuda"):
                raise ConfigError(
                    f"backend.device_map places modules on GPU {outside[0]}, which is not in backend.device_ids "
                    f"{backend.device_ids}"
                )
            return {"device_map": backend.device_map, "max_memory": max_memory}
        if self._device.startswith("cuda") and max_memory is None:
            max_memory = _gpu_memory(torch, backend.device_ids)
        return {"device_map": backend.device_map, "max_memory": max_memory}

    def load(self) -> None:
        """Load tokenizer and model (random weights with a fixed seed when ``no_weights``)."""
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise MissingDependencyError(
                f"backend.type pytorch needs torch and transformers ({exc.name} is not installed): "
                "pip install torch first, then pip install 'ai-energy-benchmarks[pytorch]'"
            ) from None
        self._torch = torch
        self._device = self._resolve_device(torch)
        self._set_num_threads(torch)
        backend = self._backend
        trust = backend.trust_remote_code
        quantization = self._quantization()
        placement = self._placement(torch)
        if backend.no_weights and quantization is not None:
            raise ConfigError(
                "backend.no_weights cannot be combined with load_in_8bit/load_in_4bit: quantisation needs real weights"
            )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(self._tokenizer_source(), trust_remote_code=trust)
            model_config = transformers.AutoConfig.from_pretrained(self._source, trust_remote_code=trust)
        except OSError as exc:
            raise BackendError(f"backend.model: cannot load '{backend.model}': {one_line(exc)}") from None
        except ValueError as exc:
            if "custom code" in str(exc) or "trust_remote_code" in str(exc):
                raise ConfigError(
                    f"backend.model: '{backend.model}' contains custom code, which runs only with "
                    "backend.trust_remote_code=true (set it only if you trust that code)"
                ) from None
            raise ConfigError(f"backend.model: '{backend.model}': {one_line(exc)}") from None
        transformers.utils.logging.disable_progress_bar()  # the library never prints; the CLI shows progress
        tokenizer.padding_side = "left"
        # Truncation (scenario.truncation) drops the start of a prompt, never its end: a chat template puts the
        # assistant turn there, and the model must still be asked to answer.
        tokenizer.truncation_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        dtype = self._dtype(torch)
        common: dict[str, Any] = {"trust_remote_code": trust}
        if backend.attn_implementation:
            common["attn_implementation"] = backend.attn_implementation
        torch.manual_seed(backend.seed)
        model: Any
        try:
            if backend.no_weights:
                if dtype != "auto":
                    common["dtype"] = dtype
                model = self._random_model(transformers, torch, model_config, common, placement)
            else:
                kwargs = dict(common, dtype=dtype, **{k: v for k, v in placement.items() if v is not None})
                if quantization is not None:
                    kwargs["quantization_config"] = quantization
                    kwargs.setdefault("device_map", {"": self._device})
                model = transformers.AutoModelForCausalLM.from_pretrained(self._source, **kwargs)
                if "device_map" not in kwargs:
                    model.to(self._device)
        except OSError as exc:
            raise BackendError(f"backend.model: cannot load '{backend.model}': {one_line(exc)}") from None
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"backend: cannot load '{backend.model}' as configured: {one_line(exc)}") from None
        model.eval()
        self._model = model
        self._tokenizer = tokenizer
        self._context_tokens = getattr(model_config, "max_position_embeddings", None)
        self._setup_formatting()
        self._check_generate_kwargs()
        logger.info("loaded %s on %s (%s parameters)", backend.model, self._device, model.num_parameters())

    def _set_num_threads(self, torch: Any) -> None:
        """Choose and apply the intra-op threads before loading and warm-up (close() restores torch's setting)."""
        previous = int(torch.get_num_threads())
        threads, how = choose_num_threads(self._backend.num_threads, previous, self._device == "cpu")
        if threads != previous:
            torch.set_num_threads(threads)
            self._threads_to_restore = previous
        self._num_threads = (threads, how)
        logger.info("torch intra-op threads: %d (%s)", threads, how)

    def _random_model(
        self, transformers: Any, torch: Any, model_config: Any, common: dict[str, Any], placement: dict[str, Any]
    ) -> Any:
        """Random weights from the config: built on the target device, or on the CPU then dispatched by a map."""
        if not placement:
            with torch.device(self._device):
                return transformers.AutoModelForCausalLM.from_config(model_config, **common)
        from accelerate import dispatch_model, infer_auto_device_map

        model = transformers.AutoModelForCausalLM.from_config(model_config, **common)
        device_map = placement["device_map"]
        if isinstance(device_map, str):
            if device_map not in ("auto", "balanced", "balanced_low_0", "sequential"):
                raise ConfigError(f"backend.device_map: unknown strategy '{device_map}'")
            device_map = infer_auto_device_map(
                model,
                max_memory=placement.get("max_memory"),
                no_split_module_classes=getattr(model, "_no_split_modules", None) or [],
            )
        model = dispatch_model(model, device_map=device_map)
        model.hf_device_map = device_map
        return model

    def _setup_formatting(self) -> None:
        """Decide between chat messages and plain text (the reasoning formatter was chosen at construction)."""
        scenario = self._scenario
        has_template = bool(getattr(self._tokenizer, "chat_template", None))
        if scenario.chat_template is True and not has_template:
            raise ConfigError(
                f"scenario.chat_template is true but the tokenizer of '{self._backend.model}' has no chat template"
            )
        self._use_chat = has_template and scenario.chat_template in (True, "auto")
        if scenario.multi_turn.enabled and not self._use_chat:
            raise ConfigError(
                "scenario.multi_turn: conversations are sent through the model's chat template, and "
                + (
                    f"the tokenizer of '{self._backend.model}' has none"
                    if not has_template
                    else "scenario.chat_template is false"
                )
            )
        if not self._use_chat and self._formatter.family in ("system_flag", "template_param") and scenario.reasoning:
            raise ConfigError(
                f"scenario.reasoning: the {self._formatter.family} reasoning switch needs a chat template, "
                "and this run sends plain text (scenario.chat_template)"
            )

    def set_phase(self, label: str) -> None:
        """Name the next pass (``warmup``, ``prefill-N``, ``generate-N``), for the log."""
        self._phase = label

    def token_counter(self) -> TokenCounter | None:
        """The loaded tokenizer as a token counter (special tokens excluded); None before :meth:`load`."""
        tokenizer = self._tokenizer
        if tokenizer is None:
            return None

        def count(texts: list[str]) -> list[int]:
            encoded = tokenizer(texts, add_special_tokens=False, verbose=False)
            return [len(ids) for ids in encoded["input_ids"]]

        source = self._tokenizer_source()
        name = f"pytorch:{self._backend.model}" + ("" if source == self._source else f" (tokenizer {source})")
        return TokenCounter(name, count, self._context_tokens)

    def set_prompt_kwargs(self, per_prompt: list[dict[str, Any]] | None) -> None:
        """Per-prompt generation options (drawn output lengths); a batch generates one length, so the prompts of
        one batch (``scenario.input_shapes.batch_size``) must share their options."""
        batch_size = self._scenario.input_shapes.batch_size
        if per_prompt is not None and batch_size > 1:
            for first in range(0, len(per_prompt), batch_size):
                batch = per_prompt[first : first + batch_size]
                if any(options != batch[0] for options in batch):
                    raise ConfigError(
                        "scenario.input_shapes.batch_size: a batch generates one output length, and "
                        f"scenario.synthetic.output_tokens draws different ones for prompts {first}.."
                        f"{first + len(batch) - 1}; use batch_size=1 or a fixed output_tokens"
                    )
        self._per_prompt = per_prompt

    def prepare_prompts(self, prompts: list[str]) -> None:
        """Apply the chat template and reasoning format to every prompt now, outside the measured windows."""
        for prompt in prompts:
            self.render(prompt)

    def render(self, prompt: str) -> str:
        """The exact text sent to the tokenizer for ``prompt`` (chat template and reasoning format applied)."""
        cached = self._rendered.get(prompt)
        if cached is not None:
            return cached
        self._rendered[prompt] = text = self._render(prompt)
        return text

    def _render(self, prompt: str) -> str:
        scenario = self._scenario
        formatted = self._formatter.format(prompt, scenario.reasoning, scenario.reasoning_params)
        if self._use_chat:
            text = self._tokenizer.apply_chat_template(
                formatted.messages, add_generation_prompt=True, tokenize=False, **formatted.chat_template_kwargs
            )
            return _open_assistant_turn(str(text), formatted.assistant_prefix)
        if isinstance(self._formatter, HarmonyFormatter):
            return self._formatter.render(prompt, scenario.reasoning, scenario.reasoning_params)
        return prompt + formatted.assistant_prefix

    def _check_generate_kwargs(self) -> None:
        """Run a one-token generate with the user's options, so a bad option fails before anything is measured."""
        kwargs = self._scenario.generate_kwargs.as_kwargs() | {"max_new_tokens": 1, "min_new_tokens": 1}
        if "extra_body" in kwargs:
            raise ConfigError(
                "scenario.generate_kwargs.extra_body: request fields for a server (backend.type vllm); a local model "
                "takes reasoning options from scenario.reasoning and scenario.reasoning_params"
            )
        encoded = self._tokenizer(["ok"], return_tensors="pt").to(self._device)
        try:
            with self._torch.inference_mode():
                self._model.generate(**encoded, **kwargs, pad_token_id=self._tokenizer.pad_token_id)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"scenario.generate_kwargs: rejected by generate(): {one_line(exc)}") from None

    # -- running ---------------------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Wait for queued CUDA work on this backend's device."""
        if self._torch is not None and self._device.startswith("cuda"):
            self._torch.cuda.synchronize(self._device)

    def _encode(self, prompts: list[str], first_index: int, max_new_tokens: int) -> Any:
        limit = None if self._context_tokens is None else self._context_tokens - max_new_tokens
        if limit is not None and limit < 1:
            raise ConfigError(
                f"scenario.generate_kwargs.max_new_tokens: {max_new_tokens} does not fit the model's "
                f"context of {self._context_tokens} tokens"
            )
        texts = [self.render(p) for p in prompts]
        # A chat template writes the special tokens itself; plain text gets the tokenizer's usual ones.
        options: dict[str, Any] = {"return_tensors": "pt", "padding": True, "add_special_tokens": not self._use_chat}
        if self._scenario.truncation and limit is not None:
            return self._tokenizer(texts, truncation=True, max_length=limit, **options)
        encoded = self._tokenizer(texts, **options)
        if limit is not None:
            lengths = encoded["attention_mask"].sum(dim=1).tolist()
            for offset, length in enumerate(lengths):
                if length > limit:
                    raise DatasetError(
                        f"prompt {first_index + offset} has {length} tokens; with max_new_tokens={max_new_tokens} "
                        f"it exceeds the model's context of {self._context_tokens} tokens "
                        "(set scenario.truncation=true to truncate)"
                    )
        return encoded

    def _count_new_tokens(self, generated: Any) -> int:
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        total = 0
        for row in generated.tolist():
            count = len(row)
            for position, token in enumerate(row):
                if token in eos_ids:
                    count = position + 1
                    break
            total += count
        return total

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Generate for ``prompts`` in batches of ``scenario.input_shapes.batch_size``; one record per batch."""
        if self._model is None:
            raise BackendError("PyTorchBackend.run() called before load()")
        torch = self._torch
        batch_size = self._scenario.input_shapes.batch_size
        kwargs = dict(generate_kwargs)
        kwargs.setdefault("pad_token_id", self._tokenizer.pad_token_id)
        use_streamer = int(kwargs.get("num_beams") or 1) == 1
        logger.debug("pass '%s': %d prompts in batches of %d", self._phase, len(prompts), batch_size)
        general = kwargs
        for index, first in enumerate(range(0, len(prompts), batch_size)):
            batch = prompts[first : first + batch_size]
            if self._per_prompt is not None:  # one batch shares its options (checked by set_prompt_kwargs)
                kwargs = general | self._per_prompt[first]
            encoded = self._encode(batch, first, int(kwargs.get("max_new_tokens", 20))).to(self._device)
            input_length = encoded["input_ids"].shape[1]
            timer = _FirstTokenTimer(self.synchronize)
            start_s = time.perf_counter()
            with torch.inference_mode():
                output = self._model.generate(**encoded, **kwargs, streamer=timer if use_streamer else None)
            self.synchronize()
            end_s = time.perf_counter()
            generated = output[:, input_length:]
            texts = None
            if self.keep_text:  # after the batch's end time: decoding is not part of the request's latency
                texts = self._tokenizer.batch_decode(generated, skip_special_tokens=True)
            yield RequestRecord(
                index=index,
                num_prompts=len(batch),
                start_s=start_s,
                end_s=end_s,
                first_token_s=timer.first_token_s,
                prompt_tokens=int(encoded["attention_mask"].sum().item()),
                completion_tokens=self._count_new_tokens(generated),
                prompt_index=first,
                output_texts=texts,
            )

    def run_workload(self, workload: Workload, generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Conversations one at a time, turn by turn: each turn is the chat template applied to the history so far
        (the model's own decoded answers, or the dataset's) and the turn; one record per turn."""
        if self._model is None:
            raise BackendError("PyTorchBackend.run_workload() called before load()")
        if workload.trace is not None:
            yield from self._replay(workload.trace, generate_kwargs)
            return
        assert workload.conversations is not None
        torch = self._torch
        scenario = self._scenario
        kwargs = dict(generate_kwargs)
        kwargs.setdefault("pad_token_id", self._tokenizer.pad_token_id)
        max_new_tokens = int(kwargs.get("max_new_tokens", 20))
        use_streamer = int(kwargs.get("num_beams") or 1) == 1
        index = 0
        for conversation in workload.conversations.conversations:
            answers: list[str | None] = []
            for turn, text in enumerate(conversation.user_turns):
                formatted = self._formatter.format(text, scenario.reasoning, scenario.reasoning_params)
                history = history_messages(conversation, turn, answers, workload.history)[:-1]
                rendered = self._tokenizer.apply_chat_template(
                    with_history(list(formatted.messages), history),
                    add_generation_prompt=True,
                    tokenize=False,
                    **formatted.chat_template_kwargs,
                )
                rendered = _open_assistant_turn(str(rendered), formatted.assistant_prefix)
                encoded = self._tokenizer([rendered], return_tensors="pt", add_special_tokens=False).to(self._device)
                input_length = int(encoded["input_ids"].shape[1])
                if self._context_tokens is not None and input_length + max_new_tokens > self._context_tokens:
                    raise DatasetError(
                        f"scenario.multi_turn: conversation '{conversation.id}' turn {turn} has {input_length} tokens "
                        f"with its history; with max_new_tokens={max_new_tokens} it exceeds the model's context of "
                        f"{self._context_tokens} tokens (set scenario.multi_turn.max_turns)"
                    )
                timer = _FirstTokenTimer(self.synchronize)
                start_s = time.perf_counter()
                with torch.inference_mode():
                    output = self._model.generate(**encoded, **kwargs, streamer=timer if use_streamer else None)
                self.synchronize()
                end_s = time.perf_counter()
                new_tokens = output[:, input_length:]
                completion = self._count_new_tokens(new_tokens)
                answer = str(self._tokenizer.decode(new_tokens[0, :completion], skip_special_tokens=True))
                answers.append(answer)
                yield RequestRecord(
                    index=index,
                    num_prompts=1,
                    start_s=start_s,
                    end_s=end_s,
                    first_token_s=timer.first_token_s,
                    prompt_tokens=input_length,
                    completion_tokens=completion,
                    output_text=answer if self.keep_text else None,
                    conversation_id=conversation.id,
                    turn=turn,
                )
                index += 1

    def _replay(self, trace: Trace, generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """A trace one request at a time: each starts at its arrival time, or as soon as the one before has ended
        when that is later (counted as held, not as drift), with its output length fixed to the trace's."""
        label = self._phase
        drift_s: list[float] = []
        held = 0
        start = time.perf_counter()
        previous_end = start
        for index, (entry, prompt) in enumerate(zip(trace.entries, trace.prompts, strict=True)):
            due = start + entry.offset_s
            late = previous_end > due  # the request before was still running when this one arrived
            if late:
                held += 1
            else:
                while (left := due - time.perf_counter()) > 0:
                    time.sleep(left)
            length = entry.output_length
            kwargs = generate_kwargs | {"max_new_tokens": length, "min_new_tokens": length}
            for record in self.run([prompt], kwargs):
                if not late:
                    drift_s.append(record.start_s - due)
                record.index = index
                record.conversation_id = entry.session_id
                previous_end = record.end_s
                yield record
        self._drift[label] = schedule_drift(drift_s, held)

    # -- reporting -------------------------------------------------------------------------------------------
    def metered_gpu_ids(self) -> list[int] | None:
        """The GPUs the model runs on (an empty list on CPU: no GPU is metered)."""
        if not self._device.startswith("cuda"):
            return []
        if self._backend.device_map is not None or len(self._backend.device_ids) > 1:
            return list(self._backend.device_ids)
        return [int(self._device.split(":")[1])]

    def describe(self) -> dict[str, Any]:
        """Model, weights and device as loaded."""
        info: dict[str, Any] = {
            "model": self._backend.model,
            "source": self._source if not self._packaged else f"packaged architecture {self._backend.model}",
            "device": self._device,
            "synthetic": self._backend.no_weights,
            "weights": f"random (seed {self._backend.seed})" if self._backend.no_weights else "loaded",
        }
        if self._backend.no_weights:
            info["note"] = (
                "synthetic model: random weights; it measures the machine and the harness, "
                "not a real model's output quality"
            )
        if self._tokenizer_note:
            info["tokenizer_note"] = self._tokenizer_note
        if self._drift:
            info["schedule_drift"] = [drift | {"label": label} for label, drift in self._drift.items()]
        if self._num_threads is not None:
            info["num_threads"], info["num_threads_chosen"] = self._num_threads
        if self._formatter is not None:
            info["prompt_format"] = {
                "chat_template": self._use_chat,
                "reasoning": self._scenario.reasoning,
                "formatter": self._formatter.describe(),
            }
        if self._model is not None:
            info["num_parameters"] = int(self._model.num_parameters())
            info["attn_implementation"] = getattr(self._model.config, "_attn_implementation", None)
            placed = getattr(self._model, "hf_device_map", None) or {"": str(self._model.device)}
            info["device_map"] = {str(k): str(v) for k, v in placed.items()}
            info["device_map_requested"] = self._backend.device_map
            info["dtype"] = str(self._model.dtype).removeprefix("torch.")
            info["architecture"] = type(self._model).__name__
            info["context_tokens"] = self._context_tokens
        return info

    def close(self) -> None:
        """Drop the model, free GPU memory and restore torch's intra-op thread setting if the run changed it."""
        self._model = None
        if self._torch is not None and self._device.startswith("cuda"):
            self._torch.cuda.empty_cache()
        if self._torch is not None and self._threads_to_restore is not None:
            self._torch.set_num_threads(self._threads_to_restore)
            self._threads_to_restore = None


def _gpu_memory(torch: Any, device_ids: list[int]) -> dict[int | str, str]:
    """A max_memory map that allows only ``device_ids`` (90% of each GPU's memory) and no CPU offload."""
    return {
        index: f"{int(torch.cuda.get_device_properties(index).total_memory * 0.9) // 2**20}MiB" for index in device_ids
    }


def _memory_key(key: str) -> int | str:
    return int(key) if key.isdigit() else key


def _new_pytorch_backend(cls: type[PyTorchBackend], *args: Any, **kwargs: Any) -> PyTorchBackend:
    """0.0.4's ``PyTorchBackend(model=..., device=..., ...)`` builds its adapter (backends/legacy.py); ours
    ``PyTorchBackend(config)`` is unchanged."""
    if cls is PyTorchBackend and not (args and isinstance(args[0], BenchmarkConfig)) and "config" not in kwargs:
        from ai_energy_benchmarks.backends.legacy import LegacyPyTorchBackend

        cls = LegacyPyTorchBackend
    return object.__new__(cls)


PyTorchBackend.__new__ = _new_pytorch_backend  # type: ignore[method-assign,assignment]
