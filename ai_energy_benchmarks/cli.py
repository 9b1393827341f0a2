"""The `ai-energy-benchmark` command line. It owns the console: the library only logs.

Heavy libraries (torch, transformers, datasets) are imported only when a benchmark runs, so `--help` and
`--version` are instant. The console set-up (logging, progress display, signals, exit codes) is in ``cli_console``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ai_energy_benchmarks._version import __version__
from ai_energy_benchmarks.cli_console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STDOUT_CLOSED,
    EXIT_USAGE,
    drop_warnings_the_summary_repeats,
    errors_to_exit_codes,
    exit_stdout_closed,
    install_signal_handlers,
    note_late_signal,
    progress_bar,
    setup_logging,
    stderr_is_terminal,
    stdout_closed,
    sweep_event_line,
)

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_STDOUT_CLOSED", "EXIT_USAGE", "main"]

_RUN_HELP = """Run a benchmark.

\b
  ai-energy-benchmark --config-name quickstart
  ai-energy-benchmark --config my.yaml backend.model=gpt2 scenario.num_samples=100

Trailing KEY=VALUE arguments override the config (dotted key paths, values typed by the schema).
"""


class _DefaultRunGroup(click.Group):
    """A group whose default command is `run`: `ai-energy-benchmark --config x.yaml` runs a benchmark."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Options and KEY=VALUE overrides go to `run`; a bare word that is no command is left to click, which says
        # "No such command" (a mistyped command must not read as a benchmark without a config).
        first = args[0] if args else ""
        if args and first not in self.commands and (first.startswith("-") or "=" in first):
            if first not in ("--help", "-h", "--version"):
                args = ["run", *args]
        elif not args:
            args = ["run"]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            if not stdout_closed():
                raise
            exit_stdout_closed()


_config_options = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file."),
    click.option("--config-name", help="Packaged preset name (see `ai-energy-benchmark presets`)."),
    click.option("-v", "--verbose", count=True, help="More logging (-vv for debug); tracebacks on errors."),
    click.option("-q", "--quiet", is_flag=True, help="Only errors and the final summary; no progress bar."),
    click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]..."),
]


def _with_config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_config_options):
        func = option(func)
    return func


@click.group(
    cls=_DefaultRunGroup,
    help="Measure the energy, carbon and speed of AI inference.\n\n" + _RUN_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="ai-energy-benchmark", message="%(prog)s %(version)s")
def main() -> None:
    """Entry point (see the help text)."""


@main.command("run", help=_RUN_HELP)
@_with_config_options
def run_command(
    config_path: str | None, config_name: str | None, verbose: int, quiet: bool, overrides: tuple[str, ...]
) -> None:
    """Run a benchmark and print its summary."""
    setup_logging(verbose, quiet)
    with errors_to_exit_codes(verbose):
        install_signal_handlers()
        from ai_energy_benchmarks.results.summary import format_summary
        from ai_energy_benchmarks.runner import create_benchmark

        progress, close_progress = progress_bar(not quiet and stderr_is_terminal())
        drop_warnings_the_summary_repeats()
        runner = create_benchmark(
            config_path=config_path, overrides=list(overrides), config_name=config_name, progress=progress
        )
        try:
            result = runner.run()
        finally:
            close_progress()
        click.echo(format_summary(result, result.get("files", {}).get("report")))
        note_late_signal()
        if result["status"] != "completed":
            sys.exit(EXIT_FAILED)


@main.command("validate")
@_with_config_options
def validate_command(
    config_path: str | None, config_name: str | None, verbose: int, quiet: bool, overrides: tuple[str, ...]
) -> None:
    """Check a config and print it fully resolved (defaults, environment and overrides applied)."""
    setup_logging(verbose, quiet)
    with errors_to_exit_codes(verbose):
        import yaml

        from ai_energy_benchmarks.runner import config_sha256, create_benchmark

        runner = create_benchmark(config_path=config_path, overrides=list(overrides), config_name=config_name)
        runner.check()
        click.echo(f"# {runner.config_source}")
        click.echo(f"# sha256 {config_sha256(runner.config)}")
        click.echo(yaml.safe_dump(runner.config.to_public_dict(), sort_keys=False).rstrip())


@main.command("presets")
def presets_command() -> None:
    """List the packaged presets (use with --config-name)."""
    from ai_energy_benchmarks.config.loader import list_presets

    presets = list_presets()
    width = max(len(name) for name in presets)
    for name, description in presets.items():
        click.echo(f"{name.ljust(width)}  {description}")


@main.command("schema")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the schema to this file instead of printing it.")
def schema_command(output: str | None) -> None:
    """Print the JSON Schema of the result (benchmark_report.json, and the dict run() returns)."""
    from ai_energy_benchmarks.results.model import json_schema_text

    if output is None:
        click.echo(json_schema_text(), nl=False)
        return
    Path(output).write_text(json_schema_text(), encoding="utf-8")
    click.echo(f"schema written to {output}", err=True)


