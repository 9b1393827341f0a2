"""`report` and `compare` on real runs of the packaged tiny model (offline, energy metered), and the page in Chromium.

The runs are real benchmarks with real CodeCarbon; one more runs against the simulated NVML GPU so that the
report shows a measured GPU beside estimated CPU and RAM, and a power timeline. The HTML page is opened in headless
Chromium (Debian's ``chromium`` package, which ``.ci/run`` installs; without it the test is skipped, or fails when
``AIEB_REQUIRE_CHROMIUM=1``): a screenshot must show the figures, and the page's DOM must hold every figure decoded
at its size.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from repo_paths import REPO_ROOT
from welch_reference import EXAMPLE_1, EXAMPLE_2, mean_std, welch_by_hand

from ai_energy_benchmarks.runner import create_benchmark

ROOT = REPO_ROOT
CLI = [sys.executable, "-m", "ai_energy_benchmarks"]
CHROMIUM = Path("/usr/bin/chromium")
NEW_TOKENS = 8
SAMPLES = 12


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def quick_run(out: Path, *overrides: str) -> dict[str, Any]:
    """A real benchmark of the packaged quickstart, shortened, with CodeCarbon metering."""
    runner = create_benchmark(
        config_name="quickstart",
        overrides=[
            f"output_dir={out}",
            f"reporter.output_file={out / 'results.csv'}",
            f"scenario.num_samples={SAMPLES}",
            f"scenario.generate_kwargs.max_new_tokens={NEW_TOKENS}",
            f"scenario.generate_kwargs.min_new_tokens={NEW_TOKENS}",
            "scenario.repetitions=3",
            "scenario.warmup_runs=1",
            *overrides,
        ],
    )
    return runner.run()


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Batch size 1, three repetitions, an idle baseline: every figure but the power timeline has data."""
    out = tmp_path_factory.mktemp("run") / "bs1"
    assert quick_run(out, "metrics.idle_seconds=0.5")["status"] == "completed"
    return out


@pytest.fixture(scope="module")
def run_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same workload as run_a with batch size 4."""
    out = tmp_path_factory.mktemp("run") / "bs4"
    assert quick_run(out, "scenario.input_shapes.batch_size=4")["status"] == "completed"
    return out


@pytest.fixture(scope="module")
def run_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A different workload: half the output length."""
    out = tmp_path_factory.mktemp("run") / "short"
    result = quick_run(
        out,
        f"scenario.generate_kwargs.max_new_tokens={NEW_TOKENS // 2}",
        f"scenario.generate_kwargs.min_new_tokens={NEW_TOKENS // 2}",
        "metrics.enabled=false",
    )
    assert result["status"] == "completed"
    return out


NVML_RUN = textwrap.dedent(
    """
    import sys
    from ai_energy_benchmarks.testing.fake_nvml import FakeGpu, FakeNvml, PiecewiseLinearTrace
    from ai_energy_benchmarks.testing.sse_server import FakeOpenAIServer

    out = sys.argv[1]
    # A triangle wave between 100 W and 200 W, period 1 s, for ten minutes.
    wave = PiecewiseLinearTrace([(i * 0.5, 100.0 if i % 2 else 200.0) for i in range(1200)])
    # A server on this host running on (simulated) GPU 0: its GPU is metered as the server's.
    with FakeNvml([FakeGpu(power=wave)]), FakeOpenAIServer(models=["fake-model"], token_delay_s=0.005) as server:
        from ai_energy_benchmarks.config.schema import BenchmarkConfig
        from ai_energy_benchmarks.runner import BenchmarkRunner

        config = BenchmarkConfig.model_validate({
            "name": "nvml-run",
            "output_dir": out,
            "backend": {"type": "vllm", "model": "fake-model", "endpoint": server.url + "/v1",
                        "device": "cuda", "device_ids": [0], "concurrency": 2},
            "scenario": {"num_samples": 8, "generate_kwargs": {"max_new_tokens": 8, "min_new_tokens": 8},
                         "repetitions": 2},
            "metrics": {"type": ["nvml", "codecarbon"]},
            "reporter": {"output_file": f"{out}/results.csv"},
            "steady_hardware": {"enabled": False},
        })
        result = BenchmarkRunner(config).run()
    print(result["energy"]["sources"]["gpu"])
    """
)


