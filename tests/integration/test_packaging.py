"""Distribution checks that run without a network: one version everywhere, the Docker build context, the release
workflows, build_wheel.sh's failure path, and the README sections PyPI shows.

The artefacts themselves (the wheel's and sdist's contents, `twine check`, installs in fresh venvs with no extras,
[pytorch] and [all]) are checked by `.ci/run`, which builds them; see docs/release.md for the whole list.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo_paths import REPO_ROOT

import ai_energy_benchmarks

ROOT = REPO_ROOT
IN_CHECKOUT = (ROOT / ".git").exists()
WORKFLOWS = ROOT / ".github" / "workflows"
VERSION = (ROOT / "VERSION.txt").read_text(encoding="utf-8").strip()


def repo_file(relative: str) -> Path:
    """A file that lives in the repository but not in the sdist: required in a checkout, skipped elsewhere."""
    path = ROOT / relative
    if not path.exists():
        if IN_CHECKOUT:
            pytest.fail(f"{relative} is missing from the repository")
        pytest.skip(f"{relative} is not shipped in the sdist")
    return path


def repo_tree() -> list[str]:
    """The repository's files (tracked and new, not ignored), as paths relative to the root."""
    if IN_CHECKOUT:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return listed.stdout.splitlines()
    skip = {".git", ".venv", "dist", "build", "benchmark_output"}
    return [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.parts)]