_verbosity_options = [
    click.option("-v", "--verbose", count=True, help="More logging (-vv for debug); tracebacks on errors."),
    click.option("-q", "--quiet", is_flag=True, help="Only errors and the result."),
]


def _with_verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_verbosity_options):
        func = option(func)
    return func


@main.command("report")
@click.argument("run_dir", type=click.Path())
@click.option(
    "-o", "--output-dir", type=click.Path(file_okay=False), help="Where to write the page and figures [RUN_DIR/report]."
)
@_with_verbosity_options
def report_command(run_dir: str, output_dir: str | None, verbose: int, quiet: bool) -> None:
    """Write an HTML report (one self-contained file) and PNG figures for the run in RUN_DIR.

    Needs matplotlib: pip install 'ai-energy-benchmarks[report]'.
    """
    setup_logging(verbose, quiet)
    with errors_to_exit_codes(verbose):
        from ai_energy_benchmarks.reporting.html import write_report

        files = write_report(run_dir, output_dir)
        click.echo(f"report: {files.html}")
        for path in files.figures.values():
            click.echo(f"figure: {path}")
        if not quiet:
            for name, reason in files.skipped.items():
                click.echo(f"not drawn: {name} ({reason})", err=True)


@main.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(), metavar="RUN_DIR RUN_DIR...")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False), help="Also write the table as Markdown.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="Also write the figures as CSV (long form).")
@click.option("--force", is_flag=True, help="Compare even when the runs measured different workloads.")
@_with_verbosity_options
def compare_command(
    run_dirs: tuple[str, ...], markdown_file: str | None, csv_file: str | None, force: bool, verbose: int, quiet: bool
) -> None:
    """Compare the key figures of runs side by side, with ratios to the first run.

    Each run is tested against the first with Welch's t-test (p-value shown; * when p < 0.05). Runs whose prompts or
    output lengths differ are refused (exit 2) unless --force is given.
    """
    setup_logging(verbose, quiet)
    if len(run_dirs) < 2:
        raise click.UsageError("compare needs at least two run directories")
    with errors_to_exit_codes(verbose):
        from pathlib import Path

        from ai_energy_benchmarks.reporting import ReportError
        from ai_energy_benchmarks.reporting.compare import compare_runs, format_csv, format_markdown, format_text

        comparison = compare_runs(list(run_dirs), force=force)
        click.echo(format_text(comparison))
        for target, render in ((markdown_file, format_markdown), (csv_file, format_csv)):
            if target is None:
                continue
            try:
                Path(target).write_text(render(comparison), encoding="utf-8")
            except OSError as exc:
                raise ReportError(f"{target}: cannot write ({exc.strerror or exc})") from None
            click.echo(f"written: {target}")


