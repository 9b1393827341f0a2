"""The backend base class (the whole contract the runner relies on) and the per-request record backends produce."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any


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
        data["latency_s"] = self.latency_s
        data["ttft_s"] = self.ttft_s
        return data


@dataclass(frozen=True)
class EnergyScope:
    """Whose energy this host's meters read while the backend runs (the report's ``model.energy_scope``).

    ``server_on_this_host``: whether the hardware that runs the model is this host's (False for a remote server:
    its GPU energy is not measured here, and is reported null with a note, never this host's idle GPUs).
    ``server_gpus_metered``: the GPU indices metered as the model's ([]: none; None: every GPU visible here).
    ``note``: one sentence for the reader of the report.
    """

    server_on_this_host: bool
    server_gpus_metered: list[int] | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, the keys the report has always carried."""
        gpus = None if self.server_gpus_metered is None else list(self.server_gpus_metered)
        return {"server_on_this_host": self.server_on_this_host, "server_gpus_metered": gpus, "note": self.note}


class Backend(ABC):
    """What the runner needs from a backend: the whole contract, in one place.

    Required: :meth:`run`, :meth:`describe`, :meth:`close` and :meth:`set_phase`. Everything else has a default that
    does nothing, which the runner calls unconditionally (it probes nothing with ``getattr``). A backend is made by
    its factory from the whole :class:`~ai_energy_benchmarks.config.schema.BenchmarkConfig` and must load nothing
    in its constructor (see ``backends/registry.py``).
    """

    # -- required ---------------------------------------------------------------------------------------------------
    @abstractmethod
    def run(self, prompts: list[str], generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Run ``prompts``; yield one record per request (or batch) as it completes."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The model and device as actually loaded (JSON-safe; the report's ``model`` section)."""

    @abstractmethod
    def close(self) -> None:
        """Release the model or connection (called once, whether the run succeeded or not)."""

    @abstractmethod
    def set_phase(self, label: str) -> None:
        """Name the next :meth:`run` call before it starts: ``warmup``, then ``prefill-<repetition>`` and
        ``generate-<repetition>`` (the measured window's name, e.g. ``generate-0``). The runner calls it before every
        pass; a backend that keeps per-pass facts (e.g. :meth:`steady_state_intervals`) files them under it."""

    # -- optional, with defaults ------------------------------------------------------------------------------------
    def load(self) -> None:  # noqa: B027  # an optional hook: nothing to load by default
        """Load the model or connect to the server (never inside a measured window). Default: nothing."""

    def synchronize(self) -> None:  # noqa: B027  # an optional hook
        """Wait until queued device work is done (called at every window edge). Default: nothing to wait for."""

    def metered_gpu_ids(self) -> list[int] | None:
        """GPU indices the meters must read: the ones this backend runs on; [] for none. Default: None (unknown,
        so every GPU visible here is metered)."""
        return None

    def prepare_prompts(self, prompts: list[str]) -> None:  # noqa: B027  # an optional hook
        """Format ``prompts`` ahead of time (chat templates and the like), outside every measured window.
        Default: nothing."""

    def render(self, prompt: str) -> str | dict[str, Any] | None:
        """Exactly what is sent for ``prompt`` (text, or a request body), written to ``prompts.jsonl``; None when the
        backend cannot say (the default: the row then holds the prompt only)."""
        return None

    @property
    def splits_phases(self) -> bool:
        """Whether a separate prefill pass is comparable with the generate pass (False, e.g., when every pass runs
        for a fixed duration: the runner then measures no prefill pass). Default: True."""
        return True

    def steady_state_intervals(self) -> dict[str, tuple[float, float]]:
        """Window label -> ``time.perf_counter()`` (start, end) of a sub-interval at full load, whose energy the
        meters read back where they can. Default: none."""
        return {}

    def energy_scope(self) -> EnergyScope | None:
        """Whose energy this host's meters read (e.g. a server elsewhere: not its GPUs). Default: None, the model
        runs here, on :meth:`metered_gpu_ids`."""
        return None
