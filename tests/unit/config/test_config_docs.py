"""docs/configuration.md is generated from the schema.

Everything here drives the real config code (no mocks): values are checked as a user would see them, either as
resolved config values or as the one-line message and exit code of the `ai-energy-benchmark` command.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from config_helpers import (
    REPO_ROOT,
    _isolated,  # noqa: F401  # the autouse fixture: an empty working directory
)
from pydantic import BaseModel

from ai_energy_benchmarks.config.backend import BackendConfig as BackendConfigBase
from ai_energy_benchmarks.config.backend import builtin_config_models
from ai_energy_benchmarks.config.docs import render_markdown
from ai_energy_benchmarks.config.schema import BenchmarkConfig

# ---------------------------------------------------------------------------------------------------------------
# 6. docs/configuration.md is generated from the schema
# ---------------------------------------------------------------------------------------------------------------

DOCS_FILE = REPO_ROOT / "docs" / "configuration.md"


def _schema_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, info
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _schema_keys(annotation, path)
            if annotation is BackendConfigBase:  # and every built-in backend type's own keys
                for backend_model in builtin_config_models().values():
                    yield from ((k, v) for k, v in _schema_keys(backend_model, path) if k.split(".")[-1] != "type")


def test_committed_reference_matches_the_schema() -> None:
    assert DOCS_FILE.read_text(encoding="utf-8") == render_markdown(), (
        "docs/configuration.md is out of date: run `python -m ai_energy_benchmarks.config.docs > docs/configuration.md`"
    )


def test_reference_lists_every_key_with_its_default_and_description() -> None:
    text = render_markdown()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    keys = list(_schema_keys(BenchmarkConfig))
    assert len(keys) > 40
    for path, info in keys:
        assert f"`{path}`" in rows, path
        if info.description:
            assert " ".join(info.description.split()) in rows[f"`{path}`"].replace("\\|", "|"), path
    for section in ("backend", "scenario", "scenario.input_shapes", "scenario.generate_kwargs", "metrics", "reporter"):
        assert f"## `{section}`" in text
    assert rows["`scenario.num_samples`"].startswith("| `scenario.num_samples` | integer | `10` |")
    assert rows["`backend.model`"].startswith("| `backend.model` | string | **required** |")
    assert rows["`backend.type`"].startswith("| `backend.type` | string | `pytorch` |")
    assert "`pytorch`" in rows["`backend.type`"] and "`vllm`" in rows["`backend.type`"]
    for backend_type in ("pytorch", "vllm"):
        assert f"## `backend` with `type: {backend_type}`" in text
    assert rows["`backend.no_weights`"].startswith("| `backend.no_weights` | boolean | `false` |")
    assert rows["`backend.concurrency`"].startswith("| `backend.concurrency` | integer | `1` |")
    assert rows["`backend.device_ids`"].startswith("| `backend.device_ids` | list of integers | `[0]` |")


def test_reference_module_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ai_energy_benchmarks.config.docs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert proc.stdout == render_markdown()
