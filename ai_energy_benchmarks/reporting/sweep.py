"""Parameter sweeps: run a grid of configurations, each in its own run directory, resumably, and summarise it.

    sweep = Sweep(
        params=[parse_param("scenario.input_shapes.batch_size=1,2,4")],
        config_path="my.yaml",
        slo_p99_s=0.5,
    )
    outcome = sweep.run(on_event=print)

Every grid point is the base config with the point's ``key=value`` overrides (any dotted key the config accepts:
``scenario.input_shapes.batch_size`` on PyTorch, ``backend.concurrency`` or ``backend.request_rate`` on the HTTP
backend, ...). Its run directory is ``<sweep dir>/<point name>``. Before anything runs, every point's config is
validated, so a typo fails in seconds, not after hours. A point whose directory already holds a completed
``benchmark_report.json`` measured with the same configuration is skipped, so an interrupted sweep resumes where it
stopped when the same command is run again.

At the end the sweep writes ``summary.csv`` and ``summary.md`` (one row per point), ``sweep.json`` (the grid and
each point's status) and, with matplotlib, ``energy_vs_latency.png``: energy per output token against p50 and p99
end-to-end latency, with the Pareto front and the points meeting the latency SLOs marked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ai_energy_benchmarks.config.redact import redact_override, redact_text
from ai_energy_benchmarks.exceptions import BenchmarkError, ConfigError
from ai_energy_benchmarks.reporting import require_matplotlib
from ai_energy_benchmarks.reporting.runs import REPORT_FILE, dig, prompts_per_second, source_kind
from ai_energy_benchmarks.results.contract import reader_view
from ai_energy_benchmarks.results.writers import write_text_atomic

logger = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
MANIFEST = "sweep.json"
PLOT = "energy_vs_latency.png"
RESULTS_CSV = "benchmark_results.csv"

#: Config keys that say where a run writes, not what it measures: left out when deciding whether a finished
#: point still matches the sweep's configuration.
_LOCATION_KEYS = ("output_dir", "reporter")
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")

ProgressCallback = Callable[[str, int, int], None]


# -- the grid ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepParam:
    """One swept config key and its values (as written on the command line; typed by the config schema)."""

    key: str
    values: tuple[str, ...]


def parse_param(text: str) -> SweepParam:
    """``KEY=V1,V2,...`` -> :class:`SweepParam`. Raises :class:`ConfigError` for a malformed specification."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--param {text!r}: expected KEY=V1,V2,... (e.g. scenario.input_shapes.batch_size=1,2,4)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(f"--param {text!r}: '{key}' is not a dotted config key")
    if key == "output_dir" or key.startswith("reporter."):
        raise ConfigError(f"--param {text!r}: the sweep sets {key} itself (each point has its own run directory)")
    values = tuple(value.strip() for value in raw.split(","))
    if not raw.strip() or any(not value for value in values):
        raise ConfigError(f"--param {text!r}: give at least one value, and no empty value")
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise ConfigError(f"--param {text!r}: value(s) repeated: {', '.join(duplicates)}")
    return SweepParam(key=key, values=values)


def _public_value(key: str, value: str) -> str:
    """A swept or overridden value as it may be shown (secrets redacted, see ``redact_override``)."""
    return redact_override(f"{key}={value}").partition("=")[2]


@dataclass(frozen=True)
class SweepPoint:
    """One point of the grid: its 1-based index, the (key, value) pairs it sets and its directory name."""

    index: int
    settings: tuple[tuple[str, str], ...]
    name: str

    @property
    def public_settings(self) -> tuple[tuple[str, str], ...]:
        """The settings as they may be shown and written: a secret's value, or a URL's credentials, redacted."""
        return tuple((key, _public_value(key, value)) for key, value in self.settings)

    @property
    def label(self) -> str:
        """Short human label, e.g. ``batch_size=4`` or ``batch_size=4, concurrency=8`` (secrets redacted)."""
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.public_settings)

    @property
    def overrides(self) -> list[str]:
        """The point's ``key=value`` overrides."""
        return [f"{key}={value}" for key, value in self.settings]