@main.command("sweep")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="A config key and the values to sweep (repeat for a grid), e.g. scenario.input_shapes.batch_size=1,2,4.",
)
@click.option(
    "--load",
    type=click.Choice(["grid", "adaptive"]),
    default="grid",
    show_default=True,
    help="adaptive: an HTTP server's load (synchronous, throughput, then --rates request rates between them, "
    "stopping when the server over-saturates) instead of a --param grid.",
)
@click.option("--rates", type=int, default=5, show_default=True, help="--load adaptive: request rates to run.")
@click.option(
    "--rate-profile",
    type=click.Choice(["constant", "poisson"]),
    default="constant",
    show_default=True,
    help="--load adaptive: arrivals at each rate.",
)
@click.option("--output-dir", type=click.Path(file_okay=False), help="Sweep directory [<config output_dir>/sweep].")
@click.option("--slo-p99-s", type=float, help="Latency objective: p99 end-to-end latency at most this (s).")
@click.option("--slo-ttft-p99-s", type=float, help="Latency objective: p99 time to first token at most this (s).")
@click.option("--no-plot", is_flag=True, help="Skip the figure (runs without matplotlib).")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Who runs the points: one after another here, or as Ray tasks each holding its GPUs (docs/clusters.md).",
)
@click.option("--ray-address", help="Ray cluster to use (host:port, ray://host:port, auto) [start a local one].")
@click.option("--ray-resource", help="Request this custom Ray resource per GPU instead of Ray's GPU resource.")
@click.option("--ray-gpus-per-point", type=float, help="GPUs (or resource units) per point [from backend.device_ids].")
@click.option("--ray-max-retries", type=int, default=3, show_default=True, help="Reruns of a point whose worker died.")
@_with_config_options
def sweep_command(
    params: tuple[str, ...],
    load: str,
    rates: int,
    rate_profile: str,
    output_dir: str | None,
    slo_p99_s: float | None,
    slo_ttft_p99_s: float | None,
    no_plot: bool,
    executor: str,
    ray_address: str | None,
    ray_resource: str | None,
    ray_gpus_per_point: float | None,
    ray_max_retries: int,
    config_path: str | None,
    config_name: str | None,
    verbose: int,
    quiet: bool,
    overrides: tuple[str, ...],
) -> None:
    """Run a grid of configurations, each point in its own run directory, and summarise it.

    \b
      ai-energy-benchmark sweep --config-name quickstart --param scenario.input_shapes.batch_size=1,2,4 --slo-p99-s 0.5
      ai-energy-benchmark sweep --config server.yaml --load adaptive --rates 5 --slo-p99-s 2 backend.concurrency=64

    Rerunning the same command resumes: points already completed with the same configuration are skipped. Writes
    summary.csv, summary.md and energy_vs_latency.png (J per output token vs p50/p99 latency, Pareto front, SLO).
    Trailing KEY=VALUE arguments override the config of every point. With --executor ray each point is a Ray task
    holding its GPUs, and the sweep directory must be on storage every Ray node mounts.
    """
    setup_logging(verbose, quiet)
    with errors_to_exit_codes(verbose):
        install_signal_handlers()
        from ai_energy_benchmarks.exceptions import ConfigError
        from ai_energy_benchmarks.sweeps import Sweep, parse_param
        from ai_energy_benchmarks.sweeps.adaptive import AdaptiveSweep
        from ai_energy_benchmarks.sweeps.executor import make_executor

        common: dict[str, Any] = {"config_path": config_path, "config_name": config_name, "overrides": list(overrides)}
        common |= {"output_dir": output_dir, "slo_p99_s": slo_p99_s, "slo_ttft_p99_s": slo_ttft_p99_s}
        if load == "adaptive" and params:
            raise ConfigError("--load adaptive chooses its own points: drop --param (fixed settings go as KEY=VALUE)")
        common["executor"] = make_executor(
            executor,
            address=ray_address,
            resource=ray_resource,
            gpus_per_point=ray_gpus_per_point,
            max_retries=ray_max_retries,
        )
        sweep: Any = (
            AdaptiveSweep(rates=rates, rate_profile=rate_profile, plot=not no_plot, **common)
            if load == "adaptive"
            else Sweep([parse_param(text) for text in params], plot=not no_plot, **common)
        )
        show = not quiet
        bar: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if "update" in bar and bar["update"] is not None:
                bar["update"](stage, done, total)

        def on_event(event: Any) -> None:
            if "close" in bar:
                bar.pop("close")()
            if show:
                click.echo(sweep_event_line(event), err=True)
            if event.kind == "start":
                bar["update"], bar["close"] = progress_bar(show and stderr_is_terminal())

        if show:
            on = "" if executor == "local" else f" (on Ray, {ray_address or 'local instance'})"
            if load == "adaptive":
                click.echo(f"sweep: adaptive load, up to {2 + rates} points in {sweep.directory}{on}", err=True)
            else:
                click.echo(f"sweep: {len(sweep.points)} points in {sweep.directory}{on}", err=True)
        try:
            outcome = sweep.run(on_event=on_event, progress=progress)
        except KeyboardInterrupt:
            if "close" in bar:
                bar.pop("close")()
            click.echo(
                "sweep interrupted: run the same command again to resume (completed points are skipped)", err=True
            )
            raise
        click.echo(outcome.files["summary_md"].read_text(encoding="utf-8").rstrip())
        for name, path in outcome.files.items():
            click.echo(f"{name}: {path}")
        if not outcome.all_completed:
            failed = [o.point.label for o in outcome.points if o.status != "completed"]
            click.echo(f"error: {len(failed)} point(s) did not complete: {'; '.join(failed)}", err=True)
            sys.exit(EXIT_FAILED)


@main.group("gpu")
def gpu_group() -> None:
    """GPU settings a run changed (`gpu:` power limits and clock locks)."""


@gpu_group.command("restore")
@click.option("--state-dir", type=click.Path(file_okay=False), help="Where the restore records are [gpu.state_dir].")
@click.option("--force", is_flag=True, help="Also restore GPUs whose run still appears to be running.")
@_with_verbosity_options
def gpu_restore_command(state_dir: str | None, force: bool, verbose: int, quiet: bool) -> None:
    """Put back the power limits and clocks that killed runs left changed (needs root or CAP_SYS_ADMIN)."""
    setup_logging(verbose, quiet)
    with errors_to_exit_codes(verbose):
        from ai_energy_benchmarks.energy.gpu_restore import restore_all
        from ai_energy_benchmarks.energy.gpu_restore import state_dir as default_state_dir

        directory = default_state_dir(state_dir)
        lines = restore_all(directory, force=force)
        for line in lines:
            click.echo(line)
        if not lines:
            click.echo(f"nothing to restore (no restore records in {directory})")


if __name__ == "__main__":  # pragma: no cover
    main()
