"""``sweep --executor ray``: each point of a sweep a Ray task holding its GPUs to itself.

Each point runs as one Ray task that requests the GPUs its config uses (``num_gpus``: ``max(backend.device_ids) + 1``
when the backend's device is not ``cpu``; or ``gpus_per_point``; or that many units of a custom resource), so Ray
never places two points on one GPU: no point meters a device another point is loading. Ray sets the task's
``CUDA_VISIBLE_DEVICES`` (``HIP_VISIBLE_DEVICES`` on AMD) to the GPUs it assigned, so ``backend.device_ids`` are
ordinals among those (``[0]``: the one GPU Ray gave the point); the meters follow that variable.

Results land where a local sweep puts them: every worker writes its point's run directory inside the sweep
directory, which must therefore be on storage every Ray node mounts (the driver writes a mark there, and a worker that
cannot read it fails its point with a message saying so). The summary, the resume rule and the files are the local
sweep's (``sweeps.execution``); only who runs the points differs.

A worker lost mid-point (its process killed, its node gone) is a system failure: Ray runs the task again, up to
``max_retries`` times. Each attempt appends a line to ``<run dir>/ray_attempts.jsonl`` (node, pid, GPUs assigned,
start time); a point that needed more than one says so in its outcome's message (and so in ``sweep.json``).
A failure of the benchmark itself is not retried: it is the point's ``failed`` outcome, as locally.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ai_energy_benchmarks.exceptions import ConfigError, MissingDependencyError, one_line
from ai_energy_benchmarks.sweeps.executor import (
    DoneCallback,
    PointJob,
    ProgressCallback,
    StartCallback,
    read_report,
    run_point,
)
from ai_energy_benchmarks.sweeps.grid import SweepPoint
from ai_energy_benchmarks.sweeps.outcome import PointOutcome

if TYPE_CHECKING:
    from ai_energy_benchmarks.sweeps.execution import Sweep

logger = logging.getLogger(__name__)

RAY_INSTALL = "pip install 'ai-energy-benchmarks[ray]'"
#: One line per attempt at a point, in its run directory.
ATTEMPTS_FILE = "ray_attempts.jsonl"
#: Written by the driver in the sweep directory; a worker that cannot read it is not on the shared storage.
STORAGE_MARK = ".ray_shared_storage"
#: How often the driver looks for points that have begun while it waits for results (s).
POLL_S = 0.5
_VISIBLE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES")


def import_ray() -> Any:
    """The ``ray`` module, or a MissingDependencyError (exit 2) naming the install command."""
    try:
        import ray
    except ImportError as exc:
        message = f"--executor ray needs Ray, which is not installed ({exc}): {RAY_INSTALL}"
        raise MissingDependencyError(message) from None
    return ray


def gpus_of(config: Any) -> int:
    """How many GPUs a point's resolved config needs visible: ``max(backend.device_ids) + 1``, none on ``cpu``."""
    backend = config.backend
    if str(getattr(backend, "device", "auto")).strip().lower() == "cpu":
        return 0
    ids = list(getattr(backend, "device_ids", None) or [])
    return max(ids) + 1 if ids else 0


