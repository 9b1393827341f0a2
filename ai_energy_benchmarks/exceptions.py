"""The exception tree. Every error the CLI turns into a clean one-line message derives from BenchmarkError."""

from __future__ import annotations


def one_line(exc: BaseException, *, all_lines: bool = False) -> str:
    """A third-party exception's message on one line: its first line (or, with ``all_lines``, every non-empty line
    joined with "; "), or the exception's type name when it has no message."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return "; ".join(lines) if all_lines else lines[0]


class BenchmarkError(Exception):
    """Base class for every error raised on purpose by ai_energy_benchmarks."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code: int = 1


class ConfigError(BenchmarkError):
    """The configuration is invalid (bad YAML, unknown key, wrong type, impossible value)."""

    exit_code = 2


class DatasetError(BenchmarkError):
    """Prompts could not be loaded (missing file or column, empty dataset, hub requested offline)."""

    exit_code = 2


class MissingDependencyError(BenchmarkError):
    """An optional dependency the request needs is not installed (the message names the install command)."""

    exit_code = 2


class BackendError(BenchmarkError):
    """The model could not be loaded or the server could not be reached."""

    exit_code = 1


class MeterError(BenchmarkError):
    """An energy meter could not be started or read."""

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT or SIGTERM); what was measured is kept.

    Derives from KeyboardInterrupt so that it unwinds through every ``except Exception`` on its way out.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        #: Conventional shell exit code: 128 + signal number (130 for SIGINT, 143 for SIGTERM).
        self.exit_code = 128 + signum
