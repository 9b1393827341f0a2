"""The benchmark runner: prompts -> backend -> meters -> measured windows -> result -> reports.

The runner knows no backend or meter by name; it drives them through their registries and protocols.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ai_energy_benchmarks import interrupts
from ai_energy_benchmarks.backends.base import Backend, RequestRecord
from ai_energy_benchmarks.backends.registry import create_backend
from ai_energy_benchmarks.config.loader import Overrides, build_config, load_config
from ai_energy_benchmarks.config.schema import BenchmarkConfig
from ai_energy_benchmarks.datasets.loader import PromptSet, load_prompts, prompt_source
from ai_energy_benchmarks.energy.base import IntervalReading, MeterSet, WindowMeasurement
from ai_energy_benchmarks.energy.registry import check_meter_names, create_meters
from ai_energy_benchmarks.environment import collect_environment
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError, Interrupted
from ai_energy_benchmarks.results.aggregate import aggregate
from ai_energy_benchmarks.results.writers import (
    append_csv_row_to,
    exclusive_lock,
    repoint_csv_report,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)

logger = logging.getLogger(__name__)

#: Called as ``progress(stage, completed, total)``; stages: "load" (0/1 then 1/1), "idle" (0/1, 1/1), "warmup"
#: (prompts) and "measure <window>" (prompts of that measured pass, e.g. "measure prefill-0", "measure generate-0").
ProgressCallback = Callable[[str, int, int], None]

REPORT_FILE = "benchmark_report.json"
REQUESTS_FILE = "requests.jsonl"
PROMPTS_FILE = "prompts.jsonl"
RESOLVED_CONFIG_FILE = "resolved_config.yaml"
#: Held (locked) by the run writing to an output_dir; removed when it ends.
RUN_LOCK_FILE = ".benchmark_run.lock"
#: Where a run puts its files when another run holds its output_dir: ``<output_dir>/concurrent_runs/<stamp>-<pid>``.
CONCURRENT_RUNS_DIR = "concurrent_runs"

_CSV_ENERGY_KEYS = (
    "gpu_energy_wh",
    "cpu_energy_wh",
    "ram_energy_wh",
    "total_energy_wh",
    "energy_wh",
    "emissions_g_co2eq",
    "emissions_kg_co2eq",
    "carbon_intensity_g_per_kwh",
    "total_wh_per_1000_queries",
    "gpu_wh_per_1000_queries",
    "joules_per_output_token",
    "tokens_per_joule",
    "all_measured",
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_sha256(config: BenchmarkConfig) -> str:
    """Hash of the resolved config (secrets redacted, keys sorted): equal hashes mean the same benchmark."""
    canonical = json.dumps(config.to_public_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class BenchmarkRunner:
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
        #: The backend of the latest :meth:`run` (None before): callers such as AIEnergyScore's batch runner reach
        #: it after the run for clean-up. It is closed (model released) when :meth:`run` returns or raises.
        self.backend: Backend | None = None

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
        prompt_source(self.config.scenario)
        backend = create_backend(self.config)
        _check_writable(self.output_dir, "output_dir")
        _check_writable(Path(self.config.reporter.output_file).parent, "reporter.output_file")
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
            self.run_dir = _claim_run_dir(self.output_dir, held)
            return self._run(backend, config)

    def _run(self, backend: Backend, config: BenchmarkConfig) -> dict[str, Any]:
        started_at = _now()
        prompt_set = load_prompts(config.scenario)
        logger.info("loaded %d prompts from %s", len(prompt_set.prompts), prompt_set.source)
        interrupts.check()

        self.backend = backend
        meter_set: MeterSet | None = None
        records: list[RequestRecord] = []
        try:
            self._progress("load", 0, 1)
            backend.load()
            self._progress("load", 1, 1)
            interrupts.check()  # a signal whose exception was dropped during heavy imports or the model load
            meter_set = MeterSet(
                create_meters(config.metrics, self.run_dir, backend.metered_gpu_ids()), backend.synchronize
            )
            meter_set.prepare()
            prepare_prompts = getattr(backend, "prepare_prompts", None)
            if callable(prepare_prompts):  # chat templates and the like, never inside a measured window
                prepare_prompts(prompt_set.prompts)
            interrupts.check()
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
            if meter_set is not None:
                meter_set.close()
            backend.close()

    def _warmup(self, backend: Backend, prompt_set: PromptSet) -> None:
        scenario = self.config.scenario
        count = min(scenario.warmup_runs * scenario.input_shapes.batch_size, len(prompt_set.prompts))
        if count == 0:
            return
        kwargs = scenario.generate_kwargs.as_kwargs()
        done = 0
        logger.info("warm-up: %d prompts (not measured)", count)
        self._progress("warmup", done, count)
        _label_pass(backend, "warmup")
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
        with _untorn_window(meter_set, "idle", kind="idle"):
            logger.info("measuring %.1f s of idle baseline", idle_s)
            _sleep_checked(idle_s)
        self._progress("idle", 1, 1)

    def _measure(
        self, backend: Backend, meter_set: MeterSet, prompt_set: PromptSet, records: list[RequestRecord]
    ) -> None:
        scenario = self.config.scenario
        kwargs = scenario.generate_kwargs.as_kwargs()
        passes: list[tuple[str, dict[str, Any]]] = []
        if scenario.measure_prefill and not getattr(backend, "splits_phases", True):
            logger.warning("this backend's workload runs for a fixed duration: no separate prefill pass is measured")
        elif scenario.measure_prefill:
            passes.append(("prefill", kwargs | {"max_new_tokens": 1, "min_new_tokens": 1}))
        passes.append(("generate", kwargs))
        total = len(prompt_set.prompts)
        for repetition in range(scenario.repetitions):
            for phase, phase_kwargs in passes:
                done = 0
                self._progress(f"measure {phase}-{repetition}", done, total)
                with _untorn_window(meter_set, f"{phase}-{repetition}", kind=phase, repetition=repetition):
                    logger.info("measuring window '%s-%d'", phase, repetition)
                    _label_pass(backend, f"{phase}-{repetition}")
                    for record in backend.run(prompt_set.prompts, phase_kwargs):
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
            failures = _failed_passes(meter_set.windows, records)
            status = "failed" if failures else "completed"
        config = self.config
        result = aggregate(
            config=config,
            prompt_set=prompt_set,
            records=records,
            windows=meter_set.windows,
            steady_state_readings=self._steady_state_readings(backend, meter_set),
            model_info=backend.describe(),
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
        )
        self._write_reports(result, records, self._sent_prompts(backend, prompt_set))
        return result

    @staticmethod
    def _steady_state_readings(backend: Backend, meter_set: MeterSet) -> dict[str, list[IntervalReading]]:
        """The meters' energy over each steady-state interval the backend reports (optional hook), by window label."""
        intervals = getattr(backend, "steady_state_intervals", None)
        if not callable(intervals) or not meter_set.meters:
            return {}
        try:
            bounds: dict[str, tuple[float, float]] = intervals()
        except Exception as exc:  # the window figures stand without it
            logger.warning("cannot read the backend's steady-state intervals: %s", exc)
            return {}
        return {label: meter_set.energy_between(start_s, end_s) for label, (start_s, end_s) in bounds.items()}

    @staticmethod
    def _sent_prompts(backend: Backend, prompt_set: PromptSet) -> list[dict[str, Any]]:
        """Each prompt and exactly what the backend sends for it (when the backend can say)."""
        render = getattr(backend, "render", None)
        rows = []
        for index, prompt in enumerate(prompt_set.prompts):
            row: dict[str, Any] = {"index": index, "prompt": prompt}
            if callable(render):
                try:
                    row["sent"] = render(prompt)
                except BenchmarkError as exc:
                    row["sent_error"] = str(exc)
            rows.append(row)
        return rows

    def _write_reports(
        self, result: dict[str, Any], records: list[RequestRecord], sent_prompts: list[dict[str, Any]]
    ) -> None:
        try:
            self._write_report_files(result, records, sent_prompts)
        except OSError as exc:
            raise BenchmarkError(
                f"cannot write the results to {self.run_dir} ({exc.strerror or exc}); the measured result is "
                "still returned to Python callers"
            ) from exc

    def _write_report_files(
        self, result: dict[str, Any], records: list[RequestRecord], sent_prompts: list[dict[str, Any]]
    ) -> None:
        out = self.run_dir
        report_path = out / REPORT_FILE
        csv_path = Path(self.config.reporter.output_file)
        result["files"] = {
            "report": str(report_path),
            "requests": str(out / REQUESTS_FILE),
            "prompts": str(out / PROMPTS_FILE),
            "resolved_config": str(out / RESOLVED_CONFIG_FILE),
            "csv": str(csv_path),
        }
        write_text_atomic(
            out / RESOLVED_CONFIG_FILE,
            f"# resolved config, sha256 {result['provenance']['config_sha256']}\n"
            + yaml.safe_dump(self.config.to_public_dict(), sort_keys=False),
        )
        write_jsonl_atomic(out / REQUESTS_FILE, (r.to_dict() for r in records))
        write_jsonl_atomic(out / PROMPTS_FILE, sent_prompts)
        # The CSV row and the report are written together: a signal arriving meanwhile is delivered afterwards, so
        # the two never disagree and the status written is the one the command's exit code follows.
        dropped: int | None = None
        with interrupts.deferred():
            if result["status"] == "completed":
                dropped = interrupts.received()  # a signal whose exception Python dropped: the run was stopped
                if dropped is not None:
                    result["status"] = "interrupted"
            appended = append_csv_row_to(csv_path, csv_row(result))
            if appended.refused:
                result["files"]["csv"] = str(appended.path)
                result["warnings"].append(
                    f"the results CSV {csv_path} cannot take a row ({appended.refused[str(csv_path)]}): this run's "
                    f"row is in {appended.path}"
                )
            write_json_atomic(report_path, result)
            self.result = result
            interrupts.settle()
        logger.info("report written to %s", report_path)
        if dropped is not None:
            stop = Interrupted(dropped)
            stop.partial_report = str(report_path)  # type: ignore[attr-defined]
            raise stop


