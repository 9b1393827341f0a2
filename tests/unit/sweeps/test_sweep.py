"""`sweep`: the grid, real runs of the packaged tiny model (energy metered), interruption and resumption.

The interrupted sweep is driven by its own progress output: the test sends SIGINT as soon as stderr says the first
point completed (no sleeps), then reruns the same command and checks that only the second point runs.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ai_energy_benchmarks.exceptions import ConfigError
from ai_energy_benchmarks.reporting.plots import FIGURE_SIZES_PX, pareto_front
from ai_energy_benchmarks.sweeps import Sweep, SweepEvent, build_grid, parse_param

CLI = [sys.executable, "-m", "ai_energy_benchmarks"]
SLO_P99_S = 10.0

# Small, metered points: 6 prompts, 8 new tokens, 2 repetitions (so J/token has a confidence interval).
COMMON = [
    "scenario.num_samples=6",
    "scenario.generate_kwargs.max_new_tokens=8",
    "scenario.generate_kwargs.min_new_tokens=8",
    "scenario.repetitions=2",
    "scenario.warmup_runs=1",
]


# -- the grid ---------------------------------------------------------------------------------------------------------


def test_parse_param() -> None:
    param = parse_param("scenario.input_shapes.batch_size=1, 2,4")
    assert param.key == "scenario.input_shapes.batch_size" and param.values == ("1", "2", "4")
    assert parse_param("backend.request_rate=0.5,2").values == ("0.5", "2")
    for text, message in (
        ("batch_size", "expected KEY=V1,V2"),
        ("=1,2", "expected KEY=V1,V2"),
        ("scenario.x=", "at least one value"),
        ("scenario.x=1,,2", "no empty value"),
        ("scenario.x=1,2,1", "repeated: 1"),
        ("output_dir=a,b", "sets output_dir itself"),
        ("reporter.output_file=a,b", "sets reporter.output_file itself"),
        ("scenario x=1", "not a dotted config key"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_param(text)


def test_grid_is_the_cartesian_product_with_stable_names() -> None:
    grid = build_grid([parse_param("scenario.input_shapes.batch_size=1,2"), parse_param("backend.concurrency=4,8")])
    assert [p.overrides for p in grid] == [
        ["scenario.input_shapes.batch_size=1", "backend.concurrency=4"],
        ["scenario.input_shapes.batch_size=1", "backend.concurrency=8"],
        ["scenario.input_shapes.batch_size=2", "backend.concurrency=4"],
        ["scenario.input_shapes.batch_size=2", "backend.concurrency=8"],
    ]
    assert [p.index for p in grid] == [1, 2, 3, 4]
    assert grid[1].name == "batch_size-1__concurrency-8"
    assert grid[1].label == "batch_size=1, concurrency=8"
    # Two keys ending alike keep their full paths; unsafe characters are replaced; names stay distinct.
    same_end = build_grid([parse_param("backend.seed=1"), parse_param("scenario.seed=2")])
    assert same_end[0].name == "backend.seed-1__scenario.seed-2"
    clash = build_grid([parse_param("scenario.dataset_name=a/b,a_b")])
    assert len({p.name for p in clash}) == 2 and all(p.name.startswith("dataset_name-a_b-") for p in clash)
    with pytest.raises(ConfigError, match="given twice"):
        build_grid([parse_param("scenario.seed=1"), parse_param("scenario.seed=2")])
    with pytest.raises(ConfigError, match="at least one --param"):
        build_grid([])


def test_pareto_front() -> None:
    points = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0), (2.0, 3.0), (5.0, 1.0)]
    # (3, 4) is beaten by (2, 3); the second (2, 3) duplicates the first; (5, 1) is beaten by (4, 1).
    assert pareto_front(points) == [0, 1, 3]


# -- interrupted and resumed ------------------------------------------------------------------------------------------


def sweep_args(out: Path) -> list[str]:
    return [
        "sweep",
        "--config-name",
        "quickstart",
        "--param",
        "scenario.input_shapes.batch_size=1,2,4",
        "--output-dir",
        str(out),
        "--slo-p99-s",
        str(SLO_P99_S),
        *COMMON,
    ]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "benchmark_report.json").read_text(encoding="utf-8"))


def test_interrupted_sweep_resumes_and_completes(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [*CLI, *sweep_args(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    watchdog = threading.Timer(240, proc.kill)  # a safety net only: the test never waits on a clock
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("sweep: point 1/3 [batch_size=1] completed"):
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        returncode = proc.wait()
    finally:
        watchdog.cancel()
    first = "".join(lines) + rest
    assert returncode == 128 + signal.SIGINT, first
    assert "sweep: 3 points in" in first
    assert "sweep: point 1/3 [batch_size=1] running: 0 finished, 3 left; elapsed 0:00:" in first
    assert "1 finished, 2 left; elapsed" in first
    assert "run the same command again to resume" in first
    assert "interrupted by SIGINT" in first
    point1, point2, point3 = out / "batch_size-1", out / "batch_size-2", out / "batch_size-4"
    first_report = load(point1)
    assert first_report["status"] == "completed"
    # The second point was stopped: no report, or a partial one marked interrupted.
    if (point2 / "benchmark_report.json").exists():
        assert load(point2)["status"] == "interrupted"
    partial = read_csv(out / "summary.csv")
    assert [(row["point"], row["status"]) for row in partial] == [
        ("1", "completed"),
        ("2", "interrupted"),
        ("3", "not run"),
    ]
    assert not point3.exists()

    again = subprocess.run([*CLI, *sweep_args(out)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"sweep: point 1/3 [batch_size=1] skipped: already completed in {point1}" in again.stderr
    for index, size in ((2, 2), (3, 4)):
        assert f"sweep: point {index}/3 [batch_size={size}] running" in again.stderr
        assert f"sweep: point {index}/3 [batch_size={size}] completed in" in again.stderr
    assert " to go" in again.stderr  # an estimate of the time left once a point has run
    assert "3 finished, 0 left" in again.stderr
    assert load(point1)["timestamps"] == first_report["timestamps"]  # the finished point was not run again
    reports = [load(point1), load(point2), load(point3)]
    assert [r["status"] for r in reports] == ["completed"] * 3
    assert [r["config"]["batch_size"] for r in reports] == [1, 2, 4]

    # The summary holds each point's own figures; Pareto and SLO columns follow from them.
    rows = read_csv(out / "summary.csv")
    assert [row["scenario.input_shapes.batch_size"] for row in rows] == ["1", "2", "4"]
    for row, report in zip(rows, reports, strict=True):
        assert row["status"] == "completed"
        assert float(row["joules_per_output_token"]) == report["energy"]["joules_per_output_token"]
        assert float(row["latency_p50_s"]) == report["latency"]["latency_s"]["p50"]
        assert float(row["latency_p99_s"]) == report["latency"]["latency_s"]["p99"]
        ci = report["repetition_statistics"]["joules_per_output_token"]
        assert float(row["joules_per_output_token_ci95_low"]) == ci["ci95_low"]
        assert row["meets_slo"] == str(report["latency"]["latency_s"]["p99"] <= SLO_P99_S)
        assert row["energy_sources"] == "gpu=absent, cpu=estimated, ram=estimated"
    for column, latency in (("pareto_p50", "latency_p50_s"), ("pareto_p99", "latency_p99_s")):
        front = pareto_front([(float(r[latency]), float(r["joules_per_output_token"])) for r in rows])
        assert [row[column] for row in rows] == [str(i in front) for i in range(len(rows))]
    markdown = (out / "summary.md").read_text(encoding="utf-8")
    assert markdown == again.stdout.split("summary_csv:")[0].rstrip() + "\n"
    assert "| batch_size | status | J / output token |" in markdown
    best = min(rows, key=lambda r: float(r["joules_per_output_token"]))
    assert f"meeting p99 end-to-end latency ≤ {SLO_P99_S:g} s: **batch_size={best['name'].split('-')[1]}**" in markdown
    plot = out / "energy_vs_latency.png"
    with plot.open("rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    size = (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big"))
    assert size == FIGURE_SIZES_PX["sweep_energy_vs_latency"]
    manifest = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert [(p["name"], p["status"], p["ran_now"]) for p in manifest["points"]] == [
        ("batch_size-1", "completed", False),
        ("batch_size-2", "completed", True),
        ("batch_size-4", "completed", True),
    ]
    # Every point's CSV row went to one file in the sweep directory.
    assert [row["batch_size"] for row in read_csv(out / "benchmark_results.csv")][-3:] == ["1", "2", "4"]


# -- validation, changed configs and failures --------------------------------------------------------------------------


def test_every_point_is_validated_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = run_cli(
        "sweep", "--config-name", "quickstart", "--param", "scenario.input_shapes.batch_size=1,0",
        "--output-dir", str(out), "--no-plot",
    )  # fmt: skip
    assert done.returncode == 2
    assert "error: sweep point 2 (batch_size=0)" in done.stderr and "batch_size" in done.stderr
    assert not (out / "batch_size-1").exists()
    for args, message in (
        (["--param", "scenario.seed=1,2", "scenario.seed=3"], "both swept (--param) and overridden"),
        (["--param", "scenario.seed=1", "--slo-p99-s", "0"], "must be a positive number"),
        (["--param", "scenario.seed"], "expected KEY=V1,V2"),
        (["--param", "scenario.nope=1"], "scenario.nope"),
    ):
        done = run_cli("sweep", "--config-name", "quickstart", "--output-dir", str(out), "--no-plot", *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)


def test_a_point_rerun_when_its_configuration_changed(tmp_path: Path) -> None:
    """A completed point is skipped only when it ran with the configuration the sweep asks for now."""
    events: list[SweepEvent] = []

    def sweep(tokens: int) -> Sweep:
        return Sweep(
            [parse_param("scenario.input_shapes.batch_size=2")],
            config_name="quickstart",
            overrides=[
                "scenario.num_samples=4",
                f"scenario.generate_kwargs.max_new_tokens={tokens}",
                f"scenario.generate_kwargs.min_new_tokens={tokens}",
                "metrics.enabled=false",
            ],
            output_dir=tmp_path / "s",
            plot=False,
        )

    assert sweep(4).run(events.append).all_completed
    sweep(4).run(events.append)
    outcome = sweep(6).run(events.append)
    assert [(e.kind, e.message) for e in events] == [
        ("start", "not run yet"),
        ("done", ""),
        ("skip", f"already completed in {tmp_path / 's' / 'batch_size-2'}"),
        ("start", "the configuration changed since it ran"),
        ("done", ""),
    ]
    assert outcome.points[0].report is not None
    assert outcome.points[0].report.summary.total_completion_tokens == 4 * 6
    # The run it replaced was kept, not overwritten.
    assert len(list((tmp_path / "s" / "batch_size-2" / "previous_runs").iterdir())) == 1


def test_a_failing_point_does_not_stop_the_sweep(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Say something.\nSay something else.\n", encoding="utf-8")
    too_long = tmp_path / "too_long.txt"  # passes every check, fails when its second prompt meets the model
    too_long.write_text("Say something.\n" + "energy " * 900 + "\n", encoding="utf-8")
    done = run_cli(
        "sweep", "--config-name", "quickstart", "--output-dir", str(out), "--no-plot",
        "--param", f"scenario.dataset_name={too_long},{prompts}",
        "scenario.num_samples=2", "metrics.enabled=false",
        "scenario.generate_kwargs.max_new_tokens=4", "scenario.generate_kwargs.min_new_tokens=4",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "sweep: point 1/2 [dataset_name=" in done.stderr and "FAILED:" in done.stderr
    assert "sweep: point 2/2" in done.stderr and "completed in" in done.stderr
    assert "error: 1 point(s) did not complete" in done.stderr
    rows = read_csv(out / "summary.csv")
    assert [row["status"] for row in rows] == ["failed", "completed"]


# -- a generic parameter: concurrency on the HTTP backend --------------------------------------------------------------


def test_concurrency_sweep_on_the_http_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same machinery sweeps backend.concurrency against an OpenAI-compatible server (the local fake one)."""
    pytest.importorskip("matplotlib")
    from ai_energy_benchmarks.reporting import plots
    from ai_energy_benchmarks.reporting.html import write_report
    from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

    config = tmp_path / "http.yaml"
    with FakeOpenAIServer(models=["fake-model"], token_delay_s=0.002, first_token_delay_s=0.01) as server:
        config.write_text(
            "name: http-sweep\n"
            "backend:\n"
            "  type: vllm\n"
            "  model: fake-model\n"
            f"  endpoint: {server.url}/v1\n"
            "scenario:\n"
            "  dataset_name: packaged:quickstart\n"
            "  num_samples: 16\n"
            "  measure_prefill: false\n"
            "  warmup_runs: 0\n"
            "  generate_kwargs: {max_new_tokens: 8, min_new_tokens: 8}\n"
            "metrics:\n"
            "  enabled: false\n",
            encoding="utf-8",
        )
        sweep = Sweep(
            [parse_param("backend.concurrency=1,4")], config_path=config, output_dir=tmp_path / "s", slo_p99_s=60
        )
        outcome = sweep.run()
    assert outcome.all_completed
    reports = [point.report for point in outcome.points]
    assert all(report is not None for report in reports)
    assert [r.provenance["config"]["backend"]["concurrency"] for r in reports if r] == [1, 4]
    rows = read_csv(outcome.files["summary_csv"])
    assert float(rows[1]["prompts_per_second"]) > 1.5 * float(rows[0]["prompts_per_second"])
    assert [row["meets_slo"] for row in rows] == ["True", "True"]
    # A streaming run's report adds the inter-token latency distribution (from the records' chunk times).
    drawn: dict[str, Any] = {}
    real_save = plots._save
    monkeypatch.setattr(
        plots, "_save", lambda figure, path: drawn.setdefault(path.stem, figure) and real_save(figure, path)
    )
    files = write_report(outcome.points[1].run_dir)
    titles = [axes.get_title() for axes in drawn["latency_cdf"].axes]
    assert [title.split(" (n = ")[0] for title in titles] == [
        "Time to first token",
        "End-to-end latency",
        "Inter-token latency",
    ]
    requests = [json.loads(line) for line in (outcome.points[1].run_dir / "requests.jsonl").read_text().splitlines()]
    gaps = sum(len(r["chunk_times_s"]) - 1 for r in requests if r["phase"] == "generate" and r["error"] is None)
    assert titles[2] == f"Inter-token latency (n = {gaps})"
    page = files.html.read_text(encoding="utf-8")
    assert "Inter-token latency" in page and f"{gaps:,} gaps between streamed chunks" in page
