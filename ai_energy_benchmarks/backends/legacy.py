"""ai_energy_benchmarks 0.0.4's backend classes, as thin adapters over ours (docs/compat-0.0.4.md).

``PyTorchBackend(model=..., device=..., ...)`` (a hook in backends/pytorch.py makes 0.0.4's arguments build
:class:`LegacyPyTorchBackend`) and ``backends.vllm.VLLMBackend(endpoint=..., model=...)`` take 0.0.4's constructor
arguments and offer its methods: ``validate_environment()``, ``health_check()``, ``run_inference(prompt, **kwargs)``
returning 0.0.4's dict, ``get_endpoint_info()``, ``load_model()``, ``cleanup()``. Each is a subclass of our backend:
a prompt goes through our request path (chat template, reasoning format, HTTP client) and is timed by it (time to
first token observed, never estimated). 0.0.4's ``print`` calls are ``logging`` calls here.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ai_energy_benchmarks.backends.base import RequestRecord
from ai_energy_benchmarks.backends.pytorch import PyTorchBackend
from ai_energy_benchmarks.backends.pytorch_config import PyTorchConfig
from ai_energy_benchmarks.config.loader import build_config
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.exceptions import BenchmarkError
from ai_energy_benchmarks.formatters.registry import FormatterRegistry

logger = logging.getLogger(__name__)

#: 0.0.4's message for an answer of no tokens (returned with ``success: False``).
ZERO_TOKENS_ERROR = "Zero tokens generated - likely chat template or formatting issue"


def typed_config(config: Any, backend: dict[str, Any], origin: str) -> BenchmarkConfig:
    """``config`` as the typed config (ours as it is; a 0.0.4-style one validated), or one built from 0.0.4's
    constructor arguments ``backend`` (energy metering off: an adapter measures no energy by itself)."""
    if isinstance(config, BenchmarkConfig):
        return config
    to_typed = getattr(config, "to_typed_config", None)
    if callable(to_typed):
        typed: BenchmarkConfig = to_typed()
        return typed
    return build_config({"backend": backend, "metrics": {"enabled": False}}, origin)


def deprecated_use_harmony(use_harmony: bool | None, model: str) -> bool:
    """0.0.4's ``use_harmony`` argument: warned about as 0.0.4 did; the format is chosen from the model id."""
    if use_harmony is not None:
        warnings.warn(
            "use_harmony parameter is deprecated. Reasoning format is now auto-detected via FormatterRegistry.",
            DeprecationWarning,
            stacklevel=3,
        )
        return bool(use_harmony)
    return "gpt-oss" in model.lower()


def failure(error: str, start_s: float) -> dict[str, Any]:
    """0.0.4's dict for a failed request."""
    return {
        "text": "",
        "success": False,
        "error": error,
        "latency_seconds": time.perf_counter() - start_s,
        "time_to_first_token": None,
    }


def result_dict(record: RequestRecord, model: str, text: str, full_text: str | None = None) -> dict[str, Any]:
    """0.0.4's dict for one finished request, from our record (times measured by our backend)."""
    if not record.ok:
        return {
            "text": "",
            "success": False,
            "error": record.error,
            "latency_seconds": record.latency_s,
            "time_to_first_token": None,
        }
    result: dict[str, Any] = {"text": text}
    if full_text is not None:
        result["full_text"] = full_text
    result |= {
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": record.prompt_tokens + record.completion_tokens,
        "latency_seconds": record.latency_s,
        "time_to_first_token": record.ttft_s,
        "model": model,
        "success": True,
        "error": None,
    }
    if record.completion_tokens == 0:
        result |= {"success": False, "error": ZERO_TOKENS_ERROR}
    return result


def generation_kwargs(max_tokens: int, temperature: float, extra: Mapping[str, Any], **sampling: Any) -> dict[str, Any]:
    """0.0.4's ``run_inference`` arguments as our generate kwargs: sampling when the temperature is above 0."""
    kwargs: dict[str, Any] = {"max_new_tokens": int(max_tokens), "do_sample": temperature > 0}
    if temperature > 0:
        kwargs["temperature"] = float(temperature)
        kwargs.update({k: v for k, v in sampling.items() if v is not None})
    kwargs.update(extra)
    return kwargs


@contextmanager
def reasoning_for_call(backend: Any, reasoning_params: dict[str, Any] | None) -> Iterator[None]:
    """Apply ``run_inference``'s ``reasoning_params`` to one call (the scenario's are used when it is None)."""
    if reasoning_params is None:
        yield
        return
    scenario = backend._scenario
    data = scenario.model_dump(exclude_unset=True) | {"reasoning_params": dict(reasoning_params)}
    data.pop("reasoning", None)
    backend._scenario = type(scenario).model_validate(data)
    backend._rendered = {}
    try:
        yield
    finally:
        backend._scenario = scenario
        backend._rendered = {}