def load_workflow(name: str) -> dict[Any, Any]:
    data = yaml.safe_load(repo_file(f".github/workflows/{name}").read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name} is not a YAML mapping"
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` block; YAML 1.1 reads the bare key `on` as the boolean True."""
    block = workflow.get(True, workflow.get("on"))
    assert isinstance(block, dict), "the workflow has no `on:` mapping"
    return block


def step_index(steps: list[dict[str, Any]], needle: str) -> int:
    for index, step in enumerate(steps):
        if needle in str(step.get("run", "")) or needle in str(step.get("uses", "")):
            return index
    raise AssertionError(f"no step runs or uses {needle!r}")


# -- one version ------------------------------------------------------------------------------------------------
def test_version_file_is_a_canonical_pep440_version() -> None:
    from packaging.version import Version

    assert VERSION, "VERSION.txt is empty"
    assert str(Version(VERSION)) == VERSION, f"VERSION.txt holds {VERSION!r}; write it as {Version(VERSION)}"


def test_one_version_from_file_to_metadata_to_module_to_cli() -> None:
    installed = metadata.version("ai-energy-benchmarks")
    assert installed == VERSION, (
        f"the installed metadata says {installed} but VERSION.txt says {VERSION}: reinstall (pip install -e '.[dev]')"
    )
    assert ai_energy_benchmarks.__version__ == VERSION
    cli = Path(sys.executable).parent / "ai-energy-benchmark"
    assert cli.exists(), f"no console script next to {sys.executable}"
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == f"ai-energy-benchmark {VERSION}"


def test_version_is_written_in_one_file_only() -> None:
    """A bump edits VERSION.txt (and adds a CHANGELOG heading); no other file may hard-code the number."""
    if not IN_CHECKOUT:
        pytest.skip("needs the git checkout's file list")
    listed = repo_tree()
    pattern = re.compile(r"(?<![\d.])" + re.escape(VERSION) + r"(?![\d])")
    suffixes = {".py", ".toml", ".sh", ".yml", ".yaml", ".md", ".in", ".cfg", ".txt", ""}
    offenders = []
    for name in listed:
        path = ROOT / name
        # Skipped: the source itself, the release history, example versions in the tests and the release guide.
        if name in {"VERSION.txt", "CHANGELOG.md", "docs/release.md"} or name.startswith(
            ("tests/", "ai_energy_benchmarks/data/")
        ):
            continue
        if path.suffix not in suffixes or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if name == "README.md":
            # The Installing section names the current wheel file; it must at least never go stale.
            stale = {m for m in re.findall(r"ai_energy_benchmarks-(\d[\w.]*?)-py3", text) if m != VERSION}
            assert not stale, f"README.md names wheels of other versions: {sorted(stale)}"
            continue
        if pattern.search(text):
            offenders.append(name)
    assert not offenders, f"these files hard-code the version {VERSION}; derive it from VERSION.txt: {offenders}"


# -- the Docker build context -----------------------------------------------------------------------------------
def _glob_regex(pattern: str, *, github: bool = False) -> re.Pattern[str]:
    """A glob as a regular expression: `*` stops at `/`, `**` crosses directories, `[...]` is a class.

    Docker (.dockerignore): `?` is one character other than `/`, and `**/` also matches no directory at all.
    GitHub Actions filters (`github`): `?` and `+` repeat the character before them, as in a regular expression.
    """
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 3 if pattern.startswith("**/", i) and not github else 2
            continue
        if char == "*":
            out += "[^/]*"
        elif github and char in "+?":
            out += char
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
            continue
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out)


def docker_sends(path: str, patterns: list[str]) -> bool:
    """Whether Docker puts ``path`` in the build context: the last pattern matching it or a parent folder decides."""
    parts = path.split("/")
    sent = True
    for raw in patterns:
        exception = raw.startswith("!")
        regex = _glob_regex(os.path.normpath(raw[1:] if exception else raw).lstrip("/"))
        if any(regex.fullmatch("/".join(parts[:k])) for k in range(1, len(parts) + 1)):
            sent = exception
    return sent


def test_dockerignore_lets_only_the_wheel_into_a_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    assert patterns == ["*", "!dist/*.whl"]

    wheel = f"dist/ai_energy_benchmarks-{VERSION}-py3-none-any.whl"
    tree = repo_tree()
    candidates = [
        *tree,
        wheel,
        f"dist/ai_energy_benchmarks-{VERSION}.tar.gz",
        "dist/old/ai_energy_benchmarks-0.0.1-py3-none-any.whl",
        "build/lib/ai_energy_benchmarks/__init__.py",
        ".git/HEAD",
        ".venv/bin/python",
        "benchmark_output/quickstart/benchmark_report.json",
    ]
    sent = sorted({path for path in candidates if docker_sends(path, patterns)})
    assert sent == sorted({wheel} | {p for p in tree if re.fullmatch(r"dist/[^/]*\.whl", p)})


# -- build_wheel.sh ---------------------------------------------------------------------------------------------
def test_build_wheel_script_fails_clearly_without_the_build_module() -> None:
    script = ROOT / "build_wheel.sh"
    assert os.access(script, os.X_OK), "build_wheel.sh is not executable"
    result = subprocess.run(
        ["bash", str(script)],
        env={**os.environ, "PYTHON": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no 'build' module" in result.stderr


def test_build_wheel_script_cleans_builds_and_prints_the_install_command() -> None:
    text = (ROOT / "build_wheel.sh").read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    assert "rm -rf dist build ./*.egg-info" in text
    assert "-m build --outdir dist ." in text
    assert "VERSION.txt" in text
    assert "[pytorch]" in text and "[all]" in text
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(ROOT / "build_wheel.sh")], check=True)


# -- GitHub Actions ---------------------------------------------------------------------------------------------
def _all_steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("name", ["tests.yml", "publish.yml"])
def test_workflows_pin_actions_and_keep_expressions_out_of_scripts(name: str) -> None:
    workflow = load_workflow(name)
    assert workflow["permissions"] == {"contents": "read"}, "default token must be read-only"
    for step in _all_steps(workflow):
        if "uses" in step:
            assert re.search(r"@(v\d+|release/v\d+)$", step["uses"]), f"unpinned action {step['uses']}"
        if "run" in step:
            # Values reach scripts through env:, never pasted in with ${{ }} (script injection).
            assert "${{" not in step["run"], f"expression inside a run script: {step.get('name', step['run'][:40])}"


def test_tests_workflow_covers_the_supported_pythons_the_way_contributing_installs() -> None:
    workflow = load_workflow("tests.yml")
    on = triggers(workflow)
    assert {"push", "pull_request"} <= set(on)
    job = workflow["jobs"]["test"]
    versions = job["strategy"]["matrix"]["python-version"]
    assert versions == ["3.10", "3.11", "3.12"], "write the versions as strings: YAML reads 3.10 as 3.1"
    steps = job["steps"]
    torch = step_index(steps, "pip install torch==2.13.0")
    assert "download.pytorch.org/whl/cpu" in steps[torch]["run"], "install the CPU torch build"
    order = [torch, step_index(steps, "pip install -e '.[all,dev]'")]
    order += [step_index(steps, "ruff check ."), step_index(steps, "mypy"), step_index(steps, "pytest")]
    assert order == sorted(order), "torch, then the project, then ruff, mypy and pytest"
    assert job["env"]["HF_HUB_OFFLINE"] == "1" and job["env"]["HF_DATASETS_OFFLINE"] == "1"
    package = workflow["jobs"]["package"]["steps"]
    assert step_index(package, "./build_wheel.sh") < step_index(package, "twine check --strict dist/*")


def test_publish_workflow_builds_once_and_uses_trusted_publishing() -> None:
    workflow = load_workflow("publish.yml")
    tags = triggers(workflow)["push"]["tags"]
    assert set(triggers(workflow)) == {"push"}

    def triggered(tag: str) -> bool:
        return any(_glob_regex(pattern, github=True).fullmatch(tag) for pattern in tags)

    for tag in ("v0.1.0", "v1.2.3", "v10.20.30", "v1.2.3rc1", "v1.2.3rc12"):
        assert triggered(tag), tag
    for tag in ("1.2.3", "v1.2", "v1.2.3.dev1", "v1.2.3a1", "v1.2.3-rc1", "v1.2.3.post1", "latest"):
        assert not triggered(tag), tag

    jobs = workflow["jobs"]
    builders = [name for name, job in jobs.items() if any("build_wheel.sh" in s.get("run", "") for s in job["steps"])]
    assert builders == ["build"], "the distribution is built once"
    assert any("upload-artifact" in s.get("uses", "") for s in jobs["build"]["steps"])
    assert "id-token" not in str(jobs["build"].get("permissions", {}))

    for name, repository in (("publish-testpypi", "https://test.pypi.org/legacy/"), ("publish-pypi", None)):
        job = jobs[name]
        assert job["needs"] == "build"
        assert job["permissions"] == {"id-token": "write"}
        assert job["environment"]["name"] in {"testpypi", "pypi"}
        assert not any("checkout" in s.get("uses", "") for s in job["steps"]), "publish what build made, no rebuild"
        assert any("download-artifact" in s.get("uses", "") for s in job["steps"])
        publish = [s for s in job["steps"] if s.get("uses", "").startswith("pypa/gh-action-pypi-publish@")]
        assert len(publish) == 1
        assert (publish[0].get("with") or {}).get("repository-url") == repository
        assert not {"password", "user", "username"} & set(publish[0].get("with") or {})
    assert jobs["publish-testpypi"]["if"] == "needs.build.outputs.channel == 'testpypi'"
    assert jobs["publish-pypi"]["if"] == "needs.build.outputs.channel == 'pypi'"

    release = jobs["github-release"]
    assert "publish-pypi" in release["needs"] and release["permissions"] == {"contents": "write"}
    text = (WORKFLOWS / "publish.yml").read_text(encoding="utf-8")
    assert "secrets." not in text, "trusted publishing: no stored tokens"


def _run_tag_check(
    tmp_path: Path, tag: str, version: str, changelog: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    steps = load_workflow("publish.yml")["jobs"]["build"]["steps"]
    script = next(step["run"] for step in steps if step.get("id") == "tag")
    (tmp_path / "check.sh").write_text(script, encoding="utf-8")
    (tmp_path / "VERSION.txt").write_text(version + "\n", encoding="utf-8")
    (tmp_path / "CHANGELOG.md").write_text(changelog, encoding="utf-8")
    output = tmp_path / "github_output"
    output.write_text("", encoding="utf-8")
    env = {
        **os.environ,
        "TAG": tag,
        "GITHUB_OUTPUT": str(output),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # `shell: bash` in a workflow runs `bash --noprofile --norc -eo pipefail {0}`.
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "check.sh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line)
    return result, outputs


CHANGELOG = """# Changelog

## [Unreleased]

## [1.2.3] - 2025-01-31

### Added

- A feature.

## [1.2.2] - 2025-01-01

- Older.
"""


def test_release_tag_goes_to_pypi_with_its_changelog_section_as_notes(tmp_path: Path) -> None:
    result, outputs = _run_tag_check(tmp_path, "v1.2.3", "1.2.3", CHANGELOG)
    assert result.returncode == 0, result.stderr
    assert outputs == {"version": "1.2.3", "channel": "pypi"}
    notes = (tmp_path / "release-notes.md").read_text(encoding="utf-8")
    assert "A feature." in notes and "Older." not in notes


def test_release_candidate_tag_goes_to_testpypi(tmp_path: Path) -> None:
    result, outputs = _run_tag_check(tmp_path, "v1.2.4rc1", "1.2.4rc1", CHANGELOG)
    assert result.returncode == 0, result.stderr
    assert outputs == {"version": "1.2.4rc1", "channel": "testpypi"}


@pytest.mark.parametrize(
    ("tag", "version", "message"),
    [
        ("v1.2.4", "1.2.3", "does not match VERSION.txt"),
        ("v1.2.4", "1.2.4", "no '## [1.2.4]' section"),
        ("v1.2.4.dev1", "1.2.4.dev1", "neither a release"),
    ],
)
def test_publishing_refuses_a_tag_that_is_not_a_release(tmp_path: Path, tag: str, version: str, message: str) -> None:
    result, outputs = _run_tag_check(tmp_path, tag, version, CHANGELOG)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "channel" not in outputs


# -- README on PyPI ---------------------------------------------------------------------------------------------
def test_readme_has_the_sections_pypi_readers_need() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_paragraph = readme.index("Measure the **energy")
    assert "img.shields.io" in readme[:first_paragraph], "badges go above the first paragraph"
    for heading in ("## Install from PyPI", "## Install from source", "## Install from a wheel"):
        assert heading in readme
    assert "## Building for Distribution" in readme
    assert "./build_wheel.sh" in readme[readme.index("## Building for Distribution") :]
    for doc in ("installation", "quickstart", "backends", "aienergyscore", "release"):
        assert f"docs/{doc}.md" in readme
        assert (ROOT / "docs" / f"{doc}.md").is_file()


def test_release_doc_points_only_at_tests_that_exist() -> None:
    text = (ROOT / "docs" / "release.md").read_text(encoding="utf-8")
    references = re.findall(r"(tests/[\w/]*test_\w+\.py)::(\w+)", text)
    assert references, "docs/release.md names the tests that check each criterion"
    for path, name in references:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.M), f"docs/release.md names {path}::{name}, which is gone"


# -- dependencies and extras ------------------------------------------------------------------------------------
# Modules the package imports that come with a declared distribution under another name (no separate requirement).
_PROVIDED_BY = {"pydantic_core": "pydantic", "pyarrow": "datasets"}


def _project() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project: dict[str, Any] = tomllib.load(handle)["project"]
    return project


def _names(requirements: list[str]) -> set[str]:
    from packaging.requirements import Requirement

    return {Requirement(r).name.lower() for r in requirements}


def _extras_of(project: dict[str, Any], extra: str) -> set[str]:
    """The distributions ``extra`` installs, self-references (``ai-energy-benchmarks[x]``) followed."""
    from packaging.requirements import Requirement

    found: set[str] = set()
    for raw in project["optional-dependencies"][extra]:
        requirement = Requirement(raw)
        if requirement.name == project["name"]:
            for inner in requirement.extras:
                found |= _extras_of(project, inner)
        else:
            found.add(requirement.name.lower())
    return found


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules the package imports (at module level or lazily) -> files importing them."""
    import ast

    found: dict[str, set[str]] = {}
    for path in (ROOT / "ai_energy_benchmarks").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "ai_energy_benchmarks":
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_every_dependency_is_imported_and_every_import_is_declared() -> None:
    """Base dependencies are what the package imports (nothing declared that nobody uses); each third-party import is
    declared in the base or an extra, so nothing arrives only because another package happens to pull it."""
    project = _project()
    base = _names(project["dependencies"])
    extras = {name: _extras_of(project, name) for name in project["optional-dependencies"]}
    imports = _third_party_imports()
    distributions = metadata.packages_distributions()
    declared = base | set().union(*extras.values())
    imported: set[str] = set()
    for module, files in imports.items():
        if module in _PROVIDED_BY:
            assert _PROVIDED_BY[module] in base, f"{module} is expected to come with {_PROVIDED_BY[module]}"
            continue
        names = {n.lower() for n in distributions.get(module, [module])}
        imported |= names
        assert names & declared, f"{module} (imported by {sorted(files)}) is not declared in pyproject.toml"
    assert base - imported == set(), f"declared but never imported: {sorted(base - imported)}"
    # The NVML bindings our meter imports are ours to declare, not CodeCarbon's (3.0.x asks for `pynvml` instead).
    assert "nvidia-ml-py" in base and "pycountry" in base


def test_extras_keep_runtime_and_development_apart() -> None:
    project = _project()
    extras = {name: _extras_of(project, name) for name in project["optional-dependencies"]}
    tools = {"ruff", "mypy", "twine", "build", "pytest", "types-pyyaml", "types-requests"}
    assert extras["all"] == extras["pytorch"] | extras["report"] | extras["ray"], "[all]: runtime extras for anywhere"
    assert not extras["all"] & tools, "development tools are not a runtime extra"
    assert extras["dev"] >= tools and "pytest" in extras["test"]
    assert extras["quantization"] == {"bitsandbytes"} and "bitsandbytes" not in extras["all"]
    assert extras["amd"] == {"amdsmi"} and "amdsmi" not in extras["all"]  # needs ROCm's library
    # Older install lines name [nvidia]: it stays declared (pip warns on an unknown extra) and adds nothing.
    assert extras["nvidia"] == set()


def test_readme_setup_installs_what_its_test_command_needs() -> None:
    """The README's set-up line installs [dev] (pytest, the linters) with the runtime extras the tests exercise; the
    contributing guide and the tests workflow install the same."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = re.search(r"<!-- readme-command: quickstart -->\s*```bash\n(.+?)\n```", readme, re.S)
    test = re.search(r"<!-- readme-command: test -->\s*```bash\n(.+?)\n```", readme, re.S)
    assert setup and test
    assert "python -m pytest" in test.group(1)
    installs = re.findall(r"pip install -e '\.\[([\w,]+)\]'", setup.group(1))
    assert installs == ["all,dev"], setup.group(1)
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert "pip install -e '.[all,dev]'" in contributing
    workflow = (ROOT / ".github" / "workflows" / "tests.yml").read_text(encoding="utf-8")
    assert "pip install -e '.[all,dev]'" in workflow
    # Every `pip install -e '.[...]'` in the README and the install guide names only extras that exist.
    project = _project()
    for text in (readme, (ROOT / "docs" / "installation.md").read_text(encoding="utf-8")):
        for group in re.findall(r"ai-energy-benchmarks\[([\w,]+)\]|-e '\.\[([\w,]+)\]'", text):
            for extra in ",".join(g for g in group if g).split(","):
                assert extra in project["optional-dependencies"], f"an install line names an unknown extra [{extra}]"


def test_quantization_without_bitsandbytes_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_energy_benchmarks.backends.pytorch import PyTorchBackend
    from ai_energy_benchmarks.config.schema import BenchmarkConfig
    from ai_energy_benchmarks.exceptions import ConfigError

    config = BenchmarkConfig.model_validate(
        {
            "name": "q",
            "backend": {"type": "pytorch", "model": "packaged:tiny-llama", "load_in_8bit": True, "no_weights": True},
        }
    )
    backend = PyTorchBackend(config)
    backend._device = "cuda:0"  # the check comes after the CUDA one; no GPU is needed to reach it
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` raises ImportError
    with pytest.raises(ConfigError) as caught:
        backend._quantization()
    assert str(caught.value) == (
        "backend.load_in_8bit/load_in_4bit: bitsandbytes is not installed: "
        "pip install 'ai-energy-benchmarks[quantization]'"
    )


def test_wheel_ships_the_task_set_and_the_scorers(tmp_path: Path) -> None:
    """`packaged:arithmetic` and `scoring/` are in a wheel built from a copy of the source tree, so the packaged
    task set runs offline from an installed wheel."""
    import zipfile

    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "ai_energy_benchmarks", source / "ai_energy_benchmarks", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "setup.py", "VERSION.txt", "README.md", "LICENSE", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run([*command, "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        packaged = archive.read("ai_energy_benchmarks/data/prompts/arithmetic.jsonl")
    assert packaged == (ROOT / "ai_energy_benchmarks" / "data" / "prompts" / "arithmetic.jsonl").read_bytes()
    for module in ("scoring/__init__.py", "scoring/scorers.py", "scoring/apply.py", "results/quality.py"):
        assert f"ai_energy_benchmarks/{module}" in names, module
