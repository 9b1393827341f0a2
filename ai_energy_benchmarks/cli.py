"""The `ai-energy-benchmark` command line. It owns the console: the library only logs.

Heavy libraries (torch, transformers, datasets) are imported only when a benchmark runs, so `--help` and
`--version` are instant.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ai_energy_benchmarks._version import __version__
from ai_energy_benchmarks.exceptions import BenchmarkError, Interrupted

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_RUN_HELP = """Run a benchmark.

\b
  ai-energy-benchmark --config-name quickstart
  ai-energy-benchmark --config my.yaml backend.model=gpt2 scenario.num_samples=100

Trailing KEY=VALUE arguments override the config (dotted key paths, values typed by the schema).
"""


class _DefaultRunGroup(click.Group):
    """A group whose default command is `run`: `ai-energy-benchmark --config x.yaml` runs a benchmark."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        elif not args:
            args = ["run"]
        return super().parse_args(ctx, args)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    if verbose < 2:
        for noisy in ("codecarbon", "urllib3", "filelock", "httpx", "datasets", "transformers"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _install_signal_handlers() -> None:
    """SIGINT and SIGTERM stop the run cleanly (meters stopped, partial report written); a second one exits at once."""

    def leave_now(signum: int, frame: Any) -> None:
        os._exit(128 + signum)

    def stop_run(signum: int, frame: Any) -> None:
        for other in (signal.SIGINT, signal.SIGTERM):
            signal.signal(other, leave_now)
        raise Interrupted(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_run)


@contextmanager
def _errors_to_exit_codes(verbose: int) -> Iterator[None]:
    try:
        yield
    except BenchmarkError as exc:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        click.echo(f"error: {exc}", err=True)
        partial = getattr(exc, "partial_report", None)
        if partial:
            click.echo(f"partial report (what was measured before the failure): {partial}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        partial = getattr(exc, "partial_report", None)
        where = f"; partial report: {partial}" if partial else "; nothing had been measured yet"
        click.echo(f"interrupted by {signal.Signals(signum).name}{where}", err=True)
        sys.exit(128 + signum)
    except Exception as exc:  # a bug or an unforeseen failure: still one clear line, details with -v
        if verbose:
            traceback.print_exc(file=sys.stderr)
        detail = "" if verbose else " (run with -v for the traceback)"
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}{detail}", err=True)
        sys.exit(1)


def _progress_bar(enabled: bool) -> tuple[Callable[[str, int, int], None] | None, Callable[[], None]]:
    """A progress callback drawing a tqdm bar on stderr (None when disabled), and a closer."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        size = os.terminal_size((0, 0))
    # A terminal that reports no size (a bare pty) still gets a bar of a usual size.
    width = None if size.columns > 0 else 80
    height = None if size.lines > 0 else 24

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(
                total=total, desc=stage, unit="prompt", file=sys.stderr, leave=False, ncols=width, nrows=height
            )
        bar.n = done
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


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
    _setup_logging(verbose, quiet)
    _install_signal_handlers()
    with _errors_to_exit_codes(verbose):
        from ai_energy_benchmarks.results.summary import format_summary
        from ai_energy_benchmarks.runner import create_benchmark

        progress, close_progress = _progress_bar(not quiet and sys.stderr.isatty())
        runner = create_benchmark(
            config_path=config_path, overrides=list(overrides), config_name=config_name, progress=progress
        )
        try:
            result = runner.run()
        finally:
            close_progress()
        click.echo(format_summary(result, result.get("files", {}).get("report")))
        if result["status"] != "completed":
            sys.exit(EXIT_FAILED)


@main.command("validate")
@_with_config_options
def validate_command(
    config_path: str | None, config_name: str | None, verbose: int, quiet: bool, overrides: tuple[str, ...]
) -> None:
    """Check a config and print it fully resolved (defaults, environment and overrides applied)."""
    _setup_logging(verbose, quiet)
    with _errors_to_exit_codes(verbose):
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


if __name__ == "__main__":  # pragma: no cover
    main()
