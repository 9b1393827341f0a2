"""Modules with one job: no module of the package grows past 400 lines (docs/architecture.md lists what each does).

A module that needs more has more than one job: split it by job into modules beside it, as backends/http_*.py,
results/*.py and energy/gpu*.py are split.
"""

from __future__ import annotations

from repo_paths import REPO_ROOT

MAX_LINES = 400


def test_no_module_is_longer_than_400_lines() -> None:
    package = REPO_ROOT / "ai_energy_benchmarks"
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in package.rglob("*.py")}
    assert len(sizes) > 100  # the whole package was read
    too_long = sorted(
        f"{path.relative_to(REPO_ROOT)}: {lines} lines" for path, lines in sizes.items() if lines > MAX_LINES
    )
    assert not too_long, f"modules over {MAX_LINES} lines (split them by job):\n" + "\n".join(too_long)
