"""Per-request records: what a backend observed about each request, read by the runner and by ``results``.

A leaf module (it imports nothing from the package), so that backends, which write records, and results, which
aggregate them, both depend on it and not on each other. ``ai_energy_benchmarks.backends.base.RequestRecord`` is the
same class (re-exported there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RequestRecord"]


@dataclass
class RequestRecord:
    """Facts about one request (or one batch of ``num_prompts`` prompts run together).

    Times are ``time.perf_counter()`` seconds; token counts exclude padding. ``chunk_times_s`` (streaming
    backends) holds the arrival time of every streamed chunk that carried output; ``error_class`` names the kind of
    failure (e.g. ``http_5xx``, ``read_timeout``) so that failures can be counted by class; ``reasoning_tokens``
    counts the reasoning part of the output where the server says which is which.
    """

    index: int
    num_prompts: int
    start_s: float
    end_s: float
    prompt_tokens: int
    completion_tokens: int
    first_token_s: float | None = None
    error: str | None = None
    phase: str = "generate"
    repetition: int = 0
    chunk_times_s: list[float] | None = None
    error_class: str | None = None
    #: Of ``completion_tokens``, those the server marked as reasoning (None when it marked none), and whether the
    #: count comes from the server's ``usage`` or from counting reasoning chunks (a lower bound).
    reasoning_tokens: int | None = None
    reasoning_tokens_from: str | None = None
    #: What in the server's answer contradicted the request or the stream (streaming backends; None when nothing
    #: did), e.g. ``usage_over_max_tokens``, ``wrong_model``; see ``backends/http_client.py``. Where the server's
    #: ``usage`` count was not believed, ``completion_tokens`` is the number of streamed content chunks and
    #: ``usage_completion_tokens`` keeps what the server claimed.
    contradictions: list[str] | None = None
    usage_completion_tokens: int | None = None
    #: The answer's text (chat ``content`` or completion ``text``, reasoning excluded), kept only when the backend
    #: was asked to keep it (None otherwise; never written to requests.jsonl).
    output_text: str | None = None
    #: A batch's answers, one per prompt in order (PyTorch backend, kept only when asked; never written).
    output_texts: list[str] | None = None
    #: A batch's new token ids, one row per prompt in order (PyTorch backend, kept only when asked): decoded into
    #: ``output_texts`` after the measured windows have closed, then dropped (never written).
    output_ids: list[list[int]] | None = None
    #: Index in the run's prompt list of this record's (first) prompt; None: ``index`` modulo the number of prompts.
    prompt_index: int | None = None
    #: The scorer's verdict (``scenario.scorer``): True/False, None when not scored (no scorer, failed request, no
    #: reference); for a batch of several prompts, a list with one verdict per prompt.
    correct: bool | list[bool | None] | None = None
    #: This request's share of its window's energy (J; ``results/attribution.py``): the shares of a window add up to
    #: its energy. None when the window's energy is unknown or not measured.
    energy_j: float | None = None
    #: Multi-turn and trace workloads: the conversation (or trace session) this request belongs to, and its user
    #: turn within the conversation (0-based; None for a trace request).
    conversation_id: str | None = None
    turn: int | None = None

    @property
    def ok(self) -> bool:
        """True when the request completed without error."""
        return self.error is None

    @property
    def latency_s(self) -> float:
        """End-to-end latency in seconds."""
        return self.end_s - self.start_s

    @property
    def ttft_s(self) -> float | None:
        """Time to first token in seconds, when the backend could observe it."""
        return None if self.first_token_s is None else self.first_token_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe form with latency and TTFT added."""
        data = asdict(self)
        del data["output_text"], data["output_texts"], data["output_ids"]
        data["latency_s"] = self.latency_s
        data["ttft_s"] = self.ttft_s
        return data
