"""0.0.4's reporter interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Reporter(ABC):
    """Writes a benchmark's results somewhere."""

    @abstractmethod
    def report(self, results: dict[str, Any]) -> None:
        """Write ``results`` (the dict ``BenchmarkRunner.run()`` returns)."""

    @abstractmethod
    def validate(self) -> bool:
        """Whether the reporter can write where it is configured to."""
