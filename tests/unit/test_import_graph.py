"""Imports flow one way: the package's import graph, built from the source with ``ast``, has no cycle between its
parts and no import of a higher layer from a lower one.

Every ``import`` counts, at module level and inside functions (a function-level import is still a dependency, only
a later one), except those under ``if TYPE_CHECKING:`` (they never run; they only name types). A part is a
sub-package or top-level module of ``ai_energy_benchmarks`` (``backends``, ``runner``, ...), except the leaves named
in ``LEAF_MODULES``, which are parts of their own (``results.stats`` is imported by backends and must not pull in
the rest of ``results``).
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from repo_paths import REPO_ROOT

PACKAGE = "ai_energy_benchmarks"
ROOT = REPO_ROOT / PACKAGE

#: Modules that are parts of their own, below the package they sit in.
LEAF_MODULES = {f"{PACKAGE}.results.stats": "results.stats"}
#: Modules that are parts of their own above the package they sit in: 0.0.4's config facade (AIEnergyScore imports
#: its classes) checks names against the backend and meter registries, so it sits beside the runner.
OWN_PARTS = {**LEAF_MODULES, f"{PACKAGE}.config.parser": "config.parser"}

#: Bottom to top. A part may import parts of its own layer or of a lower one, never of a higher one. Derived from
#: the code: records, stats and exceptions are leaves; config knows only exceptions; meters, datasets and scorers read
#: config;
#: backends record requests (and use stats); results combines records with readings; reporting reads results;
#: the runner drives backends and meters into results (``passes``, ``run_dir``, ``run_prompts`` and ``run_report``,
#: its helpers, and ``legacy_runner``, 0.0.4's runner attributes, beside it);
#: 0.0.4's ``reporters`` write a CSV and know nothing else; sweeps drive the runner; the CLI and the package's public
#: API (``__init__``) sit on top (``cli_console``, the CLI's console set-up, beside it).
LAYERS: list[set[str]] = [
    {"_version", "exceptions", "records", "results.stats"},
    {"interrupts", "environment", "formatters", "config", "reporters"},
    {"datasets", "energy", "testing", "scoring"},
    {"backends"},
    {"results"},
    {"reporting"},
    {"runner", "legacy_runner", "passes", "run_dir", "run_prompts", "run_report", "progress", "config.parser"}
    | {"steady_hardware"},
    {"sweeps"},
    {"cli", "cli_console", "__main__", "(package)"},
]
#: Upward imports allowed by name, each with its reason (importer module -> imported part).
ALLOWED_UPWARD = {
    ("ai_energy_benchmarks.reporting.sweep", "sweeps"): "compatibility: sweeps lived in reporting.sweep until they "
    "moved beside the runner; the old path re-exports them",
}
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    importer: str  # module name
    imported: str  # module name

    def __str__(self) -> str:
        where = self.source.relative_to(ROOT.parent) if self.source.is_relative_to(ROOT.parent) else self.source
        return f"{where}:{self.line} imports {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT.parent / relative).with_suffix(".py").is_file() or (ROOT.parent / relative / "__init__.py").is_file()


def part_of(module: str) -> str:
    if module in OWN_PARTS:
        return OWN_PARTS[module]
    pieces = module.split(".")
    return "(package)" if len(pieces) == 1 else pieces[1]


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of the statements under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def imports_of(path: Path, importer: str | None = None) -> Iterator[Import]:
    """The package modules ``path`` imports (``importer``: its module name, by default from its place)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    importer = importer or module_name(path)
    skipped = _type_checking_lines(tree)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the module pkg.sub where there is one, else names of pkg
            names = [f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base for a in node.names]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                yield Import(path, node.lineno, importer, name)


def package_imports() -> list[Import]:
    return [imp for path in sorted(ROOT.rglob("*.py")) for imp in imports_of(path)]


def test_every_part_has_a_layer() -> None:
    parts = {part_of(module_name(path)) for path in ROOT.rglob("*.py")}
    assert not parts - set(LAYER_OF), f"parts without a layer in LAYERS: {sorted(parts - set(LAYER_OF))}"


def test_no_import_reaches_up_a_layer() -> None:
    upward = [
        f"{imp} ({part_of(imp.importer)} -> {part_of(imp.imported)}: {part_of(imp.imported)} sits above "
        f"{part_of(imp.importer)})"
        for imp in package_imports()
        if LAYER_OF.get(part_of(imp.imported), -1) > LAYER_OF.get(part_of(imp.importer), 99)
        and (imp.importer, part_of(imp.imported)) not in ALLOWED_UPWARD
    ]
    assert not upward, "imports that reach up a layer:\n" + "\n".join(upward)


def find_cycle(edges: dict[str, dict[str, Import]]) -> list[str] | None:
    """One cycle of parts (first part repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, {})):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_cycle_between_parts() -> None:
    edges: dict[str, dict[str, Import]] = {}
    for imp in package_imports():
        source, target = part_of(imp.importer), part_of(imp.imported)
        if source != target and (imp.importer, target) not in ALLOWED_UPWARD:
            edges.setdefault(source, {}).setdefault(target, imp)
    cycle = find_cycle(edges)
    assert cycle is None, (
        "import cycle " + " -> ".join(cycle) + ":\n" + "\n".join(str(edges[a][b]) for a, b in itertools.pairwise(cycle))
    )


def test_the_checker_sees_a_function_level_upward_import_and_a_cycle(tmp_path: Path) -> None:
    """The rules above can fail: an upward import inside a function is found, a TYPE_CHECKING one is not."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ai_energy_benchmarks.cli import main\n"
        "def f():\n    from ai_energy_benchmarks.runner import BenchmarkRunner\n",
        encoding="utf-8",
    )
    found = [imp.imported for imp in imports_of(source, importer=f"{PACKAGE}.results.probe")]
    assert found == ["ai_energy_benchmarks.runner"]
    a = Import(source, 1, f"{PACKAGE}.results.x", f"{PACKAGE}.backends.y")
    b = Import(source, 2, f"{PACKAGE}.backends.y", f"{PACKAGE}.results.x")
    assert find_cycle({"results": {"backends": a}, "backends": {"results": b}}) == ["backends", "results", "backends"]


def test_leaves_import_nothing_of_the_package_but_exceptions() -> None:
    leaves = {f"{PACKAGE}.records", f"{PACKAGE}.exceptions", *LEAF_MODULES}
    found = [
        str(imp)
        for imp in package_imports()
        if imp.importer in leaves and imp.imported not in {f"{PACKAGE}.exceptions", f"{PACKAGE}._version"}
    ]
    assert not found, "a leaf imports the package:\n" + "\n".join(found)


def test_importing_a_leaf_loads_nothing_else_of_the_package() -> None:
    """Backends import ``results.stats`` and ``records``: that must not load ``results``' aggregation (and with it
    config, datasets and energy)."""
    code = (
        "import sys, ai_energy_benchmarks.results.stats, ai_energy_benchmarks.records\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('ai_energy_benchmarks'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert set(loaded) <= {
        PACKAGE,
        f"{PACKAGE}._version",
        f"{PACKAGE}.exceptions",
        f"{PACKAGE}.results",
        f"{PACKAGE}.results.stats",
        f"{PACKAGE}.records",
    }, loaded


def test_the_old_home_of_request_record_still_works() -> None:
    from ai_energy_benchmarks.backends.base import RequestRecord as OldHome
    from ai_energy_benchmarks.records import RequestRecord

    assert OldHome is RequestRecord