@pytest.fixture(scope="module")
def nvml_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run metered by the NVML meter on the simulated GPU (measured GPU energy, a power timeline) and CodeCarbon."""
    out = tmp_path_factory.mktemp("run") / "nvml"
    done = subprocess.run(
        [sys.executable, "-c", NVML_RUN, str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "measured:nvml-energy-counter"
    assert (out / "timeline.csv").is_file()
    return out


def load(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "benchmark_report.json").read_text(encoding="utf-8"))


# -- report -----------------------------------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk, read independently of the code under test."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def report_a(run_a: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    pytest.importorskip("matplotlib", reason="report needs the [report] extra: pip install -e '.[report]'")
    done = run_cli("report", str(run_a))
    assert done.returncode == 0, done.stderr
    return run_a / "report", done


def test_report_writes_figures_of_the_expected_size(report_a: tuple[Path, Any]) -> None:
    from PIL import Image

    from ai_energy_benchmarks.reporting.plots import FIGURE_SIZES_PX

    out, done = report_a
    expected = {"energy_breakdown", "latency_cdf", "repetitions"}
    written = {p.stem for p in out.glob("*.png")}
    assert written == expected  # no timeline.csv without the NVML meter: no power figure
    for name in expected:
        path = out / f"{name}.png"
        assert f"figure: {path}" in done.stdout
        assert png_size(path) == FIGURE_SIZES_PX[name]
        with Image.open(path) as image:
            image.verify()  # a complete, uncorrupted PNG
        with Image.open(path) as image:
            assert image.size == FIGURE_SIZES_PX[name]
            extrema = image.convert("L").getextrema()
            assert extrema[1] - extrema[0] > 100, f"{name}.png is blank"
    assert f"report: {out / 'report.html'}" in done.stdout
    assert "power_timeline" in done.stderr and "timeline.csv" in done.stderr


def test_report_page_is_one_self_contained_file(report_a: tuple[Path, Any], run_a: Path) -> None:
    out, _ = report_a
    page = (out / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"[^>]*data-figure="([a-z_]+)"', page)
    assert {name for _, name in images} == {"energy_breakdown", "latency_cdf", "repetitions"}
    for data, name in images:
        assert base64.b64decode(data) == (out / f"{name}.png").read_bytes()
    # Nothing is fetched from anywhere: no external URL, stylesheet, script, font or frame.
    assert not re.search(r"https?://", page)
    assert not re.search(r"""\b(?:src|href)\s*=\s*(?!["']?(?:data:|#))""", page)
    for needle in ("<link", "<script", "@import", "url(", "<iframe", "<object"):
        assert needle not in page
    # The page states the run's own figures, their sources, the configuration and the environment.
    report = load(run_a)
    from ai_energy_benchmarks.reporting.html import num

    assert num(report["energy"]["total_energy_wh"], 4, "Wh") in page
    assert num(report["energy"]["joules_per_output_token"], 4, "J") in page
    assert "estimated:codecarbon-ram" in page and "not metered" in page
    assert report["provenance"]["config_sha256"] in page
    assert report["dataset"]["prompts_sha256"] in page
    assert report["environment"]["python_version"] in page
    assert "95% CI" in page and "Idle baseline" in page


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def require_chromium() -> None:
    """Skip (or, with AIEB_REQUIRE_CHROMIUM=1 as CI sets, fail) when Debian's chromium is not installed."""
    if CHROMIUM.exists():
        return
    message = "/usr/bin/chromium missing: install Debian's chromium (apt-get install chromium)"
    if os.environ.get("AIEB_REQUIRE_CHROMIUM") == "1":
        pytest.fail(message)
    pytest.skip(message)


def test_report_page_renders_in_chromium(report_a: tuple[Path, Any], tmp_path: Path) -> None:
    require_chromium()
    import numpy
    from PIL import Image, ImageStat

    from ai_energy_benchmarks.reporting.plots import DEVICE_COLOURS, FIGURE_SIZES_PX

    out, _ = report_a
    page = out / "report.html"
    shot = tmp_path / "shot.png"
    width, height = 1280, 2600
    done = chromium(f"--screenshot={shot}", f"--window-size={width},{height}", page.as_uri(), profile=tmp_path / "p1")
    assert shot.is_file(), done.stderr
    with Image.open(shot) as image:
        assert image.size == (width, height)
        rgb = image.convert("RGB")
    # Not blank: the pixels vary a lot.
    assert max(ImageStat.Stat(rgb.convert("L")).stddev) > 20
    # The figures were painted: many pixels of the CPU and RAM bars' colours (the estimates' hatching keeps part).
    pixels = numpy.asarray(rgb, dtype=numpy.int16)
    counts = {}
    for device in ("cpu", "ram"):
        target = numpy.array([int(DEVICE_COLOURS[device][i : i + 2], 16) for i in (1, 3, 5)], dtype=numpy.int16)
        counts[device] = int((numpy.abs(pixels - target).max(axis=2) <= 12).sum())
    assert min(counts.values()) > 2000, counts

    # Every figure in the DOM is decoded at its size (a probe script, only in a copy of the page).
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-images', JSON.stringify("
        "Array.from(document.images).map(i => [i.dataset.figure, i.complete, i.naturalWidth, i.naturalHeight]))));"
        "</script>"
    )
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    dom = chromium("--dump-dom", "--virtual-time-budget=5000", probe.as_uri(), profile=tmp_path / "p2")
    match = re.search(r'data-images="([^"]*)"', dom.stdout)
    assert match, dom.stderr[-2000:]
    decoded = json.loads(match.group(1).replace("&quot;", '"'))
    assert {name: (complete, (w, h)) for name, complete, w, h in decoded} == {
        name: (True, FIGURE_SIZES_PX[name]) for name in ("energy_breakdown", "latency_cdf", "repetitions")
    }
    assert "Key figures" in dom.stdout and "Environment" in dom.stdout


