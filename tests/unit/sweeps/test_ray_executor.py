"""`sweep --executor ray` on a local Ray cluster: three fake GPUs, simulated NVML in every worker, one worker killed.

One cluster serves the module (``ray.init`` with ``num_gpus=3``). Its workers import a ``pynvml`` that is the
simulated NVML (three GPUs of 100 W, told apart by UUID), put first on their path by the job's runtime environment;
the points run against the package's test server. The same six points run with the local executor (simulated NVML
in this process) and on Ray; what must match does, exactly, and the energy matches what the simulation makes exact.

The killed worker: the simulated ``nvmlDeviceGetTotalEnergyConsumption`` of the first worker to read a GPU counter
while the "armed" file exists renames it (only one process can) and SIGKILLs its own process, mid-point. Ray sees a
lost worker and runs the task again; the point completes and its attempts are on record.

Skipped where Ray is not installed, except under ``AIEB_REQUIRE_RAY=1`` (``.ci/run`` sets it: CI never skips these).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ai_energy_benchmarks.cli import main
from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.sweeps import Sweep, parse_param
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml
from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

if os.environ.get("AIEB_REQUIRE_RAY") != "1":
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ai-energy-benchmarks[ray]')")

import ray

from ai_energy_benchmarks.sweeps.ray_executor import ATTEMPTS_FILE, RayExecutor

GPUS = 3
POWER_W = 100.0
UUIDS = [f"GPU-00000000-0000-4000-8000-{index:012d}" for index in range(GPUS)]
PARAMS = ["scenario.num_samples=4,6,8", "backend.concurrency=1,2"]
MAX_NEW_TOKENS = 8
CLI = [sys.executable, "-m", "ai_energy_benchmarks"]

PYNVML_SHIM = """\
# The simulated NVML, as the Ray workers of tests/unit/sweeps/test_ray_executor.py import it.
import os, signal, sys
from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml

_module = FakeNvml([FakeGpu(power={power}, uuid=uuid) for uuid in {uuids!r}]).install()
_read = _module.nvmlDeviceGetTotalEnergyConsumption
_ARMED = os.environ["AIEB_TEST_RAY_ARMED"]


def _read_or_die(handle):
    try:
        os.rename(_ARMED, _ARMED + ".fired")  # exactly one process wins
    except FileNotFoundError:
        return _read(handle)
    with open(_ARMED + ".fired", "w") as note:
        note.write(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


_module.nvmlDeviceGetTotalEnergyConsumption = _read_or_die
sys.modules[__name__] = _module
"""


@pytest.fixture(scope="module")
def armed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-kill") / "armed"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, armed: Path) -> Iterator[None]:
    """A local Ray cluster with GPUS fake GPUs whose workers import the simulated NVML."""
    shim = tmp_path_factory.mktemp("pynvml-shim")
    (shim / "pynvml.py").write_text(PYNVML_SHIM.format(power=POWER_W, uuids=UUIDS), encoding="utf-8")
    path = os.pathsep.join(p for p in [str(shim), *sys.path] if p)
    env = {"PYTHONPATH": path, "AIEB_TEST_RAY_ARMED": str(armed), "OMP_NUM_THREADS": "1"}
    ray.init(
        num_cpus=GPUS,
        num_gpus=GPUS,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(models=["fake-model"], token_delay_s=0.005) as fake:
        yield fake


def write_config(directory: Path, server: FakeOpenAIServer) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    prompts = directory / "prompts.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(10)), encoding="utf-8")
    path = directory / "sweep.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: ray-sweep
            backend:
              type: vllm
              model: fake-model
              endpoint: "{server.url}/v1"
              device: cuda
              device_ids: [0]
            scenario:
              dataset_name: {prompts}
              num_samples: 6
              generate_kwargs: {{max_new_tokens: {MAX_NEW_TOKENS}, min_new_tokens: {MAX_NEW_TOKENS}}}
              measure_prefill: false
            metrics:
              type: nvml
            """
        ),
        encoding="utf-8",
    )
    return path


def sweep(config: Path, out: Path, executor: Any = None) -> Sweep:
    return Sweep([parse_param(p) for p in PARAMS], config_path=config, output_dir=out, plot=False, executor=executor)


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "summary.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def report(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "benchmark_report.json").read_text(encoding="utf-8"))


def attempts(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / ATTEMPTS_FILE).read_text(encoding="utf-8").splitlines()]


def window_s(run: dict[str, Any]) -> float:
    """The measured windows' total duration (s), from the GPU readings' bounds."""
    return sum(float(r["end_s"]) - float(r["start_s"]) for r in run["energy"]["readings"])


def power_w(reading: dict[str, Any]) -> float:
    return float(reading["energy_j"]) / (float(reading["end_s"]) - float(reading["start_s"]))