def _reachable(address: str, timeout_s: float = 5.0) -> str | None:
    """Why ``host:port`` (optionally ``ray://``) cannot be reached, or None when a TCP connection opens."""
    target = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None  # not host:port: left to Ray to interpret
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _attempts(run_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The attempts recorded at this point by this sweep invocation (``run_id``)."""
    try:
        lines = (run_dir / ATTEMPTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed worker
        if isinstance(record, dict) and record.get("run_id") == run_id:
            records.append(record)
    return records


def _duration_s(run_dir: Path, run_id: str, seen_s: float) -> float:
    """How long the point's last attempt ran (s): from its recorded start (wall clock; the driver only sees a start
    at its next look), else from when the driver saw it begin (``seen_s``, monotonic)."""
    records = _attempts(run_dir, run_id)
    try:
        started = datetime.fromisoformat(records[-1]["started_at"]).timestamp()
    except (IndexError, KeyError, TypeError, ValueError):
        return time.monotonic() - seen_s
    return max(0.0, time.time() - started)


def run_on_worker(job: PointJob, cwd: str, mark: tuple[str, str], run_id: str) -> PointOutcome:
    """The Ray task: record the attempt, run the point (:func:`run_point`) and return its outcome."""
    import ray

    mark_path, token = mark
    try:
        seen = Path(mark_path).read_text(encoding="utf-8")
    except OSError:
        seen = ""
    if seen != token:
        message = (
            f"the sweep directory {Path(mark_path).parent} is not visible on Ray node {socket.gethostname()}: "
            "--executor ray writes each point's results there, so it must be on storage every node mounts"
        )
        return PointOutcome(job.point, job.run_dir, "failed", None, ran_now=True, message=message)
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative paths in the config mean what they mean on the driver
    job.run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        "attempt": len(_attempts(job.run_dir, run_id)) + 1,
        "node": socket.gethostname(),
        "pid": os.getpid(),
        "gpu_ids": [str(gpu) for gpu in ray.get_gpu_ids()],
        "visible_devices": {name: os.environ[name] for name in _VISIBLE_VARIABLES if name in os.environ},
        "started_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
    with (job.run_dir / ATTEMPTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    return run_point(job)


class RayExecutor:
    """Runs a sweep's points as Ray tasks, each holding its GPUs (see the module docstring).

    ``address``: the cluster to connect to (``host:port``, ``ray://host:port`` or ``auto``); None starts a local
    Ray instance (or uses ``RAY_ADDRESS`` when set). When Ray is already initialised in this process, that cluster is
    used and left running. ``resource``: request this custom resource instead of ``GPU`` (Ray then counts units but
    does not pick devices: see docs/clusters.md). ``gpus_per_point``: the GPUs (or resource units) every point
    requests, instead of the count from its config. ``cpus_per_point``: Ray CPUs per point task. ``max_retries``:
    how many times a point whose worker was lost is run again. ``init_kwargs``: more arguments to ``ray.init``.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        resource: str | None = None,
        gpus_per_point: float | None = None,
        cpus_per_point: float = 1.0,
        max_retries: int = 3,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if gpus_per_point is not None and gpus_per_point < 0:
            raise ConfigError(f"--ray-gpus-per-point: must be 0 or more, got {gpus_per_point}")
        if max_retries < 0:
            raise ConfigError(f"--ray-max-retries: must be 0 or more, got {max_retries}")
        if resource is not None and not resource.strip():
            raise ConfigError("--ray-resource: give a resource name (as the cluster's nodes declare it)")
        import_ray()  # fail now, before anything runs, when Ray is not installed
        self.address = address
        self.resource = resource
        self.gpus_per_point = gpus_per_point
        self.cpus_per_point = cpus_per_point
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})

    # -- set-up --------------------------------------------------------------------------------------------------------

    def connect(self) -> bool:
        """Connect to (or start) the cluster; True when this call initialised Ray (and so must shut it down)."""
        ray = import_ray()
        if ray.is_initialized():
            return False
        where = f"--ray-address {self.address}" if self.address else "a local Ray instance"
        if self.address and self.address != "auto":
            why = _reachable(self.address)
            if why is not None:
                raise ConfigError(f"{where}: cannot reach the Ray cluster ({why})")
        try:
            ray.init(address=self.address, **self.init_kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ConfigError(f"{where}: cannot connect to a Ray cluster ({one_line(exc)})") from None
        return True

    def resources(self, sweep: Sweep, point: SweepPoint) -> dict[str, Any]:
        """The Ray task options that reserve ``point``'s GPUs (or custom resource units) and CPUs."""
        count = self.gpus_per_point
        if count is None:
            count = gpus_of(sweep._runner(point).config)
        options: dict[str, Any] = {"num_cpus": self.cpus_per_point}
        if self.resource:
            options["num_gpus"] = 0
            if count:
                options["resources"] = {self.resource: count}
        else:
            options["num_gpus"] = count
        return options

    # -- running -------------------------------------------------------------------------------------------------------

    def execute(
        self,
        sweep: Sweep,
        points: Sequence[SweepPoint],
        on_start: StartCallback,
        on_done: DoneCallback,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Submit every point as a task; report each as it begins and finishes (see ``SweepExecutor``)."""
        options = {point.index: self.resources(sweep, point) for point in points}
        started_here = self.connect()
        ray = import_ray()
        try:
            self._check_feasible(ray, points, options)
            self._execute(ray, sweep, points, options, on_start, on_done)
        finally:
            if started_here:
                ray.shutdown()

    @staticmethod
    def _check_feasible(ray: Any, points: Sequence[SweepPoint], options: Mapping[int, Mapping[str, Any]]) -> None:
        """A ConfigError (before anything is submitted) for a point asking more than the whole cluster has: Ray
        would keep it waiting for ever."""
        have = ray.cluster_resources()
        for point in points:
            wanted = {"GPU": options[point.index].get("num_gpus") or 0, **options[point.index].get("resources", {})}
            for name, count in wanted.items():
                if count and float(have.get(name, 0)) < count:
                    raise ConfigError(
                        f"sweep point {point.index} ({point.label}) requests {count:g} {name} on Ray; the cluster has "
                        f"{float(have.get(name, 0)):g} (set backend.device_ids, --ray-gpus-per-point or --ray-resource)"
                    )

    def _execute(
        self,
        ray: Any,
        sweep: Sweep,
        points: Sequence[SweepPoint],
        options: Mapping[int, Mapping[str, Any]],
        on_start: StartCallback,
        on_done: DoneCallback,
    ) -> None:
        run_id = uuid.uuid4().hex
        mark = sweep.directory.resolve() / STORAGE_MARK
        mark.write_text(run_id, encoding="utf-8")
        task = ray.remote(run_on_worker)
        refs: dict[Any, SweepPoint] = {}
        for point in points:
            job = sweep.job(point, len(sweep.points), absolute=True)
            opts = {**options[point.index], "max_retries": self.max_retries, "retry_exceptions": False}
            refs[task.options(**opts).remote(job, os.getcwd(), (str(mark), run_id), run_id)] = point
            logger.info("sweep point %d (%s) submitted to Ray: %s", point.index, point.label, options[point.index])
        begun: dict[int, float] = {}

        def begin(point: SweepPoint) -> None:
            if point.index not in begun:
                begun[point.index] = time.monotonic()
                on_start(point)

        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                for ref in pending:  # points that have begun since: their attempt is recorded
                    point = refs[ref]
                    if point.index not in begun and _attempts(sweep.run_dir(point), run_id):
                        begin(point)
                for ref in ready:
                    point = refs[ref]
                    begin(point)
                    outcome = self._outcome(ray, ref, sweep, point, run_id)
                    on_done(outcome, _duration_s(sweep.run_dir(point), run_id, begun[point.index]))
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            mark.unlink(missing_ok=True)

    def _outcome(self, ray: Any, ref: Any, sweep: Sweep, point: SweepPoint, run_id: str) -> PointOutcome:
        run_dir = sweep.run_dir(point)
        try:
            outcome: PointOutcome = ray.get(ref)
        except ray.exceptions.RayError as exc:
            message = f"Ray task failed after {self.max_retries} retries: {one_line(exc)}"
            logger.warning("sweep point %d (%s) failed: %s", point.index, point.label, message)
            outcome = PointOutcome(point, run_dir, "failed", read_report(run_dir), ran_now=True, message=message)
        attempts = _attempts(run_dir, run_id)
        message = outcome.message
        if len(attempts) > 1:
            note = f"ran {len(attempts)} times on Ray (a worker was lost; see {ATTEMPTS_FILE})"
            logger.warning("sweep point %d (%s) %s", point.index, point.label, note)
            message = f"{message}; {note}" if message else note
        # The run directory as the sweep names it (the worker was given it absolute), as a local sweep reports it.
        return replace(outcome, point=point, run_dir=run_dir, message=message)


__all__ = ["ATTEMPTS_FILE", "RAY_INSTALL", "RayExecutor", "gpus_of", "import_ray", "run_on_worker"]
