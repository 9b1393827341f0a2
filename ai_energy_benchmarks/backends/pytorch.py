"""Local inference with PyTorch + transformers.

torch and transformers are imported when the backend loads, never at package import. The parts: ``pytorch_models``
(where the model comes from, the weight-file check), ``pytorch_threads`` (``backend.num_threads``),
``pytorch_placement`` (device, dtype, quantisation, device map), ``pytorch_generate`` (first-token timer, new-token
count, checks before a run), ``pytorch_workloads`` (conversations and trace replay).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.pytorch_config import PyTorchConfig
from ai_energy_benchmarks.backends.pytorch_generate import (
    BatchEncoder,
    FirstTokenTimer,
    check_batches_share_options,
    check_generate_kwargs,
    count_new_tokens,
    open_assistant_turn,
)
from ai_energy_benchmarks.backends.pytorch_models import (  # noqa: F401 (re-exported)
    DEFAULT_TOKENIZER,
    PACKAGED_PREFIX,
    check_weights_present,
    packaged_models,
    packaged_models_dir,
    resolve_model_source,
)
from ai_energy_benchmarks.backends.pytorch_placement import (
    placement,
    quantization_config,
    random_model,
    resolve_device,
    torch_dtype,
)
from ai_energy_benchmarks.backends.pytorch_threads import TorchThreads, choose_num_threads, usable_cores  # noqa: F401
from ai_energy_benchmarks.backends.pytorch_workloads import PyTorchSessions
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.synthetic import TokenCounter
from ai_energy_benchmarks.exceptions import (
    BackendError,
    ConfigError,
    MissingDependencyError,
    one_line,
)
from ai_energy_benchmarks.formatters.harmony import HarmonyFormatter
from ai_energy_benchmarks.formatters.registry import FormatterRegistry

logger = logging.getLogger(__name__)


class PyTorchBackend(PyTorchSessions):
    """Runs a causal language model in-process, batch by batch, with left padding."""

    #: Keep each answer in its record (token ids, decoded when scored: :meth:`decode_answers`); off for benchmarks.
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
        self._encoder: BatchEncoder | None = None
        self._rendered: dict[str, str] = {}
        self._phase = "unnamed"
        #: Keep each answer's new token ids in its record (``output_ids``): only when a scorer will read it.
        self.keep_text = config.scenario.scorer is not None
        #: Trace replays' schedule drift by pass label (``describe()["schedule_drift"]``).
        self._drift: dict[str, dict[str, Any]] = {}
        self._threads = TorchThreads(self._backend.num_threads)
        self._per_prompt: list[dict[str, Any]] | None = None

    # -- loading ---------------------------------------------------------------------------------------------
    def _quantization(self) -> Any:
        """bitsandbytes quantisation, or None (see :func:`pytorch_placement.quantization_config`)."""
        return quantization_config(self._backend, self._device)

    def _tokenizer_source(self) -> str:
        """Where the tokenizer comes from: the model itself, or the packaged one for a config-only architecture."""
        if self._packaged and not (Path(self._source) / "tokenizer_config.json").is_file():
            self._tokenizer_note = (
                "this packaged architecture ships no tokenizer: prompts are tokenised with the packaged "
                "tiny-llama byte-level BPE, so prompt token counts differ from the real model's"
            )
            return str(packaged_models_dir() / DEFAULT_TOKENIZER)
        return self._source

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
        self._device = resolve_device(self._backend, torch)
        self._threads.choose(torch, on_cpu=self._device == "cpu")
        backend = self._backend
        trust = backend.trust_remote_code
        quantization = self._quantization()
        placed = placement(self._backend, self._device, torch)
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
        dtype = torch_dtype(backend.torch_dtype, self._device, torch)
        common: dict[str, Any] = {"trust_remote_code": trust}
        if backend.attn_implementation:
            common["attn_implementation"] = backend.attn_implementation
        torch.manual_seed(backend.seed)
        model: Any
        try:
            if backend.no_weights:
                if dtype != "auto":
                    common["dtype"] = dtype
                model = random_model(transformers, torch, self._device, model_config, common, placed)
            else:
                kwargs = dict(common, dtype=dtype, **{k: v for k, v in placed.items() if v is not None})
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
        self._threads.calibrate(torch, model, self._scenario.input_shapes.batch_size)
        self._tokenizer = tokenizer
        self._context_tokens = getattr(model_config, "max_position_embeddings", None)
        self._setup_formatting()
        # A chat template writes the special tokens itself; plain text gets the tokenizer's usual ones.
        self._encoder = BatchEncoder(tokenizer, not self._use_chat, self._context_tokens, self._scenario.truncation)
        check_generate_kwargs(self._scenario.generate_kwargs.as_kwargs(), model, tokenizer, torch, self._device)
        logger.info("loaded %s on %s (%s parameters)", backend.model, self._device, model.num_parameters())

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
        if per_prompt is not None:
            check_batches_share_options(per_prompt, self._scenario.input_shapes.batch_size)
        self._per_prompt = per_prompt

    def prepare_prompts(self, prompts: list[str]) -> None:
        """Apply the chat template and reasoning format to every prompt, and tokenise every batch of them, now:
        outside the measured windows."""
        texts = [self.render(prompt) for prompt in prompts]
        size = self._scenario.input_shapes.batch_size
        if self._encoder is not None:  # loaded
            self._encoder.prepare([texts[first : first + size] for first in range(0, len(texts), size)])

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
            return open_assistant_turn(str(text), formatted.assistant_prefix)
        if isinstance(self._formatter, HarmonyFormatter):
            return self._formatter.render(prompt, scenario.reasoning, scenario.reasoning_params)
        return prompt + formatted.assistant_prefix

    # -- running ---------------------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Wait for queued CUDA work on this backend's device."""
        if self._torch is not None and self._device.startswith("cuda"):
            self._torch.cuda.synchronize(self._device)

    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Generate for ``prompts`` in batches of ``scenario.input_shapes.batch_size``; one record per batch."""
        if self._model is None or self._encoder is None:
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
            texts = [self.render(p) for p in batch]
            encoded = self._encoder.encode(texts, first, int(kwargs.get("max_new_tokens", 20))).to(self._device)
            input_length = encoded["input_ids"].shape[1]
            timer = FirstTokenTimer(self.synchronize)
            start_s = time.perf_counter()
            with torch.inference_mode():
                output = self._model.generate(**encoded, **kwargs, streamer=timer if use_streamer else None)
            self.synchronize()
            end_s = time.perf_counter()
            rows = output[:, input_length:].tolist()
            yield RequestRecord(
                index=index,
                num_prompts=len(batch),
                start_s=start_s,
                end_s=end_s,
                first_token_s=timer.first_token_s,
                prompt_tokens=int(encoded["attention_mask"].sum().item()),
                completion_tokens=count_new_tokens(rows, self._model.generation_config.eos_token_id),
                prompt_index=first,
                # Kept as ids: the text is decoded when the answers are scored, after the measured windows.
                output_ids=rows if self.keep_text else None,
            )

    def decode_answers(self, token_ids: list[list[int]]) -> list[str]:
        """The answers' texts (special tokens skipped), one per row of new token ids."""
        return [str(text) for text in self._tokenizer.batch_decode(token_ids, skip_special_tokens=True)]

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
        if self._threads.threads is not None:
            info["num_threads"], info["num_threads_chosen"] = self._threads.threads, self._threads.how
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
        self._threads.restore()


def _new_pytorch_backend(cls: type[PyTorchBackend], *args: Any, **kwargs: Any) -> PyTorchBackend:
    """0.0.4's ``PyTorchBackend(model=..., device=..., ...)`` builds its adapter (backends/legacy.py); ours
    ``PyTorchBackend(config)`` is unchanged."""
    if cls is PyTorchBackend and not (args and isinstance(args[0], BenchmarkConfig)) and "config" not in kwargs:
        from ai_energy_benchmarks.backends.legacy import LegacyPyTorchBackend

        cls = LegacyPyTorchBackend
    return object.__new__(cls)


PyTorchBackend.__new__ = _new_pytorch_backend  # type: ignore[method-assign,assignment]