def test_report_of_an_nvml_run_has_the_power_timeline_and_tells_measured_from_estimated(
    nvml_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from ai_energy_benchmarks.reporting import plots
    from ai_energy_benchmarks.reporting.html import write_report

    drawn: dict[str, Any] = {}
    real_save = plots._save

    def keep(figure: Any, path: Path) -> Path:
        drawn[path.stem] = figure
        return real_save(figure, path)

    monkeypatch.setattr(plots, "_save", keep)
    files = write_report(nvml_run, tmp_path / "out")
    assert set(files.figures) == {"energy_breakdown", "power_timeline", "latency_cdf", "repetitions"}
    assert files.skipped == {}
    for name, path in files.figures.items():
        assert png_size(path) == plots.FIGURE_SIZES_PX[name]

    # Measured GPU energy is drawn solid, CodeCarbon's CPU and RAM estimates hatched, and the legend says so.
    by_device = drawn["energy_breakdown"].axes[0]
    bars = {tick.get_text(): patch for tick, patch in zip(by_device.get_xticklabels(), by_device.patches, strict=False)}
    assert not bars["GPU"].get_hatch()
    assert bars["CPU"].get_hatch() == plots.ESTIMATE_HATCH and bars["RAM"].get_hatch() == plots.ESTIMATE_HATCH
    legend = [text.get_text() for text in by_device.get_legend().get_texts()]
    assert {"GPU (measured)", "CPU (estimated)", "RAM (estimated)", "hatched = estimated"} <= set(legend)
    report = load(nvml_run)
    assert bars["GPU"].get_height() == pytest.approx(report["energy"]["gpu_energy_wh"])

    # The timeline follows the simulated GPU's power, a triangle wave between 100 W and 200 W.
    power = [float(v) for v in drawn["power_timeline"].axes[0].get_lines()[0].get_ydata()]
    assert len(power) > 20 and 100.0 <= min(power) < 130.0 and 170.0 < max(power) <= 200.0
    page = files.html.read_text(encoding="utf-8")
    assert 'data-figure="power_timeline"' in page
    assert '<span class="badge measured" title="measured:nvml-energy-counter">' in page
    # The HTTP steady state: one row per window and device, each with its energy, source and kind.
    steady = report["energy"]["steady_state"]
    table = page.split('<table class="steady-state">')[1].split("</table>")[0]
    reached = [w for w in steady["windows"] if w["reached"]]
    not_reached = len(steady["windows"]) - len(reached)
    assert reached and table.count("<tr>") == 1 + sum(len(w["devices"]) for w in reached) + not_reached
    for window in reached:
        for device, block in window["devices"].items():
            kind = "measured" if block["source"].startswith("measured:") else "estimated"
            assert f'<span class="badge {kind}" title="{block["source"]}">' in table, (window["label"], device)
    assert "Steady state (all concurrency slots busy)" in page


def test_missing_matplotlib_names_the_extra(run_a: Path, tmp_path: Path) -> None:
    """Without matplotlib, report and sweep say how to install it and exit 2; compare needs no plotting."""
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if not installed\n"
        "from ai_energy_benchmarks.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    for args in (
        ["report", str(run_a)],
        ["sweep", "--config-name", "quickstart", "--param", "scenario.input_shapes.batch_size=1,2"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 2, done.stderr
        assert "pip install 'ai-energy-benchmarks[report]'" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "benchmark_output").exists()  # the sweep refused before running anything
    done = subprocess.run(
        [sys.executable, "-c", code, "compare", str(run_a), str(run_a)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_new_commands_keep_help_light_and_run_stays_the_default() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ai_energy_benchmarks.cli import main\n"
        "for args in (['--help'], ['report', '--help'], ['compare', '--help'], ['sweep', '--help']):\n"
        "    result = CliRunner().invoke(main, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "result = CliRunner().invoke(main, ['--config', 'no-such-file.yaml'])\n"
        "assert result.exit_code == 2 and 'config file not found' in result.output, result.output\n"
        "heavy = ('torch', 'transformers', 'datasets', 'codecarbon', 'matplotlib', 'numpy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
    help_text = run_cli("--help").stdout
    for command in ("report", "compare", "sweep", "run"):
        assert command in help_text


# -- compare ----------------------------------------------------------------------------------------------------------


def expected_figures(report: dict[str, Any]) -> dict[str, tuple[float | None, tuple[float, float] | None]]:
    """Each compared figure and its 95% interval, computed here from the report's own numbers."""
    reps = len(report["repetitions"])
    stats = report["repetition_statistics"]
    energy, summary = report["energy"], report["summary"]

    def interval(block: dict[str, Any] | None, factor: float = 1.0) -> tuple[float, float] | None:
        if not block or block.get("ci95_low") is None:
            return None
        return (block["ci95_low"] * factor, block["ci95_high"] * factor)

    per_1000 = 1000.0 / (summary["successful_prompts"] / reps)
    return {
        "energy_per_pass_wh": (energy["total_energy_wh"] / reps, interval(stats["total_energy_wh"])),
        "wh_per_1000_queries": (energy["total_wh_per_1000_queries"], interval(stats["total_energy_wh"], per_1000)),
        "joules_per_output_token": (energy["joules_per_output_token"], interval(stats["joules_per_output_token"])),
        "total_energy_wh": (energy["total_energy_wh"], None),
        "emissions_g_per_pass": (energy["emissions_g_co2eq"] / reps, None),
        "output_tokens_per_second": (
            summary["throughput_output_tokens_per_second"],
            interval(stats["output_tokens_per_second"]),
        ),
        "prompts_per_second": (summary["successful_prompts"] / summary["total_duration_seconds"], None),
        "latency_mean_s": (report["latency"]["latency_s"]["mean"], interval(report["latency"]["latency_s"])),
        "latency_p50_s": (report["latency"]["latency_s"]["p50"], None),
        "latency_p99_s": (report["latency"]["latency_s"]["p99"], None),
        "ttft_mean_s": (report["latency"]["ttft_s"]["mean"], interval(report["latency"]["ttft_s"])),
        "ttft_p50_s": (report["latency"]["ttft_s"]["p50"], None),
        "ttft_p99_s": (report["latency"]["ttft_s"]["p99"], None),
    }


def expected_samples(report: dict[str, Any]) -> dict[str, tuple[float, float, int] | None]:
    """(mean, std, count) of each compared figure's samples where the report has them (None otherwise)."""
    reps = len(report["repetitions"])
    stats = report["repetition_statistics"]
    per_1000 = 1000.0 / (report["summary"]["successful_prompts"] / reps)

    def sample(block: dict[str, Any] | None, factor: float = 1.0) -> tuple[float, float, int] | None:
        if not block or block.get("std") is None or block["count"] < 2:
            return None
        return (block["mean"] * factor, block["std"] * factor, block["count"])

    samples = dict.fromkeys(expected_figures(report))
    samples["energy_per_pass_wh"] = sample(stats["total_energy_wh"])
    samples["wh_per_1000_queries"] = sample(stats["total_energy_wh"], per_1000)
    samples["joules_per_output_token"] = sample(stats["joules_per_output_token"])
    samples["output_tokens_per_second"] = sample(stats["output_tokens_per_second"])
    samples["latency_mean_s"] = sample(report["latency"]["latency_s"])
    samples["ttft_mean_s"] = sample(report["latency"]["ttft_s"])
    return samples


def test_compare_figures_and_ratios_match_the_reports(run_a: Path, run_b: Path, tmp_path: Path) -> None:
    md, csv_path = tmp_path / "cmp.md", tmp_path / "cmp.csv"
    done = run_cli("compare", str(run_a), str(run_b), "--markdown", str(md), "--csv", str(csv_path))
    assert done.returncode == 0, done.stderr
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    got: dict[tuple[str, str], dict[str, str]] = {(row["metric"], row["run"]): row for row in rows}
    reports = {"bs1": load(run_a), "bs4": load(run_b)}
    expected = {label: expected_figures(report) for label, report in reports.items()}
    # No GPU was metered: "GPU energy per pass" is no figure at all, not a zero.
    assert {metric for metric, _ in got} == set(expected["bs1"])
    significant = tested = 0
    for metric, (base_value, _) in expected["bs1"].items():
        for label in ("bs1", "bs4"):
            value, interval = expected[label][metric]
            row = got[(metric, label)]
            assert float(row["value"]) == pytest.approx(value, rel=1e-12), (metric, label)
            assert row["report"] == str(run_a if label == "bs1" else run_b) + "/benchmark_report.json"
            if interval is None:
                assert row["ci95_low"] == row["ci95_high"] == ""
            else:
                assert (float(row["ci95_low"]), float(row["ci95_high"])) == pytest.approx(interval, rel=1e-12)
        row = got[(metric, "bs4")]
        bs4_value, _ = expected["bs4"][metric]
        assert float(row["ratio_to_first"]) == pytest.approx(bs4_value / base_value, rel=1e-12)
        assert got[(metric, "bs1")]["ratio_to_first"] == ""
        base_sample, bs4_sample = expected_samples(reports["bs1"])[metric], expected_samples(reports["bs4"])[metric]
        if base_sample is None or bs4_sample is None:
            assert row["p_value"] == row["significant"] == row["test"] == ""
            continue
        t, dof, p = welch_by_hand(*bs4_sample, *base_sample)
        assert float(row["t"]) == pytest.approx(t, rel=1e-9), metric
        assert float(row["dof"]) == pytest.approx(dof, rel=1e-9), metric
        assert float(row["p_value"]) == pytest.approx(p, rel=1e-6, abs=1e-12), metric
        assert row["significant"] == str(p < 0.05).lower(), metric
        assert row["test"].startswith("Welch's t-test")
        significant += p < 0.05
        tested += 1
    # The terminal table and the Markdown say the same: one line per figure, ratios, p-values, the * marks and the
    # legend, which names the test.
    table_lines = [line for line in done.stdout.splitlines() if " ×" in line]
    assert len(table_lines) == len(expected["bs1"])
    assert sum(line.endswith(" *") for line in table_lines) == significant
    assert sum(" p=" in line or " p<" in line for line in table_lines) == tested
    assert "Welch's t-test (unequal variances, Welch-Satterthwaite df)" in done.stdout
    ratio = expected["bs4"]["joules_per_output_token"][0] / expected["bs1"]["joules_per_output_token"][0]
    assert f"×{float(f'{ratio:.3g}'):g}" in done.stdout
    assert "ratios (×) are to the first run, bs1" in done.stdout
    markdown = md.read_text(encoding="utf-8")
    assert markdown.startswith("| figure | unit | bs1 | bs4 |")
    assert markdown.count("\n| ") == len(got) // 2
    assert "energy per output token" in markdown


def report_copy(source: Path, target: Path, change: Any) -> Path:
    """A copy of a run's report, changed by ``change(report)``."""
    target.mkdir(parents=True)
    report = load(source)
    change(report)
    (target / "benchmark_report.json").write_text(json.dumps(report), encoding="utf-8")
    return target


def test_compare_tests_differences_with_welch_and_prints_the_p_value(run_a: Path, tmp_path: Path) -> None:
    """Textbook samples as the per-repetition J/token of two runs: Welch's t, df and p as computed by hand (and as
    published, rounded); example 1's 95% intervals overlap, yet the difference is significant (p = 0.021)."""
    from ai_energy_benchmarks.reporting.compare import compare_runs, format_csv, format_markdown, format_text
    from ai_energy_benchmarks.results.stats import describe

    def with_samples(values: list[float]) -> Any:
        def change(report: dict[str, Any]) -> None:
            report["repetition_statistics"]["joules_per_output_token"] = describe(values)
            report["energy"]["joules_per_output_token"] = sum(values) / len(values)

        return change

    for name, (first, second, published) in (("one", EXAMPLE_1), ("two", EXAMPLE_2)):
        base = report_copy(run_a, tmp_path / name / "base", with_samples(first))
        other = report_copy(run_a, tmp_path / name / "other", with_samples(second))
        comparison = compare_runs([base, other])
        cell = next(r for r in comparison.rows if r.metric.key == "joules_per_output_token").cells[1]
        t, dof, p = welch_by_hand(*mean_std(second), len(second), *mean_std(first), len(first))
        assert cell.welch is not None
        assert (cell.welch.t, cell.welch.dof) == (pytest.approx(t, rel=1e-12), pytest.approx(dof, rel=1e-12))
        assert cell.p_value == pytest.approx(p, rel=1e-6)
        published_t, published_dof, published_p = published
        assert round(-cell.welch.t, 2) == published_t and round(cell.welch.dof, 2) == pytest.approx(published_dof)
        assert round(p, 3) == published_p
        assert cell.significant is (published_p < 0.05)
        line = next(x for x in format_text(comparison).splitlines() if x.startswith("energy per output token"))
        shown = f"p={float(f'{p:.2g}'):g}"
        assert line.endswith(shown + (" *" if published_p < 0.05 else "")), line
        assert shown in format_markdown(comparison)
        rows = list(csv.DictReader(io.StringIO(format_csv(comparison))))
        row = next(r for r in rows if r["metric"] == "joules_per_output_token" and r["run"] == "other")
        assert float(row["p_value"]) == pytest.approx(p, rel=1e-6)
        if name == "one":  # the old rule (non-overlapping intervals) missed this difference
            base_cell = next(r for r in comparison.rows if r.metric.key == "joules_per_output_token").cells[0]
            assert cell.interval is not None and base_cell.interval is not None
            assert cell.interval[0] <= base_cell.interval[1]


def test_compare_refuses_different_workloads_unless_forced(run_a: Path, run_c: Path, tmp_path: Path) -> None:
    done = run_cli("compare", str(run_a), str(run_c))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the runs measured different workloads")
    assert f"max_new_tokens {NEW_TOKENS // 2} where bs1 has {NEW_TOKENS}" in lines[0]
    assert "--force" in lines[0] and done.stdout == ""

    forced = run_cli("compare", str(run_a), str(run_c), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "compared with --force although the workloads differ" in forced.stdout

    other_prompts = report_copy(
        run_a, tmp_path / "other", lambda r: r["dataset"].update(prompts_sha256="0" * 64)
    )  # same lengths, other prompts
    done = run_cli("compare", str(run_a), str(other_prompts))
    assert done.returncode == 2 and "prompts_sha256 000000000000 where bs1 has" in done.stderr

    for args, message in (
        ([str(run_a), str(tmp_path / "nope")], "no such run directory"),
        ([str(run_a), str(tmp_path)], "not a run directory"),
        ([str(run_a)], "at least two run directories"),
    ):
        done = run_cli("compare", *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_report_of_a_run_without_energy_or_repetition_statistics(run_c: Path, tmp_path: Path) -> None:
    """metrics.enabled=false: the page still renders, and says energy was not measured."""
    pytest.importorskip("matplotlib")
    from ai_energy_benchmarks.reporting.html import write_report

    files = write_report(run_c, tmp_path / "r")
    page = files.html.read_text(encoding="utf-8")
    assert "not measured (metrics.enabled=false)" in page
    assert set(files.figures) == {"energy_breakdown", "latency_cdf", "repetitions"}


def test_report_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    for target, message in ((tmp_path / "missing", "no such run directory"), (tmp_path, "not a run directory")):
        done = run_cli("report", str(target))
        assert done.returncode == 2 and message in done.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "benchmark_report.json").write_text("{not json", encoding="utf-8")
    done = run_cli("report", str(bad))
    assert done.returncode == 2 and "not valid JSON" in done.stderr


def test_report_survives_a_copy_to_another_place(report_a: tuple[Path, Any], tmp_path: Path) -> None:
    """The page is one file: copied alone, it still holds every figure."""
    out, _ = report_a
    alone = tmp_path / "elsewhere.html"
    shutil.copy(out / "report.html", alone)
    page = alone.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 3
