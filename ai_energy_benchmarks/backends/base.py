"""The backend base class: the whole contract the runner relies on (the per-request record every backend produces
lives in ``ai_energy_benchmarks.records``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ai_energy_benchmarks.energy.devices.processes import ServerProcesses
from ai_energy_benchmarks.exceptions import BackendError, ConfigError
from ai_energy_benchmarks.records import RequestRecord  # re-exported: its home was here

if TYPE_CHECKING:
    from ai_energy_benchmarks.datasets.synthetic import TokenCounter
    from ai_energy_benchmarks.datasets.workload import Workload


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
    #: The session workloads (``multi_turn``, ``trace``; see ``datasets/workload.py``) :meth:`run_workload` runs.
    workloads: ClassVar[frozenset[str]] = frozenset()

    def run_workload(self, workload: Workload, generate_kwargs: dict[str, Any]) -> Iterator[RequestRecord]:
        """Run a session workload (conversations turn by turn, or a trace at its arrival times); yield one record
        per request as it completes, with ``conversation_id`` and ``turn`` set. Default: refused."""
        raise ConfigError(f"scenario.{workload.kind}: this backend does not run {workload.kind} workloads")

    def load(self) -> None:  # noqa: B027  # an optional hook: nothing to load by default
        """Load the model or connect to the server (never inside a measured window). Default: nothing."""

    def synchronize(self) -> None:  # noqa: B027  # an optional hook
        """Wait until queued device work is done (called at every window edge). Default: nothing to wait for."""

    def metered_gpu_ids(self) -> list[int] | None:
        """GPU indices the meters must read: the ones this backend runs on; [] for none. Default: None (unknown,
        so every GPU visible here is metered)."""
        return None

    def server_processes(self) -> ServerProcesses | None:
        """The processes of a model server on this host whose GPUs are the model's, when :meth:`metered_gpu_ids`
        is None (the GPU meters then meter the GPUs those processes run on). Default: None (not a local server)."""
        return None

    def prepare_prompts(self, prompts: list[str]) -> None:  # noqa: B027  # an optional hook
        """Format ``prompts`` ahead of time (chat templates and the like), outside every measured window.
        Default: nothing."""

    def decode_answers(self, token_ids: list[list[int]]) -> list[str]:
        """The answer texts of rows of new token ids a record kept (``RequestRecord.output_ids``), called when the
        answers are scored, after every measured window has closed. Default: refused (this backend keeps no ids)."""
        raise BackendError(f"{type(self).__name__} keeps no token ids to decode")

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

    def token_counter(self) -> TokenCounter | None:
        """The model's tokenizer as a token counter (special tokens excluded), for synthetic prompts of exact
        lengths; called after :meth:`load`. Default: None (this backend cannot count the model's tokens)."""
        return None

    def set_prompt_kwargs(self, per_prompt: list[dict[str, Any]] | None) -> None:
        """Generation options of each prompt for the next :meth:`run` calls (``per_prompt[i]`` over the call's
        ``generate_kwargs`` for ``prompts[i]``; e.g. a drawn ``max_new_tokens``), or None for the call's options
        alone. The runner sets them before the warm-up and each generate pass when they differ between prompts
        (options equal for every prompt go into the pass's ``generate_kwargs`` instead), and None before each
        prefill pass. Default: only None is accepted (this backend cannot vary options per prompt)."""
        if per_prompt is not None:
            raise ConfigError(
                f"{type(self).__name__} cannot vary generation options per prompt "
                "(scenario.synthetic.output_tokens); use a fixed scenario.generate_kwargs.max_new_tokens"
            )

    def energy_scope(self) -> EnergyScope | None:
        """Whose energy this host's meters read (e.g. a server elsewhere: not its GPUs). Default: None, the model
        runs here, on :meth:`metered_gpu_ids`."""
        return None