def test_a_ray_sweep_gives_the_local_summary_and_retries_a_killed_worker(
    cluster: None, server: FakeOpenAIServer, armed: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, server)
    with FakeNvml([FakeGpu(power=POWER_W, uuid=uuid) for uuid in UUIDS]):
        local = sweep(config, tmp_path / "local").run()
    armed.write_text("", encoding="utf-8")
    events: list[tuple[str, int]] = []
    on_ray = sweep(config, tmp_path / "ray", RayExecutor())
    outcome = on_ray.run(on_event=lambda event: events.append((event.kind, event.point.index)))

    # The summary: same points, settings, statuses and counts; run directories named alike in each sweep directory.
    exact = ["point", "name", "scenario.num_samples", "backend.concurrency", "status", "repetitions"]
    exact += ["successful_prompts", "energy_sources"]
    local_rows, ray_rows = rows(tmp_path / "local"), rows(tmp_path / "ray")
    assert len(ray_rows) == 6 and list(ray_rows[0]) == list(local_rows[0])
    assert [{k: r[k] for k in exact} for r in ray_rows] == [{k: r[k] for k in exact} for r in local_rows]
    assert {r["status"] for r in ray_rows} == {"completed"}
    assert [Path(r["run_dir"]) for r in ray_rows] == [tmp_path / "ray" / r["name"] for r in ray_rows]
    assert outcome.all_completed and local.all_completed
    assert sorted(index for kind, index in events if kind == "start") == [1, 2, 3, 4, 5, 6]
    assert sorted(index for kind, index in events if kind == "done") == [1, 2, 3, 4, 5, 6]

    retried = []
    for local_point, ray_point in zip(local.points, outcome.points, strict=True):
        mine, theirs = report(local_point.run_dir), report(ray_point.run_dir)
        # Token counts are the workload's: exactly equal.
        for key in ("successful_prompts", "total_completion_tokens", "total_prompt_tokens"):
            assert theirs["summary"][key] == mine["summary"][key]
        assert theirs["summary"]["total_completion_tokens"] == MAX_NEW_TOKENS * int(ray_point.point.settings[0][1])
        # The simulated meter is exact: every window's energy is 100 W times its duration (1 mJ counter steps),
        # so J/token differs between the two runs exactly as far as the windows' durations do (on a loaded host a
        # cold worker's window can last several times longer: that is timing, not a metering difference).
        for reading in [*mine["energy"]["readings"], *theirs["energy"]["readings"]]:
            assert power_w(reading) == pytest.approx(POWER_W, rel=0.01)
        ratio = theirs["energy"]["joules_per_output_token"] / mine["energy"]["joules_per_output_token"]
        assert ratio == pytest.approx(window_s(theirs) / window_s(mine), rel=0.01)
        # Each Ray point metered the GPU Ray gave it (CUDA_VISIBLE_DEVICES), the local one NVML's GPU 0.
        record = attempts(ray_point.run_dir)
        assert [gpu["uuid"] for gpu in mine["energy"]["gpus"]] == [UUIDS[0]]
        assert record[-1]["visible_devices"]["CUDA_VISIBLE_DEVICES"] == record[-1]["gpu_ids"][0]
        assert [gpu["uuid"] for gpu in theirs["energy"]["gpus"]] == [UUIDS[int(record[-1]["gpu_ids"][0])]]
        if len(record) > 1:
            retried.append((ray_point, record))

    # One worker was killed mid-point: its point ran again, on a new worker, and completed.
    assert (armed.parent / "armed.fired").is_file() and not armed.exists()
    assert len(retried) == 1, retried
    point, record = retried[0]
    killed_pid = int((armed.parent / "armed.fired").read_text(encoding="utf-8"))
    assert [r["attempt"] for r in record] == [1, 2]
    assert record[0]["pid"] == killed_pid != record[1]["pid"]
    assert point.status == "completed" and "ran 2 times on Ray" in point.message
    manifest = json.loads((tmp_path / "ray" / "sweep.json").read_text(encoding="utf-8"))
    assert "ran 2 times on Ray" in manifest["points"][point.point.index - 1]["message"]

    # Resume: the same sweep again runs nothing; a point whose report is gone runs alone.
    (outcome.points[2].run_dir / "benchmark_report.json").unlink()
    events.clear()
    again = sweep(config, tmp_path / "ray", RayExecutor()).run(
        on_event=lambda event: events.append((event.kind, event.point.index))
    )
    assert [index for kind, index in events if kind == "skip"] == [1, 2, 4, 5, 6]
    assert [index for kind, index in events if kind in ("start", "done")] == [3, 3]
    assert again.all_completed
    assert [r["status"] for r in rows(tmp_path / "ray")] == ["completed"] * 6