def build_grid(params: Sequence[SweepParam]) -> list[SweepPoint]:
    """The Cartesian product of the parameters' values (the first parameter varies slowest).

    Directory names use each key's last component (the full key where two parameters share it) and the value,
    with characters other than letters, digits and ``._+-`` replaced; a name two points would share gets a short
    hash of the point's settings.
    """
    if not params:
        raise ConfigError("a sweep needs at least one --param KEY=V1,V2,...")
    keys = [param.key for param in params]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ConfigError(f"--param given twice for {', '.join(repeated)}: list all its values in one --param")
    short = [key.rsplit(".", 1)[-1] for key in keys]
    short = [s if short.count(s) == 1 else key for s, key in zip(short, keys, strict=True)]
    points = []
    for index, values in enumerate(itertools.product(*(param.values for param in params)), start=1):
        settings = tuple(zip(keys, values, strict=True))
        shown = [_public_value(key, value) for key, value in settings]  # a directory name holds no secret
        name = "__".join(f"{_SAFE.sub('_', s)}-{_SAFE.sub('_', v)}" for s, v in zip(short, shown, strict=True))
        points.append(SweepPoint(index=index, settings=settings, name=name))
    names = [point.name for point in points]
    return [
        SweepPoint(
            index=point.index,
            settings=point.settings,
            name=point.name
            + (
                "-" + hashlib.sha256(json.dumps(point.settings).encode()).hexdigest()[:8]
                if names.count(point.name) > 1
                else ""
            ),
        )
        for point in points
    ]


# -- events and outcomes ----------------------------------------------------------------------------------------------


@dataclass
class SweepEvent:
    """Progress of a sweep, for the caller to show.

    ``kind``: ``start`` (the point begins), ``done`` (completed), ``failed`` (its run failed; the sweep goes on),
    ``skip`` (already completed earlier). ``finished`` counts points done, skipped or failed so far; ``elapsed_s``
    is the time since this invocation started (s); ``eta_s`` estimates the time left from the points run so far.
    """

    kind: str
    point: SweepPoint
    total: int
    finished: int
    elapsed_s: float
    eta_s: float | None = None
    duration_s: float | None = None
    run_dir: Path | None = None
    result: dict[str, Any] | None = None
    message: str = ""

    @property
    def left(self) -> int:
        """Points not finished yet."""
        return self.total - self.finished


@dataclass
class PointOutcome:
    """What became of one point: its run directory, status and report (None when it never produced one).

    ``status``: ``completed``, ``failed``, or after an interrupt ``interrupted`` (the point that was running) and
    ``not run`` (the points after it).
    """

    point: SweepPoint
    run_dir: Path
    status: str
    report: dict[str, Any] | None = None
    ran_now: bool = False
    message: str = ""


@dataclass
class SweepOutcome:
    """The sweep's points and the files written (summary CSV and Markdown, manifest, plot when drawn)."""

    directory: Path
    points: list[PointOutcome]
    files: dict[str, Path] = field(default_factory=dict)
    best: PointOutcome | None = None

    @property
    def all_completed(self) -> bool:
        """True when every point of the grid has a completed run."""
        return all(outcome.status == "completed" for outcome in self.points)


# -- the sweep --------------------------------------------------------------------------------------------------------


