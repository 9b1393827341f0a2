"""ai_energy_benchmarks 0.0.4's ``VLLMBackend(endpoint=..., model=...)``, a thin adapter over our HTTP backend.

Requests go through our OpenAI-compatible client (streamed, timed chunk by chunk); see docs/compat-0.0.4.md and
:mod:`ai_energy_benchmarks.backends.legacy` for the PyTorch counterpart. Our own API is ``backend.type: vllm`` in a
config (:class:`~ai_energy_benchmarks.backends.openai_http.OpenAIHTTPBackend`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ai_energy_benchmarks.backends.http_config import OpenAIHTTPConfig
from ai_energy_benchmarks.backends.legacy import (
    deprecated_use_harmony,
    failure,
    generation_kwargs,
    reasoning_for_call,
    result_dict,
    typed_config,
)
from ai_energy_benchmarks.backends.openai_http import OpenAIHTTPBackend, normalize_endpoint
from ai_energy_benchmarks.exceptions import BenchmarkError
from ai_energy_benchmarks.formatters.registry import FormatterRegistry

logger = logging.getLogger(__name__)

#: 0.0.4 gave up on ``/v1/models`` after this long (s); our readiness wait is shortened to it.
VALIDATE_TIMEOUT_S = 10.0
HEALTH_TIMEOUT_S = 5.0


class VLLMBackend(OpenAIHTTPBackend):
    """0.0.4's ``VLLMBackend(endpoint, model, timeout=300, use_harmony=None)``; also built from a config.

    ``endpoint`` is read as our ``backend.endpoint`` (with or without ``/v1``); ``timeout`` (s) as
    ``backend.read_timeout_s``. The attribute ``endpoint`` is the server's base URL without ``/v1``, as in 0.0.4.
    """

    #: ``run_inference`` returns the answer's text, as 0.0.4 did.
    keep_text = True

    def __init__(
        self,
        endpoint: Any = None,
        model: str | None = None,
        timeout: int = 300,
        use_harmony: bool | None = None,
        **options: Any,
    ) -> None:
        backend: dict[str, Any] = {
            "type": "vllm",
            "endpoint": endpoint,
            "model": model,
            "read_timeout_s": timeout,
            "ready_timeout_s": VALIDATE_TIMEOUT_S,
            **options,
        }
        config = typed_config(endpoint, backend, "VLLMBackend(...)")
        super().__init__(config)
        settings = OpenAIHTTPConfig.of(config.backend)
        self.endpoint: str = normalize_endpoint(str(settings.endpoint)).removesuffix("/v1").rstrip("/")
        self.model: str = settings.model
        self.timeout = settings.read_timeout_s
        self.use_harmony = deprecated_use_harmony(use_harmony, self.model)
        self.formatter_registry = FormatterRegistry()
        self.formatter = self.formatter_registry.get_formatter(self.model)

    def _connect(self) -> bool:
        """Connect (our ``load()``: server ready, model served, one probe request) once; False when it cannot."""
        if self._client is not None:
            return True
        try:
            self.load()
        except BenchmarkError as exc:
            logger.error("vLLM backend: %s", exc)
            return False
        return True

    def validate_environment(self) -> bool:
        """Whether the server answers and serves ``model`` (connects, as our ``load()`` does)."""
        return self._connect()

    def health_check(self) -> bool:
        """Whether the server's ``/health`` answers 200."""
        if not self._connect():
            return False
        try:
            status, _ = self._get("/health", HEALTH_TIMEOUT_S)
        except Exception as exc:  # an unreachable server is an unhealthy one, as in 0.0.4
            logger.error("vLLM health check: %s", exc)
            return False
        return status == 200

    def get_endpoint_info(self) -> dict[str, Any]:
        """0.0.4's description: backend, endpoint, model, healthy, validated."""
        return {
            "backend": "vllm",
            "endpoint": self.endpoint,
            "model": self.model,
            "healthy": self.health_check(),
            "validated": self.validate_environment(),
        }

    def run_inference(
        self,
        prompt: str,
        max_tokens: int = 100,
        temperature: float = 0.7,
        reasoning_params: dict[str, Any] | None = None,
        enable_streaming: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One streamed request; 0.0.4's dict: ``text``, ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
        ``latency_seconds`` (s), ``time_to_first_token`` (s), ``model``, ``success``, ``error``.

        ``text`` is the answer's streamed ``content`` (reasoning excluded), as in 0.0.4.
        ``enable_streaming`` is accepted and has no effect (requests always stream). Extra keyword arguments are sent
        as request fields, as in 0.0.4.
        """
        start_s = time.perf_counter()
        if not self._connect():
            return failure(f"cannot connect to {self.public_endpoint} serving {self.model}", start_s)
        kwargs = generation_kwargs(max_tokens, temperature, kwargs)
        try:
            with reasoning_for_call(self, reasoning_params):
                self.set_phase(f"run_inference-{len(self._runs)}")
                records = list(self.run([prompt], kwargs))
        except Exception as exc:  # 0.0.4 answered every request error with a failed result
            return failure(str(exc), start_s)
        if not records:
            return failure("no request was sent", start_s)
        return result_dict(records[0], self.model, records[0].output_text or "")

    def cleanup(self) -> None:
        """Close the connection pool."""
        self.close()