def csv_row(result: dict[str, Any]) -> dict[str, Any]:
    """The CSV columns for one run: the same columns for every run, so rows always align."""
    config, energy = result["config"], result["energy"]
    row: dict[str, Any] = {
        "timestamp": result["timestamps"]["finished_at"],
        "schema_version": result["schema_version"],
        "status": result["status"],
        "name": config["name"],
        "backend": config["backend"],
        "model": config["model"],
        "dataset": config["dataset"],
        "num_samples": config["num_samples"],
        "batch_size": config["batch_size"],
        "repetitions": config["repetitions"],
        "device_ids": json.dumps(config["device_ids"]),
        "generate_kwargs": json.dumps(config["generate_kwargs"], sort_keys=True),
    }
    row.update({k: v for k, v in result["summary"].items() if k != "zero_filled"})
    for key in _CSV_ENERGY_KEYS:
        row[key] = energy.get(key)
    # 0.0.4's keys that hold 0.0 only because they may not be null (results/contract.py): unknown, not zero.
    row["zero_filled"] = " ".join(
        [f"summary.{k}" for k in result["summary"].get("zero_filled") or []]
        + [f"energy.{k}" for k in energy.get("zero_filled") or []]
    )
    for device in ("gpu", "cpu", "ram"):
        row[f"{device}_energy_source"] = (energy.get("sources") or {}).get(device)
    row["synthetic_model"] = bool(result["model"].get("synthetic"))
    row["prompts_sha256"] = result["dataset"]["prompts_sha256"]
    row["config_sha256"] = result["provenance"]["config_sha256"]
    row["report"] = result.get("files", {}).get("report")
    return row