def _json_safe(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, sort_keys=True))


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 of a resolved config without the keys that only say where results go (``output_dir``, ``reporter``)."""
    measured = {key: value for key, value in _json_safe(config).items() if key not in _LOCATION_KEYS}
    return hashlib.sha256(json.dumps(measured, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_report(run_dir: Path) -> dict[str, Any] | None:
    """The report in ``run_dir``, or None when it is missing or unreadable."""
    try:
        report = json.loads((run_dir / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return reader_view(report) if isinstance(report, dict) else None


class Sweep:
    """A grid of benchmark runs over ``params``, on a base config (a YAML file or a packaged preset).

    ``overrides`` apply to every point (before the point's own); ``output_dir`` is the sweep directory (default:
    ``<the base config's output_dir>/sweep``). ``slo_p99_s`` / ``slo_ttft_p99_s`` are latency objectives (s) on
    the p99 end-to-end latency and the p99 time to first token; the summary marks the points meeting all that are
    given. ``plot=False`` skips the figure (and the need for matplotlib).
    """

    def __init__(
        self,
        params: Sequence[SweepParam],
        config_path: str | Path | None = None,
        config_name: str | None = None,
        overrides: Sequence[str] = (),
        output_dir: str | Path | None = None,
        slo_p99_s: float | None = None,
        slo_ttft_p99_s: float | None = None,
        plot: bool = True,
    ) -> None:
        if plot:
            require_matplotlib()
        self.params = list(params)
        self.points = build_grid(self.params)
        self.config_path = None if config_path is None else str(config_path)
        self.config_name = config_name
        self.overrides = list(overrides)
        for slo, name in ((slo_p99_s, "--slo-p99-s"), (slo_ttft_p99_s, "--slo-ttft-p99-s")):
            if slo is not None and not slo > 0:
                raise ConfigError(f"{name}: a latency objective must be a positive number of seconds, got {slo}")
        self.slo_p99_s = slo_p99_s
        self.slo_ttft_p99_s = slo_ttft_p99_s
        self.plot = plot
        swept = {param.key for param in self.params}
        for override in self.overrides:
            key = override.partition("=")[0].strip()
            if key in swept:
                raise ConfigError(
                    f"{key} is both swept (--param) and overridden ({redact_override(override)}); keep one"
                )
            if key == "output_dir":
                raise ConfigError("output_dir: use --output-dir for the sweep directory (each point gets its own)")
        self._user_sets_reporter = any(o.partition("=")[0].strip().startswith("reporter.") for o in self.overrides)
        if output_dir is None:
            from ai_energy_benchmarks.runner import create_benchmark

            base = create_benchmark(config_path=self.config_path, overrides=self.overrides, config_name=config_name)
            output_dir = Path(base.config.output_dir) / "sweep"
        self.directory = Path(output_dir)

    @property
    def public_overrides(self) -> list[str]:
        """The common overrides as they may be shown and written (secrets redacted)."""
        return [redact_override(override) for override in self.overrides]

    # -- per-point configuration --------------------------------------------------------------------------------------

    def run_dir(self, point: SweepPoint) -> Path:
        """The run directory of ``point``."""
        return self.directory / point.name

    def point_overrides(self, point: SweepPoint) -> list[str]:
        """Every override for ``point``: the common ones, the point's, and where it writes."""
        where = [f"output_dir={self.run_dir(point)}"]
        if not self._user_sets_reporter:
            where.append(f"reporter.output_file={self.directory / RESULTS_CSV}")
        return [*self.overrides, *point.overrides, *where]

    def _runner(self, point: SweepPoint, progress: ProgressCallback | None = None) -> Any:
        from ai_energy_benchmarks.runner import create_benchmark

        try:
            return create_benchmark(
                config_path=self.config_path,
                overrides=self.point_overrides(point),
                config_name=self.config_name,
                progress=progress,
            )
        except ConfigError as exc:
            raise ConfigError(f"sweep point {point.index} ({point.label}): {exc}") from None

    def validate(self) -> None:
        """Build and check every point's config (nothing is loaded or run); raise the first error, naming the point."""
        for point in self.points:
            runner = self._runner(point)
            try:
                runner.check()
            except BenchmarkError as exc:
                raise type(exc)(f"sweep point {point.index} ({point.label}): {exc}") from None

    def completed_report(self, point: SweepPoint) -> tuple[dict[str, Any] | None, str]:
        """The point's earlier report when it completed with the current configuration; else None and why."""
        report = read_report(self.run_dir(point))
        if report is None:
            return None, "not run yet"
        if report.get("status") != "completed":
            return None, f"its earlier run is '{report.get('status')}'"
        recorded = dig(report, "provenance.config")
        if not isinstance(recorded, Mapping):
            return None, "its earlier report records no configuration"
        current = self._runner(point).config.to_public_dict()
        if config_fingerprint(recorded) != config_fingerprint(current):
            return None, "the configuration changed since it ran"
        return report, "already completed"

    # -- running ------------------------------------------------------------------------------------------------------

    def run(
        self,
        on_event: Callable[[SweepEvent], None] | None = None,
        progress: ProgressCallback | None = None,
    ) -> SweepOutcome:
        """Run the points not completed yet, then write the summary; return every point's outcome.

        A point whose run fails is recorded as failed and the sweep goes on. An interrupt (KeyboardInterrupt)
        stops it: the summary of what is finished is written, then the interrupt propagates; rerunning resumes.
        """
        self.validate()
        self.directory.mkdir(parents=True, exist_ok=True)
        emit = on_event or (lambda event: None)
        started = time.monotonic()
        total = len(self.points)
        outcomes: list[PointOutcome] = []
        durations: list[float] = []
        plan = [(point, *self.completed_report(point)) for point in self.points]
        to_run = sum(1 for _, report, _ in plan if report is None)
        logger.info("sweep of %d points in %s: %d to run", total, self.directory, to_run)

        def eta() -> float | None:
            if not durations:
                return None
            remaining = sum(1 for _, report, _ in plan[len(outcomes) :] if report is None)
            return sum(durations) / len(durations) * remaining if remaining else None

        def event(
            kind: str, point: SweepPoint, report: dict[str, Any] | None, message: str, duration_s: float | None = None
        ) -> SweepEvent:
            return SweepEvent(
                kind=kind,
                point=point,
                total=total,
                finished=len(outcomes),
                elapsed_s=time.monotonic() - started,
                eta_s=eta(),
                duration_s=duration_s,
                run_dir=self.run_dir(point),
                result=report,
                message=message,
            )

        try:
            for point, report, reason in plan:
                if report is not None:
                    outcomes.append(PointOutcome(point, self.run_dir(point), "completed", report, message=reason))
                    emit(event("skip", point, report, f"{reason} in {self.run_dir(point)}"))
                    continue
                emit(event("start", point, None, reason))
                point_started = time.monotonic()
                outcome = self._run_point(point, progress)
                outcomes.append(outcome)
                durations.append(time.monotonic() - point_started)
                kind = "done" if outcome.status == "completed" else "failed"
                emit(event(kind, point, outcome.report, outcome.message, durations[-1]))
        except KeyboardInterrupt:
            finished = {outcome.point.index for outcome in outcomes}
            rest = [p for p in self.points if p.index not in finished]
            stopped = [
                PointOutcome(p, self.run_dir(p), "interrupted" if i == 0 else "not run") for i, p in enumerate(rest)
            ]
            self._write_outputs(outcomes + stopped, plot=False)
            raise
        return self._write_outputs(outcomes, plot=self.plot)

    def _run_point(self, point: SweepPoint, progress: ProgressCallback | None) -> PointOutcome:
        run_dir = self.run_dir(point)
        runner = self._runner(point, progress)
        logger.info("sweep point %d/%d (%s) -> %s", point.index, len(self.points), point.label, run_dir)
        try:
            result = runner.run()
        except BenchmarkError as exc:
            message = redact_text(str(exc))
            logger.warning("sweep point %d (%s) failed: %s", point.index, point.label, message)
            return PointOutcome(point, run_dir, "failed", read_report(run_dir), ran_now=True, message=message)
        except Exception as exc:  # an unforeseen failure of one point must not lose the others
            message = redact_text(f"unexpected {type(exc).__name__}: {exc}")
            # The traceback only at debug level: its text may hold what the message redacts.
            logger.warning("sweep point %d (%s) failed: %s", point.index, point.label, message)
            logger.debug("sweep point %d failed", point.index, exc_info=True)
            return PointOutcome(point, run_dir, "failed", read_report(run_dir), ran_now=True, message=message)
        status = str(result.get("status"))
        message = "" if status == "completed" else "no request succeeded"
        return PointOutcome(point, run_dir, status, reader_view(result), ran_now=True, message=message)

    # -- summary ------------------------------------------------------------------------------------------------------

    def meets_slo(self, report: Mapping[str, Any] | None) -> bool | None:
        """Whether a report meets every latency objective given (None when none is given)."""
        if self.slo_p99_s is None and self.slo_ttft_p99_s is None:
            return None
        if report is None:
            return False
        checks = []
        if self.slo_p99_s is not None:
            p99 = dig(report, "latency.latency_s.p99")
            checks.append(isinstance(p99, (int, float)) and p99 <= self.slo_p99_s)
        if self.slo_ttft_p99_s is not None:
            ttft = dig(report, "latency.ttft_s.p99")
            checks.append(isinstance(ttft, (int, float)) and ttft <= self.slo_ttft_p99_s)
        return all(checks)

    def summary_rows(self, outcomes: Sequence[PointOutcome]) -> list[dict[str, Any]]:
        """One row per point: its settings, status, energy and latency figures, Pareto membership and SLO verdict."""
        from ai_energy_benchmarks.reporting.plots import pareto_front

        rows = []
        for outcome in outcomes:
            report = outcome.report if outcome.status == "completed" else None
            row: dict[str, Any] = {"point": outcome.point.index, "name": outcome.point.name}
            row.update(dict(outcome.point.public_settings))
            jpt_ci = dig(report, "repetition_statistics.joules_per_output_token") or {}
            sources = dig(report, "energy.sources", {}) or {}
            row.update(
                {
                    "status": outcome.status,
                    "repetitions": len(dig(report, "repetitions", []) or []) or None,
                    "successful_prompts": dig(report, "summary.successful_prompts"),
                    "total_energy_wh": dig(report, "energy.total_energy_wh"),
                    "wh_per_1000_queries": dig(report, "energy.total_wh_per_1000_queries"),
                    "joules_per_output_token": dig(report, "energy.joules_per_output_token"),
                    "joules_per_output_token_ci95_low": jpt_ci.get("ci95_low"),
                    "joules_per_output_token_ci95_high": jpt_ci.get("ci95_high"),
                    "output_tokens_per_second": dig(report, "summary.throughput_output_tokens_per_second"),
                    "prompts_per_second": prompts_per_second(report),
                    "latency_p50_s": dig(report, "latency.latency_s.p50"),
                    "latency_p99_s": dig(report, "latency.latency_s.p99"),
                    "ttft_p50_s": dig(report, "latency.ttft_s.p50"),
                    "ttft_p99_s": dig(report, "latency.ttft_s.p99"),
                    "energy_sources": ", ".join(
                        f"{device}={source_kind(sources.get(device))}" for device in ("gpu", "cpu", "ram")
                    )
                    if report
                    else None,
                    "pareto_p50": None,
                    "pareto_p99": None,
                    "meets_slo": self.meets_slo(report),
                    "run_dir": str(outcome.run_dir),
                }
            )
            rows.append(row)
        plotted = [
            row
            for row in rows
            if all(
                isinstance(row[k], (int, float)) for k in ("joules_per_output_token", "latency_p50_s", "latency_p99_s")
            )
        ]
        for column, latency in (("pareto_p50", "latency_p50_s"), ("pareto_p99", "latency_p99_s")):
            front = set(pareto_front([(row[latency], row["joules_per_output_token"]) for row in plotted]))
            for index, row in enumerate(plotted):
                row[column] = index in front
        return rows

    def best(self, rows: Sequence[Mapping[str, Any]], outcomes: Sequence[PointOutcome]) -> PointOutcome | None:
        """The point with the lowest J per output token among those meeting the SLOs (all completed, if no SLO)."""
        candidates = [
            (row["joules_per_output_token"], outcome)
            for row, outcome in zip(rows, outcomes, strict=True)
            if isinstance(row["joules_per_output_token"], (int, float)) and row["meets_slo"] is not False
        ]
        return min(candidates, key=lambda pair: pair[0])[1] if candidates else None

    def _write_outputs(self, outcomes: list[PointOutcome], plot: bool) -> SweepOutcome:
        rows = self.summary_rows(outcomes)
        best = self.best(rows, outcomes)
        files = {
            "summary_csv": write_text_atomic(self.directory / SUMMARY_CSV, _csv_text(rows)),
            "summary_md": write_text_atomic(self.directory / SUMMARY_MD, self._markdown(rows, best)),
            "manifest": write_text_atomic(self.directory / MANIFEST, self._manifest(outcomes)),
        }
        if plot:
            from ai_energy_benchmarks.reporting.plots import SweepPlotPoint, sweep_energy_vs_latency

            points = [
                SweepPlotPoint(
                    label=outcome.point.label,
                    joules_per_token=float(row["joules_per_output_token"]),
                    latency_p50_s=float(row["latency_p50_s"]),
                    latency_p99_s=float(row["latency_p99_s"]),
                    meets_slo=row["meets_slo"],
                )
                for row, outcome in zip(rows, outcomes, strict=True)
                if row["pareto_p50"] is not None
            ]
            title = "Sweep over " + ", ".join(param.key for param in self.params)
            files["plot"] = sweep_energy_vs_latency(points, self.directory / PLOT, self.slo_p99_s, title)
        logger.info("sweep summary: %s", files["summary_md"])
        return SweepOutcome(directory=self.directory, points=outcomes, files=files, best=best)

    def _slo_text(self) -> str:
        parts = []
        if self.slo_p99_s is not None:
            parts.append(f"p99 end-to-end latency ≤ {self.slo_p99_s:g} s")
        if self.slo_ttft_p99_s is not None:
            parts.append(f"p99 time to first token ≤ {self.slo_ttft_p99_s:g} s")
        return " and ".join(parts)

    def _markdown(self, rows: Sequence[Mapping[str, Any]], best: PointOutcome | None) -> str:
        keys = [param.key for param in self.params]
        headers = [
            *(key.rsplit(".", 1)[-1] for key in keys),
            "status",
            "J / output token",
            "Wh / 1000 queries",
            "tokens/s",
            "p50 latency (s)",
            "p99 latency (s)",
            "p99 TTFT (s)",
            "Pareto (p50 / p99)",
        ]
        slo = self._slo_text()
        if slo:
            headers.append("meets SLO")
        lines = [
            f"# Sweep over {', '.join(keys)}",
            "",
            f"Base config: {self.config_path or f'preset {self.config_name}'}"
            + (f"; common overrides: `{' '.join(self.public_overrides)}`" if self.overrides else ""),
            "",
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" for _ in headers) + "|",
        ]
        for row in rows:
            jpt = _fmt(row["joules_per_output_token"])
            if row["joules_per_output_token_ci95_low"] is not None:
                jpt += (
                    f" [{_fmt(row['joules_per_output_token_ci95_low'])}, "
                    f"{_fmt(row['joules_per_output_token_ci95_high'])}]"
                )
            cells = [
                *(str(row[key]) for key in keys),
                str(row["status"]),
                jpt,
                _fmt(row["wh_per_1000_queries"]),
                _fmt(row["output_tokens_per_second"]),
                _fmt(row["latency_p50_s"]),
                _fmt(row["latency_p99_s"]),
                _fmt(row["ttft_p99_s"]),
                f"{_mark(row['pareto_p50'])} / {_mark(row['pareto_p99'])}",
            ]
            if slo:
                cells.append(_mark(row["meets_slo"]))
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
        lines.append(
            "J / output token: total energy of the measured windows per generated token, with its 95% confidence "
            "interval over repetitions when there are two or more. Pareto: no other point has both lower energy per "
            "token and lower latency (at p50 / at p99)."
        )
        if slo:
            verdict = (
                f"Lowest energy per token meeting {slo}: **{best.point.label}**."
                if best
                else f"No completed point meets {slo}."
            )
            lines += ["", f"Latency SLO: {slo}. {verdict}"]
        elif best:
            lines += ["", f"Lowest energy per token: **{best.point.label}**."]
        return "\n".join(lines) + "\n"

    def _manifest(self, outcomes: Sequence[PointOutcome]) -> str:
        data = {
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": self.config_path,
            "config_name": self.config_name,
            "overrides": self.public_overrides,
            "params": [
                {"key": param.key, "values": [_public_value(param.key, value) for value in param.values]}
                for param in self.params
            ],
            "slo": {"p99_latency_s": self.slo_p99_s, "p99_ttft_s": self.slo_ttft_p99_s},
            "points": [
                {
                    "index": outcome.point.index,
                    "name": outcome.point.name,
                    "settings": dict(outcome.point.public_settings),
                    "run_dir": str(outcome.run_dir),
                    "status": outcome.status,
                    "ran_now": outcome.ran_now,
                    "message": outcome.message,
                }
                for outcome in outcomes
            ],
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _mark(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["point", "name", "status"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


__all__ = [
    "MANIFEST",
    "PLOT",
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "PointOutcome",
    "Sweep",
    "SweepEvent",
    "SweepOutcome",
    "SweepParam",
    "SweepPoint",
    "build_grid",
    "config_fingerprint",
    "parse_param",
    "read_report",
]