def test_points_never_share_a_gpu(cluster: None, server: FakeOpenAIServer, tmp_path: Path) -> None:
    """Two GPUs per point on three GPUs: one point at a time, each holding two distinct GPUs."""
    config = write_config(tmp_path, server)
    out = tmp_path / "two"
    two = Sweep(
        [parse_param("scenario.num_samples=2,3")],
        config_path=config,
        output_dir=out,
        overrides=["backend.device_ids=[0,1]"],
        plot=False,
        executor=RayExecutor(),
    )
    assert [RayExecutor().resources(two, point)["num_gpus"] for point in two.points] == [2, 2]
    outcome = two.run()
    assert outcome.all_completed
    spans = []
    for point in outcome.points:
        record = attempts(point.run_dir)[-1]
        assert len(set(record["gpu_ids"])) == 2
        metered = sorted(gpu["uuid"] for gpu in report(point.run_dir)["energy"]["gpus"])
        assert metered == sorted(UUIDS[int(i)] for i in record["gpu_ids"])
        began = datetime.fromisoformat(record["started_at"]).timestamp()
        spans.append((began, (point.run_dir / "benchmark_report.json").stat().st_mtime))
    spans.sort()
    assert spans[0][1] <= spans[1][0]  # 2 + 2 > 3 GPUs: the second point began after the first had finished

    # A point asking more GPUs than the cluster has would wait for ever: refused before anything is submitted.
    four = Sweep(
        [parse_param("scenario.num_samples=2,3")],
        config_path=config,
        output_dir=tmp_path / "four",
        overrides=["backend.device_ids=[0,1,2,3]"],
        plot=False,
        executor=RayExecutor(),
    )
    with pytest.raises(ConfigError, match=r"sweep point 1 \(num_samples=2\) requests 4 GPU on Ray; the cluster has 3"):
        four.run()
    assert not list((tmp_path / "four").glob("*/" + ATTEMPTS_FILE))


def test_an_interrupt_cancels_the_ray_tasks_and_the_sweep_resumes(
    cluster: None, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    """Ctrl-C (a KeyboardInterrupt in the driver) as the first point finishes: the tasks still out are cancelled, the
    summary of what finished is written, and the same sweep again runs only the points not completed."""
    config = write_config(tmp_path, server)
    out = tmp_path / "stopped"
    first: list[int] = []

    def stop_at_first_done(event: Any) -> None:
        if event.kind == "done":
            first.append(event.point.index)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(config, out, RayExecutor()).run(on_event=stop_at_first_done)
    statuses = {int(row["point"]): row["status"] for row in rows(out)}
    assert statuses[first[0]] == "completed"
    assert set(statuses) == set(range(1, 7))
    assert set(statuses.values()) <= {"completed", "interrupted", "not run"}
    assert "interrupted" in statuses.values() or "not run" in statuses.values()

    events: list[tuple[str, int]] = []
    again = sweep(config, out, RayExecutor()).run(on_event=lambda e: events.append((e.kind, e.point.index)))
    assert again.all_completed
    skipped = {index for kind, index in events if kind == "skip"}
    assert first[0] in skipped
    assert skipped | {index for kind, index in events if kind == "done"} == set(range(1, 7))


def test_the_cli_runs_a_sweep_on_ray(cluster: None, server: FakeOpenAIServer, tmp_path: Path) -> None:
    """`sweep --executor ray` through the command line (in this process: the module's cluster is used)."""
    config = write_config(tmp_path, server)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        main,
        ["sweep", "--executor", "ray", "--config", str(config), "--param", "backend.concurrency=1,2", "--no-plot",
         "--output-dir", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"sweep: 2 points in {out} (on Ray, local instance)" in result.stderr
    assert "sweep: point 2/2 [concurrency=2] completed in" in result.stderr
    assert "| concurrency | status | J / output token |" in result.stdout
    assert [row["status"] for row in rows(out)] == ["completed", "completed"]
    assert all(len(attempts(out / f"concurrency-{n}")) == 1 for n in (1, 2))


def test_cli_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    with socket_closed_port() as port:
        done = subprocess.run(
            [*CLI, "sweep", "--config-name", "quickstart", "--param", "scenario.num_samples=1,2", "--no-plot",
             "--output-dir", str(tmp_path / "s"), "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: --ray-address 127.0.0.1:{port}: cannot reach")
    assert not list(tmp_path.glob("**/benchmark_report.json"))  # validated, then stopped before any point ran

    no_ray = "import sys; sys.modules['ray'] = None; from ai_energy_benchmarks.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", no_ray, "sweep", "--config-name", "quickstart", "--param", "scenario.num_samples=1,2",
         "--executor", "ray", "--no-plot"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: --executor ray needs Ray, which is not installed (import of ray halted; None in sys.modules): "
        "pip install 'ai-energy-benchmarks[ray]'"
    )

    done = subprocess.run(
        [*CLI, "sweep", "--config-name", "quickstart", "--param", "scenario.num_samples=1,2", "--no-plot",
         "--ray-address", "auto"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip() == "error: --ray-address: only with --executor ray"


class socket_closed_port:
    """A local TCP port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None