class ProgressLog:
    """A progress callback that also logs a line on the ``ai_energy_benchmarks.progress`` logger (INFO): when a
    stage starts and ends, and at most every ``interval_s`` seconds in between. Consoles that are no terminal (CI,
    log files, nohup) see the run advance through it; the CLI turns it on there. ``then`` (the caller's own
    callback, e.g. a progress bar) is called with every update."""

    def __init__(
        self,
        then: ProgressCallback | None = None,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._then = then
        self._interval_s = interval_s
        self._clock = clock
        self._stage: str | None = None
        self._stage_start_s = 0.0
        self._last_log_s = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now_s = self._clock()
        if stage != self._stage:
            self._stage, self._stage_start_s, self._last_log_s = stage, now_s, now_s
            self._log(stage, done, total, now_s)
        elif done >= total or now_s - self._last_log_s >= self._interval_s:
            self._last_log_s = now_s
            self._log(stage, done, total, now_s)
        if self._then is not None:
            self._then(stage, done, total)

    def _log(self, stage: str, done: int, total: int, now_s: float) -> None:
        elapsed_s = now_s - self._stage_start_s
        if stage in ("load", "idle"):
            what = {"load": "loading the model", "idle": "measuring the idle baseline"}[stage]
            if done >= total:
                progress_logger.info("%s: done in %.1f s", what, elapsed_s)
            else:
                progress_logger.info("%s", what)
            return
        text = f"{stage}: {done}/{total} prompts"
        if done >= total:
            text += f", done in {elapsed_s:.1f} s"
        elif done > 0:
            left_s = elapsed_s / done * (total - done)
            text += f", {elapsed_s:.0f} s elapsed, about {left_s:.0f} s left"
        progress_logger.info("%s", text)


#: Progress lines (see :class:`ProgressLog`); the CLI shows them when stderr is not a terminal.
progress_logger = logging.getLogger("ai_energy_benchmarks.progress")


def _failed_passes(windows: list[WindowMeasurement], records: list[RequestRecord]) -> list[str]:
    """Why a run whose passes all ran must still fail: each measured pass (window) without one successful request."""
    reasons = []
    for window in windows:
        if window.kind not in ("prefill", "generate"):
            continue
        mine = [r for r in records if r.phase == window.kind and r.repetition == window.repetition]
        if not any(r.ok for r in mine):
            reasons.append(
                f"measured pass '{window.name}': none of its {sum(r.num_prompts for r in mine)} requests succeeded"
            )
    if not any(w.kind in ("prefill", "generate") for w in windows):
        reasons.append("no measured pass ran")
    return reasons


@contextmanager
def _untorn_window(meter_set: MeterSet, name: str, **kwargs: Any) -> Iterator[None]:
    """``meter_set.window(...)`` whose opening and closing a signal does not tear: one that arrives while the meters
    start or stop is delivered once the window is open, or once it is closed and recorded."""
    stack = ExitStack()
    try:
        with interrupts.deferred():
            stack.enter_context(meter_set.window(name, **kwargs))
        yield
    except BaseException:
        with interrupts.deferred():
            if not stack.__exit__(*sys.exc_info()):
                raise
    else:
        with interrupts.deferred():
            stack.close()


def _sleep_checked(duration_s: float) -> None:
    """Sleep ``duration_s`` seconds in short steps, stopping at once for a signal whose exception was dropped."""
    end_s = time.monotonic() + duration_s
    while (left_s := end_s - time.monotonic()) > 0:
        time.sleep(min(left_s, 0.1))
        interrupts.check()


def _label_pass(backend: Backend, label: str) -> None:
    """Tell a backend that can use it which pass comes next (``warmup``, ``prefill-0``, ``generate-0``, ...)."""
    set_phase = getattr(backend, "set_phase", None)
    if callable(set_phase):
        set_phase(label)


_RUN_FILES = (REPORT_FILE, REQUESTS_FILE, PROMPTS_FILE, RESOLVED_CONFIG_FILE, "timeline.csv")
#: Files a run leaves whose names vary: CodeCarbon's per-task rows, one file per tracker run id.
_RUN_FILE_PATTERNS = ("emissions_base_*.csv",)


def _claim_run_dir(output_dir: Path, held: ExitStack) -> Path:
    """The directory this run writes to: ``output_dir`` itself, held (locked) for the run, with an earlier run's
    files moved aside; or, when another run holds it, a new directory of this run's own under it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if held.enter_context(exclusive_lock(output_dir / RUN_LOCK_FILE, blocking=False)):
        with interrupts.deferred():  # files are moved whole, and their CSV rows follow them
            _archive_previous_run(output_dir)
        return output_dir
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 1000):
        run_dir = output_dir / CONCURRENT_RUNS_DIR / (f"{stamp}-{os.getpid()}" + (f"~{attempt}" if attempt > 1 else ""))
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:
            continue
        logger.warning("another run is using %s: this run's files go to %s", output_dir, run_dir)
        return run_dir
    raise BenchmarkError(f"output_dir: cannot make a run directory under {output_dir / CONCURRENT_RUNS_DIR}")


def _archive_previous_run(out: Path) -> None:
    """Move an earlier run's files out of the way (into ``previous_runs/<its finish time>/``), never overwrite them.

    The moved report's ``files`` and the ``report`` cell of its CSV row are pointed at the new place.
    """
    report = out / REPORT_FILE
    if not report.is_file():
        return
    previous: dict[str, Any] = {}
    try:
        previous = json.loads(report.read_text(encoding="utf-8"))
        stamp = previous["timestamps"]["finished_at"]
    except (OSError, ValueError, KeyError, TypeError):
        stamp = datetime.fromtimestamp(report.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    target = out / "previous_runs" / str(stamp).replace(":", "-")
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name.split('~')[0]}~{suffix}")
    target.mkdir(parents=True)
    for name in _RUN_FILES:
        if (out / name).exists():
            (out / name).replace(target / name)
    for pattern in _RUN_FILE_PATTERNS:
        for path in out.glob(pattern):
            path.replace(target / path.name)
    logger.info("kept the previous run's files in %s", target)
    files = previous.get("files") if isinstance(previous, dict) else None
    if not isinstance(files, dict):
        return
    moved = {key: str(target / Path(value).name) for key, value in files.items() if key != "csv" and value}
    old_report = files.get("report")
    try:
        write_json_atomic(target / REPORT_FILE, previous | {"files": files | moved})
        if isinstance(files.get("csv"), str) and isinstance(old_report, str):
            repoint_csv_report(Path(files["csv"]), old_report, moved["report"], str(stamp))
    except (OSError, BenchmarkError) as exc:  # the files are kept either way
        logger.warning("cannot point the previous run's report and CSV row at %s: %s", target, exc)


def _check_writable(directory: Path, key: str) -> None:
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ConfigError(f"{key}: directory '{directory}' cannot be written (check permissions)")


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
    "load_config",
    "run_benchmark_from_config",
]