class LegacyPyTorchBackend(PyTorchBackend):
    """0.0.4's ``PyTorchBackend(model, device="cuda", device_ids=None, torch_dtype="auto", device_map=None,
    max_memory=None, use_harmony=None)`` over our PyTorch backend.

    Also built from a config (ours or 0.0.4-style), as ``BenchmarkRunner.backend`` is. ``device_map`` unset (0.0.4:
    ``"auto"``) leaves placement to our backend: the model on the first of ``device_ids``.
    """

    def __init__(
        self,
        model: Any = None,
        device: str = "cuda",
        device_ids: list[int] | None = None,
        torch_dtype: str = "auto",
        device_map: str | dict[str, Any] | None = None,
        max_memory: dict[str, Any] | None = None,
        use_harmony: bool | None = None,
        **options: Any,
    ) -> None:
        backend: dict[str, Any] = {
            "type": "pytorch",
            "model": model,
            "device": device,
            "device_ids": list(device_ids) if device_ids is not None else [0],
            "torch_dtype": torch_dtype,
            **options,
        }
        if device_map is not None:
            backend["device_map"] = device_map
        if max_memory is not None:
            backend["max_memory"] = {str(k): str(v) for k, v in max_memory.items()}
        config = typed_config(model, backend, "PyTorchBackend(...)")
        super().__init__(config)
        settings = PyTorchConfig.of(config.backend)
        self.model_name: str = settings.model
        self.device: str = settings.device
        self.device_ids: list[int] = list(settings.device_ids)
        self.torch_dtype: str = settings.torch_dtype
        self.device_map: Any = settings.device_map
        self.max_memory: Any = settings.max_memory
        self.use_harmony = deprecated_use_harmony(use_harmony, settings.model)
        self.formatter_registry = FormatterRegistry()
        self.formatter = self.formatter_registry.get_formatter(settings.model)

    # -- 0.0.4's attributes ---------------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The loaded transformers model (None until loaded)."""
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

    @model.deleter
    def model(self) -> None:
        self._model = None

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (None until loaded)."""
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._tokenizer = value

    @tokenizer.deleter
    def tokenizer(self) -> None:
        self._tokenizer = None

    @property
    def _initialized(self) -> bool:
        return self._model is not None

    # -- 0.0.4's methods ------------------------------------------------------------------------------------------
    def validate_environment(self) -> bool:
        """Whether torch and transformers are installed and the requested CUDA GPUs exist (loads nothing)."""
        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
            logger.error("PyTorch backend: needs torch and transformers (ai-energy-benchmarks[pytorch])")
            return False
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                logger.error("PyTorch backend: CUDA not available (backend device '%s')", self.device)
                return False
            count = torch.cuda.device_count()
            missing = [i for i in self.device_ids if i >= count]
            if missing:
                logger.error("PyTorch backend: GPU %d not available (found %d GPUs)", missing[0], count)
                return False
        return True

    def load_model(self) -> None:
        """Load the tokenizer and model now (once; raises a :class:`BenchmarkError` saying why it cannot)."""
        if self._model is None:
            self.load()

    def _initialize_model(self) -> None:
        """0.0.4's private loader, which callers such as AIEnergyScore call to see why loading fails."""
        self.load_model()

    def health_check(self) -> bool:
        """Whether the model is loaded, loading it first as 0.0.4 did (False when it cannot be loaded)."""
        try:
            self.load_model()
        except BenchmarkError as exc:
            logger.error("PyTorch backend health check: %s", exc)
            return False
        return self._model is not None

    def get_endpoint_info(self) -> dict[str, Any]:
        """0.0.4's description (``healthy`` loads the model, as in 0.0.4)."""
        return {
            "backend": "pytorch",
            "model": self.model_name,
            "device": self.device,
            "device_ids": self.device_ids,
            "torch_dtype": self.torch_dtype,
            "device_map": self.device_map,
            "initialized": self._initialized,
            "healthy": self.health_check(),
        }

    def run_inference(
        self,
        prompt: str,
        max_tokens: int = 100,
        temperature: float = 0.7,
        top_p: float = 0.9,
        top_k: int = 50,
        reasoning_params: dict[str, Any] | None = None,
        enable_streaming: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Generate for one prompt; 0.0.4's dict: ``text``, ``full_text``, ``prompt_tokens``, ``completion_tokens``,
        ``total_tokens``, ``latency_seconds`` (s), ``time_to_first_token`` (s, observed), ``model``, ``success``,
        ``error``. Loads the model first when needed (errors loading it are raised, as in 0.0.4).

        ``enable_streaming`` is accepted and has no effect: the first token is always observed.
        """
        self.load_model()
        start_s = time.perf_counter()
        kwargs = generation_kwargs(max_tokens, temperature, kwargs, top_p=top_p, top_k=top_k)
        captured: dict[str, Any] = {}
        try:
            with reasoning_for_call(self, reasoning_params), self._capturing_generate(captured):
                records = list(self.run([prompt], kwargs))
        except Exception as exc:  # 0.0.4 answered every inference error with a failed result
            logger.error("inference failed: %s", exc)
            return failure(str(exc), start_s)
        output, input_length = captured.get("output"), captured.get("input_length", 0)
        text = full = ""
        if output is not None:
            text = self._tokenizer.decode(output[0][input_length:], skip_special_tokens=True).strip()
            full = self._tokenizer.decode(output[0], skip_special_tokens=True)
        return result_dict(records[0], self.model_name, text, full)

    @contextmanager
    def _capturing_generate(self, captured: dict[str, Any]) -> Iterator[None]:
        """Keep the output of the model's ``generate`` (to decode the text after the request has been timed)."""
        original: Callable[..., Any] = self._model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            output = original(*args, **kwargs)
            captured["output"] = output
            captured["input_length"] = kwargs["input_ids"].shape[1]
            return output

        self._model.generate = generate
        try:
            yield
        finally:
            del self._model.generate

    def cleanup(self) -> None:
        """Drop the model and tokenizer and free GPU memory."""
        self.close()
        self._tokenizer = None
