"""The benchmark runner: prompts -> backend -> meters -> measured windows -> result -> reports.

The runner knows no backend or meter by name; it drives them through their registries and protocols.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from contextlib import ExitStack, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ai_energy_benchmarks import interrupts
from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.registry import create_backend
from ai_energy_benchmarks.config.loader import Overrides, build_config, load_config
from ai_energy_benchmarks.config.parser import as_runner_config
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet, load_prompts, prompt_source
from ai_energy_benchmarks.datasets.workload import Workload, load_workload, workload_kind
from ai_energy_benchmarks.energy.base import IntervalReading, MeterSet
from ai_energy_benchmarks.energy.gpu_control import GpuSettings, apply_gpu_settings
from ai_energy_benchmarks.energy.registry import check_meter_names, check_meter_settings, create_meters
from ai_energy_benchmarks.environment import collect_environment
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError
from ai_energy_benchmarks.legacy_runner import LegacyRunnerParts
from ai_energy_benchmarks.passes import failed_passes, sleep_checked, untorn_window
from ai_energy_benchmarks.progress import ProgressCallback, ProgressLog
from ai_energy_benchmarks.results.aggregate import aggregate
from ai_energy_benchmarks.results.columns import csv_row
from ai_energy_benchmarks.run_dir import REPORT_FILE, RESOLVED_CONFIG_FILE, check_writable, claim_run_dir
from ai_energy_benchmarks.run_prompts import drawn_options, sent_prompts, synthetic_prompts
from ai_energy_benchmarks.run_report import model_info, write_reports
from ai_energy_benchmarks.scoring import create_scorer, score_records
from ai_energy_benchmarks.steady_hardware import SteadyHardware

logger = logging.getLogger(__name__)

#: Called as ``progress(stage, completed, total)``; stages: "load" (0/1 then 1/1), "idle" (0/1, 1/1), "warmup"
#: (prompts) and "measure <window>" (prompts of that measured pass, e.g. "measure prefill-0", "measure generate-0").


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_sha256(config: BenchmarkConfig) -> str:
    """Hash of the resolved config (secrets redacted, keys sorted): equal hashes mean the same benchmark."""
    canonical = json.dumps(config.to_public_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class BenchmarkRunner(LegacyRunnerParts):
    """Runs one benchmark described by a :class:`BenchmarkConfig` and returns its JSON-safe result.

    Example::

        runner = BenchmarkRunner(config)
        if runner.validate():
            result = runner.run()
    """

    def __init__(
        self,
        config: BenchmarkConfig | Mapping[str, Any],
        progress: ProgressCallback | None = None,
        config_source: str = "python",
    ) -> None:
        config = as_runner_config(config)  # a 0.0.4-style config object (config/parser.py): its set fields
        if isinstance(config, BenchmarkConfig):
            self.config = config
        else:
            self.config = build_config(config, config_source)
        self.config_source = config_source
        self._progress: ProgressCallback = ProgressLog(progress)
        self.output_dir = Path(self.config.output_dir)
        #: Where the latest :meth:`run` wrote its files: ``output_dir``, or a directory of its own under it when
        #: another run held ``output_dir``.
        self.run_dir = self.output_dir
        #: The result as written by the latest :meth:`run` (None until its report and CSV row are written).
        self.result: dict[str, Any] | None = None
        #: The session workload of the latest :meth:`run` (conversations or a trace), None for single prompts.
        self._workload: Workload | None = None
        #: ``self.backend`` (legacy_runner.py): before :meth:`run`, 0.0.4's adapter built on first use (nothing
        #: loaded); after it, the backend of the latest run, which callers such as AIEnergyScore's batch runner reach
        #: for clean-up. It is closed (model released) when :meth:`run` returns or raises.

    # -- validation ------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Check what can be checked without loading the model; raise a :class:`BenchmarkError` if not runnable."""
        self._checked_backend()

    def _checked_backend(self) -> Backend:
        try:
            return self._check()
        except ConfigError as exc:
            raise ConfigError(f"{self.config_source}: {exc}") from None

    def _check(self) -> Backend:
        """Everything checkable without loading: meters' names, the prompt source, the backend's own checks (its
        constructor loads nothing), writable outputs. Returns the (unloaded) backend."""
        if self.config.metrics.enabled:
            check_meter_names(self.config.metrics.meter_types)
            check_meter_settings(self.config.metrics)
        kind = workload_kind(self.config.scenario)
        if kind is None:
            prompt_source(self.config.scenario)
        if self.config.scenario.scorer is not None:
            create_scorer(self.config.scenario.scorer)  # a callable that cannot be imported stops the run here
        backend = create_backend(self.config)
        if kind is not None and kind not in backend.workloads:
            raise ConfigError(
                f"scenario.{kind}: backend type '{self.config.backend.type}' does not run {kind} workloads"
                + (f" (it runs: {', '.join(sorted(backend.workloads))})" if backend.workloads else "")
            )
        check_writable(self.output_dir, "output_dir")
        check_writable(Path(self.config.reporter.output_file).parent, "reporter.output_file")
        return backend

    def validate(self) -> bool:
        """True when :meth:`check` passes; otherwise logs the reason and returns False."""
        try:
            self.check()
        except BenchmarkError as exc:
            logger.error("invalid benchmark: %s", exc)
            return False
        return True

    # -- running ---------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run the benchmark and write its reports; return the result dict (JSON-serialisable).

        Loading, connecting and warm-up happen outside the measured windows. Once anything has been measured (the
        idle baseline or a measured window), a run that fails or is interrupted at any later point still writes its
        partial result (status ``failed`` or ``interrupted``) before the error propagates; the exception then
        carries the report's path as ``partial_report``. A run whose output_dir another run holds writes its files
        to a directory of its own under it (``concurrent_runs/<start time>-<pid>``).
        """
        interrupts.begin_run()
        backend = self._checked_backend()
        config = self.config
        self.result = None
        with ExitStack() as held:
            self.run_dir = claim_run_dir(self.output_dir, held)
            return self._run(backend, config)

    def _run(self, backend: Backend, config: BenchmarkConfig) -> dict[str, Any]:
        started_at = _now()
        scenario = config.scenario
        self._workload = load_workload(scenario)
        synthetic = self._workload is None and prompt_source(scenario)[0] == "synthetic"
        if self._workload is not None:
            prompt_set = self._workload.prompt_set(scenario.num_samples)
        elif synthetic:  # made with the model's tokenizer once the backend is loaded
            prompt_set = PromptSet([], "synthetic", scenario.num_samples, scenario.num_samples)
        else:
            prompt_set = load_prompts(scenario)
        if not synthetic:
            logger.info("loaded %d prompts from %s", len(prompt_set.prompts), prompt_set.source)
        interrupts.check()

        self.backend = backend
        meter_set: MeterSet | None = None
        self._steady: SteadyHardware | None = None
        records: list[RequestRecord] = []
        restore_gpus = ExitStack()  # the gpu: settings' originals, put back however the run ends
        self._gpu_settings: GpuSettings | None = None
        try:
            self._progress("load", 0, 1)
            backend.load()
            self._progress("load", 1, 1)
            interrupts.check()  # a signal whose exception was dropped during heavy imports or the model load
            self._gpu_settings = apply_gpu_settings(config.gpu, backend.metered_gpu_ids(), restore_gpus)
            if synthetic:
                prompt_set = synthetic_prompts(backend, config)
                interrupts.check()
            meters = create_meters(config.metrics, self.run_dir, backend.metered_gpu_ids(), backend.server_processes())
            meter_set = MeterSet(meters, backend.synchronize)
            meter_set.prepare()
            backend.prepare_prompts(prompt_set.prompts)  # chat templates and the like, never inside a window
            interrupts.check()
            self._steady = SteadyHardware(config.steady_hardware, meters)
            self._steady.settle()  # steady GPUs before the idle baseline and the measured passes
            self._idle(meter_set)
            interrupts.check()
            self._warmup(backend, prompt_set)
            interrupts.check()
            self._measure(backend, meter_set, prompt_set, records)
            interrupts.check()
            return self._finish(backend, meter_set, prompt_set, records, started_at, status=None)
        except BaseException as exc:
            if self.result is not None or meter_set is None or not (meter_set.windows or records):
                raise  # written already, or nothing measured yet
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            logger.warning("run %s after %d measured requests; writing what was measured", status, len(records))
            # A failed run's partial result is written whole (a signal meanwhile is delivered after it); after a
            # signal, a second one still ends the process at once.
            hold = interrupts.deferred() if status == "failed" else nullcontext()
            try:
                with hold:
                    self._finish(backend, meter_set, prompt_set, records, started_at, status=status)
            except Exception as write_error:  # the run's own error is the one to report
                logger.error("could not write the partial report: %s", write_error)
            else:
                exc.partial_report = str(self.run_dir / REPORT_FILE)  # type: ignore[attr-defined]
            raise
        finally:
            restore_gpus.close()
            if meter_set is not None:
                meter_set.close()
            backend.close()

    def _warmup(self, backend: Backend, prompt_set: PromptSet) -> None:
        scenario = self.config.scenario
        count = min(scenario.warmup_runs * scenario.input_shapes.batch_size, len(prompt_set.prompts))
        if count == 0:
            return
        shared, per_prompt = drawn_options(prompt_set)
        kwargs = scenario.generate_kwargs.as_kwargs() | shared
        done = 0
        logger.info("warm-up: %d prompts (not measured)", count)
        self._progress("warmup", done, count)
        backend.set_prompt_kwargs(per_prompt)
        backend.set_phase("warmup")
        for record in backend.run(prompt_set.prompts[:count], kwargs):
            done += record.num_prompts
            self._progress("warmup", done, count)
            if not record.ok:
                logger.warning("warm-up request failed: %s", record.error)
            interrupts.check()

    def _idle(self, meter_set: MeterSet) -> None:
        """Measure the idle baseline: the loaded system doing nothing for ``metrics.idle_seconds``."""
        idle_s = self.config.metrics.idle_seconds
        if not meter_set.meters or idle_s <= 0:
            return
        self._progress("idle", 0, 1)
        with untorn_window(meter_set, "idle", kind="idle"):
            logger.info("measuring %.1f s of idle baseline", idle_s)
            sleep_checked(idle_s)
        self._progress("idle", 1, 1)

    def _measure(
        self, backend: Backend, meter_set: MeterSet, prompt_set: PromptSet, records: list[RequestRecord]
    ) -> None:
        scenario = self.config.scenario
        kwargs = scenario.generate_kwargs.as_kwargs()
        passes: list[tuple[str, dict[str, Any]]] = []
        workload: Workload | None = self._workload
        if workload is not None and scenario.measure_prefill:
            logger.info("%s workload: no separate prefill pass is measured (its requests are whole)", workload.kind)
        elif scenario.measure_prefill and not backend.splits_phases:
            logger.warning("this backend's workload runs for a fixed duration: no separate prefill pass is measured")
        elif scenario.measure_prefill:
            passes.append(("prefill", kwargs | {"max_new_tokens": 1, "min_new_tokens": 1}))
        shared, per_prompt = drawn_options(prompt_set)
        passes.append(("generate", kwargs | shared))
        total = len(prompt_set.prompts)
        for repetition in range(scenario.repetitions):
            if self._steady is not None and (repetition > 0 or scenario.warmup_runs > 0):
                self._steady.cool_down(f"{passes[0][0]}-{repetition}")  # outside every window
            for phase, phase_kwargs in passes:
                done = 0
                self._progress(f"measure {phase}-{repetition}", done, total)
                with untorn_window(meter_set, f"{phase}-{repetition}", kind=phase, repetition=repetition):
                    logger.info("measuring window '%s-%d'", phase, repetition)
                    # Drawn output lengths apply to the generate pass; a prefill pass generates one token each.
                    backend.set_prompt_kwargs(per_prompt if phase == "generate" else None)
                    backend.set_phase(f"{phase}-{repetition}")
                    run = (
                        backend.run(prompt_set.prompts, phase_kwargs)
                        if workload is None
                        else backend.run_workload(workload, phase_kwargs)
                    )
                    for record in run:
                        record.repetition = repetition
                        record.phase = phase
                        records.append(record)
                        done += record.num_prompts
                        self._progress(f"measure {phase}-{repetition}", done, total)
                        interrupts.check()

    def _finish(
        self,
        backend: Backend,
        meter_set: MeterSet,
        prompt_set: PromptSet,
        records: list[RequestRecord],
        started_at: str,
        status: str | None,
    ) -> dict[str, Any]:
        failures: list[str] = []
        if status is None:
            failures = failed_passes(meter_set.windows, records)
            status = "failed" if failures else "completed"
        config = self.config
        steady: SteadyHardware | None = getattr(self, "_steady", None)
        hardware = steady.block(meter_set.windows) if steady is not None else None  # warns of throttled windows
        failures += steady.warnings if steady is not None else []
        scoring_errors: list[str] = []
        if config.scenario.scorer is not None:  # after the run: outside every measured window
            scoring_errors = score_records(
                config.scenario.scorer, prompt_set.references, records, decode=backend.decode_answers
            ).errors
        result = aggregate(
            config=config,
            prompt_set=prompt_set,
            records=records,
            windows=meter_set.windows,
            steady_state_readings=self._steady_state_readings(backend, meter_set),
            model_info=model_info(backend),
            gpu_ids_used=backend.metered_gpu_ids(),
            meters_info=meter_set.describe(),
            environment=collect_environment(),
            provenance={
                "config_source": self.config_source,
                "config_sha256": config_sha256(config),
                "config": config.to_public_dict(),
                "resolved_config_file": RESOLVED_CONFIG_FILE,
            },
            timestamps={"started_at": started_at, "finished_at": _now()},
            status=status,
            warnings=failures,
            scoring_errors=scoring_errors,
            read_back=meter_set.energy_between if meter_set.meters else None,
            workload=self._workload,
            hardware=hardware,
        ).to_dict()
        if self._gpu_settings is not None:
            result["gpu_control"] = self._gpu_settings.describe()
        sent = sent_prompts(backend, prompt_set) if self._workload is None else self._workload.prompt_rows()
        write_reports(self.run_dir, config, result, records, sent, on_written=self._written)
        return result

    def _written(self, result: dict[str, Any]) -> None:
        """Keep the result as written (its report and CSV row are on disk)."""
        self.result = result

    @staticmethod
    def _steady_state_readings(backend: Backend, meter_set: MeterSet) -> dict[str, list[IntervalReading]]:
        """The meters' energy over each steady-state interval the backend reports (optional hook), by window label."""
        if not meter_set.meters:
            return {}
        try:
            bounds = backend.steady_state_intervals()
        except Exception as exc:  # the window figures stand without it
            logger.warning("cannot read the backend's steady-state intervals: %s", exc)
            return {}
        return {label: meter_set.energy_between(start_s, end_s) for label, (start_s, end_s) in bounds.items()}


def create_benchmark(
    config_path: str | os.PathLike[str] | None = None,
    overrides: Overrides = None,
    config_name: str | None = None,
    progress: ProgressCallback | None = None,
) -> BenchmarkRunner:
    """A :class:`BenchmarkRunner` for a YAML file (or a packaged preset), with optional overrides."""
    from ai_energy_benchmarks.config.loader import load_config_data

    data, origin = load_config_data(config_path, overrides, config_name)
    return BenchmarkRunner(build_config(data, origin), progress=progress, config_source=origin)


def run_benchmark_from_config(config_path: str | os.PathLike[str], overrides: Overrides = None) -> dict[str, Any]:
    """Load ``config_path`` (with a nested-dict or ``key=value`` overrides) and run it; return the result."""
    return create_benchmark(config_path=config_path, overrides=overrides).run()


__all__ = [
    "BenchmarkRunner",
    "ProgressCallback",
    "ProgressLog",
    "config_sha256",
    "create_benchmark",
    "csv_row",
    "load_config",
    "run_benchmark_from_config",
]
